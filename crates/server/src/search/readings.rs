//! Likely readings of a name typed in kanji only, from the person-name dictionary
//! (`data/names`, embedded by `tsunagu_masterdata`). The caller says アベ and the caseworker
//! types 安部 for a child registered as 阿部 with the reading アベ: the typed kanji give the
//! readings アベ (and any other the dictionary has for 安部), and the record's stored reading
//! matches one of them. Pure: the table is built once from the embedded dictionary.

use std::collections::HashMap;
use std::sync::OnceLock;

use tsunagu_masterdata::names::entries;
use tsunagu_record::normalize::{is_katakana, name_key, reading_key};

/// At most this many readings of one spelling are used (the dictionary has up to a dozen for a
/// few given names; the rare ones only add look-alikes).
const READINGS_PER_SPELLING: usize = 4;
/// At most this many readings of a whole typed name (family × given combinations).
pub const READINGS_PER_QUERY: usize = 6;
/// A reading whose dictionary cost is this much above the spelling's cheapest reading weighs
/// 1/e of it. The costs are MeCab word costs (about 5,000–9,000 for names): a difference of a
/// few hundred separates the usual reading from a possible one.
const COST_SCALE: f32 = 600.0;
/// Readings weighing less than this are dropped.
const MIN_WEIGHT: f32 = 0.05;

/// One likely reading and how likely it is relative to the best one (1.0).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub kana: String,
    pub weight: f32,
    /// 2 for a whole name's reading (family and given combined), 1 for one spelling's.
    pub parts: u8,
}

fn table() -> &'static HashMap<String, Vec<Reading>> {
    static TABLE: OnceLock<HashMap<String, Vec<Reading>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Family and given names together: a typed part does not say which it is, and the
        // cheapest cost of a reading over both kinds is its cost.
        let mut costs: HashMap<String, HashMap<String, i32>> = HashMap::new();
        for e in entries() {
            let reading = reading_key(e.reading);
            if !is_katakana(&reading) || e.name.is_ascii() {
                continue;
            }
            let spelling = name_key(e.name);
            if is_katakana(&spelling) {
                continue; // A kana name's reading is itself.
            }
            let cost = costs
                .entry(spelling)
                .or_default()
                .entry(reading)
                .or_insert(e.cost);
            *cost = (*cost).min(e.cost);
        }
        costs
            .into_iter()
            .map(|(spelling, readings)| {
                let best = readings.values().copied().min().unwrap_or(0);
                let mut v: Vec<Reading> = readings
                    .into_iter()
                    .map(|(kana, cost)| Reading {
                        weight: (-((cost - best) as f32) / COST_SCALE).exp(),
                        kana,
                        parts: 1,
                    })
                    .filter(|r| r.weight >= MIN_WEIGHT)
                    .collect();
                v.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.kana.cmp(&b.kana)));
                v.truncate(READINGS_PER_SPELLING);
                (spelling, v)
            })
            .collect()
    })
}

/// Builds the table now (it is otherwise built by the first search that needs it).
pub fn warm() {
    let _ = table();
}

/// The dictionary's readings of one name part (folded with `name_key`), most likely first.
pub fn of_part(folded: &str) -> &'static [Reading] {
    table().get(folded).map(Vec::as_slice).unwrap_or(&[])
}

/// The combinations of two parts' readings, most likely first, at most [`READINGS_PER_QUERY`].
pub fn combine(a: &[Reading], b: &[Reading]) -> Vec<Reading> {
    let mut out: Vec<Reading> = Vec::new();
    for x in a {
        for y in b {
            push_best(
                &mut out,
                Reading {
                    kana: format!("{}{}", x.kana, y.kana),
                    weight: x.weight * y.weight,
                    parts: 2,
                },
            );
        }
    }
    finish(out)
}

