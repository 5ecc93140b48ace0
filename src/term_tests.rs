//! What the terminal shows, checked: frames drawn through the real backend and frame writer are
//! parsed by a terminal emulator (the vt100 crate) and compared, cell by cell, with the buffer
//! the frame meant to show. Random sequences of list moves, jumps, edits and pop-ups over
//! Japanese text (many seeds), with scroll regions on and off; the case list of the client
//! itself; and pop-ups whose edge falls on a double-width character.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Clear;
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};

use crate::term::{self, FrameWriter, TermBackend};

struct Rig {
    term: Terminal<TermBackend<FrameWriter<Vec<u8>>>>,
    vt: vt100::Parser,
    read: usize,
    /// Bytes of the last frame.
    last: Vec<u8>,
}

impl Rig {
    fn new(w: u16, h: u16, scroll: bool) -> Rig {
        let term = Terminal::with_options(
            TermBackend::new(FrameWriter::new(Vec::new())).with_scroll_regions(scroll),
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, w, h)),
            },
        )
        .expect("terminal");
        Rig {
            term,
            vt: vt100::Parser::new(h, w, 0),
            read: 0,
            last: Vec::new(),
        }
    }

    /// Draws a frame; returns the buffer it meant to show.
    fn frame(&mut self, render: impl FnOnce(&mut Frame)) -> Buffer {
        let mut meant = None;
        term::draw(&mut self.term, |f| {
            render(f);
            meant = Some(f.buffer_mut().clone());
        })
        .expect("draw");
        self.pump();
        meant.expect("rendered")
    }

    fn clear(&mut self) {
        self.term.clear().expect("clear");
        self.pump();
    }

    fn pump(&mut self) {
        let sent = self.term.backend().writer().sent();
        self.last = sent[self.read..].to_vec();
        self.vt.process(&self.last);
        self.read = sent.len();
    }

    fn scrolls(&self) -> u64 {
        self.term.backend().scrolls
    }
}

fn vt_color(c: Color) -> vt100::Color {
    match c {
        Color::Reset => vt100::Color::Default,
        Color::Black => vt100::Color::Idx(0),
        Color::Red => vt100::Color::Idx(1),
        Color::Green => vt100::Color::Idx(2),
        Color::Yellow => vt100::Color::Idx(3),
        Color::Blue => vt100::Color::Idx(4),
        Color::Magenta => vt100::Color::Idx(5),
        Color::Cyan => vt100::Color::Idx(6),
        Color::Gray => vt100::Color::Idx(7),
        Color::DarkGray => vt100::Color::Idx(8),
        Color::LightRed => vt100::Color::Idx(9),
        Color::LightGreen => vt100::Color::Idx(10),
        Color::LightYellow => vt100::Color::Idx(11),
        Color::LightBlue => vt100::Color::Idx(12),
        Color::LightMagenta => vt100::Color::Idx(13),
        Color::LightCyan => vt100::Color::Idx(14),
        Color::White => vt100::Color::Idx(15),
        Color::Indexed(i) => vt100::Color::Idx(i),
        Color::Rgb(r, g, b) => vt100::Color::Rgb(r, g, b),
    }
}

