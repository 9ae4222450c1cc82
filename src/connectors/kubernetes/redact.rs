//! Secrets are removed from log lines before they become evidence: evidence
//! is recorded in the event log and shown on screen, where a token or a
//! password must never appear.

use std::sync::LazyLock;

use regex::Regex;

const MASK: &str = "[REDACTED]";

static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // key=value / key: value for secret-looking keys (the key stays, the value goes).
        (
            r#"(?i)\b([\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential)[\w.-]*)("?\s*[:=]\s*"?)([^\s",;&]+)"#,
            "${1}${2}[REDACTED]",
        ),
        (r"(?i)\b(authorization:\s*)(?:bearer|basic)\s+\S+", "${1}[REDACTED]"),
        (r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}", "Bearer [REDACTED]"),
        // JSON web tokens.
        (r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}", MASK),
        // AWS access key ids, GitHub and Slack tokens.
        (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", MASK),
        (r"\bgh[pousr]_[A-Za-z0-9]{30,}\b", MASK),
        (r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b", MASK),
        // user:password@ in URLs.
        (r"(://[^/\s:@]+:)[^@\s/]+@", "${1}[REDACTED]@"),
        // PEM private key bodies.
        (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----", MASK),
    ]
    .into_iter()
    .filter_map(|(re, with)| Regex::new(re).ok().map(|r| (r, with)))
    .collect()
});

/// The line with every secret-looking value replaced by `[REDACTED]`.
pub fn redact(line: &str) -> String {
    let mut out = line.to_string();
    for (re, with) in RULES.iter() {
        out = re.replace_all(&out, *with).into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secrets_are_masked_and_the_rest_kept() {
        let cases = [
            (
                "connecting with password=hunter2 to db",
                "connecting with password=[REDACTED] to db",
            ),
            (
                r#"{"api_key": "sk-live-123456", "user": "ann"}"#,
                r#"{"api_key": "[REDACTED]", "user": "ann"}"#,
            ),
            (
                "Authorization: Bearer abcdefghijklmnop",
                "Authorization: [REDACTED]",
            ),
            ("DB_PASSWORD: s3cr3t", "DB_PASSWORD: [REDACTED]"),
            (
                "dial postgres://app:pa55word@db:5432/x",
                "dial postgres://app:[REDACTED]@db:5432/x",
            ),
            ("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED] used"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlXzEy end",
                "jwt [REDACTED] end",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "input: {input}");
        }
        assert_eq!(
            redact("OOM: heap size 512Mi exceeded"),
            "OOM: heap size 512Mi exceeded"
        );
    }
}
