//! The duty list of the organisation's intakes (通告一覧): unconfirmed ones most urgent first (or
//! all), each with its safety deadline; and the same list joined to the case list's records for
//! its safety column.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tsunagu_record::intake::{IntakeList, IntakeSummary, SafetyState};

use crate::api::ApiErr;
use crate::app::{App, Level, Screen};
use crate::keymap::Action;
use crate::screens::intake::{clock_cell, jst_text};
use crate::tasks::CmdKind;
use crate::text;

/// The organisation's intakes (the duty list): unconfirmed ones most urgent first, or all.
#[derive(Debug, Clone, Default)]
pub struct IntakesState {
    pub items: Vec<IntakeSummary>,
    pub all: bool,
    pub selected: usize,
    pub offset: usize,
    pub loading: bool,
    pub error: Option<String>,
}

impl App {
    pub fn open_intakes(&mut self) {
        self.overlay = None;
        self.screen = Screen::Intakes;
        self.load_intakes();
    }

    fn load_intakes(&mut self) {
        self.intakes.loading = true;
        self.intakes.error = None;
        let all = self.intakes.all;
        self.request("intakes", CmdKind::Intakes { all });
    }

    /// Loads the unconfirmed intakes for the safety column of the case list.
    pub fn load_due(&mut self) {
        if self.keeps_cases() {
            self.request("due", CmdKind::Intakes { all: false });
        }
    }

    pub(crate) fn on_due(&mut self, res: Result<IntakeList, ApiErr>) {
        if let Ok(list) = res {
            self.due.clear();
            for i in list.items {
                if let Some(rid) = i.record_id {
                    // The earliest deadline of a record's intakes is the one that matters.
                    let keep = self.due.get(&rid).is_some_and(|d| d.due_at <= i.due_at);
                    if !keep {
                        self.due.insert(rid, i);
                    }
                }
            }
        }
    }

    pub(crate) fn on_intakes(&mut self, res: Result<IntakeList, ApiErr>) {
        self.intakes.loading = false;
        match res {
            Ok(l) => {
                self.intakes.items = l.items;
                self.intakes.selected = self
                    .intakes
                    .selected
                    .min(self.intakes.items.len().saturating_sub(1));
            }
            Err(e) => {
                self.intakes.error = Some(e.message());
                self.on_error(&e);
            }
        }
    }

    pub(crate) fn intakes_action(&mut self, a: Action) {
        let s = &mut self.intakes;
        let n = s.items.len();
        match a {
            Action::Down => s.selected = (s.selected + 1).min(n.saturating_sub(1)),
            Action::Up => s.selected = s.selected.saturating_sub(1),
            Action::PageDown => s.selected = (s.selected + 10).min(n.saturating_sub(1)),
            Action::PageUp => s.selected = s.selected.saturating_sub(10),
            Action::Top => s.selected = 0,
            Action::Bottom => s.selected = n.saturating_sub(1),
            Action::Filter => {
                s.all = !s.all;
                s.selected = 0;
                self.load_intakes();
            }
            Action::Reload => self.load_intakes(),
            Action::NewIntake => self.new_intake(),
            Action::Open => {
                let Some(id) = s.items.get(s.selected).map(|i| i.id) else {
                    return;
                };
                if self.intake.as_ref().is_some_and(|i| i.unsaved()) {
                    self.screen = Screen::Intake;
                    self.say(Level::Warn, "入力中の通告があります。先に保存してください");
                    return;
                }
                self.intake = None;
                self.request("intake_save", CmdKind::IntakeGet { id });
            }
            Action::Back => self.screen = Screen::CaseList,
            _ => self.dirty = false,
        }
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let el = app.look.ellipsis;
    let th = app.theme.clone();
    let now = app.now();
    let s = &mut app.intakes;
    let title = format!(
        "通告一覧（{}）  {}件",
        if s.all {
            "すべて"
        } else {
            "安全確認がまだのもの、期限の早い順"
        },
        s.items.len()
    );
    let w = area.width as usize;
    let mut lines = vec![
        Line::from(Span::styled(
            text::fit(&format!(" {title}"), w, el),
            th.style("section"),
        )),
        Line::from(Span::styled(
            text::fit(
                " 受理日時     経路           緊急度     子ども           状態       安全確認",
                w,
                el,
            ),
            th.style("header"),
        )),
    ];
    if s.items.is_empty() {
        let msg = if s.loading {
            " 読み込み中".to_string()
        } else if let Some(e) = &s.error {
            format!(" 読み込めませんでした: {e}（F5 で再読み込み）")
        } else {
            " 表示する通告はありません（F8 で新しい通告を受理）".to_string()
        };
        lines.push(Line::from(Span::styled(msg, th.style("dim"))));
    }
    let rows = area.height.saturating_sub(2) as usize;
    if s.selected < s.offset {
        s.offset = s.selected;
    } else if s.selected >= s.offset + rows {
        s.offset = s.selected + 1 - rows;
    }
    for (i, it) in s.items.iter().enumerate().skip(s.offset).take(rows) {
        let style = if i == s.selected {
            th.style("selected")
        } else if it.state == SafetyState::Overdue {
            th.style("error")
        } else {
            th.style("normal")
        };
        let name = it.child_name.display();
        let cells = [
            text::fit(&jst_text(it.received_at), 12, el),
            text::fit(it.channel.map(|c| c.label_ja()).unwrap_or("-"), 14, el),
            text::fit(it.urgency.map(|u| u.label_ja()).unwrap_or("-"), 10, el),
            text::fit(
                if name.trim().is_empty() {
                    "（氏名不明）"
                } else {
                    &name
                },
                16,
                el,
            ),
            text::fit(it.status.label_ja(), 10, el),
            match clock_cell(it.state, it.due_at, now) {
                c if c.is_empty() => it.state.label_ja().to_string(),
                c => c,
            },
        ];
        lines.push(Line::from(Span::styled(
            text::fit(&text::sanitize(&format!(" {}", cells.join(" "))), w, el),
            style,
        )));
    }
    f.render_widget(Paragraph::new(lines).style(th.style("normal")), area);
}
