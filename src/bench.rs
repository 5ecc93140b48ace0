//! Client benchmark C2 (hidden `bench` command): moving the selection one row in a list of
//! 10,000 Japanese names, drawn through the real crossterm backend and frame writer into memory,
//! with scroll regions and without, against the least the terminal must be sent and a full
//! redraw of the same screen. Prints JSON; `tsunagu-bench client` (crates/bench)
//! runs it beside C1 and C4, which need the real binary in a pseudo-terminal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::{Backend as _, CrosstermBackend, TestBackend};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use serde::Serialize;

use crate::app::App;
use crate::fixtures;
use crate::scroll;
use crate::tasks::{CmdKind, Reply, ReplyKind};
use crate::term::{self, FrameWriter, TermBackend};

#[derive(Debug, Serialize)]
pub struct C2Size {
    pub cols: u16,
    pub rows: u16,
    pub list_rows: usize,
    /// Moves within the visible rows (two rows change) and moves that scroll the list.
    pub in_page: MoveCost,
    pub scrolling: MoveCost,
    /// The same screen drawn from scratch (after a clear).
    pub full_bytes: f64,
    pub full_ms_p50: f64,
}

/// What the moves of one kind cost on the wire.
#[derive(Debug, Default, Serialize)]
pub struct MoveCost {
    pub moves: usize,
    /// Mean cells that differ between the frames before and after a move.
    pub changed_cells: f64,
    /// Their characters' UTF-8 bytes: the least a terminal must be sent without scrolling.
    pub changed_min_bytes: f64,
    /// The least with the terminal's scrolling: the scroll sequence plus the bytes of the
    /// cells that still differ once the band has moved (the new row, the row that loses the
    /// selection, the counts), or `changed_min_bytes` where that is less.
    pub min_bytes: f64,
    /// Mean bytes sent per move with scroll regions (the default; synchronized-output markers
    /// included), and `bytes / min_bytes` (target ≤ 1.5).
    pub bytes: f64,
    pub ratio_to_min: f64,
    /// The same moves with scroll regions off (`TSUNAGU_SCROLL_REGIONS=off`; the client
    /// before they were used), and that as a ratio to `min_bytes`.
    pub bytes_off: f64,
    pub ratio_to_min_off: f64,
    /// Moves in which a region was scrolled.
    pub scrolled_moves: usize,
    /// The same moves through ratatui's stock crossterm backend (a cursor move per wide
    /// character, the cursor placement flushed separately), for comparison.
    pub stock_bytes: f64,
    /// Key to frame written (the app's work, the diff and the writes), scroll regions on and
    /// off: median and worst, ms.
    pub ms_p50: f64,
    pub ms_max: f64,
    pub ms_p50_off: f64,
    pub ms_max_off: f64,
}

#[derive(Default)]
struct Tally {
    moves: u64,
    bytes: u64,
    bytes_off: u64,
    cells: u64,
    changed_bytes: u64,
    min_bytes: u64,
    scrolled: u64,
    stock_bytes: u64,
    ms: Vec<f64>,
    ms_off: Vec<f64>,
}

impl Tally {
    fn cost(&mut self) -> MoveCost {
        let n = self.moves.max(1) as f64;
        let min = self.min_bytes.max(1) as f64;
        MoveCost {
            moves: self.moves as usize,
            changed_cells: self.cells as f64 / n,
            changed_min_bytes: self.changed_bytes as f64 / n,
            min_bytes: self.min_bytes as f64 / n,
            bytes: self.bytes as f64 / n,
            ratio_to_min: self.bytes as f64 / min,
            bytes_off: self.bytes_off as f64 / n,
            ratio_to_min_off: self.bytes_off as f64 / min,
            scrolled_moves: self.scrolled as usize,
            stock_bytes: self.stock_bytes as f64 / n,
            ms_p50: median(&mut self.ms),
            ms_max: self.ms.iter().copied().fold(0.0, f64::max),
            ms_p50_off: median(&mut self.ms_off),
            ms_max_off: self.ms_off.iter().copied().fold(0.0, f64::max),
        }
    }
}

