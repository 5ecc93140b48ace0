//! S2 on a fair, generated set: for each class of variation, target children made from the name
//! dictionary (`tsunagu_masterdata::names`), each with a handful of look-alike distractors, mixed
//! into a generated base population and registered in random order into a database of their
//! own. The population set of `s2.rs` draws its targets from the benchmark database, whose other
//! records are unrelated people; an evaluation that registers look-alikes next to each target
//! scores lower, and this set is that evaluation.
//!
//! A distractor shares one thing with its target: the family name, the given name, the birth
//! date, a part whose reading is one kana away, or a part's kanji read another way. It is *fair*:
//! after folding (`normalize::{name_key, reading_key, loose_reading}`) it has neither the
//! target's full reading nor its full kanji name, it is not what the query literally says (the
//! query's name or reading is not the distractor's), and it is not an equally good answer to the
//! query's own information (for `ties`: not the same family name and day; for `partial_combo`:
//! not both typed parts and the same birth year; for the typo classes: not born the same day
//! with a reading one typo from the query). Candidates that fail are drawn again. A
//! `partial_combo` query that any other record of the set fits as well as its target (both
//! typed parts at the start of the same parts of the name, born the same year: in a base of
//! 190,000 children, 佐 子 2015 fits dozens) has no one right first answer, so such a query is
//! drawn again too. A third of
//! the name look-alikes are born the same day as the target, a third within 60 days.
//!
//! Every record (base, targets, distractors) is shuffled with a seeded RNG before it is
//! registered, so record ids say nothing about roles; ids are computed from the order (one
//! counter per prefecture, from 1 in a fresh database) and checked against the stored records.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context as _;
use chrono::{Datelike as _, Days, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tsunagu_masterdata::names::{self, NameEntry};
use tsunagu_masterdata::{PeopleGenerator, SyntheticChild, SyntheticName};
use tsunagu_record::codes::lgcode_prefecture;
use tsunagu_record::normalize::{loose_reading, name_key, reading_key};
use tsunagu_record::{OrgKind, Restrictions};
use tsunagu_server::orgs::OrgDirectory;
use tsunagu_server::seed;
use tsunagu_server::storage::Storage;

use crate::data::ID_BASE;
use crate::s2::{self, EvalQuery, Person, Variants};

/// The classes of the fair set: those of the population set, then the three the search is
/// being extended for.
pub const FAIR_KINDS: [&str; 14] = [
    "variant_kanji",
    "ivs",
    "halfwidth_kana",
    "hiragana",
    "long_vowel",
    "one_typo",
    "swapped_names",
    "era_date",
    "loanword_kana",
    "short_typo",
    "ties",
    "dictionary_reading",
    "variant_kanji_everyday",
    "partial_combo",
];

/// Ages are counted from this day, not from the clock: the set (and so a cached database of it)
/// is then the same whatever day it is made.
pub fn plan_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).expect("a real date")
}

/// What kind of look-alike a distractor is.
pub const DISTRACTOR_KINDS: [&str; 5] = [
    "same_family",
    "same_given",
    "same_birth",
    "reading_one_kana_away",
    "same_kanji_other_reading",
];

#[derive(Debug, Clone)]
pub struct FairOpts {
    /// Unrelated records of the base population.
    pub base: usize,
    pub per_kind: usize,
    pub min_distractors: usize,
    pub max_distractors: usize,
    pub seed: u64,
}

