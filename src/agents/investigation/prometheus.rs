//! Prometheus readings as evidence and as `prometheus.*` playbook facts.
//! A reading without a number leaves its fact absent (unknown), and its
//! evidence says why.

use crate::connectors::prometheus::{Prometheus, Reading};
use crate::event::Resource;
use crate::playbook::Facts as PlaybookFacts;

/// Evidence source name (and what a playbook's `prometheus` step matches).
pub const SOURCE: &str = "prometheus";

/// What the investigation learned from Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub enum Gathered {
    /// The queries ran (some may have no number).
    Read(Vec<Reading>),
    /// Nothing was asked, and why (no `[prometheus]`, no queries for this kind).
    NotAsked(String),
}

/// Runs the queries for `resource` over `window` ending at `at`.
pub async fn gather(
    prometheus: Option<&Prometheus>,
    resource: &Resource,
    window: chrono::Duration,
    at: chrono::DateTime<chrono::Utc>,
) -> Gathered {
    let Some(p) = prometheus else {
        return Gathered::NotAsked("no [prometheus] is configured".into());
    };
    match p.readings(resource, window, at).await {
        Some(r) => Gathered::Read(r),
        None => Gathered::NotAsked(format!(
            "no PromQL is written for {}/{} resources",
            crate::playbook::provider_name(resource.provider),
            resource.kind
        )),
    }
}

/// The evidence lines: (summary, detail) per reading, or one saying why none.
pub fn evidence(g: &Gathered, window: chrono::Duration) -> Vec<(String, Vec<String>)> {
    let over = crate::connectors::prometheus::queries::duration(window);
    match g {
        Gathered::NotAsked(why) => vec![(
            format!("prometheus: not queried: {why}; its facts are unknown"),
            vec![],
        )],
        Gathered::Read(readings) => readings
            .iter()
            .map(|r| {
                let summary = match &r.value {
                    Ok(v) => format!(
                        "prometheus {} = {} over {over} ({})",
                        r.name,
                        crate::playbook::expr::format_number(*v),
                        r.meaning
                    ),
                    Err(why) => format!("prometheus {} unknown over {over}: {why}", r.name),
                };
                let mut detail = vec![format!("query: {}", r.query)];
                detail.extend(r.series.iter().map(|s| {
                    format!(
                        "{} {}",
                        s.selector(),
                        s.last()
                            .map(crate::playbook::expr::format_number)
                            .unwrap_or_default()
                    )
                }));
                detail.extend(r.warnings.iter().map(|w| format!("warning: {w}")));
                (summary, detail)
            })
            .collect(),
    }
}

/// Adds `prometheus.<name>` for every reading that has a number.
pub fn add_facts(g: &Gathered, pf: &mut PlaybookFacts) {
    if let Gathered::Read(readings) = g {
        for r in readings {
            if let Ok(v) = r.value {
                pf.set(format!("prometheus.{}", r.name), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(name: &'static str, value: Result<f64, String>) -> Reading {
        Reading {
            name,
            meaning: "m",
            query: "q".into(),
            value,
            series: vec![],
            warnings: vec!["w".into()],
        }
    }

    #[test]
    fn a_reading_without_a_number_is_unknown_and_says_why() {
        let g = Gathered::Read(vec![
            reading("cpu_throttle_ratio", Ok(0.5)),
            reading("restarts", Err("no answer within 1s".into())),
        ]);
        let mut pf = PlaybookFacts::new();
        add_facts(&g, &mut pf);
        assert_eq!(
            pf.get("prometheus.cpu_throttle_ratio"),
            Some(&crate::playbook::Fact::Number(0.5))
        );
        assert_eq!(pf.get("prometheus.restarts"), None);
        let ev = evidence(&g, chrono::Duration::minutes(5));
        assert_eq!(ev[0].0, "prometheus cpu_throttle_ratio = 0.5 over 5m (m)");
        assert_eq!(
            ev[1].0,
            "prometheus restarts unknown over 5m: no answer within 1s"
        );
        assert_eq!(ev[1].1, vec!["query: q", "warning: w"]);
        let none = Gathered::NotAsked("no [prometheus] is configured".into());
        let mut pf = PlaybookFacts::new();
        add_facts(&none, &mut pf);
        assert!(pf.is_empty());
        assert!(
            evidence(&none, chrono::Duration::minutes(5))[0]
                .0
                .contains("unknown")
        );
    }
}
