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

/// Whether a terminal would act on `c` instead of showing it: control characters (C0, DEL, C1:
/// escape sequences move the cursor or set the window title) and the bidirectional embedding,
/// override and isolate controls and marks (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F,
/// U+061C), which reorder what follows.
pub fn is_terminal_control(c: char) -> bool {
    c.is_control()
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A string from the server made safe to keep and to show: every terminal control becomes
/// U+FFFD, except line feed and tab, which long texts hold (the drawing helpers turn them into
/// spaces where one line is drawn). Applied to every reply as it is decoded
/// (`api::decode_reply`).
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| is_terminal_control(c) && c != '\n' && c != '\t';
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    s.chars()
        .map(|c| if unsafe_char(c) { '\u{FFFD}' } else { c })
        .collect()
}

/// Control characters (from a paste or a server answer) would move the terminal cursor; show
/// them, line breaks and tabs included, as spaces instead.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if is_terminal_control(c) { ' ' } else { c })
        .collect()
}

/// As [`sanitize`], keeping the line breaks (for texts drawn over several lines).
pub fn sanitize_lines(s: &str) -> String {
    s.split('\n').map(sanitize).collect::<Vec<_>>().join("\n")
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
        assert_eq!(sanitize("a\u{202E}b\u{2066}c\u{9b}d"), "a b c d");
        assert_eq!(sanitize("a\u{200F}b\u{061C}c"), "a b c");
    }

    #[test]
    fn server_strings_lose_every_terminal_control_but_line_breaks_and_tabs() {
        let title = "\x1b]0;PWNED\x07名前\u{9b}2J\u{202E}逆\r\n次の行\t列\u{7f}";
        let safe = terminal_safe(title);
        assert_eq!(
            safe,
            "\u{FFFD}]0;PWNED\u{FFFD}名前\u{FFFD}2J\u{FFFD}逆\u{FFFD}\n次の行\t列\u{FFFD}"
        );
        assert!(matches!(
            terminal_safe("普通の文字列\n二行目"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}

/// `s` broken into lines of at most `cols` columns (at any character: Japanese has no spaces
/// to break at); each line of the input starts a new line, an empty one stays empty.
pub fn wrap(s: &str, cols: usize) -> Vec<String> {
    let cols = cols.max(2);
    let mut out = Vec::new();
    for line in s.split('\n') {
        let mut cur = String::new();
        let mut used = 0;
        for c in line.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > cols {
                out.push(std::mem::take(&mut cur));
                used = 0;
            }
            cur.push(c);
            used += w;
        }
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod wrap_tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_character_within_the_width() {
        let s = "児童の安全を確認した。\n\n母親と面接しabc。";
        for cols in 2..20 {
            let lines = wrap(s, cols);
            assert!(lines.iter().all(|l| width(l) <= cols), "{cols}: {lines:?}");
            assert_eq!(
                lines.concat(),
                s.replace('\n', ""),
                "nothing lost at {cols}"
            );
        }
        assert_eq!(wrap("あいう", 4), vec!["あい", "う"]);
        assert_eq!(wrap("a\n\nb", 10), vec!["a", "", "b"]);
    }
}
