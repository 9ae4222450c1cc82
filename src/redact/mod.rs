//! One redactor for every text a workload owner or a host user controls
//! that enters the event log: pod and previous-container logs, journal and
//! `/var/log` lines, Kubernetes event messages, warnings copied into
//! attributes, command error output.
//!
//! The log is hash-chained and never scrubbed, and it reaches every viewer
//! and `log export`, so a secret must be masked before a line becomes an
//! event. The rules mask the value and keep the name (`password=[REDACTED]`),
//! so the line still says what happened. A PEM private key spans lines: a
//! [`Stream`] carries that state from one line of a stream to the next, and
//! [`text`] runs a whole text through one. Control characters (ESC, C1,
//! bidirectional overrides) are shown escaped (`\x1b`), so a line cannot
//! drive the operator's terminal.
//!
//! Depends on nothing of ours.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// What a masked value becomes.
pub const MASK: &str = "[REDACTED]";

/// Words that name a secret when they form a key (`DB_PASSWORD`,
/// `aws_secret_access_key`, `apiKey`, `X-Auth-Token`, `client-secret`).
/// `pass`, `pwd`, `auth` and `sig` count only as a whole part of the key, so
/// `passed=3` or `bypass=on` are left alone.
const KEY: &str = r#"(?:[A-Za-z0-9]+[_.-])*(?:[A-Za-z0-9]*(?:password|passwd|passphrase|secret|token|credentials?|api[_.-]?key|apikey|(?:access|secret|private|signing|encryption|master|account|storage|subscription|client|app|shared[_.-]?access)[_.-]?key|session[_.-]?id|sessionid|signature)|pass|pwd|pin|auth|sig|dsn|cookie)(?:[_.-][A-Za-z0-9]+)*"#;

/// A value after a key: quoted (the whole quoted value, spaces included,
/// escaped quotes too), JSON-escaped quoted, or a bare word.
const VALUE: &str =
    r#"(?:\\"(?:[^"\\]|\\[^"])*\\"|"(?:[^"\\]|\\.)*"|'[^']*'|[^\s"',;&}\]<>\[][^\s"',;&}\]<>]*)"#;

struct Rule {
    re: Regex,
    /// The replacement; `VALUE_MASK` keeps group 1 (the name) and masks
    /// group 2 (the value) inside its quotes.
    with: &'static str,
}

/// Marks a rule whose value is masked by [`mask_value`].
const VALUE_MASK: &str = "value";

/// The rules, in the order they run. `begin` of a PEM block is rule 0.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let kv_line = format!(
        r#"(?mi)^(\s*(?:-\s+)?(?:export\s+)?["']?{KEY}["']?\s*:[ \t]+)([^"'\s{{\[|>&*!][^\r\n]*)"#
    );
    let kv = format!(r#"(?i)(\\?["']?\b{KEY}\\?["']?\s*(?:=>|:=|=|:)\s*)({VALUE})"#);
    let flag = format!(r#"(?i)((?:^|\s)--?{KEY}(?:\s+|=))({VALUE})"#);
    [
        // A PEM private key block within the text (any kind: RSA, EC, OPENSSH,
        // ENCRYPTED, PGP …), or from its start to the end of the text.
        (
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
            "[REDACTED PRIVATE KEY]",
        ),
        // Credentials inside URLs: scheme://user:password@host.
        (r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", "${1}[REDACTED]@"),
        // Slack incoming webhooks carry their secret in the path.
        (r"(hooks\.slack\.com/(?:services|workflows)/)[A-Za-z0-9/_-]+", "${1}[REDACTED]"),
        // Authorization headers (every scheme), cookies.
        (
            r#"(?i)\b((?:proxy-)?authorization\\?["']?\s*[:=]\s*\\?["']?)(?:[^"\\\r\n]|\\[^"])+"#,
            "${1}[REDACTED]",
        ),
        (r#"(?i)\b((?:set-)?cookie\s*:\s*)[^"\r\n]+"#, "${1}[REDACTED]"),
        (r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", "${1}[REDACTED]"),
        // key: value on a YAML line: the rest of the line.
        (kv_line.as_str(), VALUE_MASK),
        // key=value, key: value, "key": "value", key => value.
        (kv.as_str(), VALUE_MASK),
        // --password value, -token=value.
        (flag.as_str(), VALUE_MASK),
        // .netrc: machine h login u password p.
        (r"(?i)\b(login\s+\S+\s+password\s+)\S+", "${1}[REDACTED]"),
        // JSON web tokens.
        (
            r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
            "[REDACTED]",
        ),
        // AWS access key ids.
        (r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b", "[REDACTED]"),
        // Google API keys and OAuth access tokens.
        (r"\bAIza[0-9A-Za-z_-]{35}", "[REDACTED]"),
        (r"\bya29\.[0-9A-Za-z_-]{20,}", "[REDACTED]"),
        // GitHub, GitLab, npm, PyPI tokens.
        (r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})", "[REDACTED]"),
        (r"\bglpat-[0-9A-Za-z_-]{20,}", "[REDACTED]"),
        (r"\bnpm_[A-Za-z0-9]{36}\b", "[REDACTED]"),
        (r"\bpypi-[A-Za-z0-9_-]{50,}", "[REDACTED]"),
        // Slack tokens.
        (r"\bxox[abposre]-[A-Za-z0-9-]{10,}", "[REDACTED]"),
        // Stripe secret, restricted and webhook keys.
        (r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}", "[REDACTED]"),
        (r"\bwhsec_[0-9A-Za-z]{20,}", "[REDACTED]"),
        // SendGrid, OpenAI-style and Anthropic-style keys.
        (r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", "[REDACTED]"),
        (r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}", "[REDACTED]"),
    ]
    .into_iter()
    .map(|(re, with)| Rule {
        re: Regex::new(re).expect("redaction patterns are valid"),
        with,
    })
    .collect()
});

/// Every rule at once, to skip the clean lines in one pass.
static ANY: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(RULES.iter().map(|r| r.re.as_str())).expect("redaction patterns are valid")
});

static PEM_BEGIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----").expect("valid")
});
static PEM_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----").expect("valid"));

