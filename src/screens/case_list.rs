//! The case list: the organisation's and its partners' cases, a page at a time through the
//! API's cursors; columns share out whatever width there is (80 columns and up).

use chrono::{Datelike, NaiveDate};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tsunagu_record::api::{CaseList, CaseSummary};
use tsunagu_record::codes::CaseStatus;
use tsunagu_record::views::Visible;

use crate::api::ApiErr;
use crate::app::App;
use crate::keymap::Action;
use crate::tasks::CmdKind;
use crate::text;
use crate::widgets;

pub const PAGE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Updated,
    NextReview,
    CaseNumber,
}

impl Sort {
    pub fn code(self) -> &'static str {
        match self {
            Sort::Updated => "updated_desc",
            Sort::NextReview => "next_review",
            Sort::CaseNumber => "case_number",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Sort::Updated => "更新日順",
            Sort::NextReview => "次回見直し日順",
            Sort::CaseNumber => "ケース番号順",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CaseListState {
    pub items: Vec<CaseSummary>,
    pub next_cursor: Option<String>,
    pub selected: usize,
    pub offset: usize,
    pub status: Option<CaseStatus>,
    pub sort: Sort,
    pub loading: bool,
    pub error: Option<String>,
    /// Rows visible in the last frame (for paging).
    pub rows: usize,
}

impl Default for CaseListState {
    fn default() -> Self {
        CaseListState {
            items: vec![],
            next_cursor: None,
            selected: 0,
            offset: 0,
            status: None,
            sort: Sort::Updated,
            loading: false,
            error: None,
            rows: 15,
        }
    }
}

impl App {
    /// Loads the first page (or, with `more`, the next page after the cursor).
    pub fn load_cases(&mut self, more: bool) {
        let c = &mut self.cases;
        let mut q = format!("limit={PAGE}&sort={}", c.sort.code());
        if let Some(s) = c.status {
            q.push_str(&format!("&status={}", s.code()));
        }
        if more {
            match &c.next_cursor {
                Some(cur) => q.push_str(&format!("&cursor={cur}")),
                None => return,
            }
        } else {
            c.items.clear();
            c.next_cursor = None;
            c.selected = 0;
            c.offset = 0;
        }
        c.loading = true;
        c.error = None;
        self.request("cases", CmdKind::Cases { query: q });
    }

    pub(crate) fn on_cases(&mut self, res: Result<CaseList, ApiErr>) {
        self.cases.loading = false;
        match res {
            Ok(list) => {
                self.online();
                self.cases.items.extend(list.items);
                self.cases.next_cursor = list.next_cursor;
            }
            Err(e) => {
                self.cases.error = Some(e.message());
                self.on_error(&e);
            }
        }
    }

    fn move_case(&mut self, to: isize) {
        let c = &mut self.cases;
        let n = c.items.len() as isize;
        c.selected = to.clamp(0, (n - 1).max(0)) as usize;
        // Near the end of what is loaded: fetch the next page before the user gets there.
        if c.selected + c.rows >= c.items.len() && c.next_cursor.is_some() && !c.loading {
            self.load_cases(true);
        }
    }

    pub(crate) fn case_list_action(&mut self, a: Action) {
        let sel = self.cases.selected as isize;
        let page = self.cases.rows.max(1) as isize;
        match a {
            Action::Down => self.move_case(sel + 1),
            Action::Up => self.move_case(sel - 1),
            Action::PageDown => self.move_case(sel + page),
            Action::PageUp => self.move_case(sel - page),
            Action::Top => self.move_case(0),
            Action::Bottom => self.move_case(isize::MAX / 2),
            Action::Open => {
                if let Some(id) = self.selected_case().map(|c| c.id) {
                    self.open_record(id);
                }
            }
            Action::Filter => {
                self.cases.status = match self.cases.status {
                    None => Some(CaseStatus::Open),
                    Some(CaseStatus::Open) => Some(CaseStatus::Closed),
                    Some(_) => None,
                };
                self.load_cases(false);
            }
            Action::Sort => {
                self.cases.sort = match self.cases.sort {
                    Sort::Updated => Sort::NextReview,
                    Sort::NextReview => Sort::CaseNumber,
                    Sort::CaseNumber => Sort::Updated,
                };
                self.load_cases(false);
            }
            Action::Reload => self.load_cases(false),
            Action::NewRecord => self.new_record(),
            Action::Logout => self.logout(),
            _ => self.dirty = false,
        }
    }
}

pub fn age(birth: NaiveDate, today: NaiveDate) -> i32 {
    let mut a = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        a -= 1;
    }
    a
}

fn vis_text<T>(v: &Visible<T>, f: impl Fn(&T) -> String) -> String {
    match v {
        Visible::Shown(t) => f(t),
        Visible::Withheld { .. } => "非表示".into(),
    }
}

/// Column widths for `w` columns: fixed ones first, the rest shared by name and owner. The
/// safety column is there only while some record has an intake whose safety is unconfirmed.
pub fn columns(w: usize, safety: bool) -> Vec<(&'static str, usize)> {
    let fixed = [
        ("ケース番号", 10),
        ("年齢", 4),
        ("市区町村", 10),
        ("状態", 6),
        ("リスク", 8),
        ("次回見直し", 10),
        ("安全確認", 8),
    ];
    let fixed = if safety { &fixed[..] } else { &fixed[..6] };
    let gaps = fixed.len() + 1;
    let fixed_sum: usize = fixed.iter().map(|(_, n)| n).sum();
    let rest = w.saturating_sub(fixed_sum + gaps);
    let name = (rest * 3 / 5).max(12);
    let owner = rest.saturating_sub(name);
    let mut cols = vec![fixed[0], ("氏名（フリガナ）", name)];
    cols.extend_from_slice(&fixed[1..]);
    cols.push(("所有機関", owner));
    cols
}

/// A row's cells; `due` is the record's earliest intake whose child's safety is not yet
/// confirmed (the 48-hour clock).
pub fn row_cells(
    c: &CaseSummary,
    today: NaiveDate,
    due: Option<&tsunagu_record::intake::IntakeSummary>,
    now: chrono::DateTime<chrono::Utc>,
    safety: bool,
) -> Vec<String> {
    let name = c.child_name.display();
    let kana = c.child_name.display_kana();
    let name = if kana.is_empty() {
        name
    } else {
        format!("{name}（{kana}）")
    };
    let muni = vis_text(&c.municipality_code, |code| {
        tsunagu_masterdata::localgov::municipality(code)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| code.clone())
    });
    let risk = vis_text(&c.risk, |r| match r {
        Some(r) if r.urgent => format!("{}!", r.level.label_ja()),
        Some(r) => r.level.label_ja().to_string(),
        None => "-".into(),
    });
    vec![
        vis_text(&c.case_number, |s| s.clone()),
        name,
        c.birth_date
            .map(|b| format!("{}歳", age(b.date, today)))
            .unwrap_or_else(|| "-".into()),
        muni,
        vis_text(&c.status, |s| s.label_ja().to_string()),
        risk,
        vis_text(&c.next_review, |d| {
            d.map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "-".into())
        }),
        due.map(|d| crate::screens::intake::clock_cell(d.state, d.due_at, now))
            .unwrap_or_default(),
        c.owner.name.clone(),
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| *i != 7 || safety)
    .map(|(_, c)| c)
    .collect()
}

