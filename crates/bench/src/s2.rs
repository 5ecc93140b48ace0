//! S2: how well the person search finds a child written differently. An evaluation set of
//! variant pairs is generated from the synthetic people of the benchmark database (made by
//! `tsunagu_masterdata::PeopleGenerator` through the seeder: synthetic people only): a record
//! is drawn, and the query is its name written with one kind of variation (variant kanji, IVS,
//! half-width kana, hiragana, long vowels, one typo, swapped names, or the birth date as a
//! Japanese era), plus the date of birth. Three matchers answer the same queries over the same
//! population in the same run:
//!
//! - **tsunagu**: the server's search service (`AppState::search`), hits in answer order;
//! - **exact after NFKC**: the typed name, NFKC and without spaces, equal to the record's name
//!   or reading (family + given, NFKC), and the typed date equal to the ISO date;
//! - **recordlinkage** (PyPI): `python/s2_recordlinkage.py`, run as a subprocess on the same
//!   population and queries exported as CSV.
//!
//! Recall@10: the record (or an exact twin: same name, reading and birth date, which no matcher
//! can tell apart) is among the first 10 answers. Precision@1: the first answer is it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tsunagu_record::era::format_era;
use tsunagu_record::normalize::nfkc;
use tsunagu_record::variants::fold_char;
use tsunagu_server::search::Query;
use tsunagu_server::storage::Storage;

use crate::data::{self, ID_BASE};
use crate::s1::Env;

// ----- kana, era and variant helpers (shared with S1) -----------------------------------------

/// Katakana → hiragana (ァ..ヶ by a fixed offset); other chars unchanged.
pub fn to_hiragana(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{30A1}'..='\u{30F6}' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            _ => c,
        })
        .collect()
}

const FULL_KANA: &str = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンァィゥェォャュョッー";
const HALF_KANA: &str = "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝｧｨｩｪｫｬｭｮｯｰ";

/// Full-width katakana → half-width (ガ → ｶﾞ, パ → ﾊﾟ), as older systems store readings.
pub fn to_halfwidth(s: &str) -> String {
    let map: HashMap<char, char> = FULL_KANA.chars().zip(HALF_KANA.chars()).collect();
    let mut out = String::new();
    for c in s.chars() {
        if let Some(h) = map.get(&c) {
            out.push(*h);
            continue;
        }
        let (base, mark) = if c == 'ヴ' {
            ('ウ', 'ﾞ')
        } else if "ガギグゲゴザジズゼゾダヂヅデドバビブベボ".contains(c) {
            (char::from_u32(c as u32 - 1).unwrap_or(c), 'ﾞ')
        } else if "パピプペポ".contains(c) {
            (char::from_u32(c as u32 - 2).unwrap_or(c), 'ﾟ')
        } else {
            out.push(c);
            continue;
        };
        match map.get(&base) {
            Some(h) => {
                out.push(*h);
                out.push(mark);
            }
            None => out.push(c),
        }
    }
    out
}

const ERA_LETTERS: [(&str, char); 5] = [
    ("令和", 'R'),
    ("平成", 'H'),
    ("昭和", 'S'),
    ("大正", 'T'),
    ("明治", 'M'),
];

/// (era kanji, era letter, year in era) of a date.
fn era_parts(d: NaiveDate) -> Option<(&'static str, char, u32)> {
    let long = format_era(d);
    let (kanji, letter) = ERA_LETTERS
        .iter()
        .find(|(k, _)| long.starts_with(k))
        .copied()?;
    let rest = &long[kanji.len()..];
    let y = rest.split('年').next()?;
    let y = if y == "元" { 1 } else { y.parse().ok()? };
    Some((kanji, letter, y))
}

/// `H27.4.1`.
pub fn era_short(d: NaiveDate) -> String {
    use chrono::Datelike as _;
    match era_parts(d) {
        Some((_, l, y)) => format!("{l}{y}.{}.{}", d.month(), d.day()),
        None => d.format("%Y-%m-%d").to_string(),
    }
}

/// `平成27年4月1日`.
pub fn era_long(d: NaiveDate) -> String {
    format_era(d)
}

