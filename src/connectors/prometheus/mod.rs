//! Prometheus as a source of evidence: PromQL over the HTTP API for the
//! incident's resource and window (queries per resource kind in
//! [`queries`]), and PromQL conditions a validation polls.
//!
//! Every query of one investigation runs at once, each bounded by the
//! configured timeout, so a slow or hanging Prometheus costs an
//! investigation at most one timeout. A query that fails, times out, or
//! answers nothing or NaN gives no number: its fact stays unknown and the
//! reading says why.

pub mod api;
mod config;
pub mod promql;
pub mod queries;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use api::{Answer, QueryError, Series};
pub use config::{BasicAuthConfig, PrometheusConfig};
pub use queries::QueryKind;

use crate::event::Resource;

/// Why a Prometheus client could not be built (names the file, never its content).
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("prometheus: {0}")]
    Config(String),
    #[error("prometheus: cannot read {path}: {error}")]
    File { path: String, error: String },
}

/// How requests authenticate. The secret is never shown.
#[derive(Clone, Default)]
pub(crate) enum Auth {
    #[default]
    None,
    Bearer(String),
    Basic(String, String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "none",
            Auth::Bearer(_) => "bearer ********",
            Auth::Basic(..) => "basic ********",
        })
    }
}

impl Auth {
    fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => r,
            Auth::Bearer(t) => r.bearer_auth(t),
            Auth::Basic(u, p) => r.basic_auth(u, Some(p)),
        }
    }
}

fn read_secret(path: &std::path::Path) -> Result<String, PrometheusError> {
    let text = std::fs::read_to_string(path).map_err(|e| PrometheusError::File {
        path: path.display().to_string(),
        error: e.kind().to_string(),
    })?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(PrometheusError::File {
            path: path.display().to_string(),
            error: "the file is empty".into(),
        });
    }
    Ok(secret)
}

/// A Prometheus server the console reads.
#[derive(Debug, Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    base: reqwest::Url,
    auth: Auth,
    timeout: Duration,
    overrides: BTreeMap<String, BTreeMap<String, String>>,
}

/// One evidence query's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The fact is `prometheus.<name>`.
    pub name: &'static str,
    pub meaning: &'static str,
    /// The PromQL sent (values escaped), or the template when it could not be filled.
    pub query: String,
    /// The number, or why there is none (the fact stays unknown).
    pub value: Result<f64, String>,
    /// The series answered (bounded), for the evidence's detail.
    pub series: Vec<Series>,
    pub warnings: Vec<String>,
}

/// Most series kept per reading: the number comes from one; the rest only explain.
const MAX_SERIES: usize = 10;

