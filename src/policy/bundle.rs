//! A policy bundle: Rego sources and the data document, from the embedded
//! defaults, a directory, or both (the directory overriding the defaults).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::PolicyError;

/// The default policies compiled into the binary: (file name, Rego source).
pub const EMBEDDED_POLICIES: &[(&str, &str)] = &[
    ("aws.rego", include_str!("../../policies/aws.rego")),
    (
        "compliance.rego",
        include_str!("../../policies/compliance.rego"),
    ),
    (
        "compliance/checks.rego",
        include_str!("../../policies/compliance/checks.rego"),
    ),
    (
        "compliance/cis.rego",
        include_str!("../../policies/compliance/cis.rego"),
    ),
    (
        "compliance/hipaa.rego",
        include_str!("../../policies/compliance/hipaa.rego"),
    ),
    (
        "compliance/pci_dss.rego",
        include_str!("../../policies/compliance/pci_dss.rego"),
    ),
    (
        "compliance/soc2.rego",
        include_str!("../../policies/compliance/soc2.rego"),
    ),
    ("cost.rego", include_str!("../../policies/cost.rego")),
    (
        "credentials.rego",
        include_str!("../../policies/credentials.rego"),
    ),
    (
        "decision.rego",
        include_str!("../../policies/decision.rego"),
    ),
    ("limits.rego", include_str!("../../policies/limits.rego")),
    ("linux.rego", include_str!("../../policies/linux.rego")),
    (
        "provenance.rego",
        include_str!("../../policies/provenance.rego"),
    ),
    ("risk.rego", include_str!("../../policies/risk.rego")),
    ("scope.rego", include_str!("../../policies/scope.rego")),
];

/// The default data document (thresholds) compiled into the binary.
const EMBEDDED_DATA: &str = include_str!("../../policies/data.json");
/// The compliance checks' thresholds, merged over [`EMBEDDED_DATA`] as
/// `Bundle::from_dir` merges every `data.json` of a directory.
const EMBEDDED_COMPLIANCE_DATA: &str = include_str!("../../policies/compliance/data.json");

/// One Rego file of a bundle.
#[derive(Debug, Clone, PartialEq)]
struct PolicyFile {
    /// Where it came from, as shown in error messages.
    origin: String,
    source: String,
}

/// Rego sources keyed by their path relative to the bundle root, plus one data document.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    policies: BTreeMap<String, PolicyFile>,
    data: Value,
}

impl Default for Bundle {
    fn default() -> Self {
        Self::empty()
    }
}

impl Bundle {
    /// A bundle with no policies and an empty data document.
    pub fn empty() -> Self {
        Self {
            policies: BTreeMap::new(),
            data: Value::Object(Default::default()),
        }
    }

    /// The default bundle compiled into the binary.
    pub fn embedded() -> Self {
        let mut bundle = Self::empty();
        for (name, source) in EMBEDDED_POLICIES {
            bundle.policies.insert(
                (*name).to_string(),
                PolicyFile {
                    origin: format!("embedded:policies/{name}"),
                    source: (*source).to_string(),
                },
            );
        }
        // The embedded document is a compile-time constant checked by a unit test.
        bundle.data = serde_json::from_str(EMBEDDED_DATA)
            .unwrap_or_else(|e| unreachable!("embedded policies/data.json is not valid JSON: {e}"));
        let compliance = serde_json::from_str(EMBEDDED_COMPLIANCE_DATA).unwrap_or_else(|e| {
            unreachable!("embedded policies/compliance/data.json is not valid JSON: {e}")
        });
        merge(&mut bundle.data, compliance);
        bundle
    }

    /// The embedded defaults overridden and extended by the user's policy directory, if any.
    pub fn load(user_dir: Option<&Path>) -> Result<Self, PolicyError> {
        let mut bundle = Self::embedded();
        if let Some(dir) = user_dir {
            bundle.overlay(Self::from_dir(dir, false)?);
        }
        Ok(bundle)
    }

