//! Normal forms of names and readings, shared by indexing and querying so both agree.
//!
//! Each step is its own function, tested on its own:
//! 1. [`search_key`]: NFKC (which also folds half-width kana and full-width latin and digits),
//!    variation selectors dropped ([`drop_variation_selectors`]), every kind of space and
//!    invisible format character removed, hiragana folded to katakana ([`hira_to_kata`]);
//! 2. [`name_key`]: `search_key` plus kanji variant folding ([`crate::variants`]), including
//!    the compatibility ideographs NFKC leaves alone (U+FA11 﨑 …);
//! 3. [`reading_key`]: the katakana reading as `search_key` gives it, without middle dots;
//! 4. [`loose_reading`]: a looser reading key where small kana, voiced-mark variants and long
//!    vowels no longer count (ヂ/ジ, ヅ/ズ, ヶ/ケ, オオノ/オーノ/オノ). Equal loose keys mean
//!    "similar", not "same": ranking prefers equal readings;
//! 5. [`loose_loanword`]: the loose key after [`loanword_fold`], where loanword spellings meet
//!    the kana they are conventionally written with (ヴァ/バ, ティ/チ, フィ/ヒ …): close, ranked
//!    below a similar reading.

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

/// Whether `c` is a variation selector: SVS U+FE00–FE0F, IVS U+E0100–E01EF (Mongolian free
/// variation selectors U+180B–180D too). They choose a glyph, never a different character.
pub fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' | '\u{180B}'..='\u{180D}')
}

/// The string without its variation selectors (葛󠄀 → 葛).
pub fn drop_variation_selectors(s: &str) -> String {
    s.chars().filter(|c| !is_variation_selector(*c)).collect()
}

