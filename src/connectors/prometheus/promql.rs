//! PromQL text built from templates: `{name}` placeholders filled with
//! values that workload owners choose (namespaces, pod and service names), so
//! every value is escaped as a PromQL double-quoted string body and the
//! template is filled in one pass (a value that itself holds `{pod}` is never
//! expanded again).

use std::collections::BTreeMap;

/// Escapes `value` for use between double quotes in PromQL (Go string
/// literal rules): `\` and `"` get a backslash, control characters become
/// `\n`, `\t`, `\r` or `\xNN`. Everything else, including any UTF-8, stays.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// A template names a placeholder the resource does not supply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("placeholder `{{{0}}}` has no value for this resource")]
pub struct MissingPlaceholder(pub String);

/// The placeholders a template uses (`{name}`, name of `[a-z_]`).
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) if is_name(&after[..end]) => {
                out.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Fills `template`'s placeholders from `values` (each escaped), in one
/// pass. Braces that do not enclose a placeholder name (`{job="x"}`) stay
/// as written.
pub fn render(
    template: &str,
    values: &BTreeMap<&str, String>,
) -> Result<String, MissingPlaceholder> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) if is_name(&after[..end]) => {
                let name = &after[..end];
                let value = values
                    .get(name)
                    .ok_or_else(|| MissingPlaceholder(name.to_string()))?;
                out.push_str(&escape(value));
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A cheap check of PromQL text for `playbook validate` and config loading:
/// not empty, quotes closed, brackets balanced. Prometheus itself remains the
/// judge of the rest (its `bad_data` error leaves the fact unknown).
pub fn check(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the query is empty".into());
    }
    let mut stack = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let quote = c;
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == '\\' && quote != '`' {
                        chars.next();
                    } else if d == quote {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(format!("a {quote} string is not closed"));
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Err(format!("`{c}` closes nothing"));
                }
            }
            '#' => {
                // A comment runs to the end of the line.
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    match stack.pop() {
        Some(open) => Err(format!("`{open}` is not closed")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn hostile_values_stay_inside_their_string() {
        let t = r#"up{pod="{pod}"}"#;
        for (value, want) in [
            (r#"a"} or vector(1) #"#, r#"up{pod="a\"} or vector(1) #"}"#),
            (r"back\slash", r#"up{pod="back\\slash"}"#),
            (r#"end\"#, r#"up{pod="end\\"}"#),
            ("new\nline", r#"up{pod="new\nline"}"#),
            ("bell\x07\x1b[31m", r#"up{pod="bell\x07\x1b[31m"}"#),
            ("tab\tcr\r", r#"up{pod="tab\tcr\r"}"#),
            ("ünïcødé", r#"up{pod="ünïcødé"}"#),
        ] {
            let got = render(t, &values(&[("pod", value)])).unwrap();
            assert_eq!(got, want, "{value:?}");
            assert!(check(&got).is_ok(), "{got}");
        }
    }

    #[test]
    fn a_value_holding_a_placeholder_is_not_expanded_again() {
        let got = render(
            r#"x{namespace="{namespace}",pod="{pod}"}"#,
            &values(&[("namespace", "{pod}"), ("pod", "p")]),
        )
        .unwrap();
        assert_eq!(got, r#"x{namespace="{pod}",pod="p"}"#);
    }

    #[test]
    fn selectors_and_unknown_placeholders() {
        assert_eq!(
            render(r#"sum(up{job="x"})"#, &values(&[])).unwrap(),
            r#"sum(up{job="x"})"#
        );
        assert_eq!(
            render("up{pod=\"{pod}\"}", &values(&[])),
            Err(MissingPlaceholder("pod".into()))
        );
        assert_eq!(
            placeholders(r#"a{x="{namespace}"}[{window}] {job="y"}"#),
            vec!["namespace", "window"]
        );
    }

    #[test]
    fn the_cheap_check_finds_unbalanced_text() {
        assert!(check(r#"rate(x{a="b"}[5m]) < 0.01"#).is_ok());
        assert!(check(r#"x{a="(" }"#).is_ok());
        assert!(check("  ").is_err());
        assert!(check("rate(x[5m]").is_err());
        assert!(check(r#"x{a="b}"#).is_err());
        assert!(check("x)").is_err());
    }
}
