//! Colour themes: TOML files in `themes/`, embedded in the binary, overridable
//! by a file of the same name in `<config_dir>/themes/`.
//!
//! A theme names a style for each slot (`critical`, `selected`, …). Slots a
//! file leaves out fall back to the default theme (or, for `mono`, to no style),
//! so a user override only needs the slots it changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::event::{HealthStatus, Risk, Severity};

/// Themes compiled into the binary: (name, TOML).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "solarized-16",
        include_str!("../../themes/solarized-16.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// Why a theme could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("no theme named `{name}` (built in: default, light, solarized-16, mono)")]
    Unknown { name: String },
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{origin}: {error}")]
    Parse { origin: String, error: String },
    #[error("{origin}: styles.{slot}: {error}")]
    Slot {
        origin: String,
        slot: String,
        error: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    styles: BTreeMap<String, StyleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    #[serde(default)]
    fg: Option<String>,
    #[serde(default)]
    bg: Option<String>,
    #[serde(default)]
    modifiers: Vec<String>,
}

macro_rules! theme_slots {
    ($($slot:ident: $doc:literal),* $(,)?) => {
        /// Styles for every themed element of the console.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            /// The theme's name (`default`, `mono`, …).
            pub name: String,
            $(#[doc = $doc] pub $slot: Style,)*
        }

        /// Slot names accepted in `[styles]`.
        pub const SLOTS: &[&str] = &[$(stringify!($slot)),*];

        impl Theme {
            fn blank(name: &str) -> Theme {
                Theme { name: name.to_string(), $($slot: Style::default(),)* }
            }

            fn slot_mut(&mut self, slot: &str) -> Option<&mut Style> {
                match slot {
                    $(stringify!($slot) => Some(&mut self.$slot),)*
                    _ => None,
                }
            }

            /// Every slot's style, for checks over the whole theme.
            pub fn styles(&self) -> Vec<(&'static str, Style)> {
                vec![$((stringify!($slot), self.$slot)),*]
            }
        }
    };
}

theme_slots! {
    base: "Text and background of the whole screen.",
    border: "Borders of unfocused blocks.",
    border_focus: "Borders of the focused block.",
    title: "Block titles.",
    header: "Table header rows.",
    selected: "The selected row.",
    dim: "Secondary text (ids, timestamps).",
    accent: "Emphasis (names, numbers that matter).",
    key: "Keys in hints and help.",
    tab: "Pane tabs.",
    tab_active: "The focused pane's tab.",
    ok: "Healthy, succeeded, passed.",
    warn: "Degraded, pending, rolled back.",
    bad: "Unhealthy, failed, denied.",
    unknown: "Unknown health.",
    critical: "Critical severity or risk.",
    high: "High severity or risk.",
    medium: "Medium severity or risk.",
    low: "Low severity or risk.",
    info: "Informational severity.",
    pending: "The pending-approvals badge when non-zero.",
    bar: "Filled part of bars and sparklines.",
    bar_empty: "Empty part of bars.",
    toast_info: "Informational status messages.",
    toast_warn: "Warnings.",
    toast_error: "Errors.",
    dialog: "Dialog body.",
    dialog_title: "Dialog title.",
    input: "Text input boxes.",
    cursor: "The text cursor in input boxes.",
}

impl Theme {
    /// Names of the built-in themes.
    pub fn builtin_names() -> Vec<&'static str> {
        EMBEDDED.iter().map(|(n, _)| *n).collect()
    }

    /// Theme names available: built in plus `*.toml` in `<config_dir>/themes`.
    pub fn available(config_dir: Option<&Path>) -> Vec<String> {
        let mut names: Vec<String> = Theme::builtin_names()
            .into_iter()
            .map(String::from)
            .collect();
        if let Some(dir) = config_dir
            && let Ok(entries) = std::fs::read_dir(dir.join("themes"))
        {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "toml")
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                    && !names.iter().any(|n| n == stem)
                {
                    names.push(stem.to_string());
                }
            }
        }
        names.sort();
        names
    }

    /// The built-in default theme (always parses: a test guards it).
    pub fn default_theme() -> Theme {
        Theme::builtin("default").expect("embedded default theme parses")
    }

    /// The built-in mono theme: modifiers only, no colour.
    pub fn mono() -> Theme {
        Theme::builtin("mono").expect("embedded mono theme parses")
    }

    /// A built-in theme by name.
    pub fn builtin(name: &str) -> Result<Theme, ThemeError> {
        let (_, text) = EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ThemeError::Unknown { name: name.into() })?;
        Theme::parse(name, text, &format!("built-in theme `{name}`"))
    }

    /// Loads `name`: `<config_dir>/themes/NAME.toml` if present, else the built-in one.
    pub fn load(name: &str, config_dir: Option<&Path>) -> Result<Theme, ThemeError> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(ThemeError::Unknown { name: name.into() });
        }
        if let Some(dir) = config_dir {
            let path = dir.join("themes").join(format!("{name}.toml"));
            match std::fs::read_to_string(&path) {
                Ok(text) => return Theme::parse(name, &text, &path.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(ThemeError::Read { path, error }),
            }
        }
        Theme::builtin(name)
    }

    /// Loads `name`, or falls back to the default theme with a warning to show.
    pub fn load_or_default(name: &str, config_dir: Option<&Path>) -> (Theme, Option<String>) {
        match Theme::load(name, config_dir) {
            Ok(theme) => (theme, None),
            Err(e) => (
                Theme::default_theme(),
                Some(format!("theme: {e}; using the default theme")),
            ),
        }
    }

    /// Parses theme TOML; `origin` names the file in errors.
    pub fn parse(name: &str, text: &str, origin: &str) -> Result<Theme, ThemeError> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| ThemeError::Parse {
            origin: origin.to_string(),
            error: e.to_string().trim().to_string(),
        })?;
        // Slots left out fall back to the default theme, except in mono where
        // falling back would bring colour in.
        let mut theme = if name == "default" || name == "mono" {
            Theme::blank(name)
        } else {
            let mut t = Theme::default_theme();
            t.name = name.to_string();
            t
        };
        for (slot, spec) in &file.styles {
            let style = spec.to_style().map_err(|error| ThemeError::Slot {
                origin: origin.to_string(),
                slot: slot.clone(),
                error,
            })?;
            let target = theme.slot_mut(slot).ok_or_else(|| ThemeError::Slot {
                origin: origin.to_string(),
                slot: slot.clone(),
                error: format!("unknown slot (known: {})", SLOTS.join(", ")),
            })?;
            *target = style;
        }
        Ok(theme)
    }

    /// Whether any slot carries a colour.
    pub fn has_colour(&self) -> bool {
        self.styles().iter().any(|(_, s)| {
            s.fg.is_some_and(|c| c != Color::Reset) || s.bg.is_some_and(|c| c != Color::Reset)
        })
    }

    /// Style for a severity.
    pub fn severity(&self, s: Severity) -> Style {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }

    /// Style for a risk level.
    pub fn risk(&self, r: Risk) -> Style {
        match r {
            Risk::Critical => self.critical,
            Risk::High => self.high,
            Risk::Medium => self.medium,
            Risk::Low => self.low,
        }
    }

    /// Style for a health status.
    pub fn health(&self, h: HealthStatus) -> Style {
        match h {
            HealthStatus::Healthy => self.ok,
            HealthStatus::Degraded => self.warn,
            HealthStatus::Unhealthy => self.bad,
            HealthStatus::Unknown => self.unknown,
        }
    }
}