/// Masks the secrets in one line (no state: a PEM block's first line is
/// masked from its `BEGIN` on; use a [`Stream`] for the lines after it).
pub fn line(s: &str) -> String {
    escape_controls(&mask(s)).into_owned()
}

/// Masks the secrets in a whole text (lines joined by `\n`), PEM blocks
/// across lines included. A text that ends a key block it never began (a
/// log tail cut inside the block) is masked from its start to that end.
pub fn text(s: &str) -> String {
    let cut_inside = PEM_END
        .find(s)
        .is_some_and(|end| !PEM_BEGIN.is_match(&s[..end.start()]));
    let mut stream = Stream { in_key: cut_inside };
    let mut out = String::with_capacity(s.len());
    let pieces: Vec<&str> = s.split('\n').collect();
    let last = pieces.len() - 1;
    for (i, l) in pieces.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // A CRLF line ending stays a line ending, not an escaped `\x0d`.
        match l.strip_suffix('\r') {
            Some(body) if i < last => {
                out.push_str(&stream.line(body));
                out.push('\r');
            }
            _ => out.push_str(&stream.line(l)),
        }
    }
    out
}

/// Redacts the lines of one stream (a log, a journal) in order, carrying a
/// PEM private key block from the line that begins it to the one that ends it.
#[derive(Debug, Default)]
pub struct Stream {
    in_key: bool,
}

impl Stream {
    /// A new stream, outside any key block.
    pub fn new() -> Self {
        Self::default()
    }

    /// The line with its secrets masked.
    pub fn line(&mut self, s: &str) -> String {
        let rest = if self.in_key {
            match PEM_END.find(s) {
                None => return MASK.to_string(),
                Some(end) => {
                    self.in_key = false;
                    Cow::Owned(format!("{MASK}{}", &s[end.end()..]))
                }
            }
        } else {
            Cow::Borrowed(s)
        };
        // A block that begins here and does not end here continues below.
        if let Some(begin) = PEM_BEGIN.find_iter(&rest).last()
            && !PEM_END.is_match(&rest[begin.end()..])
        {
            self.in_key = true;
        }
        escape_controls(&mask(&rest)).into_owned()
    }
}

fn mask(s: &str) -> Cow<'_, str> {
    let hits = ANY.matches(s);
    if !hits.matched_any() {
        return Cow::Borrowed(s);
    }
    let mut out = Cow::Borrowed(s);
    for (i, rule) in RULES.iter().enumerate() {
        if !hits.matched(i) {
            continue;
        }
        let replaced = if rule.with == VALUE_MASK {
            rule.re.replace_all(&out, |c: &regex::Captures| {
                format!("{}{}", &c[1], mask_value(&c[2]))
            })
        } else {
            rule.re.replace_all(&out, rule.with)
        };
        if let Cow::Owned(o) = replaced {
            out = Cow::Owned(o);
        }
    }
    out
}

/// A secret's value masked inside the quotes it came in; words that say
/// nothing about a secret (`YES`, `false`, `null`, `****`) are kept.
fn mask_value(v: &str) -> String {
    let benign = [
        "yes",
        "no",
        "true",
        "false",
        "null",
        "none",
        "nil",
        "[redacted]",
    ];
    let word = v.trim_end_matches([')', '.']);
    if benign.iter().any(|b| word.eq_ignore_ascii_case(b)) || v.chars().all(|c| c == '*') {
        return v.to_string();
    }
    for q in ["\\\"", "\"", "'"] {
        if v.len() >= 2 * q.len() && v.starts_with(q) && v.ends_with(q) {
            return format!("{q}{MASK}{q}");
        }
    }
    MASK.to_string()
}

/// Control characters other than tab, the C1 controls and the bidirectional
/// overrides, shown as escapes (`\x1b`, `\u{202e}`).
fn escape_controls(s: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    };
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !bad(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
