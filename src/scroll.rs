//! Scrolling with the terminal's own scroll region. When a band of rows of the new frame is the
//! shown frame's band moved up or down by a few rows (a list scrolled by one row), the terminal
//! is told to move those rows itself (DECSTBM, then line feeds at the region's bottom or reverse
//! indexes at its top) instead of being sent every character again. The model of the shown frame
//! is moved the same way, so the ordinary cell diff that follows sends only the rows the scroll
//! exposed and whatever else changed.
//!
//! Only VT100 sequences are used (`CSI t;b r`, `CSI r H`, LF, `ESC M`, `CSI r`), which every
//! terminal that knows scroll regions has: xterm and its kin, Tera Term, PuTTY, tmux, screen,
//! the Linux console. Regions are always the full width: DECSTBM has no columns.

use std::hash::{Hash, Hasher};

use ratatui::buffer::{Buffer, Cell};

/// Sets the scroll region back to the whole screen (and the cursor to the top left).
pub const END: &[u8] = b"\x1b[r";

/// One scroll of the rows `top..=bottom` (0-based, buffer rows) by `by` rows: positive moves the
/// content up (new blank rows at the bottom), negative down (new blank rows at the top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scroll {
    pub top: u16,
    pub bottom: u16,
    pub by: i16,
}

impl Scroll {
    fn rows(&self) -> u16 {
        self.by.unsigned_abs()
    }

    /// The bytes that make the terminal scroll the region: set it, move to its bottom (top) row,
    /// one line feed (reverse index) per row. `y0` is the buffer's first row on the screen.
    /// The cursor is then at [`Scroll::cursor_after`]; the region stays set until [`END`]
    /// (cells may be written meanwhile: nothing written scrolls, since a cell in the last
    /// column is always followed by a cursor move).
    pub fn start(&self, y0: u16) -> Vec<u8> {
        let (t, b) = (y0 + self.top + 1, y0 + self.bottom + 1);
        let mut s = format!("\x1b[{t};{b}r").into_bytes();
        if self.by > 0 {
            s.extend_from_slice(format!("\x1b[{b}H").as_bytes());
            s.extend(std::iter::repeat_n(b'\n', self.rows() as usize));
        } else {
            s.extend_from_slice(format!("\x1b[{t}H").as_bytes());
            for _ in 0..self.rows() {
                s.extend_from_slice(b"\x1bM");
            }
        }
        s
    }

    /// Where the cursor is after [`Scroll::start`] (buffer column and row): the first cell of
    /// the row the scroll exposed last, which is often the first cell written next.
    pub fn cursor_after(&self) -> (u16, u16) {
        (0, if self.by > 0 { self.bottom } else { self.top })
    }

    /// The whole scroll, region reset included.
    pub fn sequence(&self, y0: u16) -> Vec<u8> {
        let mut s = self.start(y0);
        s.extend_from_slice(END);
        s
    }

    /// Moves the rows of `buf` as the terminal moves them: rows leaving the region are gone,
    /// the rows it exposes are blank in the default colours (the colours are reset when a scroll
    /// is sent, as after every frame).
    pub fn apply(&self, buf: &mut Buffer) {
        let w = buf.area.width as usize;
        let (top, bottom) = (self.top as usize, self.bottom as usize);
        let k = self.rows() as usize * w;
        let band = &mut buf.content[top * w..(bottom + 1) * w];
        if self.by > 0 {
            band.rotate_left(k);
            let n = band.len();
            band[n - k..].fill(Cell::default());
        } else {
            band.rotate_right(k);
            band[..k].fill(Cell::default());
        }
    }
}

/// A small multiplicative hasher: rows are hashed every frame, and SipHash's strength is not
/// needed (see `find`: hashes only choose the scroll).
#[derive(Default)]
struct RowHasher(u64);

impl Hasher for RowHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut v = [0u8; 8];
            v[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(v));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// A hash of each row of `buf` (every cell: symbol, colours, modifiers).
