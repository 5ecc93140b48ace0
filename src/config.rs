//! Client settings: command line over environment over `~/.config/tsunagu/config.toml`. The
//! file holds settings only (server, keymap, theme, borders): the client never writes case data
//! to disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::keymap::Keymap;
use crate::theme::Theme;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub keymap: Option<String>,
    pub theme: Option<String>,
    /// `true`: ASCII borders and "~" whatever `ambiguous_width` says.
    pub ascii: Option<bool>,
    /// How the terminal draws East Asian ambiguous-width characters (…, ○, box lines):
    /// `wide` (the default, as Tera Term's Japanese set-up does) or `narrow`. Only `narrow`
    /// lets the client draw them.
    pub ambiguous_width: Option<String>,
    /// `false`: never scroll a region of the screen with the terminal's scroll region (DECSTBM);
    /// every frame is sent cell by cell. Also `TSUNAGU_SCROLL_REGIONS=off`.
    pub scroll_regions: Option<bool>,
}

/// Whether to scroll with the terminal's scroll regions: `TSUNAGU_SCROLL_REGIONS` (`off`, `0`,
/// `false`, `no` turn them off; anything else on) over the settings file, on by default.
pub fn scroll_regions(file: &FileConfig, env: Option<&str>) -> bool {
    match env.map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if !v.is_empty() => !matches!(v.as_str(), "off" | "0" | "false" | "no"),
        _ => file.scroll_regions.unwrap_or(true),
    }
}

pub fn config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("tsunagu"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config").join("tsunagu"))
}

pub struct Loaded {
    pub file: FileConfig,
    pub keymap: Keymap,
    pub theme: Theme,
    pub warnings: Vec<String>,
}

pub struct Choices<'a> {
    pub config_file: Option<&'a Path>,
    pub keymap: Option<&'a str>,
    pub theme: Option<&'a str>,
    pub no_color: bool,
}

/// Reads the config file, the keymap (builtin + user overrides) and the theme. Every problem
/// becomes a warning shown at start; nothing here stops the client.
pub fn load(c: &Choices) -> Loaded {
    let mut warnings = Vec::new();
    let dir = config_dir();
    let path = c
        .config_file
        .map(Path::to_path_buf)
        .or_else(|| dir.as_ref().map(|d| d.join("config.toml")));
    let mut file = FileConfig::default();
    if let Some(p) = &path {
        match std::fs::read_to_string(p) {
            Ok(src) => match toml::from_str::<FileConfig>(&src) {
                Ok(f) => file = f,
                Err(e) => {
                    let line = e
                        .span()
                        .map(|s| src[..s.start.min(src.len())].matches('\n').count() + 1)
                        .unwrap_or(1);
                    warnings.push(format!(
                        "{}:{line}: 設定が読めません: {}",
                        p.display(),
                        e.message()
                    ));
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && c.config_file.is_none() => {}
            Err(e) => warnings.push(format!("{}: 読めません: {e}", p.display())),
        }
    }
    if let Some(w) = file.ambiguous_width.as_deref() {
        if w != "wide" && w != "narrow" {
            warnings.push(format!(
                "ambiguous_width「{w}」は wide か narrow です。wide（曖昧幅の文字を使わない）で表示します"
            ));
        }
    }
    let km_name = c
        .keymap
        .map(str::to_string)
        .or(file.keymap.clone())
        .unwrap_or_else(|| "default".into());
    let mut keymap = match Keymap::builtin(&km_name) {
        Some(k) => k,
        None => {
            warnings.push(format!(
                "キーマップ「{km_name}」はありません（default か vim）。default を使います"
            ));
            Keymap::builtin("default").expect("default keymap")
        }
    };
    if let Some(d) = &dir {
        let user = d.join("keymap.toml");
        if let Ok(src) = std::fs::read_to_string(&user) {
            for e in keymap.apply(&user.display().to_string(), &src) {
                warnings.push(e.to_string());
            }
        }
    }
    // NO_COLOR (any non-empty value) or --no-color: monochrome, whatever else is chosen.
    let no_color = c.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme_name = if no_color {
        "mono".to_string()
    } else {
        c.theme
            .map(str::to_string)
            .or(file.theme.clone())
            .unwrap_or_else(|| "default".into())
    };
    let mut extra = BTreeMap::new();
    if let Some(d) = &dir {
        if let Ok(rd) = std::fs::read_dir(d.join("themes")) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    if let (Some(stem), Ok(src)) = (p.file_stem(), std::fs::read_to_string(&p)) {
                        extra.insert(stem.to_string_lossy().to_string(), src);
                    }
                }
            }
        }
    }
    let theme = match Theme::load(&theme_name, &extra) {
        Ok(t) => t,
        Err(m) => {
            warnings.push(format!("{m}。default を使います"));
            Theme::builtin("default")
        }
    };
    Loaded {
        file,
        keymap,
        theme,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scroll_regions_are_on_unless_the_environment_or_the_file_turns_them_off() {
        let none = FileConfig::default();
        let off: FileConfig = toml::from_str("scroll_regions = false").expect("toml");
        assert!(scroll_regions(&none, None));
        assert!(!scroll_regions(&off, None));
        for v in ["off", "0", "false", "NO", " Off "] {
            assert!(!scroll_regions(&none, Some(v)), "{v}");
        }
        // The environment wins over the file, both ways; an empty value says nothing.
        assert!(scroll_regions(&off, Some("on")));
        assert!(!scroll_regions(&off, Some("")));
        assert!(scroll_regions(&none, Some("")));
    }
}
