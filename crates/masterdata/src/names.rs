//! Japanese family and given names with katakana readings from the IPA dictionary, embedded for
//! generating synthetic people. Source and license: data/names/SOURCE.md.
//!
//! The dictionary has no sex for given names and its cost is a word cost, not a frequency, so the
//! generator can only lean towards cheaper (broadly more common) entries, not reproduce real
//! name frequencies.

use std::sync::OnceLock;

const NAMES_TSV: &str = include_str!("../../../data/names/ipadic-person-names.tsv");

/// Whether an entry is a family name (姓) or a given name (名).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    Family,
    Given,
}

/// One dictionary row. Borrowed from the embedded text, so the tables cost no allocation per name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameEntry {
    pub kind: NameKind,
    pub name: &'static str,
    /// Katakana reading (フリガナ); a handful of rows in the source have hiragana.
    pub reading: &'static str,
    /// Dictionary word cost: lower is more likely as a word.
    pub cost: i32,
}

struct Tables {
    all: Vec<NameEntry>,
    family: Vec<NameEntry>,
    given: Vec<NameEntry>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let all: Vec<NameEntry> = NAMES_TSV.lines().skip(1).map(parse_line).collect();
        let pool = |kind: NameKind| {
            let mut v: Vec<NameEntry> = all
                .iter()
                .filter(|e| e.kind == kind && fits_generator(e))
                .copied()
                .collect();
            // Stable, so equal costs keep file order and the pools are deterministic.
            v.sort_by_key(|e| e.cost);
            v
        };
        Tables {
            family: pool(NameKind::Family),
            given: pool(NameKind::Given),
            all,
        }
    })
}

fn parse_line(line: &'static str) -> NameEntry {
    let mut cols = line.split('\t');
    let mut next = || {
        cols.next()
            .unwrap_or_else(|| panic!("embedded names: short row {line:?}"))
    };
    let kind = match next() {
        "family" => NameKind::Family,
        "given" => NameKind::Given,
        other => panic!("embedded names: unknown kind {other:?}"),
    };
    let name = next();
    let reading = next();
    let cost = next()
        .parse()
        .unwrap_or_else(|e| panic!("embedded names: bad cost in {line:?}: {e}"));
    NameEntry {
        kind,
        name,
        reading,
        cost,
    }
}

/// True for a non-empty string of katakana only (U+30A0..=U+30FF, which includes ー and ・).
pub fn is_katakana(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_katakana_char)
}

fn is_katakana_char(c: char) -> bool {
    ('\u{30A0}'..='\u{30FF}').contains(&c)
}

fn is_hiragana(c: char) -> bool {
    ('\u{3041}'..='\u{309F}').contains(&c)
}

fn is_kanji(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3FFFF}'
        | '々' | '〆')
}

/// Keeps names a Japanese child could plausibly be registered with: not katakana-only (foreign
/// names in the source), only kanji and kana (drops "Ａ子"), a katakana reading, and for family
/// names at least one kanji and no hiragana (the source's "いとう" rows are spellings, not 戸籍
/// names).
fn fits_generator(e: &NameEntry) -> bool {
    let japanese = e
        .name
        .chars()
        .all(|c| is_kanji(c) || is_hiragana(c) || is_katakana_char(c));
    let family_ok = e.kind == NameKind::Given
        || (e.name.chars().any(is_kanji) && !e.name.chars().any(is_hiragana));
    japanese && !is_katakana(e.name) && is_katakana(e.reading) && family_ok
}

/// Every row of the source, in file order.
pub fn entries() -> &'static [NameEntry] {
    &tables().all
}

/// Family names the generator draws from, cheapest (most common-looking) first.
pub fn family_names() -> &'static [NameEntry] {
    &tables().family
}

/// Given names the generator draws from, cheapest first. Not split by sex: the source has none.
pub fn given_names() -> &'static [NameEntry] {
    &tables().given
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_row() {
        let all = entries();
        assert_eq!(all.len(), 32_007);
        assert_eq!(
            all.iter().filter(|e| e.kind == NameKind::Family).count(),
            13_021
        );
        assert_eq!(
            all.iter().filter(|e| e.kind == NameKind::Given).count(),
            18_986
        );
        assert_eq!(
            all[0],
            NameEntry {
                kind: NameKind::Given,
                name: "康弘",
                reading: "ヤスヒロ",
                cost: 8349
            }
        );
    }

    #[test]
    fn pools_are_filtered_and_sorted() {
        for (pool, kind) in [
            (family_names(), NameKind::Family),
            (given_names(), NameKind::Given),
        ] {
            assert!(pool.len() > 10_000, "{kind:?}: {}", pool.len());
            assert!(pool.windows(2).all(|w| w[0].cost <= w[1].cost));
            for e in pool {
                assert_eq!(e.kind, kind);
                assert!(!is_katakana(e.name), "{e:?}");
                assert!(is_katakana(e.reading), "{e:?}");
            }
        }
        let has = |pool: &[NameEntry], name: &str| pool.iter().any(|e| e.name == name);
        assert!(has(family_names(), "佐藤") && has(family_names(), "三ツ木"));
        assert!(!has(family_names(), "ワトソン") && !has(family_names(), "いとう"));
        assert!(has(given_names(), "翔太") && has(given_names(), "あおい"));
        assert!(!has(given_names(), "ジョージ") && !has(given_names(), "Ａ子"));
        assert!(!has(given_names(), "かほる"), "hiragana reading");
    }

    #[test]
    fn katakana_check() {
        assert!(is_katakana("ヤマダ") && is_katakana("ユーリ"));
        assert!(!is_katakana("") && !is_katakana("やまだ") && !is_katakana("ヤマダ太"));
    }
}