/// `平成27年`.
pub fn era_year(d: NaiveDate) -> String {
    match era_parts(d) {
        Some((k, _, 1)) => format!("{k}元年"),
        Some((k, _, y)) => format!("{k}{y}年"),
        None => d.format("%Y").to_string(),
    }
}

/// Variants people actually write in names, preferred when a name has one.
const COMMON_VARIANTS: &str = "髙﨑邊邉齋齊濱濵𠮷澤嶋廣國櫻舘冨眞惠榮德彌藏實壽與淺關邨籠槇檜";

/// For each folded kanji, the variant forms that fold to it (from the same tables the server
/// uses: MJ, Unihan, supplement).
pub struct Variants {
    rev: HashMap<char, Vec<char>>,
    common: HashSet<char>,
}

impl Variants {
    pub fn load() -> Variants {
        let mut rev: HashMap<char, Vec<char>> = HashMap::new();
        for table in [
            include_str!("../../record/src/variants/supplement.tsv"),
            include_str!("../../record/src/variants/mj.tsv"),
            include_str!("../../record/src/variants/unihan.tsv"),
        ] {
            for l in table.lines().filter(|l| !l.starts_with('#')) {
                let Some((s, _)) = l.split_once('\t') else {
                    continue;
                };
                let mut cs = s.chars();
                let (Some(s), None) = (cs.next(), cs.next()) else {
                    continue;
                };
                let t = fold_char(s);
                if t != s {
                    let v = rev.entry(t).or_default();
                    if !v.contains(&s) {
                        v.push(s);
                    }
                }
            }
        }
        for v in rev.values_mut() {
            v.sort_unstable();
        }
        Variants {
            rev,
            common: COMMON_VARIANTS
                .chars()
                .filter(|c| fold_char(*c) != *c)
                .collect(),
        }
    }

    /// The name with one kanji written differently: a variant form of a folded kanji (a
    /// common one if there is one), or the folded form of a variant. `None` if no kanji of the
    /// name has a variant.
    pub fn vary(&self, name: &str, rng: &mut StdRng) -> Option<String> {
        let chars: Vec<char> = name.chars().collect();
        let mut options: Vec<(usize, char, bool)> = Vec::new();
        for (i, &c) in chars.iter().enumerate() {
            let f = fold_char(c);
            if f != c {
                options.push((i, f, true));
            }
            if let Some(vs) = self.rev.get(&c) {
                for &v in vs {
                    options.push((i, v, self.common.contains(&v)));
                }
            }
        }
        let common: Vec<_> = options.iter().filter(|o| o.2).copied().collect();
        let pick = if !common.is_empty() {
            *common.choose(rng)?
        } else {
            *options.choose(rng)?
        };
        let mut out = chars;
        out[pick.0] = pick.1;
        Some(out.into_iter().collect())
    }
}

const O_ROW: &str = "オコゴソゾトドノホボポモヨロョヲ";
const U_ROW: &str = "ウクグスズツヅヌフブプムユルュ";
const E_ROW: &str = "エケゲセゼテデネヘベペメレ";

/// A reading with one long vowel written another way (ショウ → ショー, オオノ → オーノ,
/// ケイ → ケー), or `None` if it has none.
pub fn long_vowel(reading: &str) -> Option<String> {
    let c: Vec<char> = reading.chars().collect();
    for i in 1..c.len() {
        let (p, x) = (c[i - 1], c[i]);
        let long = (x == 'ウ' && (O_ROW.contains(p) || U_ROW.contains(p)))
            || (x == 'オ' && O_ROW.contains(p))
            || (x == 'イ' && E_ROW.contains(p));
        if long {
            let mut out = c.clone();
            out[i] = 'ー';
            return Some(out.into_iter().collect());
        }
        if x == 'ー' {
            let mut out = c.clone();
            out[i] = if O_ROW.contains(p) || U_ROW.contains(p) {
                'ウ'
            } else {
                continue;
            };
            return Some(out.into_iter().collect());
        }
    }
    None
}

const TYPO_KANA: &str =
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン";

