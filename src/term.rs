//! The terminal: raw mode and the alternate screen on, and always off again (normal exit,
//! error, panic, SIGTERM/SIGHUP). Frames are drawn with [`draw`] through [`TermBackend`], which
//! sends only what changed (scrolling moved rows with the terminal's scroll region), and leave
//! through [`FrameWriter`]: one buffered write per frame, wrapped in synchronized-output
//! markers so the terminal shows whole frames only.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::buffer::{Buffer, Cell};
use ratatui::style::{Color, Modifier};
use ratatui::{Frame, Terminal};

use crate::scroll;

/// `ESC [ ? 2026 h` / `l`: terminals that know synchronized output hold the frame until the end
/// marker; others ignore both.
pub const BSU: &[u8] = b"\x1b[?2026h";
pub const ESU: &[u8] = b"\x1b[?2026l";

pub struct FrameWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// Every byte sent to the terminal, for the benchmarks.
    pub written: Arc<AtomicU64>,
}

impl<W: Write> FrameWriter<W> {
    #[cfg(test)]
    pub fn sent(&self) -> &W {
        &self.out
    }
    pub fn new(out: W) -> Self {
        FrameWriter {
            out,
            buf: Vec::with_capacity(16 * 1024),
            written: Arc::default(),
        }
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut frame = Vec::with_capacity(self.buf.len() + BSU.len() + ESU.len());
        frame.extend_from_slice(BSU);
        frame.append(&mut self.buf);
        frame.extend_from_slice(ESU);
        self.out.write_all(&frame)?;
        self.written
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.out.flush()
    }
}

pub fn enter() -> io::Result<()> {
    terminal::enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste,
        cursor::Hide
    )
}

/// Puts the terminal back. Safe to call more than once.
pub fn restore() {
    let _ = execute!(
        io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}

/// A panic restores the terminal before the message is printed, so it is readable.
pub fn install_panic_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        prev(info);
    }));
}

/// The terminal backend, made for a slow link. It keeps what the terminal shows and, given the
/// whole new frame by [`draw`], decides itself what to send:
/// - a band of rows that moved up or down (a list scrolled) is moved by the terminal's own
///   scroll region ([`crate::scroll`]) rather than sent again;
/// - the cells that differ are written by [`TermBackend::send`]: no cursor move where the
///   cursor already is (after a double-width character it is two columns on; ratatui's
///   crossterm backend moves it anyway, eight bytes or so per kanji), short moves or the
///   skipped cells themselves otherwise, one SGR sequence per change of colours;
/// - a write over either half of a double-width character the terminal shows is followed by
///   the cell of its other half ([`updates`]);
/// - cursor show/hide/move are queued, not flushed at once, so a frame (content and cursor
///   placement) leaves in one write through [`FrameWriter`].
///
/// A frame drawn with `Terminal::draw` instead of [`draw`] is sent as ratatui diffs it, and the
/// one after it is diffed against ratatui's idea of the screen, not scrolled.
pub struct TermBackend<W: Write> {
    inner: ratatui::backend::CrosstermBackend<W>,
    scroll_regions: bool,
    /// What the terminal shows: the last frame handed over by [`draw`] and its row hashes.
    /// `None` after a clear or a frame drawn without [`draw`].
    shown: Option<(Buffer, Vec<u64>)>,
    /// The frame being drawn, handed over by [`draw`] from inside ratatui's draw.
    next: Arc<Mutex<Option<Buffer>>>,
    /// Whether the cursor was last shown or hidden (`None`: not known), so a frame does not
    /// say it again.
    cursor_shown: Option<bool>,
    cursor_at: ratatui::layout::Position,
    /// Frames in which a region was scrolled, for the benchmarks and tests.
    pub scrolls: u64,
}

impl<W: Write> TermBackend<W> {
    pub fn new(writer: W) -> Self {
        TermBackend {
            inner: ratatui::backend::CrosstermBackend::new(writer),
            scroll_regions: true,
            shown: None,
            next: Arc::default(),
            cursor_shown: None,
            cursor_at: ratatui::layout::Position::ORIGIN,
            scrolls: 0,
        }
    }
    /// Scroll regions on (the default) or off (`scroll_regions = false` in the settings, or
    /// `TSUNAGU_SCROLL_REGIONS=off`): off, the changed cells of every frame are written, and
    /// no scroll region is ever set.
    pub fn with_scroll_regions(mut self, on: bool) -> Self {
        self.scroll_regions = on;
        self
    }
    #[cfg(test)]
    pub fn writer(&self) -> &W {
        self.inner.writer()
    }

