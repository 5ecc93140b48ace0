//! Normal forms of names and readings, shared by indexing and querying so both agree.

use unicode_normalization::UnicodeNormalization;

/// Hiragana → katakana for one char (ぁ..ゖ and ゝゞ map by a fixed offset).
pub fn hira_to_kata(c: char) -> char {
    match c {
        '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => {
            char::from_u32(c as u32 + 0x60).unwrap_or(c)
        }
        _ => c,
    }
}

/// The search form of a name or reading: NFKC (which also folds half-width kana and full-width
/// latin), every kind of space removed, hiragana folded to katakana.
pub fn search_key(s: &str) -> String {
    s.nfkc()
        .filter(|c| !c.is_whitespace() && *c != '\u{200B}')
        .map(hira_to_kata)
        .collect()
}

/// Whether a reading is written in kana (katakana or hiragana, including half-width katakana,
/// the long-vowel mark and spaces), as a フリガナ must be.
pub fn is_kana_reading(s: &str) -> bool {
    search_key(s)
        .chars()
        .all(|c| matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー' | '・' | 'ヽ' | 'ヾ'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_key_folds_width_space_and_kana() {
        assert_eq!(search_key("やまだ　はなこ"), "ヤマダハナコ");
        assert_eq!(search_key("ﾔﾏﾀﾞ ﾊﾅｺ"), "ヤマダハナコ");
        assert_eq!(search_key("山田\u{3000}花子"), "山田花子");
        assert_eq!(search_key("ＡＢＣ"), "ABC");
    }

    #[test]
    fn kana_reading_check() {
        assert!(is_kana_reading("ヤマダ"));
        assert!(is_kana_reading("やまだ はなこ"));
        assert!(is_kana_reading("ｵｰﾉ"));
        assert!(!is_kana_reading("山田"));
        assert!(!is_kana_reading("Yamada"));
    }
}