/// One typo in a reading of 4 characters or more: a kana replaced, dropped, or two neighbours
/// swapped (never the first character).
pub fn typo(reading: &str, rng: &mut StdRng) -> Option<String> {
    let mut c: Vec<char> = reading.chars().collect();
    if c.len() < 4 {
        return None;
    }
    let i = rng.gen_range(1..c.len() - 1);
    match rng.gen_range(0..5) {
        0 => {
            c.remove(i);
        }
        1 if c[i] != c[i + 1] => c.swap(i, i + 1),
        _ => {
            let pool: Vec<char> = TYPO_KANA.chars().filter(|k| *k != c[i]).collect();
            c[i] = *pool.choose(rng)?;
        }
    }
    Some(c.into_iter().collect())
}

// ----- the population and the evaluation set ----------------------------------------------------

/// One record of the population, as search shows it.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: i64,
    pub family: String,
    pub given: String,
    pub family_kana: String,
    pub given_kana: String,
    pub birth: Option<NaiveDate>,
    pub sex: Option<u8>,
}

impl Person {
    fn identity(&self) -> (String, String, String, String, Option<NaiveDate>) {
        (
            self.family.clone(),
            self.given.clone(),
            self.family_kana.clone(),
            self.given_kana.clone(),
            self.birth,
        )
    }
}

