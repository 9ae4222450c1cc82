//! The key map: which key triggers which action, rebindable from the config
//! file's `[keys]` section. Footer hints and the help overlay are built from
//! this map and each action's description, so help is never written twice.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::{Deserialize, Serialize};

/// Something a key can ask the console to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Fleet,
    Investigations,
    Remediations,
    Security,
    Cost,
    Learning,
    Events,
    NextPane,
    PrevPane,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    Filter,
    CommandMode,
    Help,
    Quit,
    Sort,
    ProblemsOnly,
    Agents,
    Approve,
    Deny,
    Submit,
    NextHypothesis,
    Confirm,
    Refute,
    ApplyRecommendation,
}

impl Action {
    /// Every action, in help order.
    pub const ALL: &'static [Action] = &[
        Action::Fleet,
        Action::Investigations,
        Action::Remediations,
        Action::Security,
        Action::Cost,
        Action::Learning,
        Action::Events,
        Action::NextPane,
        Action::PrevPane,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Open,
        Action::Back,
        Action::Filter,
        Action::CommandMode,
        Action::Help,
        Action::Quit,
        Action::Sort,
        Action::ProblemsOnly,
        Action::Agents,
        Action::Approve,
        Action::Deny,
        Action::Submit,
        Action::NextHypothesis,
        Action::Confirm,
        Action::Refute,
        Action::ApplyRecommendation,
    ];

    /// The name used in the config file's `[keys]` section.
    pub fn name(self) -> &'static str {
        match self {
            Action::Fleet => "fleet",
            Action::Investigations => "investigations",
            Action::Remediations => "remediations",
            Action::Security => "security",
            Action::Cost => "cost",
            Action::Learning => "learning",
            Action::Events => "events",
            Action::NextPane => "next_pane",
            Action::PrevPane => "prev_pane",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Open => "open",
            Action::Back => "back",
            Action::Filter => "filter",
            Action::CommandMode => "command",
            Action::Help => "help",
            Action::Quit => "quit",
            Action::Sort => "sort",
            Action::ProblemsOnly => "problems_only",
            Action::Agents => "agents",
            Action::Approve => "approve",
            Action::Deny => "deny",
            Action::Submit => "submit",
            Action::NextHypothesis => "next_hypothesis",
            Action::Confirm => "confirm_hypothesis",
            Action::Refute => "refute_hypothesis",
            Action::ApplyRecommendation => "apply_recommendation",
        }
    }

    /// One-line description for the help overlay.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Fleet => "Fleet pane",
            Action::Investigations => "Investigations pane",
            Action::Remediations => "Remediations pane",
            Action::Security => "Security pane",
            Action::Cost => "Cost pane",
            Action::Learning => "Learning pane",
            Action::Events => "Events pane",
            Action::NextPane => "next pane",
            Action::PrevPane => "previous pane",
            Action::Up => "move up",
            Action::Down => "move down",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Top => "first row",
            Action::Bottom => "last row (follow the tail)",
            Action::Open => "open the selected row",
            Action::Back => "go back / close",
            Action::Filter => "filter the list",
            Action::CommandMode => "command mode (:fleet, :theme NAME, :q …)",
            Action::Help => "toggle this help",
            Action::Quit => "quit (asks when approvals are pending)",
            Action::Sort => "change the sort order",
            Action::ProblemsOnly => "Fleet: only unhealthy and degraded resources (toggle)",
            Action::Agents => "agents: last run, last error, next run (:agents)",
            Action::Approve => "approve the selected remediation (opens a dialog)",
            Action::Deny => "deny the selected remediation (opens a dialog)",
            Action::Submit => "submit the open dialog",
            Action::NextHypothesis => "select the next hypothesis (investigation detail)",
            Action::Confirm => "mark the selected hypothesis confirmed",
            Action::Refute => "mark the selected hypothesis refuted",
            Action::ApplyRecommendation => {
                "propose the selected cost recommendation (policy and approvals decide)"
            }
        }
    }

    /// A short label for the footer.
    pub fn hint(self) -> &'static str {
        match self {
            Action::Up | Action::Down => "move",
            Action::Open => "open",
            Action::Back => "back",
            Action::Filter => "filter",
            Action::Sort => "sort",
            Action::ProblemsOnly => "problems",
            Action::Agents => "agents",
            Action::Approve => "approve",
            Action::Deny => "deny",
            Action::Submit => "submit",
            Action::NextHypothesis => "hypothesis",
            Action::Confirm => "confirm",
            Action::Refute => "refute",
            Action::ApplyRecommendation => "propose",
            Action::Help => "help",
            Action::Quit => "quit",
            Action::CommandMode => "cmd",
            Action::Bottom => "tail",
            Action::Top => "top",
            Action::PageUp | Action::PageDown => "page",
            Action::NextPane | Action::PrevPane => "pane",
            Action::Fleet
            | Action::Investigations
            | Action::Remediations
            | Action::Security
            | Action::Cost
            | Action::Learning
            | Action::Events => "pane",
        }
    }

    /// Looks an action up by its config name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == name)
    }

    fn default_keys(self) -> &'static [&'static str] {
        match self {
            Action::Fleet => &["1"],
            Action::Investigations => &["2"],
            Action::Remediations => &["3"],
            Action::Security => &["4"],
            Action::Cost => &["5"],
            Action::Learning => &["6"],
            Action::Events => &["7"],
            Action::NextPane => &["tab"],
            Action::PrevPane => &["shift-tab"],
            Action::Up => &["k", "up"],
            Action::Down => &["j", "down"],
            Action::PageUp => &["pgup", "ctrl-b"],
            Action::PageDown => &["pgdn", "ctrl-f"],
            Action::Top => &["home", "g"],
            Action::Bottom => &["end", "G"],
            Action::Open => &["enter"],
            Action::Back => &["esc"],
            Action::Filter => &["/"],
            Action::CommandMode => &[":"],
            Action::Help => &["?"],
            Action::Quit => &["q"],
            Action::Sort => &["s"],
            Action::ProblemsOnly => &["!"],
            Action::Agents => &["A"],
            Action::Approve => &["a"],
            Action::Deny => &["d"],
            Action::Submit => &["ctrl-s"],
            Action::NextHypothesis => &["h"],
            Action::Confirm => &["y"],
            Action::Refute => &["n"],
            Action::ApplyRecommendation => &["p"],
        }
    }
}

