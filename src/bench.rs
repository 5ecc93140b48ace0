//! Client benchmark C2 (hidden `bench` command): moving the selection one row in a list of
//! 10,000 Japanese names, drawn through the real crossterm backend and frame writer into memory,
//! against a full redraw of the same screen. Prints JSON; `tsunagu-bench client` (crates/bench)
//! runs it beside C1 and C4, which need the real binary in a pseudo-terminal.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::{Backend as _, CrosstermBackend, TestBackend};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use serde::Serialize;

use crate::app::App;
use crate::fixtures;
use crate::tasks::{CmdKind, Reply, ReplyKind};
use crate::term::{FrameWriter, TermBackend};

#[derive(Debug, Serialize)]
pub struct C2Size {
    pub cols: u16,
    pub rows: u16,
    pub list_rows: usize,
    /// Moves within the visible rows (two rows change) and moves that scroll the list.
    pub in_page: MoveCost,
    pub scrolling: MoveCost,
    pub move_ms_p50: f64,
    pub move_ms_max: f64,
    /// The same screen drawn from scratch (after a clear).
    pub full_bytes: f64,
    pub full_ms_p50: f64,
}

/// What the moves of one kind cost on the wire.
#[derive(Debug, Default, Serialize)]
pub struct MoveCost {
    pub moves: usize,
    /// Mean bytes sent to the terminal per move (synchronized-output markers included).
    pub bytes: f64,
    /// Mean cells that differ between the frames before and after a move.
    pub changed_cells: f64,
    /// The least a terminal must be sent for those cells: their characters' UTF-8 bytes.
    pub changed_min_bytes: f64,
    /// `bytes / changed_min_bytes` (target ≤ 1.5).
    pub ratio_to_min: f64,
    /// The same moves through ratatui's stock crossterm backend (a cursor move per wide
    /// character, the cursor placement flushed separately), for comparison.
    pub stock_bytes: f64,
}

#[derive(Default)]
struct Tally {
    moves: u64,
    bytes: u64,
    cells: u64,
    min_bytes: u64,
    stock_bytes: u64,
}

impl Tally {
    fn cost(&self) -> MoveCost {
        let n = self.moves.max(1) as f64;
        MoveCost {
            moves: self.moves as usize,
            bytes: self.bytes as f64 / n,
            changed_cells: self.cells as f64 / n,
            changed_min_bytes: self.min_bytes as f64 / n,
            ratio_to_min: self.bytes as f64 / self.min_bytes.max(1) as f64,
            stock_bytes: self.stock_bytes as f64 / n,
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

fn c2(cols: u16, rows: u16, list_rows: usize, moves: usize) -> anyhow::Result<C2Size> {
    let mut app = logged_in(list_rows);
    let area = Rect::new(0, 0, cols, rows);
    let writer = FrameWriter::new(Vec::<u8>::new());
    let written = writer.written.clone();
    let mut term = Terminal::with_options(
        TermBackend::new(writer),
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    )?;
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
    term.draw(|f| crate::ui::draw(f, &mut app))?;
    stock.draw(|f| crate::ui::draw(f, &mut app))?;
    shadow.draw(|f| crate::ui::draw(f, &mut app))?;
    let down = KeyEvent::new(KeyCode::Down, KeyModifiers::NONE);
    let (mut in_page, mut scrolling) = (Tally::default(), Tally::default());
    let mut times = Vec::with_capacity(moves);
    for _ in 0..moves {
        let before = shadow.backend().buffer().clone();
        let offset = app.cases.offset;
        let w0 = written.load(Ordering::Relaxed);
        let t = Instant::now();
        app.on_key(down);
        term.draw(|f| crate::ui::draw(f, &mut app))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        let tally = if app.cases.offset == offset {
            &mut in_page
        } else {
            &mut scrolling
        };
        tally.moves += 1;
        tally.bytes += written.load(Ordering::Relaxed) - w0;
        let s0 = stock_written.load(Ordering::Relaxed);
        stock.draw(|f| crate::ui::draw(f, &mut app))?;
        tally.stock_bytes += stock_written.load(Ordering::Relaxed) - s0;
        shadow.draw(|f| crate::ui::draw(f, &mut app))?;
        let after = shadow.backend().buffer();
        for (a, b) in before.content.iter().zip(after.content.iter()) {
            if a != b {
                tally.cells += 1;
                tally.min_bytes += b.symbol().len() as u64;
            }
        }
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
        move_ms_p50: median(&mut times.clone()),
        move_ms_max: times.iter().copied().fold(0.0, f64::max),
        full_bytes: full_bytes as f64 / fulls as f64,
        full_ms_p50: median(&mut full_times),
    })
}

pub async fn run(rows: usize) -> anyhow::Result<()> {
    anyhow::ensure!(rows > 0, "--rows must be positive");
    let moves = 200.min(rows - 1).max(1);
    let out: Vec<C2Size> = [(80, 24), (132, 40), (200, 60)]
        .into_iter()
        .map(|(w, h)| c2(w, h, rows, moves))
        .collect::<anyhow::Result<_>>()?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