/// Every record's search fields, read through `search_docs` in id order.
pub async fn population(store: &dyn Storage) -> anyhow::Result<Vec<Person>> {
    let started = Instant::now();
    let counts = data::pref_counts(store).await?;
    let mut out = Vec::new();
    for (pref, n) in counts {
        let ids: Vec<i64> = (1..=n).map(|k| pref * ID_BASE + k).collect();
        for chunk in ids.chunks(2000) {
            for d in store.search_docs(chunk).await? {
                let c = d.fields.child;
                out.push(Person {
                    id: d.record_id,
                    family: c.family,
                    given: c.given,
                    family_kana: c.family_kana.unwrap_or_default(),
                    given_kana: c.given_kana.unwrap_or_default(),
                    birth: d.fields.birth_date.map(|b| b.date),
                    sex: d.fields.sex,
                });
            }
        }
    }
    out.sort_by_key(|p| p.id);
    eprintln!(
        "S2: population of {} records read in {:.1} s",
        out.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

pub const KINDS: [&str; 11] = [
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
];

/// Conventional kana and the loanword spelling that folds to them (the inverse of
/// `normalize::LOANWORD_KANA`, one spelling each).
const TO_LOANWORD: [(char, &str); 15] = [
    ('バ', "ヴァ"),
    ('ビ', "ヴィ"),
    ('ブ', "ヴ"),
    ('ベ', "ヴェ"),
    ('ボ', "ヴォ"),
    ('チ', "ティ"),
    ('ジ', "ディ"),
    ('ツ', "トゥ"),
    ('ズ', "ドゥ"),
    ('ハ', "ファ"),
    ('ヒ', "フィ"),
    ('ヘ', "フェ"),
    ('ホ', "フォ"),
    ('セ', "シェ"),
    ('ゼ', "ジェ"),
];

/// A reading with one kana written as a loanword spelling that folds back to it (ハナコ →
/// ファナコ, チカ → ティカ), or `None` if it has none. The population has native names only
/// (the generator leaves katakana names out), so this is the direction S2 can test: the
/// record in conventional kana, the query with a loanword spelling.
pub fn loanword(reading: &str, rng: &mut StdRng) -> Option<String> {
    let c: Vec<char> = reading.chars().collect();
    let small = |i: usize| c.get(i).is_some_and(|n| "ャュョァィゥェォ".contains(*n));
    let spots: Vec<(usize, &str)> = (0..c.len())
        .filter(|&i| !small(i + 1))
        .filter_map(|i| {
            TO_LOANWORD
                .iter()
                .find(|(k, _)| *k == c[i])
                .map(|(_, l)| (i, *l))
        })
        .collect();
    let (i, l) = *spots.choose(rng)?;
    Some(c[..i].iter().collect::<String>() + l + &c[i + 1..].iter().collect::<String>())
}

/// One variant pair: the record and the query that should find it.
#[derive(Debug, Clone, Serialize)]
pub struct EvalQuery {
    pub qid: usize,
    pub kind: &'static str,
    pub q: String,
    pub birth: String,
    pub target: i64,
    /// The target and its exact twins (same name, reading and birth date).
    pub correct: Vec<i64>,
}

pub fn make_query(
    kind: &'static str,
    p: &Person,
    v: &Variants,
    rng: &mut StdRng,
) -> Option<(String, String)> {
    let b = p.birth?;
    let iso = b.format("%Y-%m-%d").to_string();
    let reading = format!("{}{}", p.family_kana, p.given_kana);
    if p.family_kana.is_empty() || p.given_kana.is_empty() {
        return None;
    }
    let q = match kind {
        "variant_kanji" => {
            // Vary the family name or the given name, whichever has a variant (family first
            // in half of the cases).
            let fam_first = rng.gen_bool(0.5);
            let (f, g) = if fam_first {
                match v.vary(&p.family, rng) {
                    Some(f) => (f, p.given.clone()),
                    None => (p.family.clone(), v.vary(&p.given, rng)?),
                }
            } else {
                match v.vary(&p.given, rng) {
                    Some(g) => (p.family.clone(), g),
                    None => (v.vary(&p.family, rng)?, p.given.clone()),
                }
            };
            format!("{f} {g}")
        }
        "ivs" => {
            // An ideographic variation selector after the first kanji, as IVS-aware systems
            // (family registers, some municipal systems) store it.
            let mut f = p.family.chars();
            let first = f.next()?;
            if (first as u32) < 0x3400 {
                return None;
            }
            let sel = char::from_u32(0xE0100 + rng.gen_range(0..3))?;
            format!("{first}{sel}{} {}", f.as_str(), p.given)
        }
        "halfwidth_kana" => format!(
            "{} {}",
            to_halfwidth(&p.family_kana),
            to_halfwidth(&p.given_kana)
        ),
        "hiragana" => format!(
            "{}{}",
            to_hiragana(&p.family_kana),
            to_hiragana(&p.given_kana)
        ),
        "long_vowel" => {
            if rng.gen_bool(0.5) {
                format!("{} {}", long_vowel(&p.family_kana)?, p.given_kana)
            } else {
                match long_vowel(&p.given_kana) {
                    Some(g) => format!("{} {}", p.family_kana, g),
                    None => format!("{} {}", long_vowel(&p.family_kana)?, p.given_kana),
                }
            }
        }
        "one_typo" => typo(&reading, rng)?,
        "loanword_kana" => {
            if rng.gen_bool(0.5) {
                format!("{} {}", loanword(&p.family_kana, rng)?, p.given_kana)
            } else {
                match loanword(&p.given_kana, rng) {
                    Some(g) => format!("{} {}", p.family_kana, g),
                    None => format!("{} {}", loanword(&p.family_kana, rng)?, p.given_kana),
                }
            }
        }
        // A typo in a name of at most six kana once long vowels go (where the deletion keys
        // apply); the typo must change the loose reading, or it is no typo to the search.
        "short_typo" => {
            let loose = tsunagu_record::normalize::loose_reading(&reading);
            if loose.chars().count() > tsunagu_server::search::DELETION_KEYED_MAX {
                return None;
            }
            let t = typo(&reading, rng)?;
            if tsunagu_record::normalize::loose_reading(&t) == loose {
                return None;
            }
            t
        }
        // The family name and the exact day: other children of that family name born that day
        // are equal evidence, and precision@1 with ties as misses counts them against us.
        "ties" => return Some((p.family.clone(), iso)),
        "swapped_names" => format!("{} {}", p.given, p.family),
        "era_date" => {
            let birth = if rng.gen_bool(0.5) {
                era_short(b)
            } else {
                era_long(b)
            };
            return Some((format!("{}{}", p.family, p.given), birth));
        }
        _ => return None,
    };
    Some((q, iso))
}

/// Draws `per_kind` records per kind (each record at most once) and writes each one's query.
pub fn eval_set(people: &[Person], per_kind: usize, seed: u64) -> Vec<EvalQuery> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x52);
    let v = Variants::load();
    let mut used = HashSet::new();
    let mut out = Vec::new();
    for kind in KINDS {
        let mut made = 0;
        let mut tries = 0;
        while made < per_kind && tries < per_kind * 1000 {
            tries += 1;
            let p = &people[rng.gen_range(0..people.len())];
            if used.contains(&p.id) {
                continue;
            }
            if let Some((q, birth)) = make_query(kind, p, &v, &mut rng) {
                used.insert(p.id);
                out.push(EvalQuery {
                    qid: out.len(),
                    kind,
                    q,
                    birth,
                    target: p.id,
                    correct: Vec::new(),
                });
                made += 1;
            }
        }
    }
    // Twins: records no matcher can tell from the target.
    let idx: HashMap<i64, usize> = people.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    let wanted: HashSet<_> = out
        .iter()
        .map(|q| people[idx[&q.target]].identity())
        .collect();
    let mut twins: HashMap<_, Vec<i64>> = HashMap::new();
    for p in people {
        let k = p.identity();
        if wanted.contains(&k) {
            twins.entry(k).or_default().push(p.id);
        }
    }
    for q in &mut out {
        q.correct = twins[&people[idx[&q.target]].identity()].clone();
    }
    out
}