/// A key with the modifiers that matter (Ctrl, Alt; Shift only for non-characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyChord {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl KeyChord {
    /// Normalises a terminal key event: a character carries its own case, so
    /// Shift is dropped for characters; Shift-Tab arrives as BackTab.
    pub fn from_event(key: &KeyEvent) -> Option<KeyChord> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let mut mods =
            key.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match key.code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                // Ctrl+letter arrives lowercase on most terminals; normalise so `ctrl-S` == `ctrl-s`.
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Some(KeyChord { code, mods })
    }

    /// Parses a config spelling: `a`, `G`, `?`, `ctrl-s`, `alt-x`, `tab`, `shift-tab`,
    /// `enter`, `esc`, `up`, `pgdn`, `home`, `f5`, `space`.
    pub fn parse(spec: &str) -> Result<KeyChord, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err("empty key".into());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = spec;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (prefix_len, m) = if lower.starts_with("ctrl-") {
                (5, KeyModifiers::CONTROL)
            } else if lower.starts_with("c-") && rest.len() > 2 {
                (2, KeyModifiers::CONTROL)
            } else if lower.starts_with("alt-") {
                (4, KeyModifiers::ALT)
            } else if lower.starts_with("shift-") {
                (6, KeyModifiers::SHIFT)
            } else {
                break;
            };
            mods |= m;
            rest = &rest[prefix_len..];
            if rest.is_empty() {
                return Err(format!("`{spec}` has a modifier but no key"));
            }
        }
        let named = match rest.to_ascii_lowercase().as_str() {
            "tab" => Some(KeyCode::Tab),
            "backtab" => Some(KeyCode::BackTab),
            "enter" | "return" => Some(KeyCode::Enter),
            "esc" | "escape" => Some(KeyCode::Esc),
            "up" => Some(KeyCode::Up),
            "down" => Some(KeyCode::Down),
            "left" => Some(KeyCode::Left),
            "right" => Some(KeyCode::Right),
            "pgup" | "pageup" => Some(KeyCode::PageUp),
            "pgdn" | "pagedown" => Some(KeyCode::PageDown),
            "home" => Some(KeyCode::Home),
            "end" => Some(KeyCode::End),
            "space" => Some(KeyCode::Char(' ')),
            "backspace" => Some(KeyCode::Backspace),
            "delete" | "del" => Some(KeyCode::Delete),
            "insert" => Some(KeyCode::Insert),
            f if f.len() >= 2
                && f.starts_with('f')
                && f[1..].chars().all(|c| c.is_ascii_digit()) =>
            {
                let n: u8 = f[1..]
                    .parse()
                    .map_err(|_| format!("`{spec}`: bad function key"))?;
                if !(1..=24).contains(&n) {
                    return Err(format!("`{spec}`: function keys go from f1 to f24"));
                }
                Some(KeyCode::F(n))
            }
            _ => None,
        };
        let code = match named {
            Some(code) => code,
            None => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(c),
                    _ => return Err(format!("unknown key `{spec}`")),
                }
            }
        };
        let ev = KeyEvent::new(code, mods);
        let code = if code == KeyCode::Tab && mods.contains(KeyModifiers::SHIFT) {
            KeyCode::BackTab
        } else {
            code
        };
        KeyChord::from_event(&KeyEvent::new(code, ev.modifiers))
            .ok_or_else(|| format!("unknown key `{spec}`"))
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("S-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.mods.contains(KeyModifiers::CONTROL) => {
                write!(f, "{}", c.to_ascii_uppercase())
            }
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("S-Tab"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Backspace => f.write_str("Bksp"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::Insert => f.write_str("Ins"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The `[keys]` section of the config file: action name → key or list of keys.
/// A listed action's keys replace its defaults, e.g. `approve = "A"` or
/// `down = ["j", "down", "ctrl-n"]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeymapConfig(pub BTreeMap<String, KeySpec>);

/// One key or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeySpec {
    One(String),
    Many(Vec<String>),
}

impl KeySpec {
    fn keys(&self) -> Vec<&str> {
        match self {
            KeySpec::One(k) => vec![k.as_str()],
            KeySpec::Many(ks) => ks.iter().map(String::as_str).collect(),
        }
    }
}

/// The resolved key map.
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: HashMap<KeyChord, Action>,
    by_action: BTreeMap<Action, Vec<KeyChord>>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::from_config(&KeymapConfig::default()).0
    }
}

