//! The terminal: raw mode and the alternate screen on, and always off again (normal exit,
//! error, panic, SIGTERM/SIGHUP). Output goes through [`FrameWriter`]: one buffered write per
//! frame, wrapped in synchronized-output markers so the terminal shows whole frames only.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};

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

/// The crossterm backend with two fixes for a slow link:
/// - after a double-width character the terminal cursor is already two columns on, so the next
///   cell needs no cursor move; ratatui's crossterm backend moves it anyway (eight bytes or so
///   per kanji). An empty filler cell in the second column keeps the run contiguous.
/// - cursor show/hide/move are queued, not flushed at once, so a frame (content and cursor
///   placement) leaves in one write through [`FrameWriter`].
pub struct TermBackend<W: Write> {
    inner: ratatui::backend::CrosstermBackend<W>,
}

impl<W: Write> TermBackend<W> {
    pub fn new(writer: W) -> Self {
        TermBackend {
            inner: ratatui::backend::CrosstermBackend::new(writer),
        }
    }
    #[cfg(test)]
    pub fn writer(&self) -> &W {
        self.inner.writer()
    }
}

impl<W: Write> ratatui::backend::Backend for TermBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        let mut cells: Vec<(u16, u16, ratatui::buffer::Cell)> = Vec::new();
        let mut prev: Option<(u16, u16, usize)> = None;
        for (x, y, cell) in content {
            if let Some((px, py, w)) = prev {
                // The hidden second column of a wide character just printed.
                if py == y && w == 2 && x == px + 2 {
                    let mut filler = cells.last().map(|c| c.2.clone()).unwrap_or_default();
                    filler.set_symbol("");
                    cells.push((px + 1, y, filler));
                }
            }
            prev = Some((x, y, crate::text::width(cell.symbol())));
            cells.push((x, y, cell.clone()));
        }
        self.inner.draw(cells.iter().map(|(x, y, c)| (*x, *y, c)))
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        crossterm::queue!(self.inner.writer_mut(), cursor::Hide)
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        crossterm::queue!(self.inner.writer_mut(), cursor::Show)
    }
    fn get_cursor_position(&mut self) -> io::Result<ratatui::layout::Position> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(
        &mut self,
        position: P,
    ) -> io::Result<()> {
        let p = position.into();
        crossterm::queue!(self.inner.writer_mut(), cursor::MoveTo(p.x, p.y))
    }
    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ratatui::backend::ClearType) -> io::Result<()> {
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