// ----- matchers ----------------------------------------------------------------------------------

/// The first answers of one matcher for every query, in query order.
pub type Answers = Vec<Vec<i64>>;

/// Per query: whether the second answer is tied with the first (tsunagu says so with
/// `tied_with_previous`).
pub type Ties = Vec<bool>;

/// tsunagu's search through the service, as a searcher would see it (first page, hits in
/// group order).
pub async fn ours(env: &Env, qs: &[EvalQuery]) -> anyhow::Result<(Answers, Ties, f64)> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(qs.len());
    let mut ties = Vec::with_capacity(qs.len());
    for q in qs {
        let parsed = Query::parse(Some(&q.q), None, Some(&q.birth), None, None)
            .map_err(|e| anyhow::anyhow!("query {:?} refused: {}", q.q, e.message))?;
        let r = env
            .state
            .search(&env.viewer, parsed)
            .await
            .map_err(|e| anyhow::anyhow!("search {:?}: {e:?}", q.q))?;
        // The second answer: the first group's second hit, or the second group.
        let second_tied = match r.groups.first().map(|g| g.hits.get(1)) {
            Some(Some(h)) => h.tied_with_previous,
            Some(None) => r.groups.get(1).is_some_and(|g| g.tied_with_previous),
            None => false,
        };
        ties.push(second_tied);
        out.push(
            r.groups
                .iter()
                .flat_map(|g| g.hits.iter().map(|h| h.record_id))
                .take(10)
                .collect(),
        );
    }
    Ok((out, ties, started.elapsed().as_secs_f64()))
}

fn squash(s: &str) -> String {
    nfkc(s).chars().filter(|c| !c.is_whitespace()).collect()
}

/// Exact matching after NFKC: the typed name equal to the record's name or reading, the typed
/// birth date equal to the record's; answers in id order.
pub fn exact(people: &[Person], qs: &[EvalQuery]) -> Answers {
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in people.iter().enumerate() {
        let name = squash(&format!("{}{}", p.family, p.given));
        let kana = squash(&format!("{}{}", p.family_kana, p.given_kana));
        by_key.entry(name.clone()).or_default().push(i);
        if !kana.is_empty() && kana != name {
            by_key.entry(kana).or_default().push(i);
        }
    }
    qs.iter()
        .map(|q| {
            let birth = nfkc(q.birth.trim());
            let mut ids: Vec<i64> = by_key
                .get(&squash(&q.q))
                .map(|v| {
                    v.iter()
                        .map(|&i| &people[i])
                        .filter(|p| {
                            p.birth.map(|b| b.format("%Y-%m-%d").to_string()) == Some(birth.clone())
                        })
                        .map(|p| p.id)
                        .collect()
                })
                .unwrap_or_default();
            ids.sort_unstable();
            ids.dedup();
            ids.truncate(10);
            ids
        })
        .collect()
}

/// What the Python baseline reported about itself.
#[derive(Debug, Clone, Serialize)]
pub struct PythonRun {
    pub info: serde_json::Value,
    pub secs: f64,
}