/// The first cell where the emulated screen differs from `meant`, described.
fn mismatch(vt: &vt100::Parser, meant: &Buffer) -> Option<String> {
    let s = vt.screen();
    let a = meant.area;
    for y in a.top()..a.bottom() {
        let mut x = a.left();
        while x < a.right() {
            let c = &meant[(x, y)];
            let w = crate::text::width(c.symbol()).max(1) as u16;
            let Some(v) = s.cell(y, x) else {
                return Some(format!("no cell at ({x},{y})"));
            };
            let shown = if v.contents().is_empty() {
                " ".to_string()
            } else {
                v.contents().to_string()
            };
            let want_mod = |m: Modifier| c.modifier.contains(m);
            let problem = if shown != c.symbol() {
                Some(format!("{shown:?} instead of {:?}", c.symbol()))
            } else if v.is_wide() != (w == 2) || v.is_wide_continuation() {
                Some("width".to_string())
            } else if v.fgcolor() != vt_color(c.fg) || v.bgcolor() != vt_color(c.bg) {
                Some(format!(
                    "colours {:?}/{:?} instead of {:?}/{:?}",
                    v.fgcolor(),
                    v.bgcolor(),
                    c.fg,
                    c.bg
                ))
            } else if v.bold() != want_mod(Modifier::BOLD)
                || v.italic() != want_mod(Modifier::ITALIC)
                || v.underline() != want_mod(Modifier::UNDERLINED)
                || v.inverse() != want_mod(Modifier::REVERSED)
            {
                Some("attributes".to_string())
            } else if w == 2 && !s.cell(y, x + 1).is_some_and(|n| n.is_wide_continuation()) {
                Some("second half missing".to_string())
            } else {
                None
            };
            if let Some(p) = problem {
                let row =
                    |f: &dyn Fn(u16) -> String| (a.left()..a.right()).map(f).collect::<String>();
                return Some(format!(
                    "({x},{y}): {p}\n  shown: {}\n  meant: {}",
                    row(&|x| s
                        .cell(y, x)
                        .map(|c| c.contents().to_string())
                        .unwrap_or_default()),
                    row(&|x| meant[(x, y)].symbol().to_string()),
                ));
            }
            x += w;
        }
    }
    None
}

/// xorshift64*: the same sequence for a seed on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const PIECES: &[&str] = &[
    "山田",
    "太郎",
    "ヤマダ",
    "タロウ",
    "　",
    "・",
    "（",
    "）",
    "R8-00",
    "12",
    "歳",
    " ",
    "  ",
    "千代田区",
    "対応中",
    "高",
    "-",
    "abc",
    "2026-12-08",
    "~",
    "児童相談所",
    "ｶﾅ",
    "x",
];

fn random_text(rng: &mut Rng, max: usize) -> String {
    (0..rng.below(max) + 1)
        .map(|_| PIECES[rng.below(PIECES.len())])
        .collect()
}

fn random_style(rng: &mut Rng) -> Style {
    match rng.below(10) {
        0..=3 => Style::default(),
        4 => Style::default().fg(Color::Cyan),
        5 => Style::default().fg(Color::Black).bg(Color::Gray),
        6 => Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
        7 => Style::default()
            .fg(Color::Indexed(208))
            .add_modifier(Modifier::UNDERLINED),
        8 => Style::default()
            .fg(Color::White)
            .bg(Color::LightRed)
            .add_modifier(Modifier::ITALIC | Modifier::REVERSED),
        _ => Style::default()
            .fg(Color::Rgb(200, 120, 0))
            .bg(Color::DarkGray),
    }
}

/// A screen like the client's: a title row, a list band (sometimes two side by side, which the
/// terminal cannot scroll), a status row, and now and then a pop-up.
struct Model {
    items: Vec<(String, Style)>,
    offset: usize,
    selected: usize,
    offset2: usize,
    split: bool,
    title: String,
    status: String,
    popup: Option<(Rect, String)>,
}

impl Model {
    fn new(rng: &mut Rng) -> Model {
        Model {
            items: (0..200)
                .map(|_| (random_text(rng, 12), random_style(rng)))
                .collect(),
            offset: 0,
            selected: 0,
            offset2: 0,
            split: false,
            title: random_text(rng, 4),
            status: random_text(rng, 4),
            popup: None,
        }
    }

