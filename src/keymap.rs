//! Keymaps from TOML: one section per screen, each action with its keys and a Japanese
//! description. The shipped maps are embedded; a user file overrides single actions. Every
//! problem (bad key, unknown action or section, a key bound twice) is reported with file and line.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

pub const DEFAULT_TOML: &str = include_str!("../keymaps/default.toml");
pub const VIM_TOML: &str = include_str!("../keymaps/vim.toml");

/// Every action a key can trigger. The TOML names are the snake_case forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Search,
    Notifications,
    SwitchAccount,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    NextField,
    PrevField,
    Submit,
    Filter,
    Sort,
    Reload,
    NewRecord,
    Edit,
    Save,
    Cancel,
    History,
    Views,
    MarkRead,
    KeepMine,
    TakeTheirs,
    ChoiceNext,
    ChoicePrev,
    Logout,
    Redraw,
    Read,
    RemoveItem,
    MoveItemUp,
    MoveItemDown,
    Menu,
    NewIntake,
    IntakeList,
    CaseList,
    Lookup,
    Attach,
    Convert,
    Safety,
    Goto,
    AppendProgress,
}

const ACTIONS: &[(&str, Action)] = &[
    ("quit", Action::Quit),
    ("help", Action::Help),
    ("search", Action::Search),
    ("notifications", Action::Notifications),
    ("switch_account", Action::SwitchAccount),
    ("up", Action::Up),
    ("down", Action::Down),
    ("page_up", Action::PageUp),
    ("page_down", Action::PageDown),
    ("redraw", Action::Redraw),
    ("top", Action::Top),
    ("bottom", Action::Bottom),
    ("open", Action::Open),
    ("back", Action::Back),
    ("next_field", Action::NextField),
    ("prev_field", Action::PrevField),
    ("submit", Action::Submit),
    ("filter", Action::Filter),
    ("sort", Action::Sort),
    ("reload", Action::Reload),
    ("new_record", Action::NewRecord),
    ("edit", Action::Edit),
    ("save", Action::Save),
    ("cancel", Action::Cancel),
    ("history", Action::History),
    ("views", Action::Views),
    ("mark_read", Action::MarkRead),
    ("keep_mine", Action::KeepMine),
    ("take_theirs", Action::TakeTheirs),
    ("choice_next", Action::ChoiceNext),
    ("choice_prev", Action::ChoicePrev),
    ("logout", Action::Logout),
    ("read", Action::Read),
    ("remove_item", Action::RemoveItem),
    ("move_item_up", Action::MoveItemUp),
    ("move_item_down", Action::MoveItemDown),
    ("menu", Action::Menu),
    ("new_intake", Action::NewIntake),
    ("intake_list", Action::IntakeList),
    ("case_list", Action::CaseList),
    ("lookup", Action::Lookup),
    ("attach", Action::Attach),
    ("convert", Action::Convert),
    ("safety", Action::Safety),
    ("goto", Action::Goto),
    ("append_progress", Action::AppendProgress),
];