/// Readings of a whole name typed in kanji without a space (安部花子): every split into two
/// dictionary spellings, with the whole as one spelling too (a family name alone).
pub fn of_unspaced(folded: &str) -> Vec<Reading> {
    let chars: Vec<char> = folded.chars().collect();
    let mut out: Vec<Reading> = of_part(folded).to_vec();
    for i in 1..chars.len() {
        let head: String = chars[..i].iter().collect();
        let tail: String = chars[i..].iter().collect();
        let (a, b) = (of_part(&head), of_part(&tail));
        if a.is_empty() || b.is_empty() {
            continue;
        }
        for r in combine(a, b) {
            push_best(&mut out, r);
        }
    }
    finish(out)
}

fn push_best(out: &mut Vec<Reading>, r: Reading) {
    match out.iter_mut().find(|o| o.kana == r.kana) {
        Some(o) => {
            o.weight = o.weight.max(r.weight);
            o.parts = o.parts.max(r.parts);
        }
        None => out.push(r),
    }
}

fn finish(mut v: Vec<Reading>) -> Vec<Reading> {
    v.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.kana.cmp(&b.kana)));
    v.retain(|r| r.weight >= MIN_WEIGHT);
    v.truncate(READINGS_PER_QUERY);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kana(v: &[Reading]) -> Vec<&str> {
        v.iter().map(|r| r.kana.as_str()).collect()
    }

    #[test]
    fn a_spelling_has_its_readings_most_likely_first() {
        for (spelling, reading) in [
            ("安部", "アベ"),
            ("阿部", "アベ"),
            ("伊東", "イトウ"),
            ("伊藤", "イトウ"),
        ] {
            let r = of_part(&name_key(spelling));
            assert!(kana(r).contains(&reading), "{spelling}: {:?}", kana(r));
            assert!(r.windows(2).all(|w| w[0].weight >= w[1].weight));
            assert_eq!(r[0].weight, 1.0, "{spelling}");
        }
        assert!(of_part("ヤマダ").is_empty(), "kana is its own reading");
        assert!(of_part("存在しない名前").is_empty());
    }

    #[test]
    fn every_dictionary_spelling_gets_its_cheapest_reading() {
        // Over the whole dictionary: a spelling's cheapest reading (any of them, when several
        // share the cheapest cost) is offered with weight 1.
        let mut cheapest: HashMap<String, (i32, Vec<String>)> = HashMap::new();
        for e in entries() {
            let r = reading_key(e.reading);
            let s = name_key(e.name);
            if !is_katakana(&r) || is_katakana(&s) || e.name.is_ascii() {
                continue;
            }
            let b = cheapest.entry(s).or_insert((e.cost, Vec::new()));
            if e.cost < b.0 {
                *b = (e.cost, Vec::new());
            }
            if e.cost == b.0 {
                b.1.push(r);
            }
        }
        assert!(cheapest.len() > 20_000);
        for (s, (_, rs)) in &cheapest {
            let got = of_part(s);
            let top = got
                .iter()
                .find(|x| x.weight == 1.0)
                .expect("a weight-1 reading");
            assert!(rs.contains(&top.kana), "{s}: {rs:?} vs {:?}", kana(got));
        }
    }

    #[test]
    fn an_unspaced_name_is_split_into_family_and_given() {
        let r = of_unspaced(&name_key("安部花子"));
        assert!(kana(&r).contains(&"アベハナコ"), "{:?}", kana(&r));
        assert!(r.len() <= READINGS_PER_QUERY);
        let r = of_unspaced(&name_key("伊東翔太"));
        assert!(kana(&r).contains(&"イトウショウタ"), "{:?}", kana(&r));
        // A family name alone is its own spelling, one part's reading.
        let alone = of_unspaced(&name_key("安部"));
        assert!(alone.iter().any(|r| r.kana == "アベ" && r.parts == 1));
    }

    #[test]
    fn combinations_are_weighted_products() {
        let a = [
            Reading {
                kana: "ア".into(),
                weight: 1.0,
                parts: 1,
            },
            Reading {
                kana: "イ".into(),
                weight: 0.5,
                parts: 1,
            },
        ];
        let b = [Reading {
            kana: "カ".into(),
            weight: 0.5,
            parts: 1,
        }];
        let c = combine(&a, &b);
        assert_eq!(kana(&c), ["アカ", "イカ"]);
        assert_eq!(c[1].weight, 0.25);
        assert!(c.iter().all(|r| r.parts == 2));
    }
}