impl Keymap {
    /// Builds the map from defaults plus overrides; mistakes become warnings
    /// (naming the `keys.ACTION` entry) and the default stays in force.
    pub fn from_config(config: &KeymapConfig) -> (Keymap, Vec<String>) {
        let mut warnings = Vec::new();
        let mut by_action: BTreeMap<Action, Vec<KeyChord>> = BTreeMap::new();
        for &action in Action::ALL {
            let keys = action
                .default_keys()
                .iter()
                .map(|k| KeyChord::parse(k).expect("default keys parse"))
                .collect();
            by_action.insert(action, keys);
        }
        let mut overridden: Vec<Action> = Vec::new();
        for (name, spec) in &config.0 {
            let Some(action) = Action::from_name(name) else {
                let known: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                warnings.push(format!(
                    "keys.{name}: unknown action (known: {})",
                    known.join(", ")
                ));
                continue;
            };
            let mut parsed = Vec::new();
            let mut ok = true;
            for key in spec.keys() {
                match KeyChord::parse(key) {
                    Ok(chord) => parsed.push(chord),
                    Err(e) => {
                        warnings.push(format!("keys.{name}: {e}; keeping the default"));
                        ok = false;
                    }
                }
            }
            if ok && !parsed.is_empty() {
                by_action.insert(action, parsed);
                overridden.push(action);
            } else if ok {
                warnings.push(format!("keys.{name}: no keys given; keeping the default"));
            }
        }
        // An override takes its keys away from any default that used them.
        for &action in &overridden {
            let taken = by_action[&action].clone();
            for (other, keys) in by_action.iter_mut() {
                if *other != action && !overridden.contains(other) {
                    keys.retain(|k| !taken.contains(k));
                }
            }
        }
        let mut by_key = HashMap::new();
        for (&action, keys) in &by_action {
            for &key in keys {
                if let Some(previous) = by_key.insert(key, action)
                    && previous != action
                {
                    warnings.push(format!(
                        "keys: `{key}` is bound to both {} and {}; using {}",
                        previous.name(),
                        action.name(),
                        previous.name()
                    ));
                    by_key.insert(key, previous);
                }
            }
        }
        for (action, keys) in by_action.iter_mut() {
            keys.retain(|k| by_key.get(k) == Some(action));
        }
        (Keymap { by_key, by_action }, warnings)
    }

    /// The action a key event triggers, if any.
    pub fn action(&self, key: &KeyEvent) -> Option<Action> {
        KeyChord::from_event(key).and_then(|c| self.by_key.get(&c).copied())
    }

    /// The key that follows an Esc when `key` is Alt-<key> with no binding of
    /// its own. Terminals send Esc then a key typed quickly (or over a slow
    /// SSH link) as one Alt-<key> sequence (`ESC 4` is Alt-4), so the console
    /// reads it as the two keys the operator pressed. Ctrl-Alt chords are not
    /// split: no terminal produces them from a plain Esc.
    pub fn esc_then(&self, key: &KeyEvent) -> Option<KeyEvent> {
        let chord = KeyChord::from_event(key)?;
        if !chord.mods.contains(KeyModifiers::ALT)
            || chord.mods.contains(KeyModifiers::CONTROL)
            || self.by_key.contains_key(&chord)
        {
            return None;
        }
        let mut rest = *key;
        rest.modifiers.remove(KeyModifiers::ALT);
        Some(rest)
    }

