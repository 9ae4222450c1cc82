//! A small sorted map of strings for a resource's labels and attributes.
//!
//! A fleet holds tens of thousands of resources, each with a dozen or so
//! labels and attributes. `BTreeMap` allocates a whole node (eleven slots,
//! about 560 bytes) for even one entry and a third node past eleven, which
//! made the map structure alone cost more than the strings in it (README,
//! Performance › Kubernetes fleet). A sorted vector costs 48 bytes an entry,
//! and a lookup by binary search over a dozen entries is as fast.
//!
//! It serialises exactly as a `BTreeMap<String, String>` does (a map in key
//! order), so events written before it read back unchanged and hash the same.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// String keys to string values, kept sorted by key; one value per key.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StringMap {
    entries: Vec<(String, String)>,
}

impl StringMap {
    /// An empty map (allocates nothing).
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.position(key).ok().map(|i| &self.entries[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.position(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &String)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Gives back spare capacity: for maps that live as long as the fleet.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }
}

impl fmt::Debug for StringMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for StringMap {
    type Output = String;

    /// Panics when `key` is missing, as `BTreeMap` does; for tests and known keys.
    fn index(&self, key: &str) -> &String {
        self.get(key)
            .unwrap_or_else(|| panic!("no entry for key {key:?}"))
    }
}

impl Extend<(String, String)> for StringMap {
    /// Adds many entries at once: one sort, not a shift per entry (a host
    /// carries thousands of package attributes). A later value for a key
    /// wins, as with `insert`.
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        self.entries.extend(iter);
        normalise(&mut self.entries);
    }
}

/// Sorts by key and keeps the last-added value of each key. Reversing first
/// puts the latest of equal keys in front; the sort is stable, and `dedup`
/// keeps the first of each run. Sorted input costs a linear pass.
fn normalise(entries: &mut Vec<(String, String)>) {
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, first| later.0 == first.0);
}

impl FromIterator<(String, String)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut map = Self::new();
        map.extend(iter);
        map
    }
}

impl From<BTreeMap<String, String>> for StringMap {
    fn from(map: BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        Self {
            entries: map.into_iter().collect(),
        }
    }
}

impl<const N: usize> From<[(String, String); N]> for StringMap {
    fn from(entries: [(String, String); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl From<StringMap> for BTreeMap<String, String> {
    fn from(map: StringMap) -> Self {
        map.entries.into_iter().collect()
    }
}

impl IntoIterator for StringMap {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a StringMap {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for StringMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;

        impl<'de> Visitor<'de> for MapVisitor {
            type Value = StringMap;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings to strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StringMap, A::Error> {
                let mut entries: Vec<(String, String)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0).min(256));
                while let Some((k, v)) = access.next_entry::<String, String>()? {
                    entries.push((k, v));
                }
                // A later duplicate wins, as it would in a `BTreeMap`.
                normalise(&mut entries);
                Ok(StringMap { entries })
            }
        }

        deserializer.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> StringMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keeps_keys_sorted_and_unique() {
        let mut m = map(&[("b", "2"), ("a", "1"), ("c", "3")]);
        assert_eq!(m.insert("b".into(), "two".into()), Some("2".into()));
        assert_eq!(m.insert("aa".into(), "x".into()), None);
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "aa", "b", "c"]);
        assert_eq!(m.get("b").map(String::as_str), Some("two"));
        assert_eq!(m.remove("aa").as_deref(), Some("x"));
        assert!(!m.contains_key("aa"));
        assert_eq!(m.len(), 3);
        assert_eq!(m["c"], "3");
        assert_eq!(m.get("zz"), None);
    }

    #[test]
    fn extend_sorts_once_and_the_last_value_wins() {
        let mut m = map(&[("pkg:b", "1"), ("packages", "2")]);
        m.extend(
            [
                ("pkgsrc:a", "x"),
                ("pkg:a", "3"),
                ("pkg:b", "4"),
                ("pkg:a", "5"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        assert_eq!(
            format!("{m:?}"),
            r#"{"packages": "2", "pkg:a": "5", "pkg:b": "4", "pkgsrc:a": "x"}"#
        );
    }

    #[test]
    fn serialises_exactly_as_a_btreemap() {
        let pairs = [("zone", "b"), ("app", "web"), ("tier", "1"), ("Z", "upper")];
        let ours = map(&pairs);
        let theirs: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
        assert_eq!(BTreeMap::from(ours.clone()), theirs);
        assert_eq!(StringMap::from(theirs), ours);
    }

    #[test]
    fn reads_any_order_and_the_last_duplicate_wins() {
        let m: StringMap = serde_json::from_str(r#"{"b":"1","a":"2","b":"3"}"#).unwrap();
        assert_eq!(format!("{m:?}"), r#"{"a": "2", "b": "3"}"#);
        let err = serde_json::from_str::<StringMap>(r#"{"a": 1}"#).unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
    }
}