    fn step(&mut self, rng: &mut Rng, area: Rect) {
        let rows = area.height as usize - 2;
        let n = self.items.len();
        match rng.below(100) {
            0..=34 => {
                // One row down or up: the list scrolls at its edges.
                if rng.chance(60) {
                    self.selected = (self.selected + 1).min(n - 1);
                } else {
                    self.selected = self.selected.saturating_sub(1);
                }
            }
            35..=49 => {
                // The view moves by a few rows (a wheel), the selection with it.
                let k = rng.below(4) + 1;
                if rng.chance(50) {
                    self.offset = (self.offset + k).min(n.saturating_sub(rows));
                } else {
                    self.offset = self.offset.saturating_sub(k);
                }
                self.selected = self.selected.clamp(self.offset, self.offset + rows - 1);
            }
            50..=54 => {
                let k = rng.below(10) + 1;
                if rng.chance(50) {
                    self.selected = (self.selected + k).min(n - 1);
                } else {
                    self.selected = self.selected.saturating_sub(k);
                }
            }
            55..=57 => self.selected = rng.below(n),
            58..=66 => {
                let i = (self.offset + rng.below(rows)).min(n - 1);
                self.items[i] = (random_text(rng, 12), random_style(rng));
            }
            67..=70 => self.title = random_text(rng, 4),
            71..=74 => self.status = random_text(rng, 4),
            75..=84 => {
                self.popup = if self.popup.is_some() && rng.chance(60) {
                    None
                } else {
                    let w = rng.below(area.width as usize - 2) as u16 + 2;
                    let h = rng.below(area.height as usize - 1) as u16 + 1;
                    let x = rng.below((area.width - w) as usize + 1) as u16;
                    let y = rng.below((area.height - h) as usize + 1) as u16;
                    Some((Rect::new(x, y, w, h), random_text(rng, 3)))
                }
            }
            85..=89 => self.split = !self.split,
            _ => self.offset2 = rng.below(n),
        }
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + rows {
            self.offset = self.selected + 1 - rows;
        }
    }

    fn draw(&self, f: &mut Frame) {
        let area = f.area();
        let rows = area.height - 2;
        let buf = f.buffer_mut();
        buf.set_stringn(
            0,
            0,
            &self.title,
            area.width as usize,
            Style::default().bg(Color::Cyan),
        );
        let half = area.width / 2;
        for r in 0..rows {
            let i = self.offset + r as usize;
            let Some((text, style)) = self.items.get(i) else {
                continue;
            };
            let style = if i == self.selected {
                Style::default().fg(Color::Black).bg(Color::Cyan)
            } else {
                *style
            };
            let width = if self.split { half } else { area.width };
            buf.set_stringn(0, r + 1, text, width as usize, style);
            if self.split {
                if let Some((t2, s2)) = self.items.get(self.offset2 + r as usize) {
                    buf.set_stringn(half, r + 1, t2, (area.width - half) as usize, *s2);
                }
            }
        }
        buf.set_stringn(
            0,
            area.height - 1,
            &self.status,
            area.width as usize,
            Style::default(),
        );
        if let Some((r, text)) = &self.popup {
            crate::widgets::clear_left_edge(buf, *r);
            f.render_widget(Clear, *r);
            let buf = f.buffer_mut();
            for y in r.top()..r.bottom() {
                buf[(r.x, y)].set_symbol("|");
                buf[(r.right() - 1, y)].set_symbol("|");
            }
            if r.width > 2 {
                buf.set_stringn(
                    r.x + 1,
                    r.y,
                    text,
                    (r.width - 2) as usize,
                    Style::default().fg(Color::Yellow),
                );
            }
        }
    }
}

#[test]
fn random_moves_scrolls_and_popups_leave_the_screen_as_meant() {
    let mut scrolled = 0;
    let mut frames = 0;
    for seed in 1..=250u64 {
        let mut rng = Rng::new(seed);
        let w = rng.below(90) as u16 + 12;
        let h = rng.below(26) as u16 + 4;
        let area = Rect::new(0, 0, w, h);
        let mut model = Model::new(&mut rng);
        let mut on = Rig::new(w, h, true);
        let mut off = Rig::new(w, h, false);
        for step in 0..40 {
            if step > 0 {
                model.step(&mut rng, area);
            }
            if rng.chance(3) {
                on.clear();
                off.clear();
            }
            for (rig, mode) in [(&mut on, "on"), (&mut off, "off")] {
                let meant = rig.frame(|f| model.draw(f));
                if let Some(m) = mismatch(&rig.vt, &meant) {
                    panic!(
                        "seed {seed}, {w}x{h}, step {step}, scroll regions {mode}: {m}\n  bytes: {:?}",
                        String::from_utf8_lossy(&rig.last)
                    );
                }
            }
            frames += 1;
        }
        scrolled += on.scrolls();
        assert_eq!(off.scrolls(), 0);
    }
    // The runs did exercise the scrolling: a good share of the frames scrolled a region.
    assert!(
        scrolled * 10 > frames,
        "{scrolled} scrolls in {frames} frames"
    );
}