/// recordlinkage (PyPI) through `python/s2_recordlinkage.py`, on the same population and
/// queries exported as CSV into `dir`.
pub fn recordlinkage(
    python: &str,
    dir: &Path,
    people: &[Person],
    qs: &[EvalQuery],
) -> anyhow::Result<(Answers, PythonRun)> {
    std::fs::create_dir_all(dir)?;
    let pop = dir.join("population.csv");
    let queries = dir.join("queries.csv");
    let results = dir.join("results.csv");
    let csv_field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&pop)?);
        writeln!(w, "id,family,given,family_kana,given_kana,birth,sex")?;
        for p in people {
            writeln!(
                w,
                "{},{},{},{},{},{},{}",
                p.id,
                csv_field(&p.family),
                csv_field(&p.given),
                csv_field(&p.family_kana),
                csv_field(&p.given_kana),
                p.birth
                    .map(|b| b.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                p.sex.map(|s| s.to_string()).unwrap_or_default()
            )?;
        }
        w.flush()?;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&queries)?);
        writeln!(w, "qid,kind,q,birth")?;
        for q in qs {
            writeln!(
                w,
                "{},{},{},{}",
                q.qid,
                q.kind,
                csv_field(&q.q),
                csv_field(&q.birth)
            )?;
        }
        w.flush()?;
    }
    let script = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/s2_recordlinkage.py"
    ));
    let started = Instant::now();
    let out = std::process::Command::new(python)
        .arg(&script)
        .args([&pop, &queries, &results])
        .output()
        .with_context(|| {
            format!(
                "running {python} {}: is Python installed? (--s2-python names the interpreter)",
                script.display()
            )
        })?;
    let secs = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let info: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    if !out.status.success() {
        anyhow::bail!(
            "the recordlinkage baseline failed ({}): {} {}",
            out.status,
            info.get("error").and_then(|e| e.as_str()).unwrap_or(""),
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .rev()
                .take(2000)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        );
    }
    let text = std::fs::read_to_string(&results)?;
    let mut by_qid: HashMap<usize, Vec<i64>> = HashMap::new();
    for l in text.lines().skip(1) {
        let (qid, ids) = l.split_once(',').context("results.csv line")?;
        by_qid.insert(
            qid.parse()?,
            ids.split_whitespace()
                .map(|s| s.parse())
                .collect::<Result<_, _>>()?,
        );
    }
    let answers = qs
        .iter()
        .map(|q| by_qid.remove(&q.qid).unwrap_or_default())
        .collect();
    Ok((answers, PythonRun { info, secs }))
}

// ----- scoring -----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Score {
    pub queries: usize,
    pub recall_at_10: f64,
    pub precision_at_1: f64,
    /// Precision@1 where a first answer tied with a wrong second one is a miss (only for a
    /// matcher that reports ties).
    pub precision_at_1_ties_missed: Option<f64>,
}

/// Per kind (and `overall`): recall@10 and precision@1 of one matcher's answers; with `ties`,
/// also precision@1 counting a tie with a wrong answer as a miss.
pub fn score(qs: &[EvalQuery], answers: &Answers, ties: Option<&Ties>) -> BTreeMap<String, Score> {
    let mut acc: BTreeMap<String, (usize, usize, usize, usize)> = BTreeMap::new();
    for (i, (q, a)) in qs.iter().zip(answers).enumerate() {
        let hit10 = a.iter().take(10).any(|id| q.correct.contains(id));
        let hit1 = a.first().is_some_and(|id| q.correct.contains(id));
        let tied_wrong =
            ties.is_some_and(|t| t[i]) && a.get(1).is_some_and(|id| !q.correct.contains(id));
        for k in [q.kind, "overall"] {
            let e = acc.entry(k.to_string()).or_default();
            e.0 += 1;
            e.1 += hit10 as usize;
            e.2 += hit1 as usize;
            e.3 += (hit1 && !tied_wrong) as usize;
        }
    }
    acc.into_iter()
        .map(|(k, (n, r, p, strict))| {
            (
                k,
                Score {
                    queries: n,
                    recall_at_10: r as f64 / n.max(1) as f64,
                    precision_at_1: p as f64 / n.max(1) as f64,
                    precision_at_1_ties_missed: ties.map(|_| strict as f64 / n.max(1) as f64),
                },
            )
        })
        .collect()
}

