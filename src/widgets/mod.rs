//! Small drawing pieces shared by the screens.
pub mod field;
pub mod input;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::app::App;
use crate::text;

/// A title bar: the whole row in the `section` style. No box-drawing characters (Tera Term
/// draws those two columns wide in its Japanese set-up).
pub fn title_bar(f: &mut Frame, area: Rect, app: &App, title: &str, right: &str) {
    let w = area.width as usize;
    let rw = text::width(right);
    let left = text::fit(
        &format!(" {title}"),
        w.saturating_sub(rw + 1),
        app.look.ellipsis,
    );
    let line = format!("{left}{right} ");
    f.render_widget(
        Paragraph::new(text::fit(&line, w, app.look.ellipsis)).style(app.theme.style("section")),
        area,
    );
}

/// Makes room for something drawn over `area`: a double-width character whose second half lies
/// under the area's left edge is blanked. Left in the buffer, it would hide the area's first
/// column (ratatui sends no cell that a double-width character covers, and a terminal draws
/// the character over it), so a pop-up's left border would disappear. A character cut by the
/// right edge needs nothing: its first half is overdrawn and its second half is a blank.
pub fn clear_left_edge(buf: &mut Buffer, area: Rect) {
    let area = area.intersection(buf.area);
    if area.is_empty() || area.x == buf.area.x {
        return;
    }
    for y in area.top()..area.bottom() {
        let c = &mut buf[(area.x - 1, y)];
        if text::width(c.symbol()) >= 2 {
            c.set_symbol(" ");
        }
    }
}

/// An overlay's frame: cleared area, ASCII borders with `--ascii`, otherwise a title bar only.
pub fn overlay(f: &mut Frame, area: Rect, app: &App, title: &str, hint: &str) -> Rect {
    clear_left_edge(f.buffer_mut(), area);
    f.render_widget(Clear, area);
    f.render_widget(Block::default().style(app.theme.style("normal")), area);
    if app.look.ascii {
        let block = Block::default()
            .borders(Borders::ALL)
            .border_set(ratatui::symbols::border::Set {
                top_left: "+",
                top_right: "+",
                bottom_left: "+",
                bottom_right: "+",
                vertical_left: "|",
                vertical_right: "|",
                horizontal_top: "-",
                horizontal_bottom: "-",
            })
            .title(Line::from(Span::styled(
                format!(" {title} "),
                app.theme.style("title"),
            )));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let hint_area = Rect {
            y: inner.bottom().saturating_sub(1),
            height: 1.min(inner.height),
            ..inner
        };
        f.render_widget(
            Paragraph::new(text::fit(hint, inner.width as usize, app.look.ellipsis))
                .style(app.theme.style("dim")),
            hint_area,
        );
        Rect {
            height: inner.height.saturating_sub(1),
            ..inner
        }
    } else {
        title_bar(f, Rect { height: 1, ..area }, app, title, "");
        let hint_area = Rect {
            y: area.bottom().saturating_sub(1),
            height: 1,
            ..area
        };
        f.render_widget(
            Paragraph::new(text::fit(
                &format!(" {hint}"),
                area.width as usize,
                app.look.ellipsis,
            ))
            .style(app.theme.style("status")),
            hint_area,
        );
        Rect {
            x: area.x + 1,
            y: area.y + 1,
            width: area.width.saturating_sub(2),
            height: area.height.saturating_sub(2),
        }
    }
}

/// A rectangle centred in `r`, at most `w`×`h`.
pub fn centered(r: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(r.width);
    let h = h.min(r.height);
    Rect {
        x: r.x + (r.width - w) / 2,
        y: r.y + (r.height - h) / 2,
        width: w,
        height: h,
    }
}

/// One line of text cut to the area's width, in a style.
pub fn line(f: &mut Frame, area: Rect, s: &str, style: Style, ellipsis: &str) {
    if area.height == 0 {
        return;
    }
    let t = text::fit(&text::sanitize(s), area.width as usize, ellipsis);
    f.render_widget(Paragraph::new(t).style(style), Rect { height: 1, ..area });
}