impl Prometheus {
    /// A client for `config`; reads the credential and CA files now.
    pub fn new(config: &PrometheusConfig) -> Result<Self, PrometheusError> {
        config
            .validate()
            .map_err(|(k, why)| PrometheusError::Config(format!("{k}: {why}")))?;
        let mut base = reqwest::Url::parse(&config.url)
            .map_err(|e| PrometheusError::Config(format!("url: {e}")))?;
        // `join` replaces the last segment unless the path ends in `/`.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let auth = match (&config.bearer_token_file, &config.basic_auth) {
            (Some(f), _) => Auth::Bearer(read_secret(f)?),
            (None, Some(b)) => Auth::Basic(b.username.clone(), read_secret(&b.password_file)?),
            (None, None) => Auth::None,
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("shieldops/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| PrometheusError::File {
                path: path.display().to_string(),
                error: e.kind().to_string(),
            })?;
            for cert in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| PrometheusError::File {
                    path: path.display().to_string(),
                    error: format!("no PEM certificate: {e}"),
                })?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| PrometheusError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            base,
            auth,
            timeout,
            overrides: config.queries.clone(),
        })
    }

    /// The per-query timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// An instant query at `time` (`/api/v1/query`).
    pub async fn query(&self, promql: &str, time: DateTime<Utc>) -> Result<Answer, QueryError> {
        api::post(
            &self.client,
            &self.base,
            &self.auth,
            "api/v1/query",
            &api::instant_form(promql, time, self.timeout),
            self.timeout,
        )
        .await
    }

    /// A range query (`/api/v1/query_range`).
    pub async fn query_range(
        &self,
        promql: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<Answer, QueryError> {
        api::post(
            &self.client,
            &self.base,
            &self.auth,
            "api/v1/query_range",
            &api::range_form(promql, from, to, step, self.timeout),
            self.timeout,
        )
        .await
    }

    /// Runs every query for `resource`'s kind over `window` ending at `at`,
    /// all at once. `None`: no queries are written for this kind of resource.
    pub async fn readings(
        &self,
        resource: &Resource,
        window: chrono::Duration,
        at: DateTime<Utc>,
    ) -> Option<Vec<Reading>> {
        let (kind, mut values) = QueryKind::of(resource)?;
        values.insert("window", queries::duration(window));
        let planned = queries::plan(kind, &self.overrides);
        let runs = planned.into_iter().map(|q| {
            let values = &values;
            async move {
                let text = match promql::render(&q.template, values) {
                    Ok(t) => t,
                    Err(e) => {
                        return Reading {
                            name: q.name,
                            meaning: q.meaning,
                            query: q.template,
                            value: Err(e.to_string()),
                            series: Vec::new(),
                            warnings: Vec::new(),
                        };
                    }
                };
                let (value, series, warnings) = match self.query(&text, at).await {
                    Ok(a) => (one_number(&a.series), a.series, a.warnings),
                    Err(e) => (Err(e.to_string()), Vec::new(), Vec::new()),
                };
                Reading {
                    name: q.name,
                    meaning: q.meaning,
                    query: text,
                    value,
                    series: series.into_iter().take(MAX_SERIES).collect(),
                    warnings,
                }
            }
        });
        Some(futures::future::join_all(runs).await)
    }

    /// Whether a PromQL condition holds for `resource` at `at`: a non-empty
    /// answer holds (comparison operators filter), an empty one does not
    /// yet; an error is neither (the caller treats it as not healthy).
    pub async fn holds(
        &self,
        template: &str,
        resource: Option<&Resource>,
        at: DateTime<Utc>,
    ) -> Result<bool, String> {
        let values = match resource.and_then(QueryKind::of) {
            Some((_, v)) => v,
            None => BTreeMap::new(),
        };
        let text = promql::render(template, &values).map_err(|e| e.to_string())?;
        let answer = self.query(&text, at).await.map_err(|e| e.to_string())?;
        Ok(!answer.series.is_empty())
    }
}

/// The one number an answer gives, or why there is none.
fn one_number(series: &[Series]) -> Result<f64, String> {
    match series {
        [] => Err("no series matched (nothing scraped for this resource in the window)".into()),
        [s] => match s.last() {
            Some(v) if v.is_nan() => {
                Err("the answer is NaN (no samples to compute it from, e.g. 0/0)".into())
            }
            Some(v) if v.is_infinite() => Err(format!("the answer is {v} (a division by zero)")),
            Some(v) => Ok(v),
            None => Err("the series has no sample".into()),
        },
        many => Err(format!(
            "{} series answered; the query must aggregate to one",
            many.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(v: f64) -> Series {
        Series {
            labels: BTreeMap::new(),
            samples: vec![(Utc::now(), v)],
        }
    }

    #[test]
    fn only_one_finite_number_is_a_value() {
        assert_eq!(one_number(&[series(0.5)]), Ok(0.5));
        assert!(one_number(&[]).unwrap_err().contains("no series"));
        assert!(one_number(&[series(f64::NAN)]).unwrap_err().contains("NaN"));
        assert!(
            one_number(&[series(f64::INFINITY)])
                .unwrap_err()
                .contains("inf")
        );
        assert!(
            one_number(&[series(1.0), series(2.0)])
                .unwrap_err()
                .contains("2 series")
        );
    }

    #[test]
    fn secrets_come_from_files_and_are_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cr3t-token\n").unwrap();
        let mut c = PrometheusConfig::new("http://127.0.0.1:9/prefix");
        c.bearer_token_file = Some(token);
        let p = Prometheus::new(&c).unwrap();
        assert!(matches!(&p.auth, Auth::Bearer(t) if t == "s3cr3t-token"));
        assert!(!format!("{p:?}").contains("s3cr3t"));
        assert_eq!(p.base.as_str(), "http://127.0.0.1:9/prefix/");
        let request = p
            .auth
            .apply(p.client.post("http://127.0.0.1:9/api/v1/query"))
            .build()
            .unwrap();
        assert_eq!(
            request.headers()["authorization"].to_str().unwrap(),
            "Bearer s3cr3t-token"
        );
        c.bearer_token_file = Some(dir.path().join("missing"));
        let e = Prometheus::new(&c).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