/// Queries tsunagu misses, for the report (at most a few per kind).
pub fn misses(qs: &[EvalQuery], answers: &Answers, per_kind: usize) -> Vec<serde_json::Value> {
    let mut n: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (q, a) in qs.iter().zip(answers) {
        let hit1 = a.first().is_some_and(|id| q.correct.contains(id));
        if !hit1 {
            let c = n.entry(q.kind).or_default();
            if *c < per_kind {
                *c += 1;
                out.push(serde_json::json!({
                    "kind": q.kind, "q": q.q, "birth": q.birth, "target": q.target,
                    "rank": a.iter().position(|id| q.correct.contains(id)).map(|r| r + 1),
                    "answers": a.len(),
                }));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loanword_spellings_fold_back() {
        let mut rng = StdRng::seed_from_u64(1);
        for r in [
            "ハナコ",
            "チカ",
            "シズカ",
            "ヒロシ",
            "タツヤ",
            "セイジ",
            "ゼンボウ",
        ] {
            for _ in 0..5 {
                let l = loanword(r, &mut rng).unwrap();
                assert_ne!(l, r);
                assert_eq!(tsunagu_record::normalize::loanword_fold(&l), r, "{r} → {l}");
            }
        }
        // Nothing to write as a loanword; a kana before a small one is left alone.
        assert_eq!(loanword("アイコ", &mut rng), None);
        assert_eq!(loanword("チュウ", &mut rng), None);
    }

    #[test]
    fn kana_forms() {
        assert_eq!(to_hiragana("ヤマダ ハナコ"), "やまだ はなこ");
        assert_eq!(to_halfwidth("ヤマダ"), "ﾔﾏﾀﾞ");
        assert_eq!(to_halfwidth("パブロ"), "ﾊﾟﾌﾞﾛ");
        assert_eq!(to_halfwidth("ショウゴ"), "ｼｮｳｺﾞ");
        assert_eq!(to_halfwidth("ヴィ"), "ｳﾞｨ");
        for s in [
            "ガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポ",
            "ヤマダタロウ",
        ] {
            assert_eq!(tsunagu_record::normalize::search_key(&to_halfwidth(s)), s);
        }
    }

    #[test]
    fn long_vowels_and_typos() {
        assert_eq!(long_vowel("ショウ").as_deref(), Some("ショー"));
        assert_eq!(long_vowel("オオノ").as_deref(), Some("オーノ"));
        assert_eq!(long_vowel("ケイコ").as_deref(), Some("ケーコ"));
        assert_eq!(long_vowel("ハナコ"), None);
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let t = typo("ヤマダハナコ", &mut rng).unwrap();
            assert_ne!(t, "ヤマダハナコ");
            assert!(t.starts_with('ヤ'));
        }
    }

    #[test]
    fn era_forms_parse_back() {
        let d = NaiveDate::from_ymd_opt(2015, 4, 1).unwrap();
        assert_eq!(era_short(d), "H27.4.1");
        assert_eq!(era_long(d), "平成27年4月1日");
        assert_eq!(era_year(d), "平成27年");
        let r = NaiveDate::from_ymd_opt(2019, 5, 3).unwrap();
        assert_eq!(era_short(r), "R1.5.3");
        assert_eq!(era_year(r), "令和元年");
        for s in [era_short(d), era_long(d), era_short(r)] {
            assert!(tsunagu_server::search::parse_birth(&s).is_ok(), "{s}");
        }
    }

    #[test]
    fn variants_fold_back() {
        let v = Variants::load();
        let mut rng = StdRng::seed_from_u64(3);
        let x = v.vary("高橋", &mut rng).unwrap();
        assert_ne!(x, "高橋");
        assert_eq!(tsunagu_record::normalize::name_key(&x), "高橋");
        assert_eq!(
            v.vary("澤田", &mut rng)
                .map(|s| tsunagu_record::normalize::name_key(&s))
                .as_deref(),
            Some("沢田")
        );
    }
}
