//! The Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`): the
//! requests, and a reading of the answers as Prometheus sends them — the
//! `status: error` envelope with `errorType`, `warnings`, the four result
//! types, and sample values as strings (`"NaN"`, `"+Inf"`, `"-Inf"`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Why a query has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// Prometheus answered `status: error` (bad query, timeout, unavailable).
    #[error("Prometheus refused the query ({kind}): {message}")]
    Refused { kind: String, message: String },
    /// No answer within the configured timeout.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// Connection refused, TLS failure, a proxy's error page, …
    #[error("{0}")]
    Transport(String),
    /// An answer that is not the API's JSON.
    #[error("unreadable answer: {0}")]
    Malformed(String),
}

/// One series of a result: its labels and its samples (one for an instant
/// vector, many for a range).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    /// (time, value) pairs; NaN and infinities are kept as Prometheus sent them.
    pub samples: Vec<(DateTime<Utc>, f64)>,
}

impl Series {
    /// The last sample's value.
    pub fn last(&self) -> Option<f64> {
        self.samples.last().map(|(_, v)| *v)
    }

    /// `{a="b", c="d"}`, as PromQL writes a series, values escaped.
    pub fn selector(&self) -> String {
        let inner: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", super::promql::escape(v)))
            .collect();
        format!("{{{}}}", inner.join(", "))
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    /// Every series (a scalar is one series without labels; a string result
    /// carries no number and gives none).
    pub series: Vec<Series>,
    /// What Prometheus warned about (a partial answer, a dropped series, …).
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Longest text from Prometheus kept in an error (it reaches the event log).
const MAX_ERROR: usize = 300;

fn shorten(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR)
        .collect();
    clean.trim().to_string()
}

/// A sample value as Prometheus writes it: Go's float formatting plus
/// `NaN`, `+Inf` and `-Inf`.
pub fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok(),
    }
}

fn at(secs: f64) -> DateTime<Utc> {
    let millis = (secs * 1000.0).round() as i64;
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

fn sample((t, v): &(f64, String)) -> Result<(DateTime<Utc>, f64), QueryError> {
    let value =
        parse_value(v).ok_or_else(|| QueryError::Malformed(format!("sample value {v:?}")))?;
    Ok((at(*t), value))
}

/// Reads an API answer (any HTTP status: errors come with 400, 422 or 503
/// and the same JSON envelope).
pub fn parse(status: u16, body: &[u8]) -> Result<Answer, QueryError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(&body[..body.len().min(120)]).to_string();
        if (200..300).contains(&status) {
            QueryError::Malformed(format!("{e}: {}", shorten(&text)))
        } else {
            QueryError::Transport(format!("HTTP {status}: {}", shorten(&text)))
        }
    })?;
    if envelope.status != "success" {
        return Err(QueryError::Refused {
            kind: shorten(envelope.error_type.as_deref().unwrap_or("unknown")),
            message: shorten(envelope.error.as_deref().unwrap_or("no message")),
        });
    }
    let data = envelope
        .data
        .ok_or_else(|| QueryError::Malformed("`data` is missing".into()))?;
    let warnings = envelope.warnings.iter().map(|w| shorten(w)).collect();
    let series = match data.result_type.as_str() {
        "vector" | "matrix" => {
            let raw: Vec<RawSeries> = serde_json::from_value(data.result)
                .map_err(|e| QueryError::Malformed(format!("result: {e}")))?;
            raw.into_iter()
                .map(|r| {
                    let samples = match &r.value {
                        Some(v) => vec![sample(v)?],
                        None => r.values.iter().map(sample).collect::<Result<_, _>>()?,
                    };
                    Ok(Series {
                        labels: r.metric,
                        samples,
                    })
                })
                .collect::<Result<Vec<_>, QueryError>>()?
        }
        "scalar" => {
            let v: (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| QueryError::Malformed(format!("scalar: {e}")))?;
            vec![Series {
                labels: BTreeMap::new(),
                samples: vec![sample(&v)?],
            }]
        }
        "string" => Vec::new(),
        other => {
            return Err(QueryError::Malformed(format!(
                "result type {:?}",
                shorten(other)
            )));
        }
    };
    Ok(Answer { series, warnings })
}