impl StyleSpec {
    fn to_style(&self) -> Result<Style, String> {
        let mut style = Style::default();
        if let Some(fg) = &self.fg {
            style = style.fg(parse_colour(fg).map_err(|e| format!("fg: {e}"))?);
        }
        if let Some(bg) = &self.bg {
            style = style.bg(parse_colour(bg).map_err(|e| format!("bg: {e}"))?);
        }
        for m in &self.modifiers {
            style = style.add_modifier(parse_modifier(m)?);
        }
        Ok(style)
    }
}

fn parse_colour(s: &str) -> Result<Color, String> {
    Color::from_str(s.trim()).map_err(|_| {
        format!("`{s}` is not a colour (use a name like `red`/`lightblue`, `#rrggbb`, or 0–255)")
    })
}

fn parse_modifier(s: &str) -> Result<Modifier, String> {
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" | "underline" => Modifier::UNDERLINED,
        "reversed" | "reverse" => Modifier::REVERSED,
        "crossed_out" | "strikethrough" => Modifier::CROSSED_OUT,
        "slow_blink" | "blink" => Modifier::SLOW_BLINK,
        other => {
            return Err(format!(
                "unknown modifier `{other}` (bold, dim, italic, underlined, reversed, crossed_out)"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSI16: &[Color] = &[
        Color::Reset,
        Color::Black,
        Color::Red,
        Color::Green,
        Color::Yellow,
        Color::Blue,
        Color::Magenta,
        Color::Cyan,
        Color::Gray,
        Color::DarkGray,
        Color::LightRed,
        Color::LightGreen,
        Color::LightYellow,
        Color::LightBlue,
        Color::LightMagenta,
        Color::LightCyan,
        Color::White,
    ];

    #[test]
    fn every_builtin_parses_and_sets_every_slot() {
        for (name, text) in EMBEDDED {
            let theme = Theme::parse(name, text, name).unwrap();
            let file: ThemeFile = toml::from_str(text).unwrap();
            if *name != "mono" {
                for slot in SLOTS {
                    assert!(file.styles.contains_key(*slot), "{name} lacks {slot}");
                }
            }
            assert_eq!(theme.name, *name);
        }
    }

    #[test]
    fn solarized_uses_only_ansi16_and_mono_none() {
        let sol = Theme::builtin("solarized-16").unwrap();
        for (slot, style) in sol.styles() {
            for c in [style.fg, style.bg].into_iter().flatten() {
                assert!(ANSI16.contains(&c), "solarized-16 {slot} uses {c:?}");
            }
        }
        assert!(!Theme::mono().has_colour());
        assert!(Theme::default_theme().has_colour());
    }

    #[test]
    fn default_marks_danger_red() {
        let t = Theme::default_theme();
        assert!(matches!(t.critical.fg, Some(Color::Red | Color::LightRed)));
        assert!(matches!(t.bad.fg, Some(Color::Red | Color::LightRed)));
    }

    #[test]
    fn user_file_overrides_and_errors_name_file_and_slot() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        std::fs::write(
            dir.path().join("themes/default.toml"),
            "[styles]\ncritical = { fg = \"magenta\" }\n",
        )
        .unwrap();
        let t = Theme::load("default", Some(dir.path())).unwrap();
        assert_eq!(t.critical.fg, Some(Color::Magenta));

        std::fs::write(
            dir.path().join("themes/broken.toml"),
            "[styles]\ncritical = { fg = \"no-such-colour\" }\n",
        )
        .unwrap();
        let err = Theme::load("broken", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("broken.toml") && err.contains("styles.critical"),
            "{err}"
        );

        std::fs::write(
            dir.path().join("themes/typo.toml"),
            "[styles]\ncritcal = {}\n",
        )
        .unwrap();
        let err = Theme::load("typo", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown slot"), "{err}");

        std::fs::write(dir.path().join("themes/bad.toml"), "[styles\n").unwrap();
        let (theme, warning) = Theme::load_or_default("bad", Some(dir.path()));
        assert_eq!(theme.name, "default");
        assert!(warning.unwrap().contains("bad.toml"));

        assert!(Theme::available(Some(dir.path())).contains(&"typo".to_string()));
        assert!(matches!(
            Theme::load("../etc/passwd", None),
            Err(ThemeError::Unknown { .. })
        ));
    }
}