impl Action {
    pub fn name(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
    fn from_name(s: &str) -> Option<Action> {
        ACTIONS.iter().find(|(n, _)| *n == s).map(|(_, a)| *a)
    }
}

/// The sections: `global` applies everywhere unless a screen binds the same key.
pub const SECTIONS: &[&str] = &[
    "global",
    "login",
    "menu",
    "case_list",
    "intake",
    "intakes",
    "record",
    "record_edit",
    "record_goto",
    "reader",
    "history",
    "conflict",
    "search",
    "notifications",
    "help",
    "accounts",
];

/// A key as written in a keymap: code plus Ctrl/Alt/Shift (Shift only for non-characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    /// The form a key event is looked up in: a typed character carries its shift in the
    /// character itself (`?`, `G`), so Shift is dropped for characters.
    pub fn from_event(e: &KeyEvent) -> Key {
        let mut mods =
            e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match e.code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
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
            c => c,
        };
        Key { code, mods }
    }

    pub fn parse(s: &str) -> Result<Key, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl+").or(lower.strip_prefix("c-")) {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt+") {
                mods |= KeyModifiers::ALT;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("shift+") {
                mods |= KeyModifiers::SHIFT;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let named = match rest.to_ascii_lowercase().as_str() {
            "up" => Some(KeyCode::Up),
            "down" => Some(KeyCode::Down),
            "left" => Some(KeyCode::Left),
            "right" => Some(KeyCode::Right),
            "enter" | "return" => Some(KeyCode::Enter),
            "esc" | "escape" => Some(KeyCode::Esc),
            "tab" => Some(KeyCode::Tab),
            "backtab" => Some(KeyCode::BackTab),
            "backspace" => Some(KeyCode::Backspace),
            "delete" | "del" => Some(KeyCode::Delete),
            "insert" | "ins" => Some(KeyCode::Insert),
            "home" => Some(KeyCode::Home),
            "end" => Some(KeyCode::End),
            "pageup" | "pgup" => Some(KeyCode::PageUp),
            "pagedown" | "pgdn" => Some(KeyCode::PageDown),
            "space" => Some(KeyCode::Char(' ')),
            f if f.len() >= 2
                && f.starts_with('f')
                && f[1..].chars().all(|c| c.is_ascii_digit()) =>
            {
                match f[1..].parse::<u8>() {
                    Ok(n @ 1..=12) => Some(KeyCode::F(n)),
                    _ => return Err(format!("「{s}」は使えないキーです（F1〜F12）")),
                }
            }
            _ => None,
        };
        let code = match named {
            Some(c) => c,
            None => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !c.is_control() => KeyCode::Char(c),
                    _ => {
                        return Err(format!(
                            "「{s}」はキーとして読めません（例: Enter, F5, Ctrl+s, j）"
                        ))
                    }
                }
            }
        };
        let key = Key::from_event(&KeyEvent::new(code, mods));
        if key.code == KeyCode::Tab && mods.contains(KeyModifiers::SHIFT) {
            return Ok(Key {
                code: KeyCode::BackTab,
                mods: KeyModifiers::NONE,
            });
        }
        Ok(key)
    }

    /// Whether typing this key into a text field should insert text (then keymap bindings
    /// without a modifier do not apply).
    pub fn is_text(&self) -> bool {
        matches!(self.code, KeyCode::Char(_))
            && !self
                .mods
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl+")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt+")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift+")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::Up => f.write_str("Up"),
            KeyCode::Down => f.write_str("Down"),
            KeyCode::Left => f.write_str("Left"),
            KeyCode::Right => f.write_str("Right"),
            KeyCode::BackTab => f.write_str("Shift+Tab"),
            KeyCode::PageUp => f.write_str("PageUp"),
            KeyCode::PageDown => f.write_str("PageDown"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub keys: Vec<Key>,
    pub desc: String,
}

/// Bindings of one section, in file order of actions.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub actions: BTreeMap<Action, Binding>,
}

#[derive(Debug, Clone, Default)]
pub struct Keymap {
    pub sections: BTreeMap<String, Section>,
}

#[derive(Deserialize)]
struct RawBinding {
    keys: Vec<toml::Spanned<String>>,
    #[serde(default)]
    desc: String,
}

type RawFile =
    BTreeMap<toml::Spanned<String>, BTreeMap<toml::Spanned<String>, toml::Spanned<RawBinding>>>;

/// One problem in a keymap file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeymapError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for KeymapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

impl Keymap {
    /// Parses `src` over `self`: each action named replaces that action's keys in its section.
    /// Returns every problem found; what parsed cleanly is still applied.
    pub fn apply(&mut self, file: &str, src: &str) -> Vec<KeymapError> {
        let mut errs = Vec::new();
        let err = |off: usize, message: String| KeymapError {
            file: file.to_string(),
            line: line_of(src, off),
            message,
        };
        let raw: RawFile = match toml::from_str(src) {
            Ok(r) => r,
            Err(e) => {
                let off = e.span().map(|s| s.start).unwrap_or(0);
                errs.push(err(off, format!("TOMLとして読めません: {}", e.message())));
                return errs;
            }
        };
        for (section, actions) in raw {
            if !SECTIONS.contains(&section.get_ref().as_str()) {
                errs.push(err(
                    section.span().start,
                    format!(
                        "不明な画面「{}」（使える画面: {}）",
                        section.get_ref(),
                        SECTIONS.join(", ")
                    ),
                ));
                continue;
            }
            let sec = self.sections.entry(section.get_ref().clone()).or_default();
            for (name, binding) in actions {
                let Some(action) = Action::from_name(name.get_ref()) else {
                    errs.push(err(
                        name.span().start,
                        format!("不明な操作「{}」", name.get_ref()),
                    ));
                    continue;
                };
                let binding_span = binding.span();
                let raw = binding.into_inner();
                let mut keys = Vec::new();
                for k in raw.keys {
                    match Key::parse(k.get_ref()) {
                        Ok(key) => keys.push((key, k.span().start)),
                        Err(m) => errs.push(err(k.span().start, m)),
                    }
                }
                let desc = if raw.desc.is_empty() {
                    sec.actions
                        .get(&action)
                        .map(|b| b.desc.clone())
                        .unwrap_or_default()
                } else {
                    raw.desc
                };
                if desc.is_empty() {
                    errs.push(err(
                        binding_span.start,
                        format!("操作「{}」に説明（desc）がありません", action.name()),
                    ));
                }
                // The same key on two actions of one section: the later one is refused.
                let mut kept = Vec::new();
                for (key, off) in keys {
                    let clash = sec
                        .actions
                        .iter()
                        .find(|(a, b)| **a != action && b.keys.contains(&key))
                        .map(|(a, _)| *a);
                    if let Some(other) = clash {
                        errs.push(err(
                            off,
                            format!(
                                "キー {key} は「{}」と「{}」に重複して割り当てられています",
                                other.name(),
                                action.name()
                            ),
                        ));
                    } else if kept.contains(&key) {
                        errs.push(err(off, format!("キー {key} が2回書かれています")));
                    } else {
                        kept.push(key);
                    }
                }
                sec.actions.insert(action, Binding { keys: kept, desc });
            }
        }
        errs.sort_by_key(|e| e.line);
        errs
    }