fn case_list_app(rows: usize) -> crate::app::App {
    use crate::tasks::{CmdKind, Reply, ReplyKind};
    let mut app = crate::fixtures::app();
    let id = app.request("login", CmdKind::Notifications);
    app.on_reply(Reply {
        id,
        kind: ReplyKind::LoggedIn(Ok(crate::fixtures::login_response())),
    });
    app.outbox.clear();
    app.cases.items = crate::fixtures::cases(rows);
    app.cases.next_cursor = None;
    app.cases.loading = false;
    app.notes.stream_up = true;
    app.message = None;
    app
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[test]
fn the_case_list_scrolled_by_keys_shows_what_the_client_drew() {
    for (w, h) in [(80, 24), (100, 30), (132, 40)] {
        let mut app = case_list_app(400);
        let mut rig = Rig::new(w, h, true);
        let mut rng = Rng::new(u64::from(w));
        let keys = [
            KeyCode::Down,
            KeyCode::Down,
            KeyCode::Down,
            KeyCode::Up,
            KeyCode::PageDown,
            KeyCode::PageUp,
            KeyCode::End,
            KeyCode::Home,
        ];
        for step in 0..300 {
            if step > 0 {
                app.on_key(key(keys[rng.below(keys.len())]));
            }
            let meant = rig.frame(|f| crate::ui::draw(f, &mut app));
            if let Some(m) = mismatch(&rig.vt, &meant) {
                panic!("{w}x{h}, step {step}: {m}");
            }
        }
        assert!(rig.scrolls() > 20, "{w}x{h}: {} scrolls", rig.scrolls());
    }
}

/// A one-row scroll costs at most 1.5× the least a terminal must be sent for it: the scroll
/// sequence plus the cells that still differ once the band has moved (the new row, the row
/// that loses the selection).
#[test]
fn a_one_row_scroll_of_the_case_list_costs_at_most_one_and_a_half_times_the_minimum() {
    for (w, h) in [(80, 24), (100, 30), (200, 60)] {
        let mut app = case_list_app(300);
        let mut rig = Rig::new(w, h, true);
        let mut before = rig.frame(|f| crate::ui::draw(f, &mut app));
        let (mut sent, mut least, mut moves) = (0usize, 0usize, 0);
        for _ in 0..120 {
            let offset = app.cases.offset;
            app.on_key(key(KeyCode::Down));
            let after = rig.frame(|f| crate::ui::draw(f, &mut app));
            if app.cases.offset != offset {
                let sc = crate::scroll::find(
                    &before,
                    &crate::scroll::row_hashes(&before),
                    &after,
                    &crate::scroll::row_hashes(&after),
                )
                .expect("a scroll");
                assert_eq!(sc.by, 1);
                let mut moved = before.clone();
                sc.apply(&mut moved);
                let cells: usize = moved
                    .content
                    .iter()
                    .zip(&after.content)
                    .filter(|(a, b)| a != b)
                    .map(|(_, b)| b.symbol().len())
                    .sum();
                least += sc.sequence(0).len() + cells;
                sent += rig.last.len();
                moves += 1;
                assert!(
                    String::from_utf8_lossy(&rig.last).contains(&format!(
                        "\x1b[{};{}r",
                        sc.top + 1,
                        sc.bottom + 1
                    )),
                    "no scroll region set"
                );
            }
            before = after;
        }
        assert!(moves > 50);
        let ratio = sent as f64 / least as f64;
        assert!(
            ratio <= 1.5,
            "{w}x{h}: {sent} bytes for {least} at least: {ratio:.2}"
        );
    }
}

/// Whether `bytes` set a scroll region (`CSI t ; b r` or `CSI r`).
fn sets_region(bytes: &[u8]) -> bool {
    bytes.windows(2).enumerate().any(|(i, w)| {
        w == b"\x1b[" && {
            let rest = &bytes[i + 2..];
            let n = rest
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b';')
                .count();
            rest.get(n) == Some(&b'r')
        }
    })
}