pub fn row_hashes(buf: &Buffer) -> Vec<u64> {
    let w = buf.area.width as usize;
    if w == 0 {
        return vec![0; buf.area.height as usize];
    }
    buf.content
        .chunks(w)
        .map(|row| {
            let mut h = RowHasher::default();
            row.hash(&mut h);
            h.finish()
        })
        .collect()
}

/// The shifts looked at: a list moved by one row is the common case; a few more rows cover a
/// mouse wheel or a held key's frames coalescing. A page moves everything and is drawn.
pub const MAX_SHIFT: usize = 8;

fn row(b: &Buffer, y: usize) -> &[Cell] {
    let w = b.area.width as usize;
    &b.content[y * w..(y + 1) * w]
}

/// The scroll that makes the fewest cells left to send, if it saves more than it costs.
/// `ph`/`nh` are `row_hashes` of `prev`/`next`.
pub fn find(prev: &Buffer, ph: &[u64], next: &Buffer, nh: &[u64]) -> Option<Scroll> {
    if prev.area != next.area {
        return None;
    }
    let w = next.area.width as usize;
    let h = next.area.height as usize;
    if w == 0 || h < 2 || ph.len() != h || nh.len() != h {
        return None;
    }
    let cells_differ = |a: &[Cell], b: &[Cell]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    // Rows are matched by their hashes only: a collision would only make the estimate wrong,
    // never the screen, since the cell diff after the scroll compares every cell.
    // What each row costs without a scroll (cells to send).
    let old: Vec<usize> = (0..h)
        .map(|y| {
            if ph[y] == nh[y] {
                0
            } else {
                cells_differ(row(prev, y), row(next, y))
            }
        })
        .collect();
    if old.iter().all(|&c| c == 0) {
        return None;
    }
    let blank = vec![Cell::default(); w];
    let mut best: Option<(isize, Scroll)> = None;
    for k in 1..h.min(MAX_SHIFT + 1) {
        for up in [true, false] {
            // Rows y of `next` that are row src(y) of `prev`.
            let ys = if up { 0..h - k } else { k..h };
            let src = |y: usize| if up { y + k } else { y - k };
            let mut runs: Vec<(usize, usize)> = Vec::new();
            let mut start: Option<usize> = None;
            for y in ys.clone() {
                let m = ph[src(y)] == nh[y];
                match (m, start) {
                    (true, None) => start = Some(y),
                    (false, Some(s)) => {
                        runs.push((s, y - 1));
                        start = None;
                    }
                    _ => {}
                }
            }
            if let Some(s) = start {
                runs.push((s, ys.end - 1));
            }
            // A run only of rows that are already right gains nothing; trim such rows off its
            // ends so the region does not reach over them.
            let runs: Vec<(usize, usize)> = runs
                .into_iter()
                .filter_map(|(mut a, mut e)| {
                    while a <= e && old[a] == 0 {
                        a += 1;
                    }
                    if a > e {
                        return None;
                    }
                    while old[e] == 0 {
                        e -= 1;
                    }
                    Some((a, e))
                })
                .collect();
            // A region may span a few runs of the same shift (the row that loses the selection
            // between them is sent either way).
            for i in 0..runs.len() {
                // Rows between the runs merged so far: sent after the scroll as they differ.
                let mut gaps = 0usize;
                for j in i..runs.len().min(i + 3) {
                    if j > i {
                        if runs[j].0 - runs[j - 1].1 > 5 {
                            break;
                        }
                        for y in runs[j - 1].1 + 1..runs[j].0 {
                            gaps += cells_differ(row(prev, src(y)), row(next, y));
                        }
                    }
                    let (a, e) = (runs[i].0, runs[j].1);
                    let (top, bottom) = if up { (a, e + k) } else { (a - k, e) };
                    let exposed = if up { e + 1..e + k + 1 } else { a - k..a };
                    let new_cost = gaps
                        + exposed
                            .map(|y| cells_differ(&blank, row(next, y)))
                            .sum::<usize>();
                    let old_cost: usize = old[top..=bottom].iter().sum();
                    let sc = Scroll {
                        top: top as u16,
                        bottom: bottom as u16,
                        by: if up { k as i16 } else { -(k as i16) },
                    };
                    let gain = old_cost as isize
                        - new_cost as isize
                        - sc.sequence(next.area.y).len() as isize;
                    if gain > 0 && best.is_none_or(|(g, _)| gain > g) {
                        best = Some((gain, sc));
                    }
                }
            }
        }
    }
    best.map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use ratatui::layout::Rect;

    use super::*;

    fn buf(lines: &[&str]) -> Buffer {
        Buffer::with_lines(lines.iter().copied())
    }

    #[test]
    fn a_list_moved_up_one_row_is_one_scroll_of_its_band() {
        let prev = buf(&["title", "aaaaa", "bbbbb", "ccccc", "ddddd", "stat1"]);
        let next = buf(&["title", "bbbbb", "ccccc", "ddddd", "eeeee", "stat2"]);
        let s = find(&prev, &row_hashes(&prev), &next, &row_hashes(&next)).expect("a scroll");
        assert_eq!(
            s,
            Scroll {
                top: 1,
                bottom: 4,
                by: 1
            }
        );
        let mut moved = prev.clone();
        s.apply(&mut moved);
        assert_eq!(
            moved,
            buf(&["title", "bbbbb", "ccccc", "ddddd", "     ", "stat1"])
        );
        assert_eq!(s.sequence(0), b"\x1b[2;5r\x1b[5H\n\x1b[r");
        assert_eq!(s.sequence(3), b"\x1b[5;8r\x1b[8H\n\x1b[r");
        assert_eq!(s.cursor_after(), (0, 4));
    }

    #[test]
    fn a_list_moved_down_two_rows_is_a_reverse_scroll() {
        let row = |c: char| c.to_string().repeat(20);
        let (t, a, b, c, d, e, f, g) = (
            row('t'),
            row('a'),
            row('b'),
            row('c'),
            row('d'),
            row('e'),
            row('f'),
            row('g'),
        );
        let blank = " ".repeat(20);
        let prev = buf(&[&t, &c, &d, &e, &f, &g]);
        let next = buf(&[&t, &a, &b, &c, &d, &e]);
        let s = find(&prev, &row_hashes(&prev), &next, &row_hashes(&next)).expect("a scroll");
        assert_eq!(
            s,
            Scroll {
                top: 1,
                bottom: 5,
                by: -2
            }
        );
        let mut moved = prev.clone();
        s.apply(&mut moved);
        assert_eq!(moved, buf(&[&t, &blank, &blank, &c, &d, &e]));
        assert_eq!(s.sequence(0), b"\x1b[2;6r\x1b[2H\x1bM\x1bM\x1b[r");
        assert_eq!(s.cursor_after(), (0, 1));
    }

    #[test]
    fn no_scroll_when_nothing_moved_or_too_little_would_be_saved() {
        let a = buf(&["aaaaa", "bbbbb", "ccccc"]);
        assert_eq!(find(&a, &row_hashes(&a), &a, &row_hashes(&a)), None);
        let b = buf(&["aaaaa", "bbbbX", "ccccc"]);
        assert_eq!(find(&a, &row_hashes(&a), &b, &row_hashes(&b)), None);
        // Two short rows moved: the sequence costs more than redrawing them.
        let p = buf(&["ab", "cd", "ef"]);
        let n = buf(&["cd", "ef", "gh"]);
        assert_eq!(find(&p, &row_hashes(&p), &n, &row_hashes(&n)), None);
        let other = Buffer::empty(Rect::new(0, 0, 5, 4));
        assert_eq!(find(&a, &row_hashes(&a), &other, &row_hashes(&other)), None);
    }
}