    /// Writes the cells: a cursor move only where the next cell is not where the cursor is
    /// (forward on the same row: `CSI n C`, or the skipped cells themselves when they are
    /// fewer bytes and need no colour change, which takes `frame`, the whole new frame), one
    /// SGR sequence where the style changes, and the colours back to the defaults at the end.
    /// `at`: where the cursor is, if known.
    fn send<'a>(
        &mut self,
        content: impl Iterator<Item = (u16, u16, &'a Cell)>,
        frame: Option<&Buffer>,
        mut at: Option<(u16, u16)>,
    ) -> io::Result<()> {
        let mut out: Vec<u8> = Vec::with_capacity(4096);
        let mut pen = Pen::default();
        for (x, y, cell) in content {
            match at {
                Some((cx, cy)) if cy == y && cx == x => {}
                Some((cx, cy)) if cy == y && cx < x => {
                    let n = x - cx;
                    let cuf = if n == 1 {
                        b"\x1b[C".to_vec()
                    } else {
                        format!("\x1b[{n}C").into_bytes()
                    };
                    match frame.and_then(|f| skipped_cells(f, cx, x, y, pen)) {
                        Some(cells) if cells.len() <= cuf.len() => out.extend_from_slice(&cells),
                        _ => out.extend_from_slice(&cuf),
                    }
                }
                _ => out.extend_from_slice(format!("\x1b[{};{}H", y + 1, x + 1).as_bytes()),
            }
            let want = Pen::of(cell);
            if want != pen {
                want.sgr(pen == Pen::default(), &mut out);
                pen = want;
            }
            out.extend_from_slice(cell.symbol().as_bytes());
            at = Some((x + crate::text::width(cell.symbol()) as u16, y));
        }
        if pen != Pen::default() {
            out.extend_from_slice(b"\x1b[m");
        }
        self.inner.writer_mut().write_all(&out)
    }
}

/// The colours and attributes the terminal writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pen {
    fg: Color,
    bg: Color,
    underline: Color,
    modifier: Modifier,
}

impl Pen {
    fn of(c: &Cell) -> Pen {
        Pen {
            fg: c.fg,
            bg: c.bg,
            underline: c.underline_color,
            modifier: c.modifier,
        }
    }

    /// One SGR sequence that sets exactly this pen: reset (unless `from_default`: the pen is
    /// at the defaults already), then what differs from the defaults. The 16 ANSI colours as
    /// `30–37`/`90–97` (`40–47`/`100–107`), which every colour terminal knows; indexed and
    /// RGB colours as `38;5;n` and `38;2;r;g;b`.
    fn sgr(&self, from_default: bool, out: &mut Vec<u8>) {
        let mut codes: Vec<String> = Vec::new();
        if !from_default {
            codes.push("0".into());
        }
        for (m, code) in [
            (Modifier::BOLD, "1"),
            (Modifier::DIM, "2"),
            (Modifier::ITALIC, "3"),
            (Modifier::UNDERLINED, "4"),
            (Modifier::SLOW_BLINK, "5"),
            (Modifier::RAPID_BLINK, "6"),
            (Modifier::REVERSED, "7"),
            (Modifier::HIDDEN, "8"),
            (Modifier::CROSSED_OUT, "9"),
        ] {
            if self.modifier.contains(m) {
                codes.push(code.into());
            }
        }
        for (c, base) in [(self.fg, 30u16), (self.bg, 40)] {
            match c {
                Color::Reset => {}
                Color::Indexed(i) => codes.push(format!("{};5;{i}", base + 8)),
                Color::Rgb(r, g, b) => codes.push(format!("{};2;{r};{g};{b}", base + 8)),
                named => {
                    let i = ansi_index(named);
                    codes.push(if i < 8 { base + i } else { base + 60 + i - 8 }.to_string());
                }
            }
        }
        match self.underline {
            Color::Reset => {}
            Color::Indexed(i) => codes.push(format!("58;5;{i}")),
            Color::Rgb(r, g, b) => codes.push(format!("58;2;{r};{g};{b}")),
            named => codes.push(format!("58;5;{}", ansi_index(named))),
        }
        out.extend_from_slice(format!("\x1b[{}m", codes.join(";")).as_bytes());
    }
}