fn unix(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// Sends one query request: form-encoded POST, as Prometheus accepts for
/// both endpoints (long queries do not hit URL length limits).
pub(super) async fn post(
    client: &reqwest::Client,
    base: &reqwest::Url,
    auth: &super::Auth,
    endpoint: &str,
    form: &[(&str, String)],
    timeout: Duration,
) -> Result<Answer, QueryError> {
    let url = base
        .join(endpoint)
        .map_err(|e| QueryError::Transport(format!("bad URL: {e}")))?;
    let request = auth.apply(client.post(url).form(form)).timeout(timeout);
    let call = async {
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                QueryError::TimedOut(timeout)
            } else {
                QueryError::Transport(causes(&e.without_url()))
            }
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(failed)?;
        parse(status, &body)
    };
    // The client's timeout covers the request; this one also covers a
    // server that accepted the connection and then never answers a byte.
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(QueryError::TimedOut(timeout)))
}

/// An error and its causes, `: `-separated ("error sending request: … :
/// invalid peer certificate: UnknownIssuer"): the first line alone rarely says why.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    shorten(&out)
}

/// The form of an instant query at `time`.
pub(super) fn instant_form(
    query: &str,
    time: DateTime<Utc>,
    timeout: Duration,
) -> Vec<(&'static str, String)> {
    vec![
        ("query", query.to_string()),
        ("time", unix(time)),
        ("timeout", format!("{}ms", timeout.as_millis())),
    ]
}

/// The form of a range query.
pub(super) fn range_form(
    query: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Duration,
    timeout: Duration,
) -> Vec<(&'static str, String)> {
    vec![
        ("query", query.to_string()),
        ("start", unix(from)),
        ("end", unix(to)),
        ("step", format!("{}ms", step.as_millis().max(1))),
        ("timeout", format!("{}ms", timeout.as_millis())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_with_nan_and_infinities_reads_as_prometheus_sent_it() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"a"},"value":[1700000000.123,"0.25"]},
            {"metric":{"pod":"b"},"value":[1700000000.123,"NaN"]},
            {"metric":{"pod":"c"},"value":[1700000000.123,"+Inf"]},
            {"metric":{"pod":"d"},"value":[1700000000.123,"-Inf"]},
            {"metric":{},"value":[1700000000.123,"1e+06"]}]}}"#;
        let a = parse(200, body).unwrap();
        let v: Vec<f64> = a.series.iter().map(|s| s.last().unwrap()).collect();
        assert_eq!(v[0], 0.25);
        assert!(v[1].is_nan());
        assert_eq!(v[2], f64::INFINITY);
        assert_eq!(v[3], f64::NEG_INFINITY);
        assert_eq!(v[4], 1e6);
        assert_eq!(a.series[0].samples[0].0.timestamp_millis(), 1700000000123);
        assert!(a.warnings.is_empty());
    }

    #[test]
    fn the_error_envelope_and_warnings() {
        let e = parse(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected \"}\""}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, QueryError::Refused { kind, message } if kind == "bad_data" && message.contains("parse error")),
            "{e:?}"
        );
        let e = parse(
            503,
            br#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
        )
        .unwrap_err();
        assert!(matches!(&e, QueryError::Refused { kind, .. } if kind == "timeout"));
        let a = parse(
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["PromQL info: metric might not be a counter"]}"#,
        )
        .unwrap();
        assert!(a.series.is_empty());
        assert_eq!(a.warnings.len(), 1);
        // A proxy's HTML error page is not the API.
        let e = parse(502, b"<html><body>Bad Gateway</body></html>").unwrap_err();
        assert!(matches!(&e, QueryError::Transport(m) if m.starts_with("HTTP 502")));
        let e = parse(200, b"{\"status\":\"success\"}").unwrap_err();
        assert!(matches!(e, QueryError::Malformed(_)));
    }

    #[test]
    fn matrix_scalar_and_string_results() {
        let a = parse(
            200,
            br#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"__name__":"up","job":"x"},"values":[[1700000000,"1"],[1700000015,"0"]]}]}}"#,
        )
        .unwrap();
        assert_eq!(a.series[0].samples.len(), 2);
        assert_eq!(a.series[0].last(), Some(0.0));
        assert_eq!(a.series[0].selector(), r#"{__name__="up", job="x"}"#);
        let a = parse(
            200,
            br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#,
        )
        .unwrap();
        assert_eq!(a.series[0].last(), Some(3.0));
        let a = parse(
            200,
            br#"{"status":"success","data":{"resultType":"string","result":[1700000000,"hi"]}}"#,
        )
        .unwrap();
        assert!(a.series.is_empty());
        let e = parse(
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"many"]}]}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, QueryError::Malformed(_)));
    }

    #[test]
    fn error_text_is_bounded_and_has_no_control_characters() {
        let long = format!(
            r#"{{"status":"error","errorType":"execution","error":"{}\u001b[2J"}}"#,
            "x".repeat(5000)
        );
        let e = parse(422, long.as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(text.len() < 400, "{}", text.len());
        assert!(!text.contains('\u{1b}'));
    }
}
