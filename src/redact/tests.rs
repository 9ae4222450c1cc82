use super::*;

const SECRETS: &str = include_str!("corpus/secrets.txt");
const ORDINARY: &str = include_str!("corpus/ordinary.txt");

/// The corpus entries: (secrets that must not survive, text).
fn entries() -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let (mut secrets, mut text) = (Vec::new(), Vec::<&str>::new());
    let body = SECRETS
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .chain(std::iter::once("---"));
    for l in body {
        if l == "---" {
            assert!(!secrets.is_empty() && !text.is_empty(), "empty entry");
            out.push((std::mem::take(&mut secrets), text.join("\n")));
            text.clear();
        } else if let Some(s) = l.strip_prefix("secret: ").filter(|_| text.is_empty()) {
            secrets.push(s.to_string());
        } else {
            text.push(l);
        }
    }
    out
}

#[test]
fn every_secret_in_the_corpus_is_masked() {
    let entries = entries();
    assert!(entries.len() >= 50, "{} entries", entries.len());
    let mut misses = Vec::new();
    for (secrets, input) in &entries {
        let whole = text(input);
        let mut stream = Stream::new();
        let by_line: Vec<String> = input.split('\n').map(|l| stream.line(l)).collect();
        let by_line = by_line.join("\n");
        for s in secrets {
            for (how, out) in [("text", &whole), ("stream", &by_line)] {
                if out.contains(s.as_str()) {
                    misses.push(format!("{how}: {s:?} survives in {out:?}"));
                }
            }
        }
        assert!(whole.contains("[REDACTED"), "{whole}");
    }
    assert!(
        misses.is_empty(),
        "{} misses:\n{}",
        misses.len(),
        misses.join("\n")
    );
}

#[test]
fn ordinary_lines_stay_byte_for_byte() {
    let lines: Vec<&str> = ORDINARY.lines().collect();
    assert!(lines.len() >= 50, "{} lines", lines.len());
    let changed: Vec<String> = lines
        .iter()
        .filter(|l| line(l) != **l)
        .map(|l| format!("{l:?}\n  → {:?}", line(l)))
        .collect();
    assert!(changed.is_empty(), "changed:\n{}", changed.join("\n"));
    assert_eq!(text(ORDINARY), ORDINARY);
}

#[test]
fn a_key_block_across_lines_is_masked_line_by_line() {
    let mut s = Stream::new();
    assert_eq!(s.line("key follows"), "key follows");
    assert_eq!(
        s.line("x -----BEGIN RSA PRIVATE KEY-----"),
        "x [REDACTED PRIVATE KEY]"
    );
    assert_eq!(s.line("MIIEowIBAAKCAQEA"), MASK);
    assert_eq!(
        s.line("-----END RSA PRIVATE KEY----- done"),
        "[REDACTED] done"
    );
    assert_eq!(s.line("after"), "after");
    // Without an end the rest of the stream stays masked.
    assert_eq!(
        text("-----BEGIN PRIVATE KEY-----\nAAAA\nBBBB"),
        "[REDACTED PRIVATE KEY]\n[REDACTED]\n[REDACTED]"
    );
    // A tail that starts inside a block is masked up to its end.
    assert_eq!(
        text("AAAA\nBBBB\n-----END PRIVATE KEY-----\nnext"),
        "[REDACTED]\n[REDACTED]\n[REDACTED]\nnext"
    );
}

#[test]
fn quoted_values_are_masked_whole_inside_their_quotes() {
    assert_eq!(
        line(r#"password="a b c" user=ann"#),
        r#"password="[REDACTED]" user=ann"#
    );
    assert_eq!(
        line(r#"{"password": "a b c", "user": "ann"}"#),
        r#"{"password": "[REDACTED]", "user": "ann"}"#
    );
    assert_eq!(line("TOKEN='x y'"), "TOKEN='[REDACTED]'");
    assert_eq!(
        line(r#"log={\"secret\":\"a b\"}"#),
        r#"log={\"secret\":\"[REDACTED]\"}"#
    );
    // Names a secret, says nothing of it.
    assert_eq!(line("(using password: YES)"), "(using password: YES)");
}

#[test]
fn terminal_controls_are_shown_escaped() {
    assert_eq!(
        line("a\x1b]52;c;ZWNobyBoaQ==\x07b"),
        r"a\x1b]52;c;ZWNobyBoaQ==\x07b"
    );
    assert_eq!(line("ok\u{202e}txt.exe"), r"ok\u{202e}txt.exe");
    assert_eq!(line("tab\tkept"), "tab\tkept");
    assert_eq!(line("\u{9b}31m"), r"\u{9b}31m");
}

#[test]
fn crlf_line_endings_stay_line_endings() {
    assert_eq!(
        text("a=1\r\npassword=x\r\n"),
        "a=1\r\npassword=[REDACTED]\r\n"
    );
    assert_eq!(text("bare\r"), r"bare\x0d");
}

#[test]
fn masking_is_idempotent() {
    for (_, input) in entries() {
        let once = text(&input);
        assert_eq!(text(&once), once, "{input}");
    }
}
