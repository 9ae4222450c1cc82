//! Canonical JSON: object keys sorted at every level, no whitespace.
//!
//! serde_json keeps insertion order when any crate in the build enables its
//! `preserve_order` feature (one does), so `Value::to_string` is not canonical
//! by itself; digests must not depend on field declaration order.

use serde_json::Value;

/// The canonical encoding of `value`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write(&map[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let v: Value =
            serde_json::from_str(r#"{"b": {"z": 1, "a": [ {"y": "\"", "x": null} ]}, "a": true}"#)
                .unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":true,"b":{"a":[{"x":null,"y":"\""}],"z":1}}"#
        );
    }
}