/// The palette index of a named colour (as crossterm and ratatui number them).
fn ansi_index(c: Color) -> u16 {
    match c {
        Color::Black => 0,
        Color::Red => 1,
        Color::Green => 2,
        Color::Yellow => 3,
        Color::Blue => 4,
        Color::Magenta => 5,
        Color::Cyan => 6,
        Color::Gray => 7,
        Color::DarkGray => 8,
        Color::LightRed => 9,
        Color::LightGreen => 10,
        Color::LightYellow => 11,
        Color::LightBlue => 12,
        Color::LightMagenta => 13,
        Color::LightCyan => 14,
        Color::White => 15,
        Color::Reset | Color::Indexed(_) | Color::Rgb(..) => 0,
    }
}

/// The cells `from..to` of row `y` as they are in `frame`, to be written instead of a cursor
/// move: only when they are in the pen's colours and no double-width character crosses `to`.
fn skipped_cells(frame: &Buffer, from: u16, to: u16, y: u16, pen: Pen) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut x = from;
    while x < to {
        let c = frame.cell((x, y))?;
        let w = crate::text::width(c.symbol()) as u16;
        if Pen::of(c) != pen || w == 0 || x + w > to {
            return None;
        }
        out.extend_from_slice(c.symbol().as_bytes());
        x += w;
    }
    Some(out)
}

/// The cells of `next` to write over `shown`: ratatui's diff, plus the cells a write would
/// break beside it. A terminal that writes over either half of a double-width character erases
/// the whole character, so the cell left of a write over a second half, and the cell right of a
/// write over a first half, must be written again (ratatui's diff sends them only sometimes).
pub fn updates<'a>(shown: &Buffer, next: &'a Buffer) -> Vec<(u16, u16, &'a Cell)> {
    let area = next.area;
    let wide = |b: &Buffer, x: u16, y: u16| {
        b.cell((x, y))
            .is_some_and(|c| crate::text::width(c.symbol()) >= 2)
    };
    // The cell of `next` that covers column x: a second half belongs to the cell on its left.
    let start_of = |x: u16, y: u16| {
        if x > area.x && wide(next, x - 1, y) {
            x - 1
        } else {
            x
        }
    };
    let mut pos: Vec<(u16, u16)> = shown
        .diff(next)
        .into_iter()
        .map(|(x, y, _)| (x, y))
        .collect();
    let index =
        |x: u16, y: u16| (y - area.y) as usize * area.width as usize + (x - area.x) as usize;
    let mut written = vec![false; area.area() as usize];
    for &(x, y) in &pos {
        written[index(x, y)] = true;
    }
    let mut todo = pos.clone();
    while let Some((x, y)) = todo.pop() {
        let w = crate::text::width(next[(x, y)].symbol()).max(1) as u16;
        let last = x + w - 1;
        let mut broken = Vec::new();
        if x > area.x && wide(shown, x - 1, y) {
            broken.push(start_of(x - 1, y));
        }
        if last + 1 < area.right() && wide(shown, last, y) {
            broken.push(start_of(last + 1, y));
        }
        for b in broken {
            if !written[index(b, y)] {
                written[index(b, y)] = true;
                pos.push((b, y));
                todo.push((b, y));
            }
        }
    }
    pos.sort_by_key(|&(x, y)| (y, x));
    pos.into_iter()
        .map(|(x, y)| (x, y, &next[(x, y)]))
        .collect()
}

/// Draws one frame on `terminal` as `Terminal::draw` does, handing the whole frame to the
/// backend first so it can scroll a region instead of sending a moved band again.
pub fn draw<W: Write>(
    terminal: &mut Terminal<TermBackend<W>>,
    render: impl FnOnce(&mut Frame),
) -> io::Result<()> {
    let slot = terminal.backend().next.clone();
    terminal.draw(|f| {
        render(f);
        *slot.lock().expect("frame slot") = Some(f.buffer_mut().clone());
    })?;
    Ok(())
}

