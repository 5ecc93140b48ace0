//! A one-line text input on ratatui-textarea, which places the terminal cursor where the
//! next character goes so the IME's candidate window opens at the input.

use crossterm::event::KeyEvent;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::Frame;
use ratatui_textarea::{CursorMove, TextArea};

#[derive(Clone)]
pub struct LineInput {
    pub area: TextArea<'static>,
}

impl std::fmt::Debug for LineInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LineInput({:?})", self.value())
    }
}

impl LineInput {
    pub fn new(value: &str) -> LineInput {
        let mut area = TextArea::new(vec![value.to_string()]);
        area.move_cursor(CursorMove::End);
        area.set_cursor_line_style(Style::default());
        LineInput { area }
    }

    pub fn masked(mut self) -> LineInput {
        self.area.set_mask_char('*');
        self
    }

    pub fn value(&self) -> String {
        self.area.lines().join("")
    }

    pub fn set(&mut self, v: &str) {
        let mask = self.area.mask_char();
        *self = LineInput::new(v);
        if let Some(m) = mask {
            self.area.set_mask_char(m);
        }
    }

    /// A key for the input. Enter never makes a second line here.
    pub fn input(&mut self, k: KeyEvent) -> bool {
        if k.code == crossterm::event::KeyCode::Enter {
            return false;
        }
        self.area.input(k)
    }

    /// Pasted text, on one line: line breaks and control characters become spaces.
    pub fn paste(&mut self, s: &str) {
        let one: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.area.insert_str(one.trim_end());
    }

    /// Draws the input; when focused, puts the terminal cursor at the insertion point.
    pub fn draw(&mut self, f: &mut Frame, area: Rect, style: Style, focused: bool) {
        self.area.set_style(style);
        self.area
            .set_cursor_style(if focused { Style::default() } else { style });
        f.render_widget(&self.area, area);
        if focused {
            let c = self.area.screen_cursor();
            let (top, left) = self.area.scroll_offset();
            let x = area.x + (c.col as u16).saturating_sub(left);
            let y = area.y + (c.row as u16).saturating_sub(top);
            if x < area.right() && y < area.bottom() {
                f.set_cursor_position(Position { x, y });
            }
        }
    }
}
