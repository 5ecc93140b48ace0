//! Display-width text helpers. Every width on screen is a terminal column count from
//! unicode-width, never bytes or chars, so Japanese (two columns a character) lines up.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns `s` takes on a terminal.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `max` columns, ending in `ellipsis` when cut. Never splits a wide
/// character: when the last one does not fit whole, a space pads the column instead.
pub fn truncate(s: &str, max: usize, ellipsis: &str) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let ew = width(ellipsis);
    if max < ew {
        return " ".repeat(max);
    }
    let room = max - ew;
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > room {
            break;
        }
        out.push(c);
        used += w;
    }
    // A wide character that did not fit leaves one column: pad so the column count is exact.
    out.push_str(&" ".repeat(room - used));
    out.push_str(ellipsis);
    out
}

/// `s` truncated or padded with spaces to exactly `cols` columns.
pub fn fit(s: &str, cols: usize, ellipsis: &str) -> String {
    let t = truncate(s, cols, ellipsis);
    let w = width(&t);
    if w < cols {
        format!("{t}{}", " ".repeat(cols - w))
    } else {
        t
    }
}

/// Control characters (from a paste or a server answer) would move the terminal cursor; show
/// them as spaces instead.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_count_columns_not_chars() {
        assert_eq!(width("山田 花子"), 9);
        assert_eq!(width("ﾔﾏﾀﾞ"), 4);
        assert_eq!(width("abc"), 3);
    }

    #[test]
    fn truncation_never_splits_a_wide_character() {
        assert_eq!(truncate("山田花子", 8, "…"), "山田花子");
        // 7 columns: 6 for text + 1 for the ellipsis; 山田花 is 6.
        assert_eq!(truncate("山田花子です", 7, "…"), "山田花…");
        // 6 columns: 5 for text: 山田 (4) + one pad column.
        let t = truncate("山田花子です", 6, "…");
        assert_eq!(t, "山田 …");
        assert_eq!(width(&t), 6);
        assert_eq!(truncate("山田", 0, "…"), "");
    }

    #[test]
    fn fit_pads_to_exact_width() {
        for cols in 0..12 {
            assert_eq!(width(&fit("やまだ はなこ", cols, "…")), cols, "{cols}");
            assert_eq!(width(&fit("R8-00001", cols, "...")), cols, "{cols}");
        }
    }

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(sanitize("a\x1b[2Jb\n"), "a [2Jb ");
    }
}