fn logged_in(rows: usize) -> App {
    let mut app = fixtures::app();
    let id = app.request("login", CmdKind::Notifications);
    app.on_reply(Reply {
        id,
        kind: ReplyKind::LoggedIn(Ok(fixtures::login_response())),
    });
    app.outbox.clear();
    app.cases.items = fixtures::cases(rows);
    app.cases.next_cursor = None;
    app.cases.loading = false;
    app.notes.stream_up = true;
    app.message = None;
    app
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

type Measured = Terminal<TermBackend<FrameWriter<Vec<u8>>>>;

fn terminal(area: Rect, scroll: bool) -> anyhow::Result<(Measured, Arc<AtomicU64>)> {
    let writer = FrameWriter::new(Vec::<u8>::new());
    let written = writer.written.clone();
    let t = Terminal::with_options(
        TermBackend::new(writer).with_scroll_regions(scroll),
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    )?;
    Ok((t, written))
}

/// The UTF-8 bytes of the cells of `after` that differ from `before`.
fn changed(before: &Buffer, after: &Buffer) -> (u64, u64) {
    let (mut cells, mut bytes) = (0, 0);
    for (a, b) in before.content.iter().zip(after.content.iter()) {
        if a != b {
            cells += 1;
            bytes += b.symbol().len() as u64;
        }
    }
    (cells, bytes)
}

fn c2(cols: u16, rows: u16, list_rows: usize, moves: usize) -> anyhow::Result<C2Size> {
    // Two apps moved in step: one drawn with scroll regions (the default), one without.
    let mut app = logged_in(list_rows);
    let mut app_off = logged_in(list_rows);
    let area = Rect::new(0, 0, cols, rows);
    let (mut term, written) = terminal(area, true)?;
    let (mut term_off, written_off) = terminal(area, false)?;
    let stock_writer = FrameWriter::new(Vec::<u8>::new());
    let stock_written = stock_writer.written.clone();
    let mut stock = Terminal::with_options(
        CrosstermBackend::new(stock_writer),
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    )?;
    // A second, in-memory terminal only to see which cells a move changes.
    let mut shadow = Terminal::with_options(
        TestBackend::new(cols, rows),
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    )?;
    term::draw(&mut term, |f| crate::ui::draw(f, &mut app))?;
    term::draw(&mut term_off, |f| crate::ui::draw(f, &mut app_off))?;
    stock.draw(|f| crate::ui::draw(f, &mut app))?;
    shadow.draw(|f| crate::ui::draw(f, &mut app))?;
    let down = KeyEvent::new(KeyCode::Down, KeyModifiers::NONE);
    let (mut in_page, mut scrolling) = (Tally::default(), Tally::default());
    for _ in 0..moves {
        let before = shadow.backend().buffer().clone();
        let offset = app.cases.offset;
        let (w0, s0) = (written.load(Ordering::Relaxed), term.backend().scrolls);
        let t = Instant::now();
        app.on_key(down);
        term::draw(&mut term, |f| crate::ui::draw(f, &mut app))?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let w0_off = written_off.load(Ordering::Relaxed);
        let t = Instant::now();
        app_off.on_key(down);
        term::draw(&mut term_off, |f| crate::ui::draw(f, &mut app_off))?;
        let ms_off = t.elapsed().as_secs_f64() * 1e3;
        let tally = if app.cases.offset == offset {
            &mut in_page
        } else {
            &mut scrolling
        };
        tally.moves += 1;
        tally.ms.push(ms);
        tally.ms_off.push(ms_off);
        tally.bytes += written.load(Ordering::Relaxed) - w0;
        tally.bytes_off += written_off.load(Ordering::Relaxed) - w0_off;
        tally.scrolled += term.backend().scrolls - s0;
        let s0 = stock_written.load(Ordering::Relaxed);
        stock.draw(|f| crate::ui::draw(f, &mut app))?;
        tally.stock_bytes += stock_written.load(Ordering::Relaxed) - s0;
        shadow.draw(|f| crate::ui::draw(f, &mut app))?;
        let after = shadow.backend().buffer();
        let (cells, bytes) = changed(&before, after);
        tally.cells += cells;
        tally.changed_bytes += bytes;
        let with_scroll = scroll::find(
            &before,
            &scroll::row_hashes(&before),
            after,
            &scroll::row_hashes(after),
        )
        .map(|sc| {
            let mut moved = before.clone();
            sc.apply(&mut moved);
            sc.sequence(area.y).len() as u64 + changed(&moved, after).1
        });
        tally.min_bytes += with_scroll.map_or(bytes, |b| b.min(bytes));
    }
    // The baseline: the same screen drawn onto a blank terminal (what a clear and redraw
    // sends), through the same backend.
    let mut full_times = Vec::new();
    let mut full_bytes = 0u64;
    let fulls = 20;
    let full_writer = FrameWriter::new(Vec::<u8>::new());
    let full_written = full_writer.written.clone();
    let mut full = TermBackend::new(full_writer);
    let blank = Buffer::empty(area);
    for _ in 0..fulls {
        let w0 = full_written.load(Ordering::Relaxed);
        let t = Instant::now();
        shadow.draw(|f| crate::ui::draw(f, &mut app))?;
        full.draw(blank.diff(shadow.backend().buffer()).into_iter())?;
        full.flush()?;
        full_times.push(t.elapsed().as_secs_f64() * 1e3);
        full_bytes += full_written.load(Ordering::Relaxed) - w0;
    }
    Ok(C2Size {
        cols,
        rows,
        list_rows,
        in_page: in_page.cost(),
        scrolling: scrolling.cost(),
        full_bytes: full_bytes as f64 / fulls as f64,
        full_ms_p50: median(&mut full_times),
    })
}

pub async fn run(rows: usize) -> anyhow::Result<()> {
    anyhow::ensure!(rows > 0, "--rows must be positive");
    let moves = 200.min(rows - 1).max(1);
    let out: Vec<C2Size> = [(80, 24), (100, 30), (132, 40), (200, 60)]
        .into_iter()
        .map(|(w, h)| c2(w, h, rows, moves))
        .collect::<anyhow::Result<_>>()?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
