//! The notification pane: the organisation's inbox, live from the event stream, unread first.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tsunagu_record::api::{Notification, NotificationList};

use crate::api::ApiErr;
use crate::app::App;
use crate::keymap::Action;
use crate::tasks::CmdKind;
use crate::text;
use crate::widgets;

#[derive(Debug, Clone, Default)]
pub struct NotificationsState {
    pub items: Vec<Notification>,
    pub selected: usize,
    pub stream_up: bool,
    pub error: Option<String>,
}

impl NotificationsState {
    pub fn unread(&self) -> usize {
        self.items.iter().filter(|n| !n.read).count()
    }

    /// Adds or replaces by id (the stream replays what the inbox already gave).
    pub fn push(&mut self, n: Notification) {
        match self.items.iter_mut().find(|x| x.id == n.id) {
            Some(x) => *x = n,
            None => self.items.push(n),
        }
        self.sort();
    }

    /// Unread first, newest first within each.
    pub fn sort(&mut self) {
        self.items
            .sort_by(|a, b| a.read.cmp(&b.read).then(b.id.cmp(&a.id)));
    }
}

impl App {
    pub(crate) fn on_notifications(&mut self, res: Result<NotificationList, ApiErr>) {
        match res {
            Ok(list) => {
                self.online();
                for n in list.items {
                    self.notes.push(n);
                }
                self.notes.error = None;
            }
            Err(e) => {
                self.notes.error = Some(e.message());
                self.on_error(&e);
            }
        }
    }

    pub(crate) fn notifications_action(&mut self, a: Action) {
        let n = self.notes.items.len();
        match a {
            Action::Back => self.overlay = None,
            Action::Down => {
                self.notes.selected = (self.notes.selected + 1).min(n.saturating_sub(1))
            }
            Action::Up => self.notes.selected = self.notes.selected.saturating_sub(1),
            Action::Reload => {
                self.request("notes", CmdKind::Notifications);
            }
            Action::MarkRead => {
                if let Some(item) = self.notes.items.get_mut(self.notes.selected) {
                    item.read = !item.read;
                    let (nid, read) = (item.id, item.read);
                    self.request("mark", CmdKind::MarkRead { nid, read });
                }
            }
            Action::Open => {
                if let Some(item) = self.notes.items.get_mut(self.notes.selected) {
                    let rid = item.record_id;
                    if !item.read {
                        item.read = true;
                        let nid = item.id;
                        self.request("mark", CmdKind::MarkRead { nid, read: true });
                    }
                    // An intake not linked to a record yet has nothing to open here (the
                    // intake screen comes with the workflow menu).
                    if let Some(rid) = rid {
                        self.open_record(rid);
                    }
                }
            }
            _ => self.dirty = false,
        }
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let el = app.look.ellipsis;
    let th = app.theme.clone();
    let title = format!("通知  未読{}件", app.notes.unread());
    let inner = widgets::overlay(
        f,
        area,
        app,
        &title,
        "Enter: 既読にして開く  Space: 既読/未読  F5: 再読込  Esc: 閉じる",
    );
    let w = inner.width as usize;
    let s = &app.notes;
    let mut lines = Vec::new();
    let live = if s.stream_up {
        "受信中（新しい通知はすぐ表示されます）"
    } else {
        "通知の接続を待っています（再接続します）"
    };
    lines.push(Line::from(Span::styled(
        text::fit(live, w, el),
        th.style("dim"),
    )));
    if let Some(e) = &s.error {
        lines.push(Line::from(Span::styled(
            text::fit(e, w, el),
            th.style("error"),
        )));
    }
    if s.items.is_empty() {
        lines.push(Line::from(Span::styled(
            "通知はありません",
            th.style("dim"),
        )));
    }
    let rows = (inner.height as usize).saturating_sub(lines.len());
    let start = s.selected.saturating_sub(rows.saturating_sub(1));
    let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("JST");
    for (i, n) in s.items.iter().enumerate().skip(start).take(rows) {
        let mark = if n.read { "    " } else { "未読" };
        let mut subject = match (n.record_id, n.intake_id) {
            (Some(r), _) => format!("記録 {r}"),
            (None, Some(i)) => format!("通告 {i}"),
            (None, None) => String::new(),
        };
        // The child and case number, where the reader's tier shows them.
        if let Some(sub) = &n.subject {
            subject.push_str(&format!(" {}", sub.child_name.display()));
            if let tsunagu_record::views::Visible::Shown(c) = &sub.case_number {
                subject.push_str(&format!("（{c}）"));
            }
        }
        let line = format!(
            "{mark} {}  {}  {subject}  {}",
            n.at.with_timezone(&jst).format("%m/%d %H:%M"),
            n.kind.label_ja(),
            n.from_org_name
        );
        let style = if i == s.selected {
            th.style("selected")
        } else if !n.read {
            th.style("unread")
        } else {
            th.style("normal")
        };
        lines.push(Line::from(Span::styled(
            text::fit(&text::sanitize(&line), w, el),
            style,
        )));
    }
    f.render_widget(Paragraph::new(lines).style(th.style("normal")), inner);
}