/// Spaces of every kind and invisible format characters (zero-width space and joiners, BOM,
/// word joiner) that copy and paste brings into names.
fn is_space_or_invisible(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Unicode NFKC alone, nothing else: the "exact after NFKC" baseline of the S2 benchmark.
pub fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// The search form of a name or reading: NFKC, variation selectors and every kind of space
/// removed, hiragana folded to katakana. Kanji are kept as written.
pub fn search_key(s: &str) -> String {
    s.nfkc()
        .filter(|c| !is_variation_selector(*c) && !is_space_or_invisible(*c))
        .map(hira_to_kata)
        .collect()
}

/// The search form of a name with kanji variants folded: 髙橋 and 高橋 give the same key. The
/// small ヶ and ヵ inside a written name (一ヶ谷, 霞ヶ浦) are interchangeable with ケ there, so
/// they fold to ケ too (in readings, [`loose_reading`] handles them).
pub fn name_key(s: &str) -> String {
    crate::variants::fold(&search_key(s))
        .chars()
        .map(|c| if matches!(c, 'ヶ' | 'ヵ') { 'ケ' } else { c })
        .collect()
}

/// The search form of a reading (フリガナ): katakana, without the middle dots some systems put
/// between family and given name.
pub fn reading_key(s: &str) -> String {
    search_key(s)
        .chars()
        .filter(|c| !matches!(c, '・' | '=' | '゠'))
        .collect()
}

/// Whether every char is katakana (after [`search_key`]), i.e. the string is a reading.
pub fn is_katakana(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー' | 'ヽ' | 'ヾ'))
}

/// Small kana and voiced-mark variants folded to the form most often written.
fn loose_char(c: char) -> char {
    match c {
        'ァ' => 'ア',
        'ィ' | 'ヰ' => 'イ',
        'ゥ' => 'ウ',
        'ェ' | 'ヱ' => 'エ',
        'ォ' | 'ヲ' => 'オ',
        'ッ' => 'ツ',
        'ャ' => 'ヤ',
        'ュ' => 'ユ',
        'ョ' => 'ヨ',
        'ヮ' => 'ワ',
        'ヵ' => 'カ',
        'ヶ' => 'ケ',
        'ヂ' => 'ジ',
        'ヅ' => 'ズ',
        // ヴ (and ヷヸヹヺ) are loanword spellings: [`loanword_fold`] folds them, so that ヴァ
        // meets バ and not ブア.
        other => other,
    }
}

/// The vowel a (large, loose-folded) katakana ends in.
fn vowel(c: char) -> Option<char> {
    const ROWS: [(&str, char); 5] = [
        ("アカガサザタダナハバパマヤラワ", 'a'),
        ("イキギシジチヂニヒビピミリ", 'i'),
        ("ウクグスズツヅヌフブプムユル", 'u'),
        ("エケゲセゼテデネヘベペメレ", 'e'),
        ("オコゴソゾトドノホボポモヨロ", 'o'),
    ];
    ROWS.iter()
        .find(|(row, _)| row.contains(c))
        .map(|(_, v)| *v)
}

/// Whether vowel kana `c` after a kana ending in `prev` only lengthens it (オオ, オウ, ユウ,
/// エイ, イイ, アア), as the long-vowel mark ー does.
fn lengthens(prev: char, c: char) -> bool {
    matches!(
        (prev, c),
        ('o', 'オ' | 'ウ') | ('u', 'ウ') | ('e', 'イ' | 'エ') | ('i', 'イ') | ('a', 'ア')
    )
}

/// The loose reading key: [`reading_key`], small kana made large, ヂ/ヅ/ヶ folded, and long
/// vowels (ー, or a vowel that only lengthens the one before) dropped. オオノ, オーノ, オノ and
/// オウノ all give オノ.
pub fn loose_reading(s: &str) -> String {
    loosen(&reading_key(s))
}

/// Loanword spellings (外来語の表記) and the conventional kana they are also written with, as
/// listed in the Cabinet notice 「外来語の表記」 (内閣告示第二号, 1991): ヴァ/バ (バイオリン),
/// ティ/チ and ディ/ジ (エチケット, ラジオ), トゥ/ツ and ドゥ/ズ (ツーピース, ズック),
/// テュ/チュ, デュ/ジュ, フュ/ヒュ (チューブ, ジュース, ヒューズ), ファ…フォ/ハ…ホ (セロハン,
/// ホルマリン), シェ/セ and ジェ/ゼ (ミルクセーキ, ゼラチン). Longest first. ウィ/ウェ/ウォ are
/// also written ウイ/ウエ/ウオ, which the loose key already meets (small kana made large); their
/// rarer イ/エ/オ and the テ/デ of ステッキ, キャンデー are left out: one sequence folds to one
/// form, and ウィ→イ would part ウィ from ウイ.
pub const LOANWORD_KANA: [(&str, &str); 23] = [
    ("ヴァ", "バ"),
    ("ヴィ", "ビ"),
    ("ヴェ", "ベ"),
    ("ヴォ", "ボ"),
    ("ヴュ", "ビュ"),
    ("ヴ", "ブ"),
    ("ヷ", "バ"),
    ("ヸ", "ビ"),
    ("ヹ", "ベ"),
    ("ヺ", "ボ"),
    ("ティ", "チ"),
    ("ディ", "ジ"),
    ("テュ", "チュ"),
    ("デュ", "ジュ"),
    ("トゥ", "ツ"),
    ("ドゥ", "ズ"),
    ("ファ", "ハ"),
    ("フィ", "ヒ"),
    ("フェ", "ヘ"),
    ("フォ", "ホ"),
    ("フュ", "ヒュ"),
    ("シェ", "セ"),
    ("ジェ", "ゼ"),
];

/// A reading (as [`reading_key`] gives it) with every loanword spelling of [`LOANWORD_KANA`]
/// written in its conventional kana: ヴァイオリン → バイオリン, ティナ → チナ.
pub fn loanword_fold(reading: &str) -> String {
    let mut out = String::with_capacity(reading.len());
    let mut rest = reading;
    'outer: while let Some(c) = rest.chars().next() {
        for (from, to) in LOANWORD_KANA {
            if let Some(r) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = r;
                continue 'outer;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Whether a reading holds a loanword spelling that [`loanword_fold`] changes.
pub fn has_loanword_kana(reading: &str) -> bool {
    LOANWORD_KANA.iter().any(|(from, _)| reading.contains(from))
}

/// The loose key of the loanword-folded reading: [`loose_reading`] after [`loanword_fold`].
/// Equal to the loose key when the reading has no loanword spelling. Equal keys here but not
/// in [`loose_reading`] mean "loanword spelling": close, below a similar reading.
pub fn loose_loanword(s: &str) -> String {
    loosen(&loanword_fold(&reading_key(s)))
}

fn loosen(reading: &str) -> String {
    let mut out = String::new();
    let mut prev_vowel: Option<char> = None;
    for c in reading.chars().map(loose_char) {
        if c == 'ー' {
            continue;
        }
        if let Some(p) = prev_vowel {
            if lengthens(p, c) {
                continue;
            }
        }
        prev_vowel = vowel(c);
        out.push(c);
    }
    out
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
    fn nfkc_folds_compatibility_forms() {
        // NFKC alone keeps spaces, hiragana and variation selectors.
        assert_eq!(nfkc("ﾔﾏﾀﾞ　はなこ"), "ヤマダ はなこ");
        assert_eq!(nfkc("葛\u{E0100}"), "葛\u{E0100}");
        // Full-width digits, circled and half-width forms.
        assert_eq!(search_key("１２３"), "123");
        assert_eq!(search_key("ｶﾞｯｺｳ"), "ガッコウ");
        // A compatibility ideograph NFKC does decompose (U+F9DC 隆 → U+9686 隆).
        assert_eq!(search_key("\u{F9DC}"), "\u{9686}");
    }

    #[test]
    fn every_kind_of_space_goes() {
        for s in [
            "山田 花子",
            "山田\u{3000}花子",
            "山田\t花子",
            "山田\u{00A0}花子",
            "山田\u{2003}花子",
            "山田\u{200B}花子",
            "山田\u{FEFF}花子",
            " 山田花子\n",
        ] {
            assert_eq!(search_key(s), "山田花子", "{s:?}");
        }
    }

    #[test]
    fn variation_selectors_are_dropped() {
        // IVS (葛 + U+E0100) and SVS (U+FE00).
        assert_eq!(drop_variation_selectors("葛\u{E0100}城"), "葛城");
        assert_eq!(search_key("葛\u{E0100}城"), "葛城");
        assert_eq!(search_key("辻\u{E0101}"), "辻");
        assert_eq!(search_key("禰\u{FE00}"), "禰");
        assert!(is_variation_selector('\u{E01EF}'));
        assert!(!is_variation_selector('葛'));
    }

    #[test]
    fn compatibility_ideographs_nfkc_keeps_are_folded_by_variants() {
        // NFKC leaves U+FA11 alone (it is a unified ideograph in the compatibility block) …
        assert_eq!(search_key("山\u{FA11}"), "山\u{FA11}");
        // … the variant table folds it.
        assert_eq!(name_key("山\u{FA11}"), "山崎");
    }

    #[test]
    fn name_key_folds_kanji_variants() {
        assert_eq!(name_key("髙橋"), name_key("高橋"));
        assert_eq!(name_key("渡邊"), "渡辺");
        assert_eq!(name_key("渡邉"), "渡辺");
        assert_eq!(name_key("齋藤"), "斎藤");
        assert_eq!(name_key("濱田"), "浜田");
        assert_eq!(name_key("濵田"), "浜田");
        assert_eq!(name_key("𠮷田"), "吉田");
        assert_eq!(name_key("澤田"), "沢田");
        // With IVS and a space on top.
        assert_eq!(name_key("髙\u{E0100} 橋"), "高橋");
        // Small ヶ/ヵ in a written name are ケ.
        assert_eq!(name_key("一ヶ谷"), "一ケ谷");
        assert_eq!(name_key("一ヵ谷"), name_key("一ケ谷"));
        assert_eq!(name_key("一ゖ谷"), "一ケ谷");
    }

    #[test]
    fn hiragana_becomes_katakana() {
        assert_eq!(hira_to_kata('あ'), 'ア');
        assert_eq!(hira_to_kata('ゖ'), 'ヶ');
        assert_eq!(hira_to_kata('ゝ'), 'ヽ');
        assert_eq!(hira_to_kata('ア'), 'ア');
        assert_eq!(reading_key("やまだ・はなこ"), "ヤマダハナコ");
        assert!(is_katakana("ヤマダー"));
        assert!(!is_katakana("山田"));
    }

    #[test]
    fn loose_reading_folds_small_kana_and_voiced_variants() {
        assert_eq!(loose_reading("ヴェ"), loose_reading("ヴエ"));
        assert_eq!(loose_reading("ヂ"), "ジ");
        assert_eq!(loose_reading("ヅ"), "ズ");
        assert_eq!(loose_reading("ヶ"), "ケ");
        assert_eq!(loose_reading("ちぢみ"), loose_reading("チジミ"));
        assert_eq!(loose_reading("ｷｯﾄ"), "キツト");
    }

    #[test]
    fn long_vowels_are_close_not_equal() {
        // Close: the same loose key …
        assert_eq!(loose_reading("オオノ"), "オノ");
        assert_eq!(loose_reading("オーノ"), "オノ");
        assert_eq!(loose_reading("オノ"), "オノ");
        assert_eq!(loose_reading("おうの"), "オノ");
        assert_eq!(loose_reading("ユウキ"), loose_reading("ユーキ"));
        assert_eq!(loose_reading("ケイコ"), loose_reading("ケーコ"));
        // … not equal: the reading keys differ, and ranking prefers the equal one.
        assert_ne!(reading_key("オオノ"), reading_key("オーノ"));
        // A vowel that starts a syllable of its own is kept.
        assert_eq!(loose_reading("アイ"), "アイ");
        assert_eq!(loose_reading("ミオ"), "ミオ");
    }

    #[test]
    fn loanword_kana_fold_to_conventional_kana() {
        for (a, b) in [
            ("ヴァイオリン", "バイオリン"),
            ("ヴィクトル", "ビクトル"),
            ("ヴェロニカ", "ベロニカ"),
            ("ヴォルフ", "ボルフ"),
            ("ルヴ", "ルブ"),
            ("ティナ", "チナ"),
            ("ディラン", "ジラン"),
            ("トゥーリ", "ツーリ"),
            ("フィオナ", "ヒオナ"),
            ("ファルコ", "ハルコ"),
            ("シェリー", "セリー"),
            ("ジェシカ", "ゼシカ"),
            ("デューイ", "ジューイ"),
        ] {
            assert_eq!(loanword_fold(a), b, "{a}");
            assert_eq!(loose_loanword(a), loose_loanword(b), "{a}");
            // Close, not equal: the plain loose keys differ, so ranking can tell.
            assert_ne!(loose_reading(a), loose_reading(b), "{a}");
            assert!(has_loanword_kana(a) && !has_loanword_kana(b), "{a}");
        }
        // Hiragana and half-width forms take the same road.
        assert_eq!(loose_loanword("ゔぃくとる"), loose_loanword("ﾋﾞｸﾄﾙ"));
        // Native readings are left alone, and a small vowel typed large still meets it through
        // the plain loose key.
        assert_eq!(loanword_fold("ハナコ"), "ハナコ");
        assert_eq!(loose_loanword("テイコ"), loose_reading("テイコ"));
        assert_eq!(loose_reading("シェリー"), loose_reading("シエリー"));
        assert_eq!(loose_reading("ヴィクトル"), loose_reading("ヴイクトル"));
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
