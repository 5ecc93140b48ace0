//! The search panel, on one key from any screen. Typing waits a moment (debounce) before asking
//! the server; results show the search fields and the owner's contact, never an address.

use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tsunagu_record::api::{SearchHit, SearchResults};
use tsunagu_record::era;

use crate::api::ApiErr;
use crate::app::{App, Level};
use crate::keymap::Action;
use crate::tasks::CmdKind;
use crate::text;
use crate::widgets::{self, input::LineInput};

pub const DEBOUNCE: Duration = Duration::from_millis(350);
pub const LABELS: [&str; 4] = [
    "氏名・フリガナ",
    "保護者の氏名",
    "生年月日・年",
    "性別（男/女）",
];

#[derive(Debug, Clone)]
pub struct SearchState {
    pub inputs: [LineInput; 4],
    pub focus: usize,
    pub page: u32,
    pub results: Option<SearchResults>,
    pub selected: usize,
    pub loading: bool,
    pub error: Option<String>,
    pub debounce_until: Option<Instant>,
    /// The query the results belong to, so an unchanged query is not sent twice.
    pub last_query: String,
    /// Whether the keyboard is in the results (Down from the fields) rather than a field:
    /// Enter there opens the selected hit.
    pub in_results: bool,
    /// A failed search's message as it went to the status line, to take back on success.
    pub said: Option<String>,
}

impl SearchState {
    pub fn new() -> SearchState {
        SearchState {
            inputs: [
                LineInput::new(""),
                LineInput::new(""),
                LineInput::new(""),
                LineInput::new(""),
            ],
            focus: 0,
            page: 1,
            results: None,
            selected: 0,
            loading: false,
            error: None,
            debounce_until: None,
            last_query: String::new(),
            in_results: false,
            said: None,
        }
    }

    pub fn paste(&mut self, s: &str) {
        self.inputs[self.focus].paste(s);
    }

    pub fn hits(&self) -> Vec<&SearchHit> {
        self.results
            .iter()
            .flat_map(|r| r.groups.iter().flat_map(|g| g.hits.iter()))
            .collect()
    }

    /// The query string, or a message about a field that cannot be read.
    pub fn query(&self) -> Result<Option<String>, String> {
        let v: Vec<String> = self
            .inputs
            .iter()
            .map(|i| i.value().trim().to_string())
            .collect();
        if v[0].is_empty() && v[1].is_empty() {
            return Ok(None);
        }
        let mut q = vec![format!("q={}", enc(&v[0]))];
        if !v[1].is_empty() {
            q.push(format!("guardian={}", enc(&v[1])));
        }
        if !v[2].is_empty() {
            q.push(format!("birth={}", enc(&birth_param(&v[2])?)));
        }
        if !v[3].is_empty() {
            let sex = match v[3].as_str() {
                "男" | "男性" | "m" | "M" | "1" => 1,
                "女" | "女性" | "f" | "F" | "2" => 2,
                _ => return Err("性別は「男」か「女」で入力してください".into()),
            };
            q.push(format!("sex={sex}"));
        }
        q.push(format!("page={}", self.page));
        Ok(Some(q.join("&")))
    }
}

/// Whether the birth field asks for one day (not a year, a month or a range): only then does a
/// hit inside it match the birth date itself.
pub fn birth_is_one_day(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && split_range(s).is_none()
        && matches!(era::parse_date_spec(s), Ok(era::DateSpec::Day(_)))
}

/// A range typed as `2008..2010`, `R2..R5`, `2008〜2010` or `2008~2010`: its two ends.
fn split_range(s: &str) -> Option<(String, String)> {
    let norm = s.replace("．．", "..").replace(['〜', '～', '~'], "..");
    norm.split_once("..")
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
}

/// The birth field as the API takes it: a day, a month, a year, or a range `a..b` of them, each
/// end in the Western calendar or an era (R2, 令和2年, H27.4.1).
pub fn birth_param(s: &str) -> Result<String, String> {
    let one = |s: &str| -> Result<String, String> {
        Ok(match era::parse_date_spec(s)? {
            era::DateSpec::Day(d) => d.format("%Y-%m-%d").to_string(),
            era::DateSpec::Year(y) => y.to_string(),
            era::DateSpec::YearMonth(y, m) => format!("{y}-{m:02}"),
        })
    };
    match split_range(s) {
        Some((a, b)) if a.is_empty() || b.is_empty() => {
            Err("範囲は「2008..2010」「R2..R5」のように両端を入力してください".into())
        }
        Some((a, b)) => Ok(format!("{}..{}", one(&a)?, one(&b)?)),
        None => one(s.trim()),
    }
}

