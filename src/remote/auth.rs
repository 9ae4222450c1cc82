//! Bearer tokens and roles.
//!
//! The server's config holds only each token's SHA-256, so a leaked config
//! file does not leak a usable token. A presented token is hashed and compared
//! with every configured hash in constant time (no early exit, no
//! length-dependent comparison), so response timing says nothing about how
//! close a guess was. The principal a token names is the only identity a
//! remote command can carry: the client never gets to claim one.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::runtime::command::Command;

/// What a principal may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Watches: state and events only.
    Viewer,
    /// Acknowledges incidents, asks for scans, proposes (freeze overrides), posts alerts.
    Operator,
    /// Approves and denies remediations.
    Approver,
}

impl Role {
    /// Lowercase name, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
        }
    }

    /// The role a command needs, or `None` if it cannot be sent remotely at all.
    pub fn needed_for(command: &Command) -> Option<Role> {
        match command {
            Command::Approve { .. } | Command::Deny { .. } => Some(Role::Approver),
            // Operators propose (a cost recommendation becomes a remediation that
            // still needs approvers), acknowledge, rescan and teach.
            Command::OverrideFreeze { .. }
            | Command::Acknowledge { .. }
            | Command::Rescan
            | Command::ApplyRecommendation { .. }
            | Command::HypothesisFeedback { .. }
            | Command::Learn => Some(Role::Operator),
            // Looking at a resource's events and log tail changes nothing:
            // whoever may watch the console may ask for it (logs are redacted).
            Command::Inspect { .. } => Some(Role::Viewer),
            // Stopping the runtime is for whoever runs `serve` (SIGTERM), not a console.
            Command::Shutdown => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `principal` with `role` may send `command`; the refusal says why.
pub fn authorize(principal: &str, role: Role, command: &Command) -> Result<(), String> {
    match Role::needed_for(command) {
        None => Err(format!(
            "{} cannot be sent from a remote console",
            command.describe()
        )),
        Some(needed) if role < needed => Err(format!(
            "refused: {principal} is a {role} and may not {}; that needs the {needed} role",
            command.describe()
        )),
        Some(_) => Ok(()),
    }
}

/// A token's SHA-256, as 64 hex digits in the config.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash of a presented token.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl Serialize for TokenHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(s.trim()).ok().filter(|b| b.len() == 32);
        match bytes {
            Some(b) => {
                let mut out = [0u8; 32];
                out.copy_from_slice(&b);
                Ok(TokenHash(out))
            }
            None => Err(serde::de::Error::custom(
                "expected 64 hex digits: the SHA-256 of the token (`shieldops token mint` prints it)",
            )),
        }
    }
}

/// One `[[remote.tokens]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who the token belongs to; recorded on every command it sends.
    pub principal: String,
    pub role: Role,
    pub sha256: TokenHash,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

impl Tokens {
    pub fn new(entries: Vec<TokenEntry>) -> Self {
        Self { entries }
    }

    /// Whether any token is configured (a server with none refuses everyone).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal of a presented token, if it is one of ours. Every entry
    /// is compared, in constant time, whatever matches.
    pub fn verify(&self, presented: &str) -> Option<Principal> {
        let hash = TokenHash::of(presented);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.sha256.0.ct_eq(&hash.0)) && found.is_none() {
                found = Some(Principal {
                    name: entry.principal.clone(),
                    role: entry.role,
                });
            }
        }
        found
    }

    /// The principal named by an HTTP `Authorization: Bearer …` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Option<Principal> {
        let value = header?;
        let (scheme, token) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        self.verify(token)
    }
}

/// Reads a bearer token from the first line of a file only its owner can
/// read (`attach --token-file`, `[cluster] token_file`). Errors name the file
/// and never its contents.
pub fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let unreadable =
        |e: std::io::Error| format!("cannot read the token file {}: {e}", path.display());
    let mode = std::fs::metadata(path)
        .map_err(unreadable)?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "the token file {} is readable by others (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        ));
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    Ok(token)
}

/// A new random token (256 bits) and its config entry.
pub fn mint(principal: &str, role: Role) -> (String, TokenEntry) {
    let token = format!("so_{}", hex::encode(rand::random::<[u8; 32]>()));
    let entry = TokenEntry {
        principal: principal.to_string(),
        role,
        sha256: TokenHash::of(&token),
    };
    (token, entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> (Tokens, String, String) {
        let (a, ea) = mint("alice", Role::Approver);
        let (v, ev) = mint("victor", Role::Viewer);
        (Tokens::new(vec![ea, ev]), a, v)
    }

    #[test]
    fn a_minted_token_verifies_to_its_principal() {
        let (t, a, v) = tokens();
        assert_eq!(t.verify(&a).unwrap().name, "alice");
        assert_eq!(t.verify(&v).unwrap().role, Role::Viewer);
        assert_eq!(
            t.verify_header(Some(&format!("Bearer {a}"))).unwrap().name,
            "alice"
        );
    }

    #[test]
    fn wrong_missing_or_malformed_tokens_are_refused() {
        let (t, a, _) = tokens();
        assert!(t.verify("so_nope").is_none());
        assert!(t.verify(&a[..a.len() - 1]).is_none());
        assert!(t.verify_header(None).is_none());
        assert!(t.verify_header(Some("Bearer ")).is_none());
        assert!(t.verify_header(Some(&format!("Basic {a}"))).is_none());
        assert!(t.verify_header(Some(&a)).is_none());
        assert!(Tokens::default().verify(&a).is_none());
    }

    #[test]
    fn roles_gate_commands() {
        let approve = Command::Approve {
            remediation: 3,
            comment: String::new(),
        };
        let e = authorize("victor", Role::Viewer, &approve).unwrap_err();
        assert!(e.contains("victor is a viewer"), "{e}");
        assert!(e.contains("approver role"), "{e}");
        assert!(authorize("olga", Role::Operator, &approve).is_err());
        assert!(authorize("alice", Role::Approver, &approve).is_ok());
        assert!(authorize("olga", Role::Operator, &Command::Rescan).is_ok());
        assert!(authorize("victor", Role::Viewer, &Command::Rescan).is_err());
        let inspect = Command::Inspect {
            resource: crate::event::ResourceId::new("k8s/prod/shop/pod/web-1"),
        };
        assert!(authorize("victor", Role::Viewer, &inspect).is_ok());
        assert!(authorize("alice", Role::Approver, &Command::Shutdown).is_err());
    }

    #[test]
    fn hash_entries_parse_from_toml_and_bad_ones_say_what_is_expected() {
        let entry: TokenEntry = toml::from_str(&format!(
            "principal = \"a\"\nrole = \"operator\"\nsha256 = \"{}\"\n",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(entry.role, Role::Operator);
        let e = toml::from_str::<TokenEntry>(
            "principal = \"a\"\nrole = \"operator\"\nsha256 = \"xyz\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("64 hex digits"), "{e}");
    }
}
