//! 業務メニュー: every workflow reachable from anywhere with one key (Ctrl+G), each by a number
//! key; the function keys stay for actions inside a screen. Labels and keys come from the
//! keymap's `menu` section, so a user's keymap changes them here too.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{App, Overlay, Screen};
use crate::keymap::Action;
use crate::text;
use crate::widgets;

/// The workflows of the menu, in the order shown; each one's key and label come from the
/// keymap's `menu` section.
pub const MENU: &[Action] = &[
    Action::NewIntake,
    Action::IntakeList,
    Action::CaseList,
    Action::NewRecord,
    Action::Search,
    Action::Notifications,
];

impl App {
    pub(crate) fn menu_action(&mut self, a: Action) {
        let pick = match a {
            Action::Down => {
                self.menu_sel = (self.menu_sel + 1).min(MENU.len() - 1);
                return;
            }
            Action::Up => {
                self.menu_sel = self.menu_sel.saturating_sub(1);
                return;
            }
            Action::Back | Action::Menu => {
                self.overlay = None;
                return;
            }
            Action::Open => MENU[self.menu_sel.min(MENU.len() - 1)],
            other if MENU.contains(&other) => other,
            _ => {
                self.dirty = false;
                return;
            }
        };
        self.overlay = None;
        match pick {
            Action::NewIntake => self.new_intake(),
            Action::IntakeList => self.open_intakes(),
            Action::CaseList => {
                self.screen = Screen::CaseList;
                if self.cases.items.is_empty() {
                    self.load_cases(false);
                }
            }
            Action::NewRecord => self.new_record(),
            Action::Search => self.overlay = Some(Overlay::Search),
            Action::Notifications => {
                self.overlay = Some(Overlay::Notifications);
                self.notes.sort();
            }
            _ => {}
        }
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let el = app.look.ellipsis;
    let w = 56.min(area.width.saturating_sub(4));
    let h = (MENU.len() as u16 + 4).min(area.height);
    let inner = widgets::overlay(
        f,
        widgets::centered(area, w, h),
        app,
        "業務メニュー",
        "番号キーまたは Enter で開く  Esc: 閉じる",
    );
    let sec = app.keymap.sections.get("menu");
    let mut lines = Vec::new();
    for (i, a) in MENU.iter().enumerate() {
        let desc = sec
            .and_then(|s| s.actions.get(a))
            .map(|b| b.desc.clone())
            .unwrap_or_else(|| a.name().to_string());
        let key = app.keymap.key_hint("menu", *a);
        let style = if i == app.menu_sel {
            app.theme.style("selected")
        } else {
            app.theme.style("normal")
        };
        lines.push(Line::from(vec![
            Span::styled(
                text::fit(&format!(" {key} "), 6, el),
                app.theme.style("key"),
            ),
            Span::styled(
                text::fit(&desc, inner.width.saturating_sub(6) as usize, el),
                style,
            ),
        ]));
    }
    f.render_widget(
        Paragraph::new(lines).style(app.theme.style("normal")),
        inner,
    );
}
