//! Forms on screen, for the record and the intake alike: the editor of one field (a textarea
//! with Japanese input, readings turned into katakana as typed, municipalities picked from
//! the master by name, reading or code) and the drawing of a form's rows with their values,
//! marks and messages.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use ratatui_textarea::{CursorMove, TextArea, WrapMode};
use serde_json::Value;

use crate::form::{self, Kind, Layout, Row, RowKind};
use crate::text;
use crate::theme::Theme;

/// The field being edited.
#[derive(Debug, Clone)]
pub struct Edit {
    pub path: String,
    pub kind: Kind,
    pub area: TextArea<'static>,
    /// Municipalities whose name, reading or code starts with what is typed: (code, label).
    pub picks: Vec<(String, String)>,
    pub pick: usize,
}

impl Edit {
    /// An editor for `row` holding the field's current text; None for a row that is no text.
    pub fn start(layout: Layout, v: &Value, row: &Row) -> Option<Edit> {
        let kind = row.field_kind().filter(|k| k.is_text())?;
        let mut t = TextArea::new(
            form::get_in(layout, v, &row.path)
                .lines()
                .map(str::to_string)
                .collect(),
        );
        if t.lines().is_empty() {
            t = TextArea::default();
        }
        if kind == Kind::Multiline {
            t.set_wrap_mode(WrapMode::Glyph);
        }
        t.move_cursor(CursorMove::Bottom);
        t.move_cursor(CursorMove::End);
        t.set_cursor_line_style(Style::default());
        Some(Edit {
            path: row.path.clone(),
            kind,
            area: t,
            picks: vec![],
            pick: 0,
        })
    }

    /// What the field will be set to: the text, or the municipality picked.
    pub fn value(&self) -> String {
        if self.kind == Kind::Municipality {
            if let Some((code, _)) = self.picks.get(self.pick) {
                return code.clone();
            }
        }
        self.area.lines().join("\n")
    }

    /// Writes the text into `v`; a value that cannot be read is refused with its message.
    pub fn commit(&self, layout: Layout, v: &mut Value) -> Result<(), String> {
        form::set_in(layout, v, &self.path, &self.value())
    }

    /// A key typed into the field: Up/Down pick among a municipality's candidates.
    pub fn key(&mut self, k: KeyEvent) {
        if self.kind == Kind::Municipality && !self.picks.is_empty() {
            match k.code {
                KeyCode::Down => {
                    self.pick = (self.pick + 1).min(self.picks.len() - 1);
                    return;
                }
                KeyCode::Up => {
                    self.pick = self.pick.saturating_sub(1);
                    return;
                }
                _ => {}
            }
        }
        self.area.input(k);
        self.after_change();
    }

