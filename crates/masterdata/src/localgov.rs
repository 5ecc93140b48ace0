//! Prefectures and municipalities (全国地方公共団体コード), embedded so that every binary agrees on
//! the same list without reading files at run time. Source and license: data/localgov/SOURCE.md.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const PREFECTURES_CSV: &str = include_str!("../../../data/localgov/prefectures.csv");
const MUNICIPALITIES_CSV: &str = include_str!("../../../data/localgov/municipalities.csv");

/// A prefecture (都道府県), code 1..=47.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefecture {
    pub code: u8,
    pub name: String,
    /// Reading in hiragana, e.g. "とうきょうと".
    pub kana: String,
    pub name_en: String,
}

/// A municipality (市区町村), a Tokyo special ward, or a ward of a designated city. Wards keep
/// the source's "札幌市 中央区" form; the designated city itself is also listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Municipality {
    /// 6-digit code with check digit.
    pub lgcode: String,
    pub pref_code: u8,
    pub name: String,
    /// Reading in hiragana.
    pub kana: String,
}

struct LocalGov {
    prefectures: Vec<Prefecture>,
    /// Sorted by lgcode, so each prefecture's municipalities are one contiguous run.
    municipalities: Vec<Municipality>,
    /// Index = prefecture code; 0 and unknown codes are empty.
    pref_ranges: Vec<Range<usize>>,
}

#[derive(Deserialize)]
struct PrefRow {
    pid: u8,
    pref: String,
    prefkana: String,
    pref_en: String,
}

#[derive(Deserialize)]
struct MuniRow {
    pid: u8,
    city: String,
    citykana: String,
    lgcode: String,
}

fn parse_rows<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Vec<T> {
    // The municipalities file starts with a BOM; without stripping it the first header would
    // not be "pid".
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .map(|r| r.unwrap_or_else(|e| panic!("embedded {what} is malformed: {e}")))
        .collect()
}

fn load() -> LocalGov {
    let prefectures: Vec<Prefecture> = parse_rows::<PrefRow>(PREFECTURES_CSV, "prefectures.csv")
        .into_iter()
        .map(|r| Prefecture {
            code: r.pid,
            name: r.pref,
            kana: r.prefkana,
            name_en: r.pref_en,
        })
        .collect();
    let mut municipalities: Vec<Municipality> =
        parse_rows::<MuniRow>(MUNICIPALITIES_CSV, "municipalities.csv")
            .into_iter()
            .map(|r| Municipality {
                lgcode: r.lgcode,
                pref_code: r.pid,
                name: r.city,
                kana: r.citykana,
            })
            .collect();
    municipalities.sort_by(|a, b| a.lgcode.cmp(&b.lgcode));

    let mut pref_ranges = vec![0..0; 48];
    let mut start = 0;
    while start < municipalities.len() {
        let pref = municipalities[start].pref_code;
        let end = start
            + municipalities[start..]
                .iter()
                .take_while(|m| m.pref_code == pref)
                .count();
        assert!(
            pref_ranges.get(pref as usize).is_some_and(|r| r.is_empty()),
            "embedded municipalities: prefecture {pref} is not contiguous or out of range"
        );
        pref_ranges[pref as usize] = start..end;
        start = end;
    }
    LocalGov {
        prefectures,
        municipalities,
        pref_ranges,
    }
}

fn data() -> &'static LocalGov {
    static DATA: OnceLock<LocalGov> = OnceLock::new();
    DATA.get_or_init(load)
}

/// Built in a second step because it borrows the codes of the already 'static vector.
fn index() -> &'static HashMap<&'static str, usize> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    INDEX.get_or_init(|| {
        data()
            .municipalities
            .iter()
            .enumerate()
            .map(|(i, m)| (m.lgcode.as_str(), i))
            .collect()
    })
}

/// The 47 prefectures in code order.
pub fn prefectures() -> &'static [Prefecture] {
    &data().prefectures
}

/// Every municipality in lgcode order.
pub fn municipalities() -> &'static [Municipality] {
    &data().municipalities
}

/// The prefecture with this code (1..=47).
pub fn prefecture(code: u8) -> Option<&'static Prefecture> {
    prefectures().iter().find(|p| p.code == code)
}

/// The municipality with this 6-digit code.
pub fn municipality(lgcode: &str) -> Option<&'static Municipality> {
    index().get(lgcode).map(|&i| &data().municipalities[i])
}

/// The municipalities of one prefecture in lgcode order; empty for an unknown code.
pub fn municipalities_of(pref: u8) -> impl Iterator<Item = &'static Municipality> {
    municipalities_slice(pref).iter()
}

/// Same as [`municipalities_of`] as a slice, for callers that index or pick at random.
pub(crate) fn municipalities_slice(pref: u8) -> &'static [Municipality] {
    let d = data();
    d.pref_ranges
        .get(pref as usize)
        .map_or(&[][..], |r| &d.municipalities[r.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsunagu_record::codes::{lgcode_is_valid, lgcode_prefecture};

    #[test]
    fn counts_match_the_source() {
        assert_eq!(prefectures().len(), 47);
        assert_eq!(municipalities().len(), 1916);
        let total: usize = (1..=47).map(|p| municipalities_of(p).count()).sum();
        assert_eq!(total, 1916);
        assert_eq!(municipalities_of(0).count(), 0);
        assert_eq!(municipalities_of(48).count(), 0);
    }

    #[test]
    fn prefectures_are_numbered_in_order() {
        for (i, p) in prefectures().iter().enumerate() {
            assert_eq!(p.code as usize, i + 1);
            assert!(!p.name.is_empty() && !p.kana.is_empty() && !p.name_en.is_empty());
        }
        let tokyo = prefecture(13).unwrap();
        assert_eq!(tokyo.name, "東京都");
        assert_eq!(tokyo.kana, "とうきょうと");
        assert_eq!(tokyo.name_en, "Tokyo");
        assert!(prefecture(0).is_none());
        assert!(prefecture(48).is_none());
    }

    #[test]
    fn every_lgcode_is_valid_and_in_its_prefecture() {
        for m in municipalities() {
            assert!(lgcode_is_valid(&m.lgcode), "{m:?}");
            assert_eq!(lgcode_prefecture(&m.lgcode), Some(m.pref_code), "{m:?}");
            assert!(!m.name.is_empty() && !m.kana.is_empty(), "{m:?}");
            assert!(
                !m.name.starts_with('\u{feff}') && !m.lgcode.starts_with('\u{feff}'),
                "{m:?}"
            );
        }
        for p in 1..=47 {
            assert!(municipalities_of(p).all(|m| m.pref_code == p));
        }
    }

    #[test]
    fn lookup_by_code() {
        let sapporo = municipality("011002").unwrap();
        assert_eq!(sapporo.name, "札幌市");
        assert_eq!(sapporo.pref_code, 1);
        assert_eq!(sapporo.kana, "さっぽろし");
        assert_eq!(municipality("011011").unwrap().name, "札幌市 中央区");
        assert_eq!(municipality("131016").unwrap().name, "千代田区");
        assert_eq!(municipality("472018").unwrap().name, "那覇市");
        assert!(municipality("011003").is_none());
        assert!(municipality("").is_none());
        for m in municipalities() {
            assert!(std::ptr::eq(municipality(&m.lgcode).unwrap(), m));
        }
    }
}