#[test]
fn scroll_regions_off_sends_no_scroll_region() {
    assert!(sets_region(b"x\x1b[3;21r\x1b[21H\n") && sets_region(b"\x1b[r"));
    assert!(!sets_region("\x1b[21;1HR8-00029 \x1b[0m".as_bytes()));
    let mut app = case_list_app(100);
    let mut rig = Rig::new(80, 24, false);
    for _ in 0..40 {
        app.on_key(key(KeyCode::Down));
        let meant = rig.frame(|f| crate::ui::draw(f, &mut app));
        assert_eq!(mismatch(&rig.vt, &meant), None);
        assert!(!sets_region(&rig.last));
    }
    assert_eq!(rig.scrolls(), 0);
}

/// The demo-account switcher over the case list at 100 columns starts at column 12, the second
/// half of the first kanji of every name (the name column starts at 11).
#[test]
fn a_popup_over_double_width_characters_keeps_its_left_edge() {
    for ascii in [true, false] {
        let mut app = case_list_app(50);
        app.look = crate::app::Look::for_terminal(!ascii);
        app.demo_accounts = vec![
            crate::app::DemoAccount {
                login: "demo-cgc".into(),
                purpose: "児童相談所の職員".into(),
            },
            crate::app::DemoAccount {
                login: "demo-muni".into(),
                purpose: "市区町村の職員".into(),
            },
        ];
        let mut rig = Rig::new(100, 30, true);
        let list = rig.frame(|f| crate::ui::draw(f, &mut app));
        let pop = crate::widgets::centered(list.area, 76, 14);
        assert_eq!(pop.x, 12);
        let wide_under: Vec<u16> = (pop.top()..pop.bottom())
            .filter(|&y| crate::text::width(list[(pop.x - 1, y)].symbol()) == 2)
            .collect();
        assert!(
            wide_under.len() >= 8,
            "rows with a kanji under the edge: {wide_under:?}"
        );
        app.overlay = Some(crate::app::Overlay::Accounts);
        let meant = rig.frame(|f| crate::ui::draw(f, &mut app));
        assert_eq!(mismatch(&rig.vt, &meant), None, "ascii {ascii}");
        let s = rig.vt.screen();
        for &y in &wide_under {
            // The pop-up's first column is there: its border, or its title bar's colour.
            let edge = s.cell(y, pop.x).expect("cell");
            assert!(!edge.is_wide_continuation(), "row {y}");
            let shown = if edge.contents().is_empty() {
                " "
            } else {
                edge.contents()
            };
            assert_eq!(shown, meant[(pop.x, y)].symbol(), "row {y}");
            assert_eq!(edge.bgcolor(), vt_color(meant[(pop.x, y)].bg), "row {y}");
            if ascii {
                assert!(
                    ["|", "+"].contains(&edge.contents()),
                    "row {y}: {:?}",
                    edge.contents()
                );
            }
        }
        // Closed again, the list is whole.
        app.overlay = None;
        let meant = rig.frame(|f| crate::ui::draw(f, &mut app));
        assert_eq!(mismatch(&rig.vt, &meant), None, "ascii {ascii}, closed");
    }
}

/// A cell written over the first half of a double-width character the terminal shows: the
/// terminal erases the whole character (in the colours being written), so the second half is
/// written again although the frame did not change it.
#[test]
fn writing_over_half_a_double_width_character_rewrites_the_other_half() {
    let mut rig = Rig::new(10, 2, true);
    let meant = rig.frame(|f| {
        f.buffer_mut()
            .set_stringn(0, 0, "山田太郎", 10, Style::default());
    });
    assert_eq!(mismatch(&rig.vt, &meant), None);
    let meant = rig.frame(|f| {
        let b = f.buffer_mut();
        b.set_stringn(0, 0, "山田太郎", 10, Style::default());
        // Over the first half of 田 (columns 2-3); column 3 stays a blank in the defaults.
        b[(2, 0)]
            .set_symbol("|")
            .set_fg(Color::Yellow)
            .set_bg(Color::Red);
    });
    assert_eq!(mismatch(&rig.vt, &meant), None);
}
