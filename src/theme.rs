//! Themes from TOML: a palette of named colours and semantic roles that use them. A theme may
//! inherit another and change only some entries. `mono` uses no colour at all (NO_COLOR).

use std::collections::BTreeMap;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../themes/default.toml")),
    ("light", include_str!("../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../themes/mono.toml")),
];

/// Every role the screens draw with.
pub const ROLES: &[&str] = &[
    "normal",
    "dim",
    "title",
    "header",
    "selected",
    "status",
    "status_ok",
    "status_warn",
    "status_error",
    "error",
    "withheld",
    "required",
    "unread",
    "key",
    "input",
    "input_focus",
    "section",
    "changed",
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reverse: bool,
    #[serde(default)]
    dim: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    inherits: Option<String>,
    #[serde(default)]
    palette: BTreeMap<String, String>,
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
}

#[derive(Debug, Clone)]
pub struct Theme {
    styles: BTreeMap<String, Style>,
}

fn parse_color(s: &str, palette: &BTreeMap<String, String>, depth: u8) -> Result<Color, String> {
    if let Some(p) = palette.get(s) {
        if depth > 4 {
            return Err(format!("パレット「{s}」の参照が循環しています"));
        }
        return parse_color(p, palette, depth + 1);
    }
    Ok(match s {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        // ANSI colour 7 is "white" in most terminals' palettes; 15 is bright white.
        "gray" | "white" => Color::Gray,
        "darkgray" | "bright_black" => Color::DarkGray,
        "bright_red" => Color::LightRed,
        "bright_green" => Color::LightGreen,
        "bright_yellow" => Color::LightYellow,
        "bright_blue" => Color::LightBlue,
        "bright_magenta" => Color::LightMagenta,
        "bright_cyan" => Color::LightCyan,
        "bright_white" => Color::White,
        _ => {
            return Err(format!(
                "色「{s}」は使えません（16色の名前かパレットの名前）"
            ))
        }
    })
}

impl Theme {
    /// Loads a theme by name from the builtin set or `extra` (user files: name → source),
    /// following `inherits`.
    pub fn load(name: &str, extra: &BTreeMap<String, String>) -> Result<Theme, String> {
        let mut chain = Vec::new();
        let mut cur = Some(name.to_string());
        while let Some(n) = cur {
            if chain.iter().any(|(c, _): &(String, RawTheme)| *c == n) || chain.len() > 8 {
                return Err(format!("テーマ「{n}」の継承が循環しています"));
            }
            let src = extra
                .get(&n)
                .map(String::as_str)
                .or_else(|| BUILTIN.iter().find(|(b, _)| *b == n).map(|(_, s)| *s))
                .ok_or_else(|| {
                    format!("テーマ「{n}」がありません（default, light, high-contrast, mono）")
                })?;
            let raw: RawTheme = toml::from_str(src)
                .map_err(|e| format!("テーマ「{n}」が読めません: {}", e.message()))?;
            cur = raw.inherits.clone();
            chain.push((n, raw));
        }
        // Base first, so later (child) entries override.
        let mut palette = BTreeMap::new();
        let mut roles: BTreeMap<String, RawRole> = BTreeMap::new();
        for (_, raw) in chain.iter().rev() {
            palette.extend(raw.palette.clone());
            roles.extend(raw.roles.clone());
        }
        let mut styles = BTreeMap::new();
        for (role, r) in &roles {
            if !ROLES.contains(&role.as_str()) {
                return Err(format!("テーマ「{name}」の役割「{role}」は不明です"));
            }
            let mut st = Style::default();
            if let Some(fg) = &r.fg {
                st = st.fg(parse_color(fg, &palette, 0)?);
            }
            if let Some(bg) = &r.bg {
                st = st.bg(parse_color(bg, &palette, 0)?);
            }
            for (on, m) in [
                (r.bold, Modifier::BOLD),
                (r.underline, Modifier::UNDERLINED),
                (r.reverse, Modifier::REVERSED),
                (r.dim, Modifier::DIM),
            ] {
                if on {
                    st = st.add_modifier(m);
                }
            }
            styles.insert(role.clone(), st);
        }
        Ok(Theme { styles })
    }

    pub fn builtin(name: &str) -> Theme {
        Theme::load(name, &BTreeMap::new()).expect("builtin themes parse")
    }

    pub fn style(&self, role: &str) -> Style {
        self.styles.get(role).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_themes_define_every_role() {
        for (name, _) in BUILTIN {
            let t = Theme::load(name, &BTreeMap::new()).unwrap();
            for r in ROLES {
                assert!(t.styles.contains_key(*r), "{name} lacks {r}");
            }
        }
    }

    #[test]
    fn mono_uses_no_colour() {
        let t = Theme::builtin("mono");
        for r in ROLES {
            let s = t.style(r);
            assert!(matches!(s.fg, None | Some(Color::Reset)), "{r}");
            assert!(matches!(s.bg, None | Some(Color::Reset)), "{r}");
        }
    }

    #[test]
    fn user_theme_inherits_and_overrides() {
        let mut extra = BTreeMap::new();
        extra.insert(
            "mine".to_string(),
            "inherits = \"default\"\n[palette]\naccent = \"magenta\"\n".to_string(),
        );
        let t = Theme::load("mine", &extra).unwrap();
        assert_eq!(t.style("title").fg, Some(Color::Magenta));
        extra.insert(
            "bad".to_string(),
            "[roles.title]\nfg = \"chartreuse\"\n".to_string(),
        );
        assert!(Theme::load("bad", &extra)
            .unwrap_err()
            .contains("chartreuse"));
    }
}