fn join_row(cells: &[String], cols: &[(&str, usize)], ellipsis: &str) -> String {
    let mut out = String::new();
    for (i, (cell, (_, w))) in cells.iter().zip(cols).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&text::fit(&text::sanitize(cell), *w, ellipsis));
    }
    out
}

pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let el = app.look.ellipsis;
    let filter = app.cases.status.map(|s| s.label_ja()).unwrap_or("すべて");
    let more = if app.cases.next_cursor.is_some() {
        "+"
    } else {
        ""
    };
    let title = format!("ケース一覧  {}件{more}", app.cases.items.len());
    let right = format!("絞り込み: {filter}  並び: {}", app.cases.sort.label());
    widgets::title_bar(f, Rect { height: 1, ..area }, app, &title, &right);
    let safety = !app.due.is_empty();
    let cols = columns(area.width as usize, safety);
    let header: Vec<String> = cols.iter().map(|(h, _)| h.to_string()).collect();
    widgets::line(
        f,
        Rect {
            y: area.y + 1,
            height: 1,
            ..area
        },
        &join_row(&header, &cols, el),
        app.theme.style("header"),
        el,
    );
    let body = Rect {
        y: area.y + 2,
        height: area.height.saturating_sub(2),
        ..area
    };
    let rows = body.height as usize;
    let now = app.now();
    let c = &mut app.cases;
    c.rows = rows.max(1);
    if c.items.is_empty() {
        let (msg, role) = if c.loading {
            ("読み込み中".to_string(), "dim")
        } else if let Some(e) = &c.error {
            (
                format!("読み込めませんでした: {e}（F5 で再読み込み）"),
                "error",
            )
        } else {
            ("表示できるケースはありません".to_string(), "dim")
        };
        widgets::line(
            f,
            Rect { height: 1, ..body },
            &msg,
            app.theme.style(role),
            el,
        );
        return;
    }
    // Keep the selection in view, moving the window as little as possible.
    if c.selected < c.offset {
        c.offset = c.selected;
    } else if c.selected >= c.offset + rows {
        c.offset = c.selected + 1 - rows;
    }
    let today = app.today;
    let mut lines = Vec::with_capacity(rows);
    for (i, item) in c.items.iter().enumerate().skip(c.offset).take(rows) {
        let style = if i == c.selected {
            app.theme.style("selected")
        } else {
            Style::default()
        };
        lines.push(Line::from(Span::styled(
            join_row(
                &row_cells(item, today, app.due.get(&item.id), now, safety),
                &cols,
                el,
            ),
            style,
        )));
    }
    if lines.len() < rows && c.loading {
        lines.push(Line::from(Span::styled(
            "続きを読み込み中",
            app.theme.style("dim"),
        )));
    }
    f.render_widget(Paragraph::new(lines).style(app.theme.style("normal")), body);
}