impl FairOpts {
    /// The part of the cache name that fixes the set.
    pub fn cache_tag(&self) -> String {
        format!(
            "fair3-k{}-d{}-{}",
            self.per_kind, self.min_distractors, self.max_distractors
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Base,
    /// The target of pair n.
    Target(usize),
    /// A distractor of pair n, of `DISTRACTOR_KINDS[k]`.
    Distractor(usize, usize),
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub role: Role,
    pub child: SyntheticChild,
}

#[derive(Debug, Clone)]
pub struct FairPair {
    pub kind: &'static str,
    pub q: String,
    pub birth: String,
    /// Index into `FairSet::people`.
    pub target: usize,
    pub distractors: Vec<usize>,
}

/// The whole set, in registration order.
pub struct FairSet {
    pub people: Vec<Planned>,
    pub pairs: Vec<FairPair>,
    /// The record id each person gets in a fresh database, in registration order.
    pub ids: Vec<i64>,
    /// The everyday variant pairs the dictionary has both spellings of (崎/嵜 …).
    pub everyday_pairs: Vec<String>,
    /// `partial_combo` pairs drawn again because another record fit the query as well.
    pub partial_redrawn: usize,
}

// ----- the dictionary, indexed ----------------------------------------------------------------

/// JIS X 0208:1983 swapped these glyph pairs (the 1978 form got the other code point), so
/// systems of different ages store either: everyday variants in names.
const JIS83_PAIRS: &str = "鯵鰺 鴬鶯 蛎蠣 撹攪 竃竈 潅灌 諌諫 頚頸 砿礦 蕊蘂 靭靱 賎賤 壷壺 砺礪 梼檮 涛濤 迩邇 蝿蠅 桧檜 侭儘 薮藪 篭籠 尭堯 槙槇 遥遙 瑶瑤";

const UNIHAN_FIELDS: [&str; 5] = [
    "kSemanticVariant",
    "kZVariant",
    "kSpecializedSemanticVariant",
    "kTraditionalVariant",
    "kSimplifiedVariant",
];

/// Whether every char can be written in Shift_JIS (CP932, as encoding_rs has it): an everyday
/// character any office system can store.
pub fn in_cp932(s: &str) -> bool {
    let (_, _, unmappable) = encoding_rs::SHIFT_JIS.encode(s);
    !unmappable
}

fn is_kanji(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{3FFFF}' | '々')
}

fn all_kanji(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_kanji)
}

/// Candidate variant pairs (both directions) where both forms are in CP932: Unihan's variant
/// fields plus the JIS 1983 swaps.
pub fn everyday_candidates() -> HashMap<char, Vec<char>> {
    let mut out: HashMap<char, Vec<char>> = HashMap::new();
    let mut add = |a: char, b: char| {
        if a == b || !in_cp932(&a.to_string()) || !in_cp932(&b.to_string()) {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            let v = out.entry(x).or_default();
            if !v.contains(&y) {
                v.push(y);
            }
        }
    };
    let cp = |s: &str| {
        let hex = s.split('<').next()?.strip_prefix("U+")?;
        char::from_u32(u32::from_str_radix(hex, 16).ok()?)
    };
    for l in include_str!("../../../data/kanji-variants/Unihan_Variants.txt").lines() {
        let mut cols = l.split('\t');
        let (Some(src), Some(field), Some(vals)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        if !UNIHAN_FIELDS.contains(&field) {
            continue;
        }
        let Some(a) = cp(src) else { continue };
        for v in vals.split_whitespace() {
            if let Some(b) = cp(v) {
                add(a, b);
            }
        }
    }
    for p in JIS83_PAIRS.split_whitespace() {
        let mut cs = p.chars();
        if let (Some(a), Some(b)) = (cs.next(), cs.next()) {
            add(a, b);
        }
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

/// Two dictionary spellings of one name, same kind and same reading, that differ in one char
/// only, where the two chars are an everyday variant pair (山崎/山嵜 ヤマザキ).
#[derive(Debug, Clone, Copy)]
pub struct EverydayPair {
    pub kind: usize,
    pub from: usize,
    pub to: usize,
    pub from_char: char,
    pub to_char: char,
}

/// The generator's name pools (0 = family, 1 = given), with the look-ups the set needs.
pub struct Dict {
    pub pools: [&'static [NameEntry]; 2],
    by_reading: [HashMap<String, Vec<usize>>; 2],
    by_name_key: [HashMap<String, Vec<usize>>; 2],
    one_kana: [HashMap<String, Vec<usize>>; 2],
    name_keys: [Vec<String>; 2],
    /// Per kind, pool indices (in cost order) with another all-kanji spelling of their reading.
    respellable: [Vec<usize>; 2],
    /// Everyday pairs, grouped by the unordered char pair so that no one pair dominates.
    pub everyday: Vec<Vec<EverydayPair>>,
}

fn masks(reading: &str) -> Vec<String> {
    let c: Vec<char> = reading.chars().collect();
    (0..c.len())
        .map(|i| {
            let mut m = c.clone();
            m[i] = '*';
            m.into_iter().collect()
        })
        .collect()
}

impl Dict {
    pub fn load() -> Dict {
        let pools = [names::family_names(), names::given_names()];
        let mut by_reading: [HashMap<String, Vec<usize>>; 2] = Default::default();
        let mut by_name_key: [HashMap<String, Vec<usize>>; 2] = Default::default();
        let mut by_exact: [HashMap<&'static str, Vec<usize>>; 2] = Default::default();
        let mut one_kana: [HashMap<String, Vec<usize>>; 2] = Default::default();
        let mut name_keys: [Vec<String>; 2] = Default::default();
        for k in 0..2 {
            for (i, e) in pools[k].iter().enumerate() {
                let nk = name_key(e.name);
                by_reading[k]
                    .entry(reading_key(e.reading))
                    .or_default()
                    .push(i);
                by_name_key[k].entry(nk.clone()).or_default().push(i);
                by_exact[k].entry(e.name).or_default().push(i);
                for m in masks(&reading_key(e.reading)) {
                    one_kana[k].entry(m).or_default().push(i);
                }
                name_keys[k].push(nk);
            }
        }
        let mut respellable: [Vec<usize>; 2] = Default::default();
        for k in 0..2 {
            for (i, e) in pools[k].iter().enumerate() {
                if !all_kanji(e.name) {
                    continue;
                }
                let alts = by_reading[k][&reading_key(e.reading)]
                    .iter()
                    .filter(|&&j| all_kanji(pools[k][j].name) && name_keys[k][j] != name_keys[k][i])
                    .count();
                if alts > 0 {
                    respellable[k].push(i);
                }
            }
        }
        let cands = everyday_candidates();
        let mut groups: BTreeMap<(char, char), Vec<EverydayPair>> = BTreeMap::new();
        for k in 0..2 {
            for (i, e) in pools[k].iter().enumerate() {
                let chars: Vec<char> = e.name.chars().collect();
                for (p, &x) in chars.iter().enumerate() {
                    let Some(ys) = cands.get(&x) else { continue };
                    for &y in ys {
                        let mut other = chars.clone();
                        other[p] = y;
                        let other: String = other.into_iter().collect();
                        let Some(js) = by_exact[k].get(other.as_str()) else {
                            continue;
                        };
                        for &j in js {
                            if reading_key(pools[k][j].reading) == reading_key(e.reading) {
                                groups.entry((x.min(y), x.max(y))).or_default().push(
                                    EverydayPair {
                                        kind: k,
                                        from: i,
                                        to: j,
                                        from_char: x,
                                        to_char: y,
                                    },
                                );
                            }
                        }
                    }
                }
            }
        }
        Dict {
            pools,
            by_reading,
            by_name_key,
            one_kana,
            name_keys,
            respellable,
            everyday: groups.into_values().collect(),
        }
    }

    /// The generator's weighting: index `n * u²` of the cost-sorted pool.
    fn pick(&self, k: usize, rng: &mut StdRng) -> usize {
        let n = self.pools[k].len();
        let u: f64 = rng.gen();
        ((u * u * n as f64) as usize).min(n - 1)
    }

    fn entry(&self, k: usize, i: usize) -> &'static NameEntry {
        &self.pools[k][i]
    }

    /// Other all-kanji spellings of entry i's reading (different after `name_key`).
    pub fn respellings(&self, k: usize, i: usize) -> Vec<usize> {
        let e = self.entry(k, i);
        self.by_reading[k][&reading_key(e.reading)]
            .iter()
            .copied()
            .filter(|&j| {
                all_kanji(self.pools[k][j].name) && self.name_keys[k][j] != self.name_keys[k][i]
            })
            .collect()
    }

    /// Entries whose reading is one kana (a substitution) away from `reading`.
    fn one_kana_away(&self, k: usize, reading: &str) -> Vec<usize> {
        let r = reading_key(reading);
        let mut out: Vec<usize> = masks(&r)
            .iter()
            .filter_map(|m| self.one_kana[k].get(m))
            .flatten()
            .copied()
            .filter(|&j| reading_key(self.pools[k][j].reading) != r)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Entries written with the same kanji (after folding) as `name` but read otherwise.
    fn same_kanji_other_reading(&self, k: usize, name: &str, reading: &str) -> Vec<usize> {
        let r = reading_key(reading);
        self.by_name_key[k]
            .get(&name_key(name))
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&j| reading_key(self.pools[k][j].reading) != r)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Entries with the same reading as `reading` written with other kanji.
    fn same_reading_other_kanji(&self, k: usize, name: &str, reading: &str) -> Vec<usize> {
        let nk = name_key(name);
        self.by_reading[k]
            .get(&reading_key(reading))
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&j| self.name_keys[k][j] != nk)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn name_of(f: &NameEntry, g: &NameEntry) -> SyntheticName {
    SyntheticName {
        family: f.name.to_string(),
        given: g.name.to_string(),
        family_kana: f.reading.to_string(),
        given_kana: g.reading.to_string(),
    }
}

fn part(n: &SyntheticName, k: usize) -> (&str, &str) {
    if k == 0 {
        (&n.family, &n.family_kana)
    } else {
        (&n.given, &n.given_kana)
    }
}

fn set_part(n: &mut SyntheticName, k: usize, e: &NameEntry) {
    if k == 0 {
        n.family = e.name.to_string();
        n.family_kana = e.reading.to_string();
    } else {
        n.given = e.name.to_string();
        n.given_kana = e.reading.to_string();
    }
}

/// Gives a generated child (address, sex, birth date, guardians) another name; guardians who
/// had the child's family name get the new one.
fn dress(mut c: SyntheticChild, name: SyntheticName) -> SyntheticChild {
    for (g, _) in &mut c.guardians {
        if g.family == c.name.family {
            g.family = name.family.clone();
            g.family_kana = name.family_kana.clone();
        }
    }
    c.name = name;
    c
}

fn person(c: &SyntheticChild, id: i64) -> Person {
    Person {
        id,
        family: c.name.family.clone(),
        given: c.name.given.clone(),
        family_kana: c.name.family_kana.clone(),
        given_kana: c.name.given_kana.clone(),
        birth: Some(c.birth_date),
        sex: Some(c.sex.iso5218()),
    }
}

// ----- targets and queries --------------------------------------------------------------------

/// A target's name and the query that should find it, for one class.
fn target_and_query(
    kind: &'static str,
    dict: &Dict,
    v: &Variants,
    shell: &SyntheticChild,
    rng: &mut StdRng,
) -> Option<(SyntheticName, String, String)> {
    let iso = shell.birth_date.format("%Y-%m-%d").to_string();
    let random = |rng: &mut StdRng| {
        name_of(
            dict.entry(0, dict.pick(0, rng)),
            dict.entry(1, dict.pick(1, rng)),
        )
    };
    match kind {
        "dictionary_reading" => {
            // The other spelling of one part, kanji only: 阿部 → 安部.
            let k = rng.gen_range(0..2);
            let pool = &dict.respellable[k];
            let u: f64 = rng.gen();
            let i = pool[((u * u * pool.len() as f64) as usize).min(pool.len() - 1)];
            let mut name = random(rng);
            set_part(&mut name, k, dict.entry(k, i));
            // The query is the written name without its reading: the other part in kanji too.
            if !part(&name, 1 - k).0.chars().any(is_kanji) {
                return None;
            }
            let alt = *dict.respellings(k, i).choose(rng)?;
            let mut q = name.clone();
            set_part(&mut q, k, dict.entry(k, alt));
            Some((name, format!("{} {}", q.family, q.given), iso))
        }
        "variant_kanji_everyday" => {
            let group = dict.everyday.choose(rng)?;
            let p = *group.choose(rng)?;
            let mut name = random(rng);
            set_part(&mut name, p.kind, dict.entry(p.kind, p.from));
            let mut q = name.clone();
            set_part(&mut q, p.kind, dict.entry(p.kind, p.to));
            Some((name, format!("{} {}", q.family, q.given), iso))
        }
        "partial_combo" => {
            // Part of each name in one script, with the birth year only.
            let name = random(rng);
            let (fp, gp) = if rng.gen_bool(0.5) {
                let pre = |r: &str| {
                    let c: Vec<char> = reading_key(r).chars().collect();
                    (c.len() > 2).then(|| c[..2].iter().collect::<String>())
                };
                (pre(&name.family_kana)?, pre(&name.given_kana)?)
            } else {
                let mut pre = |s: &str| {
                    let c: Vec<char> = s.chars().collect();
                    let lead = c.iter().take_while(|c| is_kanji(**c)).count().min(2);
                    let lead = lead.min(c.len().saturating_sub(1));
                    (lead > 0).then(|| c[..rng.gen_range(1..=lead)].iter().collect::<String>())
                };
                (pre(&name.family)?, pre(&name.given)?)
            };
            let year = shell.birth_date.year().to_string();
            Some((name, format!("{fp} {gp}"), year))
        }
        _ => {
            let name = random(rng);
            let p = Person {
                birth: Some(shell.birth_date),
                ..person(&dress(shell.clone(), name.clone()), 0)
            };
            let (q, b) = s2::make_query(kind, &p, v, rng)?;
            Some((name, q, b))
        }
    }
}

// ----- distractors ----------------------------------------------------------------------------

/// A birth date 1–60 days from `b` (never `b`), within the ages of the set.
fn near_date(b: NaiveDate, rng: &mut StdRng) -> NaiveDate {
    let today = plan_today();
    let earliest = today - Days::new(18 * 365);
    let d = rng.gen_range(1..=60u64);
    let (a, z) = (b - Days::new(d), b + Days::new(d));
    let (first, second) = if rng.gen_bool(0.5) { (a, z) } else { (z, a) };
    if (earliest..=today).contains(&first) {
        first
    } else {
        second
    }
}

/// The keys a name is compared by: folded kanji, reading, loose reading.
fn keys(n: &SyntheticName) -> (String, String, String) {
    let r = reading_key(&format!("{}{}", n.family_kana, n.given_kana));
    (
        name_key(&format!("{}{}", n.family, n.given)),
        loose_reading(&r),
        r,
    )
}

/// Whether `d` is a fair distractor for the target `t` under the query `q`/`qbirth` of `kind`
/// (see the module comment).
pub fn is_fair(kind: &str, t: &SyntheticChild, d: &SyntheticChild, q: &str, qbirth: &str) -> bool {
    let (tn, tl, tr) = keys(&t.name);
    let (dn, dl, dr) = keys(&d.name);
    if tn == dn || tr == dr || tl == dl {
        return false;
    }
    // Not what the query literally says, in either order.
    let qn = name_key(q);
    let qr = reading_key(q);
    let swapped = name_key(&format!("{}{}", d.name.given, d.name.family));
    let swapped_r = reading_key(&format!("{}{}", d.name.given_kana, d.name.family_kana));
    if [&dn, &swapped].contains(&&qn)
        || [&dr, &swapped_r].contains(&&qr)
        || loose_reading(&qr) == dl
    {
        return false;
    }
    match kind {
        "ties" => {
            !(name_key(&d.name.family) == name_key(&t.name.family) && d.birth_date == t.birth_date)
        }
        "partial_combo" => {
            let same_year = qbirth == d.birth_date.year().to_string();
            let hit = q.split_whitespace().all(|p| {
                let k = name_key(p);
                dn.contains(&k) || dr.contains(&k) || swapped.contains(&k)
            });
            !(same_year && hit)
        }
        // A typed reading one typo from the target's: a distractor born the same day whose
        // reading is one typo from it too is as good an answer.
        "one_typo" | "short_typo" => {
            !(d.birth_date == t.birth_date && osa(&loose_reading(&qr), &dl) <= 1)
        }
        _ => true,
    }
}

/// Optimal string alignment distance (insertions, deletions, substitutions, adjacent swaps),
/// over chars.
pub fn osa(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = (a[i - 1] != b[j - 1]) as usize;
                let mut v = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    d[a.len() * w + b.len()]
}

/// One look-alike of `t` of `DISTRACTOR_KINDS[dk]`, or `None` if the dictionary has none.
fn distractor(
    dk: usize,
    dict: &Dict,
    t: &SyntheticChild,
    shell: SyntheticChild,
    rng: &mut StdRng,
) -> Option<SyntheticChild> {
    let random = |k: usize, rng: &mut StdRng| dict.entry(k, dict.pick(k, rng));
    let mut name = t.name.clone();
    match DISTRACTOR_KINDS[dk] {
        "same_family" => set_part(&mut name, 1, random(1, rng)),
        "same_given" => set_part(&mut name, 0, random(0, rng)),
        "same_birth" => name = name_of(random(0, rng), random(1, rng)),
        "reading_one_kana_away" => {
            let first = rng.gen_range(0..2);
            let (k, alts) = [first, 1 - first].into_iter().find_map(|k| {
                let (n, r) = part(&t.name, k);
                let _ = n;
                let alts = dict.one_kana_away(k, r);
                (!alts.is_empty()).then_some((k, alts))
            })?;
            set_part(&mut name, k, dict.entry(k, *alts.choose(rng)?));
        }
        "same_kanji_other_reading" => {
            // One part the same kanji read otherwise (上村 ウエムラ/カミムラ), the other the
            // same reading in other kanji if there is one (陽子/洋子).
            let first = rng.gen_range(0..2);
            let (k, alts) = [first, 1 - first].into_iter().find_map(|k| {
                let (n, r) = part(&t.name, k);
                let alts = dict.same_kanji_other_reading(k, n, r);
                (!alts.is_empty()).then_some((k, alts))
            })?;
            set_part(&mut name, k, dict.entry(k, *alts.choose(rng)?));
            let o = 1 - k;
            let (n, r) = part(&t.name, o);
            let others = dict.same_reading_other_kanji(o, n, r);
            let e = match others.choose(rng) {
                Some(&j) => dict.entry(o, j),
                None => random(o, rng),
            };
            set_part(&mut name, o, e);
        }
        _ => unreachable!("distractor kinds are listed"),
    }
    let mut c = dress(shell, name);
    // A name look-alike born the same day, within two months, or any day, a third each: the
    // query's date alone then tells it from the target only some of the time.
    c.birth_date = match (DISTRACTOR_KINDS[dk], rng.gen_range(0..3)) {
        ("same_birth", _) | (_, 0) => t.birth_date,
        (_, 1) => near_date(t.birth_date, rng),
        _ => c.birth_date,
    };
    Some(c)
}

// ----- partial queries' rivals ----------------------------------------------------------------

/// A child's name parts as a partial query is compared with them: folded kanji and reading.
#[derive(Debug, Clone)]
struct PartKeys {
    year: i32,
    family: String,
    given: String,
    family_kana: String,
    given_kana: String,
}

impl PartKeys {
    fn of(c: &SyntheticChild) -> PartKeys {
        PartKeys {
            year: c.birth_date.year(),
            family: name_key(&c.name.family),
            given: name_key(&c.name.given),
            family_kana: reading_key(&c.name.family_kana),
            given_kana: reading_key(&c.name.given_kana),
        }
    }
}

/// A `partial_combo` query: the start of the family name and of the given name, in one
/// script, and a birth year.
#[derive(Debug, Clone)]
struct PartialQuery {
    kana: bool,
    family: String,
    given: String,
    year: i32,
}

impl PartialQuery {
    fn parse(q: &str, birth: &str) -> Option<PartialQuery> {
        let (f, g) = q.split_once(' ')?;
        let kana = f.chars().all(|c| ('\u{30A0}'..='\u{30FF}').contains(&c));
        let key = |s: &str| if kana { reading_key(s) } else { name_key(s) };
        Some(PartialQuery {
            kana,
            family: key(f),
            given: key(g),
            year: birth.parse().ok()?,
        })
    }

    /// Whether a child born in the query's year has both typed parts at the start of the
    /// same parts of the name: as good an answer as the target.
    fn fits(&self, k: &PartKeys) -> bool {
        let (f, g) = if self.kana {
            (&k.family_kana, &k.given_kana)
        } else {
            (&k.family, &k.given)
        };
        k.year == self.year && f.starts_with(&self.family) && g.starts_with(&self.given)
    }
}

// ----- the set --------------------------------------------------------------------------------

impl FairSet {
    /// The whole set for `o`, a pure function of it.
    pub fn generate(o: &FairOpts) -> FairSet {
        let today = plan_today();
        let dict = Dict::load();
        let everyday_pairs = dict
            .everyday
            .iter()
            .filter_map(|g| g.first())
            .map(|p| {
                let (a, b) = (p.from_char.min(p.to_char), p.from_char.max(p.to_char));
                format!("{a}/{b}")
            })
            .collect();
        let v = Variants::load();
        let mut rng = StdRng::seed_from_u64(o.seed ^ 0xfa1e);
        let mut shells = PeopleGenerator::new(o.seed ^ 0xfa1e);
        let mut people: Vec<Planned> = Vec::new();
        {
            let mut base = PeopleGenerator::new(o.seed);
            for _ in 0..o.base {
                people.push(Planned {
                    role: Role::Base,
                    child: base.child(None, today),
                });
            }
        }
        let mut pairs = Vec::new();
        // Every person's name parts by birth year, for the partial queries' rivals.
        let mut by_year: HashMap<i32, Vec<PartKeys>> = HashMap::new();
        for p in &people {
            by_year
                .entry(p.child.birth_date.year())
                .or_default()
                .push(PartKeys::of(&p.child));
        }
        let mut partial_queries: Vec<PartialQuery> = Vec::new();
        let mut partial_redrawn = 0;
        for kind in FAIR_KINDS {
            let mut made = 0;
            let mut tries = 0;
            while made < o.per_kind && tries < o.per_kind * 200 {
                tries += 1;
                let shell = shells.child(None, today);
                let Some((name, q, qbirth)) = target_and_query(kind, &dict, &v, &shell, &mut rng)
                else {
                    continue;
                };
                // The API must take the query as typed.
                if tsunagu_server::search::Query::parse(Some(&q), None, Some(&qbirth), None, None)
                    .is_err()
                {
                    continue;
                }
                let n = pairs.len();
                let target = dress(shell, name);
                let want =
                    rng.gen_range(o.min_distractors..=o.max_distractors.max(o.min_distractors));
                let mut drawn = Vec::new();
                let mut attempts = 0;
                while drawn.len() < want && attempts < want * 20 {
                    attempts += 1;
                    let dk = rng.gen_range(0..DISTRACTOR_KINDS.len());
                    let Some(d) =
                        distractor(dk, &dict, &target, shells.child(None, today), &mut rng)
                    else {
                        continue;
                    };
                    if is_fair(kind, &target, &d, &q, &qbirth) {
                        drawn.push((dk, d));
                    }
                }
                // A partial query that another child fits as well (both typed parts at the
                // start of the same parts, born the same year) has no one right first answer:
                // neither it nor a pair whose children would make an earlier one so is kept.
                let new_keys: Vec<PartKeys> = std::iter::once(&target)
                    .chain(drawn.iter().map(|(_, d)| d))
                    .map(PartKeys::of)
                    .collect();
                if kind == "partial_combo" {
                    let pq = PartialQuery::parse(&q, &qbirth).expect("a partial query");
                    let year_keys = by_year.get(&pq.year).map(Vec::as_slice).unwrap_or(&[]);
                    let rival_exists = year_keys.iter().any(|k| pq.fits(k));
                    let makes_rival = partial_queries
                        .iter()
                        .any(|e| new_keys.iter().any(|k| e.fits(k)));
                    if rival_exists || makes_rival {
                        partial_redrawn += 1;
                        continue;
                    }
                    partial_queries.push(pq);
                } else if partial_queries
                    .iter()
                    .any(|e| new_keys.iter().any(|k| e.fits(k)))
                {
                    continue;
                }
                for k in new_keys {
                    by_year.entry(k.year).or_default().push(k);
                }
                let mut ds = Vec::new();
                for (dk, d) in drawn {
                    ds.push(people.len());
                    people.push(Planned {
                        role: Role::Distractor(n, dk),
                        child: d,
                    });
                }
                let t = people.len();
                people.push(Planned {
                    role: Role::Target(n),
                    child: target,
                });
                pairs.push(FairPair {
                    kind,
                    q,
                    birth: qbirth,
                    target: t,
                    distractors: ds,
                });
                made += 1;
            }
        }
        // Registration order: random, so neither position nor id tells a role.
        let mut order: Vec<usize> = (0..people.len()).collect();
        order.shuffle(&mut rng);
        let mut new_index = vec![0; people.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut slots: Vec<Option<Planned>> = people.into_iter().map(Some).collect();
        let people: Vec<Planned> = order
            .iter()
            .map(|&old| slots[old].take().expect("each once"))
            .collect();
        for p in &mut pairs {
            p.target = new_index[p.target];
            for d in &mut p.distractors {
                *d = new_index[*d];
            }
        }
        // Ids as a fresh database gives them: one counter per prefecture, in order.
        let mut next: HashMap<i64, i64> = HashMap::new();
        let ids = people
            .iter()
            .map(|p| {
                let pref = lgcode_prefecture(&p.child.lgcode).expect("generated lgcode") as i64;
                let n = next.entry(pref).or_insert(0);
                *n += 1;
                pref * ID_BASE + *n
            })
            .collect();
        FairSet {
            people,
            pairs,
            ids,
            everyday_pairs,
            partial_redrawn,
        }
    }

    /// Every record, as search shows it (for the exact and recordlinkage baselines).
    pub fn persons(&self) -> Vec<Person> {
        self.people
            .iter()
            .zip(&self.ids)
            .map(|(p, &id)| person(&p.child, id))
            .collect()
    }

    /// The queries in the form the scorer takes; a target's exact twins (same name, reading and
    /// birth date, anywhere in the set) count as correct.
    pub fn eval_queries(&self) -> Vec<EvalQuery> {
        let ident = |c: &SyntheticChild| (c.name.clone(), c.birth_date);
        let wanted: HashSet<_> = self
            .pairs
            .iter()
            .map(|p| ident(&self.people[p.target].child))
            .collect();
        let mut twins: HashMap<_, Vec<i64>> = HashMap::new();
        for (p, &id) in self.people.iter().zip(&self.ids) {
            let k = ident(&p.child);
            if wanted.contains(&k) {
                twins.entry(k).or_default().push(id);
            }
        }
        self.pairs
            .iter()
            .enumerate()
            .map(|(qid, p)| EvalQuery {
                qid,
                kind: p.kind,
                q: p.q.clone(),
                birth: p.birth.clone(),
                target: self.ids[p.target],
                correct: twins[&ident(&self.people[p.target].child)].clone(),
            })
            .collect()
    }

    /// Distractors per pair, and how many of each kind.
    pub fn distractor_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for p in &self.people {
            if let Role::Distractor(_, dk) = p.role {
                *out.entry(DISTRACTOR_KINDS[dk]).or_default() += 1;
            }
        }
        out
    }
}

/// Registers the set, in its order, through the store's bulk write (which writes the search
/// index as an online write does), each record owned by a centre or municipality of the child's
/// prefecture.
pub async fn register(
    store: &dyn Storage,
    dir: &OrgDirectory,
    set: &FairSet,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<()> {
    let today = plan_today();
    let at = tsunagu_server::clock::Clock::default().now();
    let mut by_pref: HashMap<i64, Vec<&tsunagu_server::orgs::Org>> = HashMap::new();
    for o in dir.iter() {
        if matches!(o.kind, OrgKind::Cgc | OrgKind::Municipality) {
            by_pref.entry(o.pref_code).or_default().push(o);
        }
    }
    for v in by_pref.values_mut() {
        v.sort_by(|a, b| a.id.cmp(&b.id));
    }
    let mut rng = StdRng::seed_from_u64(0x0e9f);
    for (b, chunk) in set.people.chunks(5000).enumerate() {
        let mut writes = Vec::with_capacity(chunk.len());
        for (i, p) in chunk.iter().enumerate() {
            let pref = lgcode_prefecture(&p.child.lgcode).context("lgcode")? as i64;
            let owners = by_pref
                .get(&pref)
                .with_context(|| format!("no organisation in prefecture {pref}"))?;
            let owner = owners[rng.gen_range(0..owners.len())];
            let mut child = p.child.clone();
            if owner.kind == OrgKind::Municipality {
                if let Some(l) = &owner.lgcode {
                    child.lgcode = l.clone();
                }
            }
            let body = seed::synthetic_body(
                &mut rng,
                &child,
                &format!("F-{:07}", b * 5000 + i + 1),
                today,
            );
            writes.push(seed::seeded_write(owner, body, Restrictions::default(), at));
        }
        store.seed_records(writes).await?;
        progress(b * 5000 + chunk.len());
    }
    Ok(())
}

/// Checks that the stored records are the set's, id for id (a cached database of another set,
/// or ids not given as computed, would make every score meaningless).
pub async fn verify(store: &dyn Storage, set: &FairSet) -> anyhow::Result<()> {
    let check: Vec<usize> = (0..set.people.len())
        .filter(|&i| set.people[i].role != Role::Base || i % 50 == 0)
        .collect();
    for chunk in check.chunks(2000) {
        let ids: Vec<i64> = chunk.iter().map(|&i| set.ids[i]).collect();
        let docs = store.search_docs(&ids).await?;
        let by_id: HashMap<i64, _> = docs.into_iter().map(|d| (d.record_id, d)).collect();
        for &i in chunk {
            let want = &set.people[i].child;
            let d = by_id.get(&set.ids[i]).with_context(|| {
                format!(
                    "record {} of the S2 fair set is missing: a database of another set? (--regenerate)",
                    set.ids[i]
                )
            })?;
            let c = &d.fields.child;
            anyhow::ensure!(
                c.family == want.name.family
                    && c.given == want.name.given
                    && c.family_kana.as_deref() == Some(want.name.family_kana.as_str())
                    && d.fields.birth_date.map(|b| b.date) == Some(want.birth_date),
                "record {} is not the S2 fair set's: a database of another set? (--regenerate)",
                set.ids[i]
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// The fair set's classes are the population set's, in its order, then the new ones: the
    /// two lists are kept apart only because a const array cannot be concatenated.
    #[test]
    fn fair_kinds_extend_the_population_kinds() {
        assert_eq!(FAIR_KINDS[..crate::s2::KINDS.len()], crate::s2::KINDS);
    }

    fn set() -> &'static FairSet {
        static SET: OnceLock<FairSet> = OnceLock::new();
        SET.get_or_init(|| {
            FairSet::generate(&FairOpts {
                base: 2000,
                per_kind: 200,
                min_distractors: 3,
                max_distractors: 8,
                seed: 7,
            })
        })
    }

    fn of_kind(kind: &str) -> Vec<&'static FairPair> {
        set().pairs.iter().filter(|p| p.kind == kind).collect()
    }

    #[test]
    fn every_class_is_filled() {
        for kind in FAIR_KINDS {
            assert_eq!(of_kind(kind).len(), 200, "{kind}");
        }
        let s = set();
        let base = s.people.iter().filter(|p| p.role == Role::Base).count();
        assert_eq!(base, 2000);
        let counts = s.distractor_counts();
        assert_eq!(counts.len(), DISTRACTOR_KINDS.len(), "{counts:?}");
        for p in &s.pairs {
            assert!(
                (3..=8).contains(&p.distractors.len()),
                "{} {:?}: {} distractors",
                p.kind,
                p.q,
                p.distractors.len()
            );
        }
    }

    #[test]
    fn every_distractor_is_fair() {
        let s = set();
        let mut checked = 0;
        for p in &s.pairs {
            let t = &s.people[p.target].child;
            let tr = reading_key(&format!("{}{}", t.name.family_kana, t.name.given_kana));
            let tn = name_key(&format!("{}{}", t.name.family, t.name.given));
            for &d in &p.distractors {
                assert_eq!(
                    s.people[d].role,
                    Role::Distractor(
                        s.pairs.iter().position(|x| std::ptr::eq(x, p)).unwrap(),
                        match s.people[d].role {
                            Role::Distractor(_, k) => k,
                            _ => usize::MAX,
                        }
                    )
                );
                let d = &s.people[d].child;
                let dr = reading_key(&format!("{}{}", d.name.family_kana, d.name.given_kana));
                let dn = name_key(&format!("{}{}", d.name.family, d.name.given));
                assert_ne!(tr, dr, "{:?} vs {:?}", t.name, d.name);
                assert_ne!(tn, dn, "{:?} vs {:?}", t.name, d.name);
                assert_ne!(name_key(&p.q), dn, "query {:?} names {:?}", p.q, d.name);
                assert_ne!(reading_key(&p.q), dr, "query {:?} reads {:?}", p.q, d.name);
                if p.kind == "one_typo" || p.kind == "short_typo" {
                    assert!(
                        d.birth_date != t.birth_date
                            || osa(&loose_reading(&reading_key(&p.q)), &loose_reading(&dr)) > 1,
                        "{:?} is one typo from {:?} too",
                        p.q,
                        d.name
                    );
                }
                if p.kind == "ties" {
                    assert!(
                        name_key(&d.name.family) != name_key(&t.name.family)
                            || d.birth_date != t.birth_date
                    );
                }
                // A look-alike: it shares something with the target.
                let shares = d.name.family == t.name.family
                    || d.name.given == t.name.given
                    || d.birth_date == t.birth_date
                    || name_key(&d.name.family) == name_key(&t.name.family)
                    || name_key(&d.name.given) == name_key(&t.name.given)
                    || d.name.family_kana == t.name.family_kana
                    || d.name.given_kana == t.name.given_kana;
                assert!(shares, "{:?} vs {:?}", t.name, d.name);
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn osa_counts_one_typo_as_one() {
        assert_eq!(osa("ハナコ", "ハナコ"), 0);
        assert_eq!(osa("ハナコ", "ハルコ"), 1);
        assert_eq!(osa("ハナコ", "ハコ"), 1);
        assert_eq!(osa("ハナコ", "ナハコ"), 1);
        assert_eq!(osa("ハナコ", "ハナコウ"), 1);
        assert_eq!(osa("ハナコ", "ヒロシ"), 3);
    }

    #[test]
    fn dictionary_reading_pairs_respell_one_part() {
        for p in of_kind("dictionary_reading") {
            let t = &set().people[p.target].child.name;
            let (qf, qg) = p.q.split_once(' ').unwrap();
            assert!(
                qf.chars().any(is_kanji) && qg.chars().any(is_kanji),
                "{:?}: written in kanji",
                p.q
            );
            let changed: Vec<usize> = [(qf, &t.family), (qg, &t.given)]
                .iter()
                .enumerate()
                .filter(|(_, (q, n))| q != n)
                .map(|(k, _)| k)
                .collect();
            assert_eq!(changed.len(), 1, "{:?} vs {t:?}", p.q);
            let k = changed[0];
            let (qpart, (tpart, treading)) = ([qf, qg][k], part(t, k));
            assert!(all_kanji(qpart), "{:?}: the respelled part is kanji", p.q);
            assert_ne!(name_key(qpart), name_key(tpart), "{:?}", p.q);
            let pool = [names::family_names(), names::given_names()][k];
            assert!(
                pool.iter()
                    .any(|e| e.name == qpart && reading_key(e.reading) == reading_key(treading)),
                "{qpart} is not read {treading} in the dictionary"
            );
            assert!(p.birth.parse::<NaiveDate>().is_ok());
        }
    }

    #[test]
    fn everyday_pairs_are_everyday_variants_read_alike() {
        let dict = Dict::load();
        assert!(
            dict.everyday.len() >= 10,
            "{} char pairs",
            dict.everyday.len()
        );
        // Named in the brief of the class; the dictionary has both spellings of these.
        let pairs: HashSet<(char, char)> = dict
            .everyday
            .iter()
            .flatten()
            .map(|p| (p.from_char, p.to_char))
            .collect();
        assert!(
            pairs.contains(&('崎', '嵜')) && pairs.contains(&('嵜', '崎')),
            "{pairs:?}"
        );
        for group in &dict.everyday {
            for p in group {
                let (a, b) = (dict.entry(p.kind, p.from), dict.entry(p.kind, p.to));
                assert!(in_cp932(a.name) && in_cp932(b.name), "{a:?} {b:?}");
                assert_ne!(p.from_char, p.to_char);
                assert_eq!(reading_key(a.reading), reading_key(b.reading));
                let diff: Vec<(char, char)> = a
                    .name
                    .chars()
                    .zip(b.name.chars())
                    .filter(|(x, y)| x != y)
                    .collect();
                assert_eq!(a.name.chars().count(), b.name.chars().count());
                assert_eq!(diff, vec![(p.from_char, p.to_char)], "{a:?} {b:?}");
            }
        }
        for p in of_kind("variant_kanji_everyday") {
            let t = &set().people[p.target].child.name;
            let tq = format!("{}{}", t.family, t.given);
            let q: String = p.q.chars().filter(|c| *c != ' ').collect();
            let diff: Vec<(char, char)> =
                tq.chars().zip(q.chars()).filter(|(a, b)| a != b).collect();
            assert_eq!(tq.chars().count(), q.chars().count());
            assert_eq!(diff.len(), 1, "{tq} vs {q}");
            let (a, b) = diff[0];
            assert!(in_cp932(&a.to_string()) && in_cp932(&b.to_string()));
            assert!(pairs.contains(&(a, b)), "{a}{b}");
        }
    }

    #[test]
    fn partial_combo_parts_are_prefixes() {
        let mut scripts = HashSet::new();
        for p in of_kind("partial_combo") {
            let t = &set().people[p.target].child;
            let (f, g) = p.q.split_once(' ').unwrap();
            let kana = f.chars().all(|c| ('\u{30A0}'..='\u{30FF}').contains(&c));
            scripts.insert(kana);
            if kana {
                assert!(t.name.family_kana.starts_with(f) && t.name.given_kana.starts_with(g));
                assert!(f.chars().count() == 2 && g.chars().count() == 2);
            } else {
                assert!(t.name.family.starts_with(f) && t.name.given.starts_with(g));
                assert!(f != t.name.family && g != t.name.given, "{:?}", p.q);
                assert!(all_kanji(f) && all_kanji(g));
            }
            assert_eq!(p.birth, t.birth_date.year().to_string());
        }
        assert_eq!(scripts.len(), 2, "both scripts");
    }

    #[test]
    fn no_other_record_fits_a_partial_query_as_well_as_its_target() {
        let s = set();
        let keys: Vec<PartKeys> = s.people.iter().map(|p| PartKeys::of(&p.child)).collect();
        let mut checked = 0;
        for p in of_kind("partial_combo") {
            let q = PartialQuery::parse(&p.q, &p.birth).unwrap();
            assert!(q.fits(&keys[p.target]), "{:?}", p.q);
            for (i, k) in keys.iter().enumerate() {
                assert!(
                    i == p.target || !q.fits(k),
                    "{:?} {:?}",
                    p.q,
                    s.people[i].child.name
                );
            }
            checked += 1;
        }
        assert!(checked > 0);
    }

    #[test]
    fn registration_order_hides_roles() {
        let s = set();
        let (mut first, mut last) = (0, 0);
        for p in &s.pairs {
            let min = p.distractors.iter().min().unwrap();
            let max = p.distractors.iter().max().unwrap();
            first += (p.target < *min) as usize;
            last += (p.target > *max) as usize;
        }
        let n = s.pairs.len();
        // With 3–8 distractors in random order the target comes first about 1/6 of the time.
        assert!(first > n / 20 && first < n / 2, "{first}/{n}");
        assert!(last > n / 20 && last < n / 2, "{last}/{n}");
        // Targets spread over the whole order, ids over the prefectures.
        let pos: Vec<usize> = s.pairs.iter().map(|p| p.target).collect();
        let half = pos.iter().filter(|&&i| i < s.people.len() / 2).count();
        assert!(half > n / 3 && half < 2 * n / 3, "{half}/{n}");
        let ids: HashSet<i64> = s.ids.iter().copied().collect();
        assert_eq!(ids.len(), s.ids.len(), "ids are unique");
        let prefs: HashSet<i64> = s.pairs.iter().map(|p| s.ids[p.target] / ID_BASE).collect();
        assert!(prefs.len() > 40);
    }

    #[test]
    fn same_options_same_set() {
        let o = FairOpts {
            base: 50,
            per_kind: 5,
            min_distractors: 3,
            max_distractors: 4,
            seed: 11,
        };
        let (a, b) = (FairSet::generate(&o), FairSet::generate(&o));
        assert_eq!(a.ids, b.ids);
        let qa: Vec<_> = a.pairs.iter().map(|p| (&p.q, &p.birth, p.target)).collect();
        let qb: Vec<_> = b.pairs.iter().map(|p| (&p.q, &p.birth, p.target)).collect();
        assert_eq!(qa, qb);
    }

    #[test]
    fn queries_parse_and_targets_are_correct() {
        let s = set();
        for q in s.eval_queries() {
            assert!(q.correct.contains(&q.target), "{q:?}");
            assert!(
                tsunagu_server::search::Query::parse(Some(&q.q), None, Some(&q.birth), None, None)
                    .is_ok(),
                "{q:?}"
            );
        }
    }
}