impl<W: Write> ratatui::backend::Backend for TermBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        let next = self.next.lock().expect("frame slot").take();
        let Some(next) = next else {
            self.shown = None;
            return self.send(content, None, None);
        };
        let nh = if self.scroll_regions {
            scroll::row_hashes(&next)
        } else {
            Vec::new()
        };
        match self.shown.take() {
            Some((mut shown, sh)) if shown.area == next.area => {
                // ratatui's diff (`content`) is not used: the cells are diffed here against
                // what the terminal shows, after the scroll if there is one, with the cells a
                // write would break next to a double-width character added.
                drop(content);
                let sc = if self.scroll_regions && shown.area.x == 0 {
                    scroll::find(&shown, &sh, &next, &nh)
                } else {
                    None
                };
                let mut at = None;
                if let Some(sc) = sc {
                    // The colours are at their defaults between frames, so the rows the scroll
                    // exposes are blank in the default colours, as `apply` has them.
                    self.inner.writer_mut().write_all(&sc.start(next.area.y))?;
                    sc.apply(&mut shown);
                    let (x, y) = sc.cursor_after();
                    at = Some((x + next.area.x, y + next.area.y));
                    self.scrolls += 1;
                }
                let cells = updates(&shown, &next);
                self.send(cells.into_iter(), Some(&next), at)?;
                if sc.is_some() {
                    self.inner.writer_mut().write_all(scroll::END)?;
                }
            }
            _ => self.send(content, Some(&next), None)?,
        }
        self.shown = Some((next, nh));
        Ok(())
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        if self.cursor_shown == Some(false) {
            return Ok(());
        }
        self.cursor_shown = Some(false);
        crossterm::queue!(self.inner.writer_mut(), cursor::Hide)
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        if self.cursor_shown == Some(true) {
            return Ok(());
        }
        self.cursor_shown = Some(true);
        crossterm::queue!(self.inner.writer_mut(), cursor::Show)
    }
    /// Where the cursor was last placed. Asking the terminal (crossterm does) costs a round
    /// trip, up to two seconds on a slow link, and ratatui asks only to put the cursor back
    /// after a clear (Ctrl+L), where the next frame places it anyway.
    fn get_cursor_position(&mut self) -> io::Result<ratatui::layout::Position> {
        Ok(self.cursor_at)
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(
        &mut self,
        position: P,
    ) -> io::Result<()> {
        let p = position.into();
        self.cursor_at = p;
        crossterm::queue!(self.inner.writer_mut(), cursor::MoveTo(p.x, p.y))
    }
    fn clear(&mut self) -> io::Result<()> {
        self.shown = None;
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ratatui::backend::ClearType) -> io::Result<()> {
        self.shown = None;
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> io::Result<ratatui::layout::Size> {
        self.inner.size()
    }
    fn window_size(&mut self) -> io::Result<ratatui::backend::WindowSize> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> io::Result<()> {
        ratatui::backend::Backend::flush(&mut self.inner)
    }
}

#[cfg(test)]
mod tests {
    use ratatui::layout::Rect;
    use ratatui::widgets::Paragraph;
    use ratatui::{Terminal, TerminalOptions, Viewport};

    use super::*;

    fn frames(draw: impl Fn(&mut ratatui::Frame)) -> (String, u64) {
        let writer = FrameWriter::new(Vec::<u8>::new());
        let written = writer.written.clone();
        let mut t = Terminal::with_options(
            TermBackend::new(writer),
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, 20, 2)),
            },
        )
        .unwrap();
        t.draw(|f| draw(f)).unwrap();
        let out = String::from_utf8(t.backend().writer().sent().clone()).unwrap();
        (out, written.load(Ordering::Relaxed))
    }

    #[test]
    fn wide_characters_are_written_without_cursor_moves_between_them() {
        let (out, _) = frames(|f| f.render_widget(Paragraph::new("山田　太郎・ヤマダ"), f.area()));
        assert!(out.contains("\x1b[1;1H山田　太郎・ヤマダ\x1b"), "{out:?}");
    }

    #[test]
    fn a_frame_with_a_cursor_leaves_in_one_synchronized_write() {
        let (out, written) = frames(|f| {
            f.render_widget(Paragraph::new("氏名: 山田"), f.area());
            f.set_cursor_position((10, 0));
        });
        assert_eq!(out.matches("\x1b[?2026h").count(), 1, "{out:?}");
        assert!(
            out.starts_with("\x1b[?2026h") && out.ends_with("\x1b[?2026l"),
            "{out:?}"
        );
        // The cursor placement is inside the frame, not a second write after it.
        assert!(out.contains("\x1b[1;11H"), "{out:?}");
        assert_eq!(written as usize, out.len());
    }
}