    /// Pasted text: line breaks kept only where the field is multi-line, other controls
    /// become spaces.
    pub fn paste(&mut self, s: &str) {
        let multi = self.kind == Kind::Multiline;
        let clean: String = s
            .chars()
            .map(|c| {
                if c == '\n' && multi {
                    c
                } else if c.is_control() {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        self.area.insert_str(clean);
        self.after_change();
    }

    pub fn newline(&mut self) {
        self.area.insert_newline();
    }

    fn after_change(&mut self) {
        match self.kind {
            Kind::Kana => {
                let lines: Vec<String> = self.area.lines().to_vec();
                let kata: Vec<String> = lines.iter().map(|l| form::to_katakana(l)).collect();
                if kata != lines {
                    // One katakana for each hiragana: the cursor stays where it was.
                    let ratatui_textarea::DataCursor(row, col) = self.area.cursor();
                    let mut t = TextArea::new(kata);
                    t.set_cursor_line_style(Style::default());
                    t.move_cursor(CursorMove::Jump(row as u16, col as u16));
                    self.area = t;
                }
            }
            Kind::Municipality => {
                let typed = self.area.lines().join("");
                self.picks = municipality_picks(&typed, 8);
                self.pick = 0;
            }
            _ => {}
        }
    }
}

/// Municipalities whose name, reading (hiragana or katakana) or code starts with `typed`, or
/// whose name holds it (two characters or more); in the master's order (by code).
pub fn municipality_picks(typed: &str, max: usize) -> Vec<(String, String)> {
    let t = tsunagu_record::normalize::nfkc(typed.trim());
    if t.is_empty() {
        return vec![];
    }
    // The master keeps readings in hiragana.
    let hira: String = t
        .chars()
        .map(|c| match c {
            'ァ'..='ヶ' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            _ => c,
        })
        .collect();
    let mut out = Vec::new();
    for m in tsunagu_masterdata::localgov::municipalities() {
        let name = m.name.replace(' ', "");
        let kana = m.kana.replace(' ', "");
        let hit = m.lgcode.starts_with(&t)
            || name.starts_with(&t)
            || kana.starts_with(&hira)
            || (t.chars().count() >= 2 && name.contains(&t));
        if hit {
            out.push((m.lgcode.clone(), form::municipality_label(&m.lgcode)));
            if out.len() == max {
                break;
            }
        }
    }
    out
}

/// How one row is shown when it is not being edited.
pub struct Shown {
    pub values: Vec<String>,
    /// Differs from what the server holds (drawn in the `changed` style).
    pub changed: bool,
    /// Why the row's content is withheld from this reader.
    pub withheld: Option<String>,
}

/// What [`draw_rows`] needs of a form.
pub struct RowsView<'a> {
    pub th: &'a Theme,
    pub el: &'a str,
    /// Each section's title line, by section number.
    pub sections: Vec<String>,
    pub rows: &'a [Row],
    pub cursor: usize,
    pub errors: &'a BTreeMap<String, String>,
    pub label_w: usize,
}

/// Draws the rows under their section titles, the editor in place of the row being edited
/// and the candidates under it, and scrolls so the cursor's row shows.
pub fn draw_rows(
    f: &mut Frame,
    area: Rect,
    view: RowsView,
    scroll: &mut usize,
    editing: Option<&mut Edit>,
    required: impl Fn(&Row) -> bool,
    shown: impl Fn(&Row) -> Shown,
) {
    let (th, el) = (view.th, view.el);
    let w = area.width as usize;
    let label_w = view.label_w;
    let val_w = w.saturating_sub(label_w + 1);
    let mut lines: Vec<(Option<usize>, Line)> = Vec::new();
    let mut edit_at: Option<(usize, u16)> = None;
    for (s, title) in view.sections.iter().enumerate() {
        lines.push((
            None,
            Line::from(Span::styled(text::fit(title, w, el), th.style("section"))),
        ));
        for (i, row) in view.rows.iter().enumerate().filter(|(_, r)| r.section == s) {
            let selected = i == view.cursor;
            let label_style = if selected {
                th.style("selected")
            } else {
                th.style("normal")
            };
            let req = matches!(row.kind, RowKind::Field(_)) && required(row);
            let label_span = if req && !selected {
                vec![
                    Span::styled(" ", label_style),
                    Span::styled("必須", th.style("required")),
                    Span::styled(
                        text::fit(&format!(" {}", row.label), label_w - 5, el),
                        label_style,
                    ),
                ]
            } else {
                let mark = if req { "必須 " } else { "     " };
                vec![Span::styled(
                    text::fit(&format!(" {mark}{}", row.label), label_w, el),
                    label_style,
                )]
            };
            let pad = || vec![Span::raw(" ".repeat(label_w))];
            match editing
                .as_deref()
                .filter(|e| selected && e.path == row.path)
            {
                Some(e) => {
                    let h = if e.kind == Kind::Multiline { 6 } else { 1 };
                    edit_at = Some((lines.len(), h));
                    for k in 0..h {
                        let mut spans = if k == 0 { label_span.clone() } else { pad() };
                        spans.push(Span::raw(" "));
                        lines.push((Some(i), Line::from(spans)));
                    }
                    for (k, (_, label)) in e.picks.iter().enumerate() {
                        let style = if k == e.pick {
                            th.style("selected")
                        } else {
                            th.style("dim")
                        };
                        let mut spans = pad();
                        spans.push(Span::raw(" "));
                        spans.push(Span::styled(text::fit(label, val_w, el), style));
                        lines.push((Some(i), Line::from(spans)));
                    }
                }
                None => {
                    let s = shown(row);
                    if let Some(why) = s.withheld {
                        let mut spans = label_span.clone();
                        spans.push(Span::raw(" "));
                        spans.push(Span::styled(
                            text::fit(&format!("［非表示: {why}］"), val_w, el),
                            th.style("withheld"),
                        ));
                        lines.push((Some(i), Line::from(spans)));
                    } else {
                        let vstyle = if s.changed {
                            th.style("changed")
                        } else {
                            th.style("normal")
                        };
                        let mut vals: Vec<String> =
                            s.values.into_iter().filter(|v| !v.is_empty()).collect();
                        if vals.is_empty() {
                            vals.push(String::new());
                        }
                        let max_lines = if selected { 6 } else { 3 };
                        let extra = vals.len().saturating_sub(max_lines);
                        for (k, v) in vals.iter().take(max_lines).enumerate() {
                            let mut spans = if k == 0 { label_span.clone() } else { pad() };
                            spans.push(Span::raw(" "));
                            let mut v = text::sanitize(v);
                            if k + 1 == max_lines && extra > 0 {
                                v = format!("（ほか{extra}行: F6 で全文）");
                            }
                            spans.push(Span::styled(text::fit(&v, val_w, el), vstyle));
                            lines.push((Some(i), Line::from(spans)));
                        }
                    }
                }
            }
            if let Some(m) = view.errors.get(&row.path) {
                lines.push((
                    Some(i),
                    Line::from(vec![
                        Span::raw(" ".repeat(label_w + 1)),
                        Span::styled(text::fit(&format!("!! {m}"), val_w, el), th.style("error")),
                    ]),
                ));
            }
        }
    }
    let height = area.height as usize;
    let first = lines
        .iter()
        .position(|(i, _)| *i == Some(view.cursor))
        .unwrap_or(0);
    let last = lines
        .iter()
        .rposition(|(i, _)| *i == Some(view.cursor))
        .unwrap_or(first);
    if first < *scroll {
        // Show the section title too when the cursor is on a section's first row.
        *scroll = if first > 0 && lines[first - 1].0.is_none() {
            first - 1
        } else {
            first
        };
    } else if last >= *scroll + height {
        *scroll = (last + 1 - height).min(first);
    }
    *scroll = (*scroll).min(lines.len().saturating_sub(1));
    let shown_lines: Vec<Line> = lines
        .iter()
        .skip(*scroll)
        .take(height)
        .map(|(_, l)| l.clone())
        .collect();
    f.render_widget(Paragraph::new(shown_lines).style(th.style("normal")), area);
    if let (Some((row, h)), Some(e)) = (edit_at, editing) {
        if row >= *scroll && row < *scroll + height {
            let y = area.y + (row - *scroll) as u16;
            let ea = Rect {
                x: area.x + label_w as u16 + 1,
                y,
                width: area.width.saturating_sub(label_w as u16 + 1),
                height: h.min(area.bottom() - y),
            };
            let t = &mut e.area;
            t.set_style(th.style("input_focus"));
            t.set_cursor_style(Style::default());
            f.render_widget(&*t, ea);
            let c = t.screen_cursor();
            let (top, left) = t.scroll_offset();
            let cx = ea.x + (c.col as u16).saturating_sub(left);
            let cy = ea.y + (c.row as u16).saturating_sub(top);
            if cx < ea.right() && cy < ea.bottom() {
                f.set_cursor_position((cx, cy));
            }
        }
    }
}