    /// Every `*.rego` file under `dir` (recursively) and every `data.json`, merged in path order.
    /// `*_test.rego` files are included only when `include_tests` is set.
    pub fn from_dir(dir: &Path, include_tests: bool) -> Result<Self, PolicyError> {
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        files.sort();
        let mut bundle = Self::empty();
        for path in files {
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let is_rego = file_name.ends_with(".rego");
            let is_test = file_name.ends_with("_test.rego");
            if !(file_name == "data.json" || (is_rego && (include_tests || !is_test))) {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
                path: path.clone(),
                source,
            })?;
            let origin = path.display().to_string();
            if is_rego {
                bundle.policies.insert(
                    name,
                    PolicyFile {
                        origin,
                        source: text,
                    },
                );
            } else {
                let value: Value = serde_json::from_str(&text).map_err(|e| PolicyError::Data {
                    path: format!("{origin}:{}:{}", e.line(), e.column()),
                    message: e.to_string(),
                })?;
                if !value.is_object() {
                    return Err(PolicyError::Data {
                        path: origin,
                        message: "the top level must be a JSON object".into(),
                    });
                }
                merge(&mut bundle.data, value);
            }
        }
        Ok(bundle)
    }

    /// Applies `other` over this bundle: same-named files are replaced, new ones
    /// added, and its data deep-merged over ours (its values win).
    pub fn overlay(&mut self, other: Bundle) {
        self.policies.extend(other.policies);
        merge(&mut self.data, other.data);
    }

    /// Adds or replaces one policy file.
    pub fn add_policy(&mut self, name: &str, source: &str) {
        self.policies.insert(
            name.to_string(),
            PolicyFile {
                origin: name.to_string(),
                source: source.to_string(),
            },
        );
    }

    /// Deep-merges a data document over the bundle's data (the new values win).
    pub fn merge_data(&mut self, data: Value) {
        merge(&mut self.data, data);
    }

    /// Replaces the whole data document.
    pub fn set_data(&mut self, data: Value) {
        self.data = data;
    }

    /// The policy files: (name relative to the bundle root, source).
    pub fn policies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.policies
            .iter()
            .map(|(name, f)| (name.as_str(), f.source.as_str()))
    }

    /// Whether the Rego sources are exactly the embedded defaults (the data may differ).
    pub fn has_embedded_rego(&self) -> bool {
        self.policies.len() == EMBEDDED_POLICIES.len()
            && EMBEDDED_POLICIES.iter().all(|(name, source)| {
                self.policies
                    .get(*name)
                    .is_some_and(|f| f.source == *source)
            })
    }

    /// The merged data document.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// SHA-256 (hex) over every file's name and source and the canonical data document.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        for (name, file) in &self.policies {
            // Length prefixes keep (name, source) boundaries unambiguous.
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update((file.source.len() as u64).to_le_bytes());
            hasher.update(file.source.as_bytes());
        }
        hasher.update(super::canonical_json(&self.data).as_bytes());
        hex::encode(hasher.finalize())
    }

    /// A regorus engine holding every policy and the data document (not yet prepared).
    pub fn engine(&self) -> Result<regorus::Engine, PolicyError> {
        let mut engine = regorus::Engine::new();
        for file in self.policies.values() {
            if let Some((line, col)) = super::nesting::too_deep(&file.source) {
                return Err(PolicyError::Parse {
                    path: format!("{}:{line}:{col}", file.origin),
                    message: format!(
                        "braces and brackets nested more than {} deep (refused: the parser's time doubles with each level)",
                        super::nesting::MAX_NESTING
                    ),
                });
            }
            engine
                .add_policy(file.origin.clone(), file.source.clone())
                .map_err(|e| PolicyError::Parse {
                    path: file.origin.clone(),
                    message: e.to_string(),
                })?;
        }
        let data = regorus::Value::from_json_str(&self.data.to_string()).map_err(|e| {
            PolicyError::Data {
                path: "data".into(),
                message: e.to_string(),
            }
        })?;
        engine.add_data(data).map_err(|e| PolicyError::Data {
            path: "data".into(),
            message: e.to_string(),
        })?;
        Ok(engine)
    }
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), PolicyError> {
    let entries = std::fs::read_dir(dir).map_err(|source| PolicyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| PolicyError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| PolicyError::Io {
            path: path.clone(),
            source,
        })?;
        if file_type.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Deep merge: objects merge key by key, anything else is replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (slot, over) => *slot = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_bundle_parses_and_has_thresholds() {
        let bundle = Bundle::embedded();
        assert_eq!(
            bundle.data()["shieldops_config"]["blast_radius"]["production"],
            3
        );
        bundle.engine().expect("embedded bundle parses");
    }

    #[test]
    fn overlay_replaces_files_and_merges_data() {
        let mut base = Bundle::embedded();
        let before = base.hash();
        let mut user = Bundle::empty();
        user.add_policy("scope.rego", "package shieldops\n");
        user.merge_data(
            serde_json::json!({"shieldops_config": {"blast_radius": {"production": 1}}}),
        );
        base.overlay(user);
        assert_eq!(
            base.data()["shieldops_config"]["blast_radius"]["production"],
            1
        );
        assert_eq!(
            base.data()["shieldops_config"]["blast_radius"]["staging"],
            5
        );
        assert_eq!(
            base.policies()
                .find(|(n, _)| *n == "scope.rego")
                .map(|(_, s)| s),
            Some("package shieldops\n")
        );
        assert_ne!(before, base.hash());
    }

    #[test]
    fn a_policy_nested_too_deep_is_refused_with_its_place_before_the_parser_hangs() {
        // Found by fuzzing (scripts/fuzz.sh rego_bundle): a test file with a
        // run of 60 `{`, on which regorus's parser ran for good.
        let source = include_str!("../../fuzz/regressions/rego_bundle/nested-braces-timeout.rego");
        let mut bundle = Bundle::empty();
        bundle.add_policy("site/compliance_test.rego", source);
        match bundle.engine() {
            Err(PolicyError::Parse { path, message }) => {
                assert_eq!(path, "site/compliance_test.rego:12:8");
                assert!(message.contains("nested more than 8 deep"), "{message}");
            }
            Err(other) => panic!("wrong error: {other}"),
            Ok(_) => panic!("a 60-deep policy was accepted"),
        }
        // The second one the campaign found mixes brackets and braces.
        let source = include_str!("../../fuzz/regressions/rego_bundle/nested-mixed-timeout.rego");
        let mut bundle = Bundle::empty();
        bundle.add_policy("compliance.rego", source);
        assert!(matches!(bundle.engine(), Err(PolicyError::Parse { .. })));
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = Bundle::embedded();
        assert_eq!(a.hash(), Bundle::embedded().hash());
        let mut b = Bundle::embedded();
        b.merge_data(serde_json::json!({"x": 1}));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn parse_error_names_the_file() {
        let mut bundle = Bundle::empty();
        bundle.add_policy("broken.rego", "package shieldops\nallow if {\n");
        let err = bundle.engine().unwrap_err().to_string();
        assert!(err.contains("broken.rego"), "{err}");
    }
}