    /// The keys bound to an action.
    pub fn keys(&self, action: Action) -> &[KeyChord] {
        self.by_action
            .get(&action)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Keys of an action joined for display (`j/↓`), or `unbound`.
    pub fn label(&self, action: Action) -> String {
        let keys = self.keys(action);
        if keys.is_empty() {
            "unbound".into()
        } else {
            keys.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("/")
        }
    }

    /// The first key of an action for compact hints.
    pub fn short(&self, action: Action) -> String {
        self.keys(action)
            .first()
            .map(ToString::to_string)
            .unwrap_or_else(|| "—".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn defaults_cover_every_action() {
        let map = Keymap::default();
        for &a in Action::ALL {
            assert!(!map.keys(a).is_empty(), "{} unbound", a.name());
        }
        assert_eq!(
            map.action(&key(KeyCode::Char('s'), KeyModifiers::CONTROL)),
            Some(Action::Submit)
        );
        assert_eq!(
            map.action(&key(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevPane)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::Help)
        );
    }

    #[test]
    fn override_replaces_defaults_and_steals_keys() {
        let toml = "approve = \"A\"\ndown = [\"n\", \"down\"]\nsort = \"a\"\n";
        let config: KeymapConfig = toml::from_str(toml).unwrap();
        let (map, warnings) = Keymap::from_config(&config);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            map.action(&key(KeyCode::Char('A'), KeyModifiers::SHIFT)),
            Some(Action::Approve)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('a'), KeyModifiers::NONE)),
            Some(Action::Sort)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('j'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('n'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(map.label(Action::Down), "n/↓");
    }

    #[test]
    fn mistakes_are_warnings_naming_the_entry() {
        let toml = "aprove = \"x\"\ndeny = \"ctrl-\"\nhelp = \"bogus\"\n";
        let config: KeymapConfig = toml::from_str(toml).unwrap();
        let (map, warnings) = Keymap::from_config(&config);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("keys.aprove: unknown action"))
        );
        assert!(warnings.iter().any(|w| w.starts_with("keys.deny:")));
        assert!(warnings.iter().any(|w| w.contains("unknown key `bogus`")));
        assert_eq!(map.label(Action::Deny), "d");
        assert_eq!(map.label(Action::Help), "?");
    }

    #[test]
    fn alt_key_without_binding_is_esc_then_the_key() {
        let map = Keymap::default();
        // `ESC 4` typed fast arrives as Alt-4: Esc, then 4 (the Security pane).
        let rest = map
            .esc_then(&key(KeyCode::Char('4'), KeyModifiers::ALT))
            .expect("Alt-4 is unbound");
        assert_eq!(rest, key(KeyCode::Char('4'), KeyModifiers::NONE));
        assert_eq!(map.action(&rest), Some(Action::Security));
        // Shift survives (Alt-G is Esc then G, the last row).
        let rest = map
            .esc_then(&key(
                KeyCode::Char('G'),
                KeyModifiers::ALT | KeyModifiers::SHIFT,
            ))
            .unwrap();
        assert_eq!(map.action(&rest), Some(Action::Bottom));
        // Non-character keys too: Esc then Enter.
        assert_eq!(
            map.esc_then(&key(KeyCode::Enter, KeyModifiers::ALT)),
            Some(key(KeyCode::Enter, KeyModifiers::NONE))
        );
        // Plain keys, Ctrl-Alt chords and releases are left alone.
        assert_eq!(
            map.esc_then(&key(KeyCode::Char('4'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            map.esc_then(&key(
                KeyCode::Char('4'),
                KeyModifiers::ALT | KeyModifiers::CONTROL
            )),
            None
        );
        let mut release = key(KeyCode::Char('4'), KeyModifiers::ALT);
        release.kind = KeyEventKind::Release;
        assert_eq!(map.esc_then(&release), None);
    }

    #[test]
    fn an_alt_binding_is_kept_whole() {
        let config: KeymapConfig = toml::from_str("events = [\"7\", \"alt-4\"]\n").unwrap();
        let (map, warnings) = Keymap::from_config(&config);
        assert!(warnings.is_empty(), "{warnings:?}");
        let alt4 = key(KeyCode::Char('4'), KeyModifiers::ALT);
        assert_eq!(map.esc_then(&alt4), None);
        assert_eq!(map.action(&alt4), Some(Action::Events));
        // Other Alt keys are still split.
        assert!(
            map.esc_then(&key(KeyCode::Char('5'), KeyModifiers::ALT))
                .is_some()
        );
    }

    #[test]
    fn parse_and_display_round_trip() {
        for (spec, shown) in [
            ("ctrl-s", "Ctrl-S"),
            ("shift-tab", "S-Tab"),
            ("pgdn", "PgDn"),
            ("f5", "F5"),
            ("space", "Space"),
            ("?", "?"),
        ] {
            assert_eq!(KeyChord::parse(spec).unwrap().to_string(), shown);
        }
        assert!(KeyChord::parse("f99").is_err());
        assert!(KeyChord::parse("ab").is_err());
    }
}