impl Default for SearchState {
    fn default() -> Self {
        Self::new()
    }
}

/// Percent-encoding for a query value (UTF-8 bytes outside the unreserved set).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl App {
    pub(crate) fn search_input(&mut self, k: KeyEvent) {
        // Typing goes to the field even while the keyboard was in the results.
        self.search.in_results = false;
        if self.search.inputs[self.search.focus].input(k) {
            self.search_changed();
        }
    }

    /// The ministry may not search: it is told when the panel opens, before it types.
    pub(crate) fn may_search(&self) -> bool {
        self.me.is_none() || self.keeps_cases()
    }

    /// Typing restarts the pause; the search runs when it ends.
    pub fn search_changed(&mut self) {
        self.search.page = 1;
        self.search.debounce_until = Some(Instant::now() + DEBOUNCE);
    }

    pub fn run_search(&mut self) {
        if !self.may_search() {
            self.search.error = Some(NOT_FOR_THIS_ORG.into());
            self.dirty = true;
            return;
        }
        match self.search.query() {
            Ok(None) => {
                self.search.results = None;
                self.search.error = None;
                self.search.last_query.clear();
                self.forget("search");
            }
            Ok(Some(q)) if q == self.search.last_query && self.search.error.is_none() => {}
            Ok(Some(q)) => {
                self.search.loading = true;
                self.search.error = None;
                self.search.last_query = q.clone();
                self.request("search", CmdKind::Search { query: q });
            }
            Err(m) => self.search.error = Some(m),
        }
        self.dirty = true;
    }

    pub(crate) fn on_search(&mut self, res: Result<SearchResults, ApiErr>) {
        self.search.loading = false;
        match res {
            Ok(r) => {
                self.online();
                self.search.results = Some(r);
                self.search.selected = 0;
                self.search.error = None;
                // The status line's message of an earlier failed search is over.
                if let Some(said) = self.search.said.take() {
                    if self.message.as_ref().is_some_and(|(_, m)| *m == said) {
                        self.message = None;
                    }
                }
            }
            Err(e) if e.status() == Some(404) && e.code() == "not_found" => {
                self.search.error =
                    Some("このサーバーには検索機能がまだありません（HTTP 404）".into());
                self.search.last_query.clear();
            }
            Err(e) => {
                self.search.error = Some(e.message());
                self.search.last_query.clear();
                self.on_error(&e);
                self.search.said = self.message.as_ref().map(|(_, m)| m.clone());
            }
        }
    }

    pub(crate) fn search_action(&mut self, a: Action) {
        let s = &mut self.search;
        let n = s.hits().len();
        match a {
            Action::Back => self.overlay = None,
            Action::NextField => s.focus = (s.focus + 1) % 4,
            Action::PrevField => s.focus = (s.focus + 3) % 4,
            Action::Down if n > 0 && !s.in_results => s.in_results = true,
            Action::Down => s.selected = (s.selected + 1).min(n.saturating_sub(1)),
            Action::Up if s.in_results && s.selected == 0 => s.in_results = false,
            Action::Up => s.selected = s.selected.saturating_sub(1),
            Action::PageDown if s.results.as_ref().is_some_and(|r| r.has_more) => {
                s.page += 1;
                self.run_search();
            }
            Action::PageUp if s.page > 1 => {
                s.page -= 1;
                self.run_search();
            }
            Action::Open => {
                // Enter on a result opens it. Enter in a field searches now, without waiting
                // for the pause; with the results of what is typed already shown, it opens the
                // selected one.
                if !s.in_results && (s.debounce_until.is_some() || s.results.is_none()) {
                    s.debounce_until = None;
                    self.run_search();
                    return;
                }
                let Some(hit) = s
                    .hits()
                    .get(s.selected)
                    .map(|h| (h.record_id, h.tier.clone(), h.owner.clone()))
                else {
                    return;
                };
                if hit.1 == "none" {
                    self.say(
                        Level::Warn,
                        format!("この記録は閲覧区分により開けません。所有機関（{} 電話 {}）に問い合わせてください", hit.2.name, hit.2.phone),
                    );
                } else {
                    self.open_record(hit.0);
                }
            }
            _ => self.dirty = false,
        }
    }
}

pub const NOT_FOR_THIS_ORG: &str =
    "全国検索を利用できるのは児童相談所と市区町村の職員のみです（こども家庭庁は重大事案の閲覧のみ）";

fn sex_label(s: Option<tsunagu_record::Sex>) -> &'static str {
    s.map(|s| s.label_ja()).unwrap_or("-")
}

pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let el = app.look.ellipsis;
    let th = app.theme.clone();
    let inner = widgets::overlay(
        f,
        area,
        app,
        "検索（全国）",
        "Enter: 欄では検索、結果では開く  Tab: 条件欄  Down: 結果へ  Esc: 閉じる",
    );
    let w = inner.width as usize;
    for (i, label) in LABELS.iter().enumerate() {
        let y = inner.y + (i as u16 / 2);
        let half = inner.width / 2;
        let x = inner.x + (i as u16 % 2) * half;
        let row = Rect {
            x,
            y,
            width: half.saturating_sub(1),
            height: 1,
        };
        widgets::line(f, Rect { width: 16, ..row }, label, th.style("normal"), el);
        let focused = app.search.focus == i;
        let style = if focused {
            th.style("input_focus")
        } else {
            th.style("input")
        };
        app.search.inputs[i].draw(
            f,
            Rect {
                x: row.x + 16,
                width: row.width.saturating_sub(16),
                ..row
            },
            style,
            focused,
        );
    }
    widgets::line(
        f,
        Rect { y: inner.y + 2, height: 1, ..inner },
        "注意: 住所は検索結果に表示されません（DV被害等から子どもを守るため、サーバーが送りません）",
        th.style("withheld"),
        el,
    );
    let list = Rect {
        y: inner.y + 3,
        height: inner.height.saturating_sub(3),
        ..inner
    };
    let s = &app.search;
    let status = if !app.may_search() {
        Some((NOT_FOR_THIS_ORG.to_string(), "error"))
    } else if s.loading {
        Some(("検索中".to_string(), "dim"))
    } else if let Some(e) = &s.error {
        Some((e.clone(), "error"))
    } else if s.results.is_none() {
        Some((
            "氏名（漢字・カナの一部でも可）や保護者名を入力してください".to_string(),
            "dim",
        ))
    } else {
        None
    };
    if let Some((m, role)) = status {
        widgets::line(f, list, &m, th.style(role), el);
        return;
    }
    let Some(res) = &s.results else { return };
    let mut lines = vec![Line::from(Span::styled(
        text::fit(
            &format!(
                "{}件{}  {}ページ目{}",
                res.total_hits,
                if res.capped {
                    "以上（条件を絞ってください）"
                } else {
                    ""
                },
                res.page,
                if res.has_more {
                    "（PageDown で次へ）"
                } else {
                    ""
                }
            ),
            w,
            el,
        ),
        th.style("header"),
    ))];
    let hits = s.hits();
    if hits.is_empty() {
        lines.push(Line::from(Span::styled(
            "該当する記録はありません",
            th.style("dim"),
        )));
    }
    // A hit inside a year, a month or a range matched that, not the birth date itself.
    let one_day = birth_is_one_day(&s.inputs[2].value());
    let per = 2usize;
    let rows = (list.height as usize).saturating_sub(1) / per;
    let start = s.selected.saturating_sub(rows.saturating_sub(1));
    for (i, h) in hits.iter().enumerate().skip(start).take(rows) {
        let style = if i == s.selected && s.in_results {
            th.style("selected")
        } else {
            th.style("normal")
        };
        let name = h.child_name.display();
        let kana = h.child_name.display_kana();
        let birth = h
            .birth_date
            .map(|b| era::format_era(b.date))
            .unwrap_or_else(|| "-".into());
        let guardians: Vec<String> = h.guardians.iter().map(|g| g.display()).collect();
        let open = if h.tier == "none" {
            "閲覧不可"
        } else {
            "開けます"
        };
        let l1 = format!(
            "{name}（{kana}） {}  {birth}  保護者: {}",
            sex_label(h.sex),
            guardians.join("、")
        );
        let reasons: Vec<&str> = h
            .reasons
            .iter()
            .map(|r| match r {
                tsunagu_record::api::MatchReason::BirthDateExact if !one_day => "生年月日が範囲内",
                other => other.label_ja(),
            })
            .collect();
        let l2 = format!(
            "   所有: {} 電話 {}  [{open}]  一致: {}",
            h.owner.name,
            h.owner.phone,
            reasons.join("・")
        );
        lines.push(Line::from(Span::styled(
            text::fit(&text::sanitize(&l1), w, el),
            style,
        )));
        lines.push(Line::from(Span::styled(
            text::fit(&text::sanitize(&l2), w, el),
            th.style("dim"),
        )));
    }
    f.render_widget(Paragraph::new(lines).style(th.style("normal")), list);
}
