//! A bound on how deeply a policy nests `{` and `[` before regorus sees it.
//!
//! regorus 0.14's parser first tries each `{` and `[` as a comprehension and,
//! failing, parses it again as a collection, so everything inside is parsed
//! twice per level: 16 unclosed braces take seconds, 60 (a 1.6 KB file found
//! by fuzzing, `fuzz/regressions/rego_bundle/`) never finish, and start-up
//! hangs on loading the bundle. The work is about the file's size times two
//! to the deepest level, so the bound is kept low; real policies nest a
//! handful of levels (the embedded bundle at most 6, parentheses included).

/// Deepest `{`/`[` nesting accepted in a policy file.
pub const MAX_NESTING: usize = 8;

/// Where a policy first nests deeper than [`MAX_NESTING`]: 1-based line and
/// column (in characters) of the opening bracket. Strings, raw strings and
/// comments are skipped, as Rego reads them.
pub fn too_deep(source: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let (mut line, mut col) = (1usize, 0usize);
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        col += 1;
        match c {
            '\n' => (line, col) = (line + 1, 0),
            '#' => {
                // A comment runs to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        (line, col) = (line + 1, 0);
                        break;
                    }
                }
            }
            '"' => {
                // A string ends at the first unescaped quote or, unclosed, at
                // the end of the line (regorus refuses it there anyway).
                let mut escaped = false;
                for c in chars.by_ref() {
                    col += 1;
                    match c {
                        '\n' => {
                            (line, col) = (line + 1, 0);
                            break;
                        }
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
            }
            '`' => {
                // A raw string may span lines and has no escapes.
                for c in chars.by_ref() {
                    col += 1;
                    match c {
                        '\n' => (line, col) = (line + 1, 0),
                        '`' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some((line, col));
                }
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_policies_nest_well_within_the_bound() {
        for (name, source) in super::super::bundle::EMBEDDED_POLICIES {
            assert_eq!(too_deep(source), None, "{name}");
        }
    }

    #[test]
    fn the_first_bracket_past_the_bound_is_named() {
        let source = format!("package x\n\np if {{\n  x := {}\n}}\n", "[".repeat(20));
        // `{` of the rule is level 1; the 8th `[` is level 9.
        assert_eq!(too_deep(&source), Some((4, 8 + 7)));
    }

    #[test]
    fn brackets_in_strings_raw_strings_and_comments_do_not_count() {
        let deep = "{".repeat(40);
        let source = format!(
            "package x\n# {deep}\np := \"{deep}\\\"{deep}\"\nq := `{deep}\n{deep}`\nr := {{\"a\": [1]}}\n"
        );
        assert_eq!(too_deep(&source), None);
    }

    #[test]
    fn closing_brackets_bring_the_depth_back() {
        let nested = format!("{}1{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        let source = format!("package x\np := {nested}\nq := {nested}\nr := {nested}\n");
        assert_eq!(too_deep(&source), None);
    }
}