    pub fn builtin(name: &str) -> Option<Keymap> {
        let src = match name {
            "default" => DEFAULT_TOML,
            "vim" => VIM_TOML,
            _ => return None,
        };
        let mut k = Keymap::default();
        let errs = k.apply(&format!("keymaps/{name}.toml"), src);
        debug_assert!(errs.is_empty(), "{errs:?}");
        Some(k)
    }

    /// The action `key` triggers in `section`, falling back to `global`.
    pub fn lookup(&self, section: &str, key: &Key) -> Option<Action> {
        for s in [section, "global"] {
            if let Some(sec) = self.sections.get(s) {
                if let Some((a, _)) = sec.actions.iter().find(|(_, b)| b.keys.contains(key)) {
                    return Some(*a);
                }
            }
        }
        None
    }

    /// The first key of `action` in `section` (or global), for hints on screen.
    pub fn key_hint(&self, section: &str, action: Action) -> String {
        for s in [section, "global"] {
            if let Some(b) = self
                .sections
                .get(s)
                .and_then(|sec| sec.actions.get(&action))
            {
                if let Some(k) = b.keys.first() {
                    return k.to_string();
                }
            }
        }
        "-".into()
    }

    /// (keys, description) of a section followed by the global ones, for the help screen.
    pub fn help_rows(&self, section: &str) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        for s in [section, "global"] {
            if let Some(sec) = self.sections.get(s) {
                for b in sec.actions.values() {
                    if b.keys.is_empty() {
                        continue;
                    }
                    let keys: Vec<String> = b.keys.iter().map(|k| k.to_string()).collect();
                    rows.push((keys.join(" / "), b.desc.clone()));
                }
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_keymaps_parse_cleanly() {
        for (name, src) in [("default", DEFAULT_TOML), ("vim", VIM_TOML)] {
            let mut k = Keymap::default();
            let errs = k.apply(name, src);
            assert!(errs.is_empty(), "{name}: {errs:?}");
            for sec in SECTIONS {
                assert!(k.sections.contains_key(*sec), "{name} lacks [{sec}]");
            }
        }
    }

    #[test]
    fn key_names_parse() {
        assert_eq!(Key::parse("F5").unwrap().code, KeyCode::F(5));
        let k = Key::parse("Ctrl+S").unwrap();
        assert_eq!(
            (k.code, k.mods),
            (KeyCode::Char('s'), KeyModifiers::CONTROL)
        );
        assert_eq!(Key::parse("Shift+Tab").unwrap().code, KeyCode::BackTab);
        assert_eq!(
            Key::parse("?").unwrap(),
            Key::from_event(&KeyEvent::new(KeyCode::Char('?'), KeyModifiers::SHIFT))
        );
        assert!(Key::parse("F13").is_err());
        assert!(Key::parse("Hyper+x").is_err());
    }

    #[test]
    fn bad_user_file_reports_file_and_line() {
        let mut k = Keymap::builtin("default").unwrap();
        let src = "[case_list]\nopen = { keys = [\"Enter\"], desc = \"開く\" }\nsort = { keys = [\"Blorp\"], desc = \"x\" }\nfly = { keys = [\"x\"], desc = \"飛ぶ\" }\nreload = { keys = [\"Enter\"], desc = \"再読込\" }\n[nowhere]\nx = { keys = [], desc = \"\" }\n";
        let errs = k.apply("/home/u/.config/tsunagu/keymap.toml", src);
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6], "{errs:?}");
        assert!(errs[0]
            .to_string()
            .starts_with("/home/u/.config/tsunagu/keymap.toml:3: "));
        assert!(errs[2].message.contains("重複"));
        // What was valid still applies.
        assert_eq!(
            k.lookup("case_list", &Key::parse("Enter").unwrap()),
            Some(Action::Open)
        );
    }

    #[test]
    fn broken_toml_is_reported_not_panicked() {
        let mut k = Keymap::default();
        let errs = k.apply("k.toml", "[global]\nquit = { keys = [\"q\" }\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 2);
    }

    #[test]
    fn screen_bindings_win_over_global() {
        let k = Keymap::builtin("vim").unwrap();
        assert_eq!(
            k.lookup("case_list", &Key::parse("j").unwrap()),
            Some(Action::Down)
        );
        assert_eq!(
            k.lookup("case_list", &Key::parse("F1").unwrap()),
            Some(Action::Help)
        );
    }
}
