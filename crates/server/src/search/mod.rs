//! Nationwide person search: the index keys of a record, the parsing of a query, the plan of
//! indexed lookups that finds candidates, and the ranking (with reasons) and grouping of what
//! they find. Pure functions: the storage runs the lookups, the service puts it together.
//!
//! How it stays fast without scanning: every write stores a few short keys per record in
//! `search_keys` (kind, key, birth day, record) — folded names, readings, loose readings, the
//! swapped order, suffixes of each name part (so any part of a name is a key *prefix*) and the
//! guardians' names. A query becomes a handful of index range scans (`key >= q AND key < q+∞`,
//! optionally `birth BETWEEN`), each with a LIMIT; at most [`CANDIDATE_CAP`] candidates are
//! then ranked here. The address is never indexed and never loaded: a query that contains an
//! address cannot match through it.
//!
//! See docs/search.md for the rules and their limits.

pub mod readings;
pub mod routes;
pub mod service;
pub(crate) mod sql;

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use tsunagu_record::api::MatchReason;
use tsunagu_record::era::{parse_date_spec, DateSpec};
use tsunagu_record::normalize::{
    is_katakana, loose_loanword, loose_reading, name_key, reading_key, search_key,
};
use tsunagu_record::schema::{BirthDate, PersonName};
use tsunagu_record::{RecordBody, Sex};

/// Key kinds in `search_keys`.
pub const KIND_NAME: &str = "n";
pub const KIND_READING: &str = "r";
pub const KIND_GUARDIAN: &str = "g";
/// One-deletion keys of short full readings ([`deletion_keys`]): a typo in a short name.
pub const KIND_DELETION: &str = "d";

/// Full loose readings of at most this many kana get [`deletion_keys`]. Short names are where
/// the typo pass's halves are too short to be selective (ヤマ of ヤマキヨコ); longer names keep a
/// half of three kana or more intact.
pub const DELETION_KEYED_MAX: usize = 6;

/// At most this many candidate records are ranked; more means `capped`.
pub const CANDIDATE_CAP: usize = 200;
/// Groups per page of results.
pub const GROUPS_PER_PAGE: usize = 20;
/// Fewer candidates than this after the whole-name lookups ([`plan`]): also try the parts,
/// the guardian and the typo lookups ([`fallback_plan`]). One: only when the whole found
/// nobody.
pub const FALLBACK_BELOW: usize = 1;
/// A day given exactly also finds births this many days away (ranked lower).
const NEAR_DAYS: i64 = 31;
/// Longest accepted name query, in characters.
const MAX_QUERY_CHARS: usize = 40;
/// Suffixes of a name part shorter than this are not indexed (too unselective).
const MIN_SUFFIX: usize = 2;

/// One row of `search_keys`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexKey {
    pub kind: &'static str,
    pub key: String,
    /// Days since 0001-01-01 (CE), 0 when the birth date is unknown.
    pub birth: i64,
}

/// What search may show of a record: its one row of `search_docs`. It has no field for the
/// address, so the address cannot leave through search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocFields {
    #[serde(rename = "c")]
    pub child: PersonName,
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<BirthDate>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<u8>,
    #[serde(rename = "g", default)]
    pub guardians: Vec<PersonName>,
}

/// A row of `search_docs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDoc {
    pub pref_code: i64,
    pub record_id: i64,
    pub owner_org: String,
    pub serious: bool,
    pub birth: i64,
    pub fields: DocFields,
}

/// Everything the index holds for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub doc: SearchDoc,
    pub keys: Vec<IndexKey>,
}

pub fn birth_days(d: NaiveDate) -> i64 {
    d.num_days_from_ce() as i64
}

fn chars_from(s: &str, skip: usize) -> String {
    s.chars().skip(skip).collect()
}

/// Suffixes of `s` from the second character on, at least [`MIN_SUFFIX`] long: with them, any
/// part of a name is the prefix of some key.
fn suffixes(s: &str) -> impl Iterator<Item = String> + '_ {
    let n = s.chars().count();
    (1..n.saturating_sub(MIN_SUFFIX - 1)).map(move |i| chars_from(s, i))
}

/// A string and every string one character shorter (one character deleted), each closed with
/// `|` so that a prefix lookup of the key finds that key only. Two strings at most one edit
/// apart (replaced, missing, extra, two neighbours swapped) always share one of these keys
/// (the symmetric-deletion idea), so a typo in a short name is one exact lookup away, however
/// common its first kana are.
pub fn deletion_keys(s: &str) -> Vec<String> {
    let c: Vec<char> = s.chars().collect();
    let mut out = vec![format!("{s}|")];
    for i in 0..c.len() {
        let k: String = c[..i].iter().chain(&c[i + 1..]).collect::<String>() + "|";
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// The normal forms of one person's name, computed once.
#[derive(Debug, Clone, Default)]
struct NameForms {
    family: Forms,
    given: Forms,
    full: Forms,
    swapped: Forms,
}

#[derive(Debug, Clone, Default)]
struct Forms {
    exact: String,
    folded: String,
    reading: String,
    loose: String,
    /// The loose key with loanword spellings folded (ヴァ → バ); equal to `loose` for most.
    loan: String,
}

impl Forms {
    fn of(name: &str, reading: &str) -> Forms {
        let r = reading_key(reading);
        Forms {
            exact: search_key(name),
            folded: name_key(name),
            loose: loose_reading(&r),
            loan: loose_loanword(&r),
            reading: r,
        }
    }
}

impl NameForms {
    fn of(p: &PersonName) -> NameForms {
        let fk = p.family_kana.as_deref().unwrap_or("");
        let gk = p.given_kana.as_deref().unwrap_or("");
        NameForms {
            family: Forms::of(&p.family, fk),
            given: Forms::of(&p.given, gk),
            full: Forms::of(&format!("{}{}", p.family, p.given), &format!("{fk}{gk}")),
            swapped: Forms::of(&format!("{}{}", p.given, p.family), &format!("{gk}{fk}")),
        }
    }
}

/// The index entry of a record: keys and the search fields. Computed from the body alone, so
/// the maintained index and a rebuilt one are the same.
pub fn index_entry(
    pref_code: i64,
    record_id: i64,
    owner_org: &str,
    body: &RecordBody,
) -> IndexEntry {
    let core = &body.core;
    let birth = core.birth_date.map(|b| birth_days(b.date)).unwrap_or(0);
    let mut keys: HashSet<IndexKey> = HashSet::new();
    let mut add = |kind: &'static str, key: &str| {
        if !key.is_empty() {
            keys.insert(IndexKey {
                kind,
                key: key.to_string(),
                birth,
            });
        }
    };
    let c = NameForms::of(&core.child_name);
    for f in [&c.full, &c.swapped, &c.family, &c.given] {
        add(KIND_NAME, &f.folded);
        add(KIND_READING, &f.reading);
    }
    let n = c.full.loose.chars().count();
    if (3..=DELETION_KEYED_MAX).contains(&n) {
        for k in deletion_keys(&c.full.loose) {
            add(KIND_DELETION, &k);
        }
    }
    for f in [&c.full, &c.family, &c.given] {
        add(KIND_READING, &f.loose);
        // Only readings with a loanword spelling get a key more (the set drops equal ones).
        add(KIND_READING, &f.loan);
    }
    for part in [&c.family, &c.given] {
        for s in suffixes(&part.folded) {
            add(KIND_NAME, &s);
        }
        for s in suffixes(&part.reading) {
            add(KIND_READING, &s);
        }
    }
    for g in &core.guardians {
        let gf = NameForms::of(&g.name);
        for f in [&gf.full, &gf.swapped, &gf.given] {
            add(KIND_GUARDIAN, &f.folded);
            add(KIND_GUARDIAN, &f.reading);
        }
        add(KIND_GUARDIAN, &gf.full.loose);
        add(KIND_GUARDIAN, &gf.full.loan);
    }
    let mut keys: Vec<IndexKey> = keys.into_iter().collect();
    keys.sort();
    IndexEntry {
        doc: SearchDoc {
            pref_code,
            record_id,
            owner_org: owner_org.to_string(),
            serious: body.admin.serious_case,
            birth,
            fields: DocFields {
                child: core.child_name.clone(),
                birth_date: core.birth_date,
                sex: core.sex.map(Sex::iso5218),
                guardians: core.guardians.iter().map(|g| g.name.clone()).collect(),
            },
        },
        keys,
    }
}

// ----- queries ---------------------------------------------------------------------------------

/// A reading the name dictionary gives a part typed in kanji only ([`readings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DictReading {
    reading: String,
    loose: String,
    /// 1.0 for the spelling's most likely reading, less for rarer ones.
    weight: f32,
    /// A whole name's reading (family and given), not one part's.
    full: bool,
}

impl DictReading {
    fn from(r: &readings::Reading) -> DictReading {
        DictReading {
            loose: loose_reading(&r.kana),
            reading: r.kana.clone(),
            weight: r.weight,
            full: r.parts == 2,
        }
    }
}

/// One part of a typed name in all its forms.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    exact: String,
    folded: String,
    /// Set when the part is written in kana: it is then (also) a reading.
    reading: Option<String>,
    loose: Option<String>,
    loan: Option<String>,
    /// For a part written with kanji, with no reading typed: its likely readings.
    dict: Vec<DictReading>,
}

/// Written with kanji (カツ子 and 安部 are, ヤマダ is not): a name the dictionary may give
/// readings for. A name typed all in kana is its own reading.
fn has_kanji(s: &str) -> bool {
    s.chars()
        .any(|c| !is_kana_char(c) && !c.is_ascii() && c > '\u{3000}')
}

impl Token {
    fn new(s: &str) -> Token {
        let exact = search_key(s);
        let kana = is_katakana(&exact);
        let folded = name_key(s);
        let dict = if !kana && has_kanji(&exact) {
            readings::of_part(&folded)
                .iter()
                .map(DictReading::from)
                .collect()
        } else {
            Vec::new()
        };
        Token {
            reading: kana.then(|| reading_key(s)),
            loose: kana.then(|| loose_reading(s)),
            loan: kana.then(|| loose_loanword(s)),
            folded,
            exact,
            dict,
        }
    }

    /// The readings this part stands for: its own when typed in kana, else the dictionary's.
    fn readings(&self) -> Vec<readings::Reading> {
        match &self.reading {
            Some(r) => vec![readings::Reading {
                kana: r.clone(),
                weight: 1.0,
                parts: 1,
            }],
            None => self
                .dict
                .iter()
                .map(|d| readings::Reading {
                    kana: d.reading.clone(),
                    weight: d.weight,
                    parts: 1,
                })
                .collect(),
        }
    }

    fn len(&self) -> usize {
        self.exact.chars().count()
    }
}

/// A typed name (the child's or a guardian's): the whole as typed, and its parts when it has
/// two (family and given, in either order, separated by a space or by a change of script).
#[derive(Debug, Clone, PartialEq)]
pub struct NameQuery {
    whole: Token,
    parts: Vec<Token>,
    script: &'static str,
}

fn is_kana_char(c: char) -> bool {
    matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー')
}

impl NameQuery {
    fn parse(raw: &str) -> NameQuery {
        let spaced: String = raw
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        let mut words: Vec<String> = spaced
            .split(' ')
            .map(search_key)
            .filter(|w| !w.is_empty())
            .collect();
        if words.len() > 2 {
            let rest = words.split_off(1).concat();
            words.push(rest);
        }
        if words.len() == 1 {
            // 山田はなこ: a kanji run then a kana run, each at least two long, is two parts.
            let w: Vec<char> = words[0].chars().collect();
            if let Some(i) = (2..w.len().saturating_sub(1))
                .find(|&i| !is_kana_char(w[i - 1]) && w[i..].iter().all(|c| is_kana_char(*c)))
            {
                if w[..i].iter().all(|c| !is_kana_char(*c)) {
                    words = vec![w[..i].iter().collect(), w[i..].iter().collect()];
                }
            }
        }
        let mut whole = Token::new(&words.concat());
        let parts: Vec<Token> = if words.len() == 2 {
            words.iter().map(|w| Token::new(w)).collect()
        } else {
            Vec::new()
        };
        // The whole name's likely readings: the parts' combined when one of them is in kanji
        // only (安部 花子, 安部 はなこ), else every split of an unspaced kanji name (安部花子).
        whole.dict = match parts.as_slice() {
            [a, b] if !a.dict.is_empty() || !b.dict.is_empty() => {
                readings::combine(&a.readings(), &b.readings())
                    .iter()
                    .map(DictReading::from)
                    .collect()
            }
            [_, _] => Vec::new(),
            _ if has_kanji(&whole.exact) => readings::of_unspaced(&whole.folded)
                .iter()
                .map(DictReading::from)
                .collect(),
            _ => Vec::new(),
        };
        let kana = parts.iter().filter(|t| t.reading.is_some()).count();
        let script = match (whole.reading.is_some(), parts.len(), kana) {
            (true, _, _) => "kana",
            (false, 2, 1) => "mixed",
            (false, _, _) if whole.exact.chars().any(is_kana_char) => "mixed",
            _ => "kanji",
        };
        NameQuery {
            whole,
            parts,
            script,
        }
    }

    pub fn len(&self) -> usize {
        self.whole.len()
    }

    pub fn is_empty(&self) -> bool {
        self.whole.exact.is_empty()
    }
}

/// A birth date filter: the days it accepts, and (for one exact day) the nearby days it also
/// finds, ranked lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthFilter {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub near_days: i64,
    /// `day`, `month`, `year` or `range`: the shape for the audit log.
    pub shape: &'static str,
}

impl BirthFilter {
    /// The day range searched, as `birth` column values.
    pub fn window(&self) -> (i64, i64) {
        (
            birth_days(self.from) - self.near_days,
            birth_days(self.to) + self.near_days,
        )
    }
}

fn spec_bounds(spec: DateSpec) -> Option<(NaiveDate, NaiveDate, &'static str)> {
    Some(match spec {
        DateSpec::Day(d) => (d, d, "day"),
        DateSpec::Year(y) => (
            NaiveDate::from_ymd_opt(y, 1, 1)?,
            NaiveDate::from_ymd_opt(y, 12, 31)?,
            "year",
        ),
        DateSpec::YearMonth(y, m) => {
            let first = NaiveDate::from_ymd_opt(y, m, 1)?;
            let next = if m == 12 {
                NaiveDate::from_ymd_opt(y + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(y, m + 1, 1)?
            };
            (first, next.pred_opt()?, "month")
        }
    })
}

/// Parses `birth`: a day, a year-month, a year, or a range `A..B` (either side any of those),
/// ISO or Japanese era (平成27年, H27.4.1, 令和元年5月).
pub fn parse_birth(raw: &str) -> Result<BirthFilter, String> {
    let s = raw.trim();
    let (a, b) = match s
        .split_once("..")
        .or_else(|| s.split_once('〜'))
        .or_else(|| s.split_once('~'))
    {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (s, None),
    };
    let (from, to_a, shape) = spec_bounds(parse_date_spec(a)?)
        .ok_or_else(|| format!("「{raw}」は日付として読めません"))?;
    match b {
        None => Ok(BirthFilter {
            from,
            to: to_a,
            near_days: if shape == "day" { NEAR_DAYS } else { 0 },
            shape,
        }),
        Some(b) => {
            let (_, to, _) = spec_bounds(parse_date_spec(b)?)
                .ok_or_else(|| format!("「{raw}」は日付として読めません"))?;
            if to < from {
                return Err(format!("生年月日の範囲「{raw}」は始まりが終わりより後です"));
            }
            Ok(BirthFilter {
                from,
                to,
                near_days: 0,
                shape: "range",
            })
        }
    }
}

/// A parsed search request.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub name: Option<NameQuery>,
    pub guardian: Option<NameQuery>,
    pub birth: Option<BirthFilter>,
    pub sex: Option<Sex>,
    /// 1-based.
    pub page: u32,
}

/// A query refused before any lookup: the parameter and a Japanese message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub field: &'static str,
    pub message: String,
}

fn qerr(field: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        field,
        message: message.into(),
    }
}

impl Query {
    /// Checks and parses the parameters. Empty or too short names are refused here, so no
    /// query ever turns into a scan.
    pub fn parse(
        q: Option<&str>,
        guardian: Option<&str>,
        birth: Option<&str>,
        sex: Option<&str>,
        page: Option<&str>,
    ) -> Result<Query, QueryError> {
        let birth = match birth.map(str::trim).filter(|b| !b.is_empty()) {
            None => None,
            Some(b) => Some(parse_birth(b).map_err(|m| qerr("birth", m))?),
        };
        let name_param =
            |field: &'static str, raw: Option<&str>| -> Result<Option<NameQuery>, QueryError> {
                let Some(raw) = raw else { return Ok(None) };
                if raw.chars().count() > MAX_QUERY_CHARS * 2 {
                    return Err(qerr(
                        field,
                        format!("{MAX_QUERY_CHARS}文字以内で入力してください"),
                    ));
                }
                let nq = NameQuery::parse(raw);
                if nq.is_empty() {
                    return Ok(None);
                }
                if nq.len() > MAX_QUERY_CHARS {
                    return Err(qerr(
                        field,
                        format!("{MAX_QUERY_CHARS}文字以内で入力してください"),
                    ));
                }
                // One character finds too much to be useful, unless a birth date narrows it.
                if nq.len() < 2 && birth.is_none() {
                    return Err(qerr(
                    field,
                    "氏名は2文字以上で入力してください（1文字の場合は生年月日も指定してください）",
                ));
                }
                Ok(Some(nq))
            };
        let name = name_param("q", q)?;
        let guardian = name_param("guardian", guardian)?;
        if name.is_none() && guardian.is_none() {
            return Err(qerr(
                "q",
                "検索する氏名（漢字またはフリガナ）か保護者名を入力してください",
            ));
        }
        // `sex` and `page` are numbers when given at all: an empty value is not one.
        let sex = match sex {
            None => None,
            Some(s) => Some(
                s.parse::<u8>()
                    .ok()
                    .and_then(Sex::from_iso5218)
                    .ok_or_else(|| {
                        qerr(
                            "sex",
                            "sex は 0（不明）, 1（男）, 2（女）, 9（適用不能）のいずれかです",
                        )
                    })?,
            ),
        };
        let page = match page {
            None => 1,
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=1000).contains(p))
                .ok_or_else(|| qerr("page", "page は1から1000までの整数です"))?,
        };
        Ok(Query {
            name,
            guardian,
            birth,
            sex,
            page,
        })
    }

    /// The shape of the query for the audit log: which parameters, their lengths and scripts,
    /// never the names themselves.
    pub fn shape(&self) -> serde_json::Value {
        let name = |n: &Option<NameQuery>| {
            n.as_ref().map(|n| {
                serde_json::json!({ "len": n.len(), "parts": n.parts.len().max(1), "script": n.script })
            })
        };
        serde_json::json!({
            "q": name(&self.name),
            "guardian": name(&self.guardian),
            "birth": self.birth.map(|b| b.shape),
            "sex": self.sex.is_some(),
            "page": self.page,
        })
    }
}

// ----- lookup plan -----------------------------------------------------------------------------

/// One index range scan: keys of `kind` starting with `prefix`, births within `birth`; with
/// `also`, only records that have a key of that kind and prefix too (two range scans,
/// intersected): part of the family name and part of the given name, each too common alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLookup {
    pub kind: &'static str,
    pub prefix: String,
    pub birth: Option<(i64, i64)>,
    pub also: Option<(&'static str, String)>,
}

impl KeyLookup {
    /// The exclusive upper bound of the prefix range: no key extends the prefix with a char
    /// above U+10FFFF, and both engines compare text as UTF-8 bytes (SQLite BINARY, PostgreSQL
    /// COLLATE "C"), in which order U+10FFFF is last.
    pub fn upper(&self) -> String {
        upper_of(&self.prefix)
    }

    /// The range of the `also` prefix, as [`upper`](Self::upper).
    pub fn also_range(&self) -> Option<(&'static str, &str, String)> {
        self.also
            .as_ref()
            .map(|(kind, p)| (*kind, p.as_str(), upper_of(p)))
    }
}

fn upper_of(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// How a part of a typed name is looked up as a key prefix: its reading when typed in kana, else
/// its folded form.
fn part_prefix(
    t: &Token,
    kind_name: &'static str,
    kind_reading: &'static str,
) -> (&'static str, String) {
    match &t.reading {
        Some(r) => (kind_reading, r.clone()),
        None => (kind_name, t.folded.clone()),
    }
}

fn token_lookups(
    t: &Token,
    kind_name: &'static str,
    kind_reading: &'static str,
    birth: Option<(i64, i64)>,
    out: &mut Vec<KeyLookup>,
) {
    let mut push = |kind: &'static str, p: &str| {
        let l = KeyLookup {
            kind,
            prefix: p.to_string(),
            birth,
            also: None,
        };
        if !p.is_empty() && !out.contains(&l) {
            out.push(l);
        }
    };
    if let (Some(r), Some(l), Some(ll)) = (&t.reading, &t.loose, &t.loan) {
        push(kind_reading, r);
        push(kind_reading, l);
        push(kind_reading, ll);
    }
    push(kind_name, &t.folded);
}

/// The lookups of the first pass: the whole name as typed (as a reading, a loose reading and a
/// folded name), the child's if given, else the guardian's. The whole name is a key prefix of
/// every record it can match as a whole — in either order, since the swapped order is indexed
/// too —, so when it finds anyone, the parts (which find many more, mostly people who only
/// share a family or a given name) are not looked up: that keeps a full-name query to a few
/// short range scans and a handful of candidates.
///
/// A short name typed in kana also looks up its [`deletion_keys`], first: exact keys that find
/// the few records one typo away even when the typed name happens to be the start of other
/// children's names (which would keep the typo pass from running) or its halves are common.
pub fn plan(q: &Query) -> Vec<KeyLookup> {
    let birth = q.birth.map(|b| b.window());
    let mut out = Vec::new();
    if let Some(n) = &q.name {
        // Records are keyed by their loose reading; the typed reading is looked up as typed too,
        // since a typo can make a long vowel that the loose key drops (アロオイ for アイオイ).
        for l in [&n.whole.loose, &n.whole.reading].into_iter().flatten() {
            // A record's key is at most DELETION_KEYED_MAX long; a typed extra kana makes one more.
            if (3..=DELETION_KEYED_MAX + 1).contains(&l.chars().count()) {
                for k in deletion_keys(l) {
                    let l = KeyLookup {
                        kind: KIND_DELETION,
                        prefix: k,
                        birth,
                        also: None,
                    };
                    if !out.contains(&l) {
                        out.push(l);
                    }
                }
            }
        }
        token_lookups(&n.whole, KIND_NAME, KIND_READING, birth, &mut out);
        // Two parts of which one looks like the start of a name (two kana, one kanji): both
        // at once, here, since the whole may find others (タナコウ is the start of
        // タナコウジ) and keep the second pass from running.
        if n.parts.iter().any(looks_partial) {
            push_both_parts(n, birth, &mut out);
        }
        // A full name typed with kanji: the records whose reading is one of its likely readings
        // (their loose key, which the exact reading's records have too). One part alone (a
        // family name) is not looked up by its reading: every child of that reading would come
        // back, mostly not the one meant; the part still ranks what other lookups find.
        for d in n
            .whole
            .dict
            .iter()
            .filter(|d| d.full && d.weight >= DICT_LOOKUP_WEIGHT)
            .filter(|d| birth.is_some() || d.reading.chars().count() >= DICT_LOOKUP_MIN_KANA)
            .take(DICT_LOOKUPS)
        {
            let l = KeyLookup {
                kind: KIND_READING,
                prefix: d.loose.clone(),
                birth,
                also: None,
            };
            if !out.contains(&l) {
                out.push(l);
            }
        }
    } else if let Some(g) = &q.guardian {
        token_lookups(&g.whole, KIND_GUARDIAN, KIND_GUARDIAN, birth, &mut out);
    }
    out
}

/// A typed part short enough to be the start of a name rather than a name: two kana or fewer,
/// or one kanji.
fn looks_partial(t: &Token) -> bool {
    match t.reading {
        Some(_) => t.len() <= 2,
        None => t.len() <= 1,
    }
}

/// Part of the family name and part of the given name (ヤマ ハナ, 山 花子) are each the prefix of
/// some key of the record, and each may be too common to find it alone within the limit: one
/// lookup of both, two range scans intersected. The longer part drives the scan.
fn push_both_parts(n: &NameQuery, birth: Option<(i64, i64)>, out: &mut Vec<KeyLookup>) {
    let [a, b] = n.parts.as_slice() else { return };
    let (a, b) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let (ka, pa) = part_prefix(a, KIND_NAME, KIND_READING);
    let (kb, pb) = part_prefix(b, KIND_NAME, KIND_READING);
    let l = KeyLookup {
        kind: ka,
        prefix: pa,
        birth,
        also: Some((kb, pb)),
    };
    if !out.contains(&l) {
        out.push(l);
    }
}

/// The second pass, when the first found little: a typo leaves one half of the name intact,
/// so each half of the whole name is looked up as a prefix (the second half finds the given
/// name or a suffix of a part). When the typo is in the family name and the second half starts
/// inside it, the given name is still intact but starts somewhere unknown in an unspaced
/// query: so the query's suffixes are looked up too, longest (most selective) first — the one
/// that starts at the given name finds it.
pub fn fallback_plan(q: &Query) -> Vec<KeyLookup> {
    let birth = q.birth.map(|b| b.window());
    let mut out = Vec::new();
    // Both parts at once (when the first pass did not look them up), then the parts each on its
    // own (a name written half in kanji and half in kana, 山田 はなこ, is no key as a whole),
    // then the guardian.
    if let Some(n) = &q.name {
        if !n.parts.iter().any(looks_partial) {
            push_both_parts(n, birth, &mut out);
        }
    }
    if let Some(n) = &q.name {
        for p in &n.parts {
            token_lookups(p, KIND_NAME, KIND_READING, birth, &mut out);
        }
    }
    if let Some(g) = &q.guardian {
        if q.name.is_some() {
            token_lookups(&g.whole, KIND_GUARDIAN, KIND_GUARDIAN, birth, &mut out);
        }
        for p in &g.parts {
            token_lookups(p, KIND_GUARDIAN, KIND_GUARDIAN, birth, &mut out);
        }
    }
    if let Some(n) = &q.name {
        let src = n.whole.reading.as_ref().unwrap_or(&n.whole.folded);
        let chars: Vec<char> = src.chars().collect();
        if chars.len() >= 3 {
            let half = chars.len() / 2;
            let kind = if n.whole.reading.is_some() {
                KIND_READING
            } else {
                KIND_NAME
            };
            let halves = [&chars[..half], &chars[half..]];
            let suffixes = (1..chars.len().saturating_sub(1)).map(|k| &chars[k..]);
            for p in halves.into_iter().chain(suffixes) {
                if p.len() >= 2 {
                    let prefix: String = p.iter().collect();
                    let l = KeyLookup {
                        kind,
                        prefix,
                        birth,
                        also: None,
                    };
                    if !out.contains(&l) {
                        out.push(l);
                    }
                }
            }
        }
    }
    out
}

// ----- ranking ---------------------------------------------------------------------------------

/// Whether `a` and `b` are at most one edit apart (one char replaced, inserted, deleted, or
/// two neighbours swapped), counting chars, not bytes.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a == b {
        return true;
    }
    let (la, lb) = (a.len(), b.len());
    if la.abs_diff(lb) > 1 {
        return false;
    }
    let p = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if la == lb {
        // Replace at p, or swap p and p+1.
        a[p + 1..] == b[p + 1..]
            || (p + 1 < la && a[p] == b[p + 1] && a[p + 1] == b[p] && a[p + 2..] == b[p + 2..])
    } else if la > lb {
        a[p + 1..] == b[p..]
    } else {
        a[p..] == b[p + 1..]
    }
}

type Scored = (f32, Vec<MatchReason>);

fn better(best: &mut Option<Scored>, cand: Option<Scored>) {
    if let Some(c) = cand {
        if best.as_ref().is_none_or(|b| c.0 > b.0) {
            *best = Some(c);
        }
    }
}

/// How well a typed token matches one form of a name (0..1), and why.
fn compare(t: &Token, f: &Forms) -> Option<Scored> {
    use MatchReason::*;
    if f.exact.is_empty() && f.reading.is_empty() {
        return None;
    }
    if !f.exact.is_empty() && t.exact == f.exact {
        return Some((1.0, vec![ExactName]));
    }
    if !f.folded.is_empty() && t.folded == f.folded {
        return Some((0.95, vec![VariantKanji]));
    }
    if let (Some(r), Some(l), Some(ll)) = (&t.reading, &t.loose, &t.loan) {
        if !f.reading.is_empty() {
            if *r == f.reading {
                return Some((0.9, vec![SameReading]));
            }
            if *l == f.loose {
                return Some((0.8, vec![SimilarReading]));
            }
            if *ll == f.loan {
                // Only the loanword spelling differs (ヴィクトル/ビクトル), or that and a long
                // vowel or small kana as well (ヴィクトール/ビクトル).
                return Some(
                    if tsunagu_record::normalize::loanword_fold(r)
                        == tsunagu_record::normalize::loanword_fold(&f.reading)
                    {
                        (0.76, vec![LoanwordKana])
                    } else {
                        (0.72, vec![LoanwordKana, SimilarReading])
                    },
                );
            }
            if r.chars().count() >= 3
                && (within_one_edit(r, &f.reading)
                    || within_one_edit(l, &f.loose)
                    || within_one_edit(ll, &f.loan))
            {
                return Some((0.65, vec![OneEdit]));
            }
        }
    }
    if !f.reading.is_empty() {
        if let Some(d) = t
            .dict
            .iter()
            .find(|d| d.reading == f.reading || d.loose == f.loose)
        {
            // Below a variant kanji (the kanji differ, only their reading agrees) and above a
            // typo; the dictionary's more likely readings rank their records higher.
            let close = if d.reading == f.reading { 0.0 } else { 0.01 };
            return Some((
                DICT_READING_BASE + DICT_READING_SPAN * d.weight - close,
                vec![DictionaryReading],
            ));
        }
    }
    if t.folded.chars().count() >= 3
        && !f.folded.is_empty()
        && within_one_edit(&t.folded, &f.folded)
    {
        return Some((0.62, vec![OneEdit]));
    }
    None
}

/// A kanji-only name whose likely reading (from the dictionary) is the record's: scored
/// `BASE + SPAN × weight`, 0.66–0.71, between a typo (0.65) and a loanword reading (0.72).
const DICT_READING_BASE: f32 = 0.66;
const DICT_READING_SPAN: f32 = 0.05;
/// Dictionary readings looked up per query (the most likely first), and how likely a reading
/// must be to be looked up: the rest still rank candidates other lookups find.
const DICT_LOOKUPS: usize = 4;
const DICT_LOOKUP_WEIGHT: f32 = 0.2;
/// Without a birth date, a full name's dictionary reading is looked up only when it is this long
/// (a short one finds too many children).
const DICT_LOOKUP_MIN_KANA: usize = 5;

/// A token that is only part of a form: a prefix, or anywhere inside.
fn compare_part(t: &Token, f: &Forms) -> Option<Scored> {
    let inside =
        |hay: &str, needle: &str| !hay.is_empty() && !needle.is_empty() && hay.contains(needle);
    // More of the name covered is closer; the start of the name is what people type when they
    // know only part of it, so a part at the start ranks above the same part inside.
    let closeness = |hay: &str, needle: &str| {
        let coverage = needle.chars().count() as f32 / hay.chars().count().max(1) as f32;
        0.2 * coverage + if hay.starts_with(needle) { 0.04 } else { 0.0 }
    };
    if inside(&f.folded, &t.folded) {
        return Some((
            0.35 + closeness(&f.folded, &t.folded),
            vec![MatchReason::PartOfName],
        ));
    }
    if let Some(r) = &t.reading {
        if inside(&f.reading, r) {
            return Some((
                0.33 + closeness(&f.reading, r),
                vec![MatchReason::PartOfName],
            ));
        }
    }
    None
}

fn scaled(s: Option<Scored>, factor: f32, extra: &[MatchReason]) -> Option<Scored> {
    s.map(|(v, mut r)| {
        for e in extra {
            if !r.contains(e) {
                r.push(*e);
            }
        }
        (v * factor, r)
    })
}

/// How well a typed name matches a person's name (0..1), and why.
fn match_name(q: &NameQuery, p: &NameForms) -> Option<Scored> {
    use MatchReason::*;
    let mut best = None;
    // The whole: the full name as written, or in the other order.
    better(&mut best, compare(&q.whole, &p.full));
    better(
        &mut best,
        scaled(compare(&q.whole, &p.swapped), 0.85, &[SwappedNames]),
    );
    // Two parts: each against its own part of the name, in order or swapped.
    if let [a, b] = q.parts.as_slice() {
        for (x, y, factor, extra) in [
            (&p.family, &p.given, 0.93, None),
            (&p.given, &p.family, 0.82, Some(SwappedNames)),
        ] {
            // Each part whole, or part of its part (ヤマ of ヤマダ, 花 of 花子); a partial match
            // carries `PartOfName` and scores lower, but both parts together still beat none.
            let whole_or_part = |t: &Token, f: &Forms| compare(t, f).or_else(|| compare_part(t, f));
            if let (Some(sa), Some(sb)) = (whole_or_part(a, x), whole_or_part(b, y)) {
                let mut reasons = sa.1;
                for r in sb.1.into_iter().chain(extra) {
                    if !reasons.contains(&r) {
                        reasons.push(r);
                    }
                }
                better(&mut best, Some((sa.0.min(sb.0) * factor, reasons)));
            }
        }
    }
    // One part only (the family or the given name alone).
    for part in [&p.family, &p.given] {
        better(
            &mut best,
            scaled(compare(&q.whole, part), 0.6, &[PartOfName]),
        );
    }
    // Part of a name.
    if best.is_none() {
        for f in [&p.full, &p.swapped] {
            better(&mut best, compare_part(&q.whole, f));
        }
    }
    best
}

/// A record (or an alert subject) as ranking sees it.
pub struct Candidate<'a> {
    pub child: &'a PersonName,
    pub birth: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub guardians: &'a [PersonName],
}

/// Ranks one candidate: `None` when it does not match (the filters are strict: a birth date or
/// sex given in the query must fit), else a score in 0..1 and the reasons.
pub fn rank(q: &Query, c: &Candidate<'_>) -> Option<Scored> {
    use MatchReason::*;
    let mut points = 0.0f32;
    let mut reasons: Vec<MatchReason> = Vec::new();
    let push = |reasons: &mut Vec<MatchReason>, rs: Vec<MatchReason>| {
        for r in rs {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
    };
    // The birth date and sex first: they are cheap, and a candidate outside them is dropped
    // before its names are normalised. Their reasons follow the names' all the same.
    let mut after_names = Vec::new();
    if let Some(b) = &q.birth {
        let d = c.birth?;
        if d >= b.from && d <= b.to {
            points += 25.0;
            after_names.push(BirthDateExact);
        } else {
            let (lo, hi) = b.window();
            let days = birth_days(d);
            if days < lo || days > hi {
                return None;
            }
            points += 8.0;
            after_names.push(BirthDateNear);
        }
    }
    if let Some(s) = q.sex {
        if c.sex != Some(s) {
            return None;
        }
        points += 3.0;
        after_names.push(SexMatches);
    }
    if let Some(n) = &q.name {
        let (s, rs) = match_name(n, &NameForms::of(c.child))?;
        points += 100.0 * s;
        push(&mut reasons, rs);
    }
    if let Some(g) = &q.guardian {
        let mut best = None;
        for gn in c.guardians {
            better(&mut best, match_name(g, &NameForms::of(gn)));
        }
        let (s, _) = best?;
        points += if q.name.is_some() {
            30.0 * s
        } else {
            100.0 * s
        };
        push(&mut reasons, vec![GuardianName]);
    }
    push(&mut reasons, after_names);
    let max = 100.0
        + if q.guardian.is_some() && q.name.is_some() {
            30.0
        } else {
            0.0
        }
        + if q.birth.is_some() { 25.0 } else { 0.0 }
        + if q.sex.is_some() { 3.0 } else { 0.0 };
    Some(((points / max).clamp(0.0, 1.0), reasons))
}

/// A ranked hit before projection.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub doc: SearchDoc,
    pub score: f32,
    pub reasons: Vec<MatchReason>,
    /// Days between the record's birth date and the birth filter (0 inside it or without a
    /// filter): a closer date is stronger evidence when scores are equal.
    pub birth_gap: i64,
}

/// How strong a reason is, strongest first: what breaks a tie between equal scores.
fn strength(r: MatchReason) -> u8 {
    use MatchReason::*;
    match r {
        ExactName => 0,
        VariantKanji => 1,
        SameReading => 2,
        SimilarReading => 3,
        LoanwordKana => 4,
        DictionaryReading => 5,
        OneEdit => 6,
        SwappedNames => 7,
        PartOfName => 8,
        GuardianName => 9,
        BirthDateExact => 10,
        BirthDateNear => 11,
        SexMatches => 12,
    }
}

/// A score as compared for ties: scores equal to 1e-4 are equal (they come from the same
/// weights multiplied in different orders).
fn score_key(s: f32) -> i64 {
    (s as f64 * 10_000.0).round() as i64
}

/// Orders hits by their evidence, best first: the score, then the closer birth date, then more
/// reasons (more parts of the query matched), then the stronger reasons. `Equal` means the
/// evidence cannot tell the two apart: a tie, shown as such.
pub fn evidence_cmp(a: &Ranked, b: &Ranked) -> std::cmp::Ordering {
    Evidence::of(a).cmp(&Evidence::of(b))
}

/// A hit's evidence as [`evidence_cmp`] compares it, computed once per hit: sorting 200
/// candidates compares each about 16 times.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Evidence {
    score: std::cmp::Reverse<i64>,
    birth_gap: i64,
    reasons: std::cmp::Reverse<usize>,
    strengths: Vec<u8>,
}

impl Evidence {
    fn of(h: &Ranked) -> Evidence {
        let mut strengths: Vec<u8> = h.reasons.iter().map(|r| strength(*r)).collect();
        strengths.sort_unstable();
        Evidence {
            score: std::cmp::Reverse(score_key(h.score)),
            birth_gap: h.birth_gap,
            reasons: std::cmp::Reverse(h.reasons.len()),
            strengths,
        }
    }
}

/// What the searcher sees of a hit, in the order that sorts hits of equal evidence: the
/// reading, then the name, then the birth date and sex, then the owning organisation's id,
/// then the guardians. Nothing in it says who registered first; only hits identical in every
/// shown field fall back to the record id, which then orders nothing anyone can tell apart.
type Shown = (
    String,
    String,
    i64,
    Option<u8>,
    String,
    Vec<(String, String)>,
);

fn shown(h: &Ranked) -> Shown {
    let c = &h.doc.fields.child;
    (
        reading_key(&format!(
            "{}{}",
            c.family_kana.as_deref().unwrap_or(""),
            c.given_kana.as_deref().unwrap_or("")
        )),
        search_key(&format!("{}{}", c.family, c.given)),
        h.doc.birth,
        h.doc.fields.sex,
        h.doc.owner_org.clone(),
        h.doc
            .fields
            .guardians
            .iter()
            .map(|g| {
                (
                    reading_key(&format!(
                        "{}{}",
                        g.family_kana.as_deref().unwrap_or(""),
                        g.given_kana.as_deref().unwrap_or("")
                    )),
                    search_key(&format!("{}{}", g.family, g.given)),
                )
            })
            .collect(),
    )
}

/// Days from `d` to the filter's accepted days (0 inside them, or without a filter).
fn birth_gap(q: &Query, d: Option<NaiveDate>) -> i64 {
    match (q.birth, d) {
        (Some(b), Some(d)) if d < b.from => (b.from - d).num_days(),
        (Some(b), Some(d)) if d > b.to => (d - b.to).num_days(),
        _ => 0,
    }
}

/// Ranks the candidates; non-matching ones are dropped (a stale key cannot produce a hit).
pub fn rank_docs(q: &Query, docs: Vec<SearchDoc>) -> Vec<Ranked> {
    let mut out: Vec<Ranked> = docs
        .into_iter()
        .filter_map(|doc| {
            let (score, reasons) = rank(
                q,
                &Candidate {
                    child: &doc.fields.child,
                    birth: doc.fields.birth_date.map(|b| b.date),
                    sex: doc.fields.sex.and_then(Sex::from_iso5218),
                    guardians: &doc.fields.guardians,
                },
            )?;
            Some(Ranked {
                birth_gap: birth_gap(q, doc.fields.birth_date.map(|b| b.date)),
                doc,
                score,
                reasons,
            })
        })
        .collect();
    // Never by record id: that would rank whoever registered first above an equal match.
    out.sort_by_cached_key(|h| (Evidence::of(h), shown(h), h.doc.record_id));
    out
}

/// Groups hits that look like the same child: same birth date and the same folded name or the
/// same reading. Groups keep the order of their best hit.
pub fn group(hits: Vec<Ranked>) -> Vec<Vec<Ranked>> {
    let n = hits.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut seen: HashMap<(i64, char, String), usize> = HashMap::new();
    for (i, h) in hits.iter().enumerate() {
        if h.doc.birth == 0 {
            continue; // Without a birth date nothing says two records are one child.
        }
        let f = NameForms::of(&h.doc.fields.child);
        for (tag, key) in [('n', f.full.folded), ('r', f.full.reading)] {
            if key.is_empty() {
                continue;
            }
            match seen.get(&(h.doc.birth, tag, key.clone())) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    // The earlier (better) hit stays the root.
                    parent[a.max(b)] = a.min(b);
                }
                None => {
                    seen.insert((h.doc.birth, tag, key), i);
                }
            }
        }
    }
    let mut groups: Vec<Vec<Ranked>> = Vec::new();
    let mut slot: HashMap<usize, usize> = HashMap::new();
    for (i, h) in hits.into_iter().enumerate() {
        let root = find(&mut parent, i);
        let g = *slot.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(h);
    }
    groups
}

// ----- missing-child alerts (hook) --------------------------------------------------------------

/// The subject of a missing-child alert (所在不明児童), as the alert workflow will hand it over.
/// Alerts do not exist yet (a later issue); this is the hook that workflow will call when a
/// record is registered and when someone searches, so that both can say "this matches an
/// active alert".
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSubject {
    pub alert_id: i64,
    pub child_name: PersonName,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertMatch {
    pub alert_id: i64,
    pub score: f32,
    pub reasons: Vec<MatchReason>,
}

/// Scores below this are not reported as matching an alert.
pub const ALERT_THRESHOLD: f32 = 0.6;

/// Active alerts whose subject matches a search query, best first.
pub fn alerts_matching_query(q: &Query, alerts: &[AlertSubject]) -> Vec<AlertMatch> {
    let mut out: Vec<AlertMatch> = alerts
        .iter()
        .filter(|a| a.active)
        .filter_map(|a| {
            // An alert's subject has no guardians to match: the guardian part of a query is
            // left out rather than failing every alert.
            let q = Query {
                guardian: None,
                ..q.clone()
            };
            // Alerts are matched by name: a query without one matches no alert.
            q.name.as_ref()?;
            let (score, reasons) = rank(
                &q,
                &Candidate {
                    child: &a.child_name,
                    birth: a.birth_date,
                    sex: a.sex,
                    guardians: &[],
                },
            )?;
            (score >= ALERT_THRESHOLD).then_some(AlertMatch {
                alert_id: a.alert_id,
                score,
                reasons,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.alert_id.cmp(&b.alert_id))
    });
    out
}

/// Active alerts whose subject matches a record being registered: by name (as written or by
/// reading) and, when both are known, a birth date within a month.
pub fn alerts_matching_record(body: &RecordBody, alerts: &[AlertSubject]) -> Vec<AlertMatch> {
    let n = &body.core.child_name;
    let birth = body.core.birth_date.map(|b| BirthFilter {
        from: b.date,
        to: b.date,
        near_days: NEAR_DAYS,
        shape: "day",
    });
    let mut best: HashMap<i64, AlertMatch> = HashMap::new();
    let forms = [
        format!("{} {}", n.family, n.given),
        format!(
            "{} {}",
            n.family_kana.as_deref().unwrap_or(""),
            n.given_kana.as_deref().unwrap_or("")
        ),
    ];
    for text in forms {
        let nq = NameQuery::parse(&text);
        if nq.is_empty() {
            continue;
        }
        for with_birth in [true, false] {
            let q = Query {
                name: Some(nq.clone()),
                guardian: None,
                birth: if with_birth { birth } else { None },
                sex: None,
                page: 1,
            };
            for a in alerts.iter().filter(|a| a.active) {
                // Without a birth date on one side, match on the name alone.
                if with_birth != (birth.is_some() && a.birth_date.is_some()) {
                    continue;
                }
                if let Some((score, reasons)) = rank(
                    &q,
                    &Candidate {
                        child: &a.child_name,
                        birth: a.birth_date,
                        sex: a.sex,
                        guardians: &[],
                    },
                ) {
                    if score >= ALERT_THRESHOLD
                        && best.get(&a.alert_id).is_none_or(|m| m.score < score)
                    {
                        best.insert(
                            a.alert_id,
                            AlertMatch {
                                alert_id: a.alert_id,
                                score,
                                reasons,
                            },
                        );
                    }
                }
            }
        }
    }
    let mut out: Vec<AlertMatch> = best.into_values().collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.alert_id.cmp(&b.alert_id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(f: &str, g: &str, fk: &str, gk: &str) -> PersonName {
        PersonName {
            family: f.into(),
            given: g.into(),
            family_kana: Some(fk.into()),
            given_kana: Some(gk.into()),
        }
    }

    fn q(text: &str) -> Query {
        Query::parse(Some(text), None, None, None, None).unwrap()
    }

    fn score(text: &str, p: &PersonName) -> Option<Scored> {
        rank(
            &q(text),
            &Candidate {
                child: p,
                birth: None,
                sex: None,
                guardians: &[],
            },
        )
    }

    #[test]
    fn one_edit() {
        assert!(within_one_edit("ヤマダ", "ヤマダ"));
        assert!(within_one_edit("ヤマダ", "ヤマタ"));
        assert!(within_one_edit("ヤマダ", "ヤダマ"));
        assert!(within_one_edit("ヤマダ", "ヤマ"));
        assert!(within_one_edit("ヤマ", "ヤマダ"));
        assert!(!within_one_edit("ヤマダ", "ヤダ マ"));
        assert!(!within_one_edit("ヤマダ", "タマヤ"));
        assert!(!within_one_edit("アイウ", "アイウエオ"));
    }

    #[test]
    fn typo_pass_reaches_the_given_name_after_a_family_typo() {
        // タカハシ ハナコ typed タカバシハナコ: neither half is a key prefix (the second half
        // starts inside the family name), the suffix ハナコ is the given name.
        let plan = fallback_plan(&q("タカバシハナコ"));
        let prefixes: Vec<&str> = plan.iter().map(|l| l.prefix.as_str()).collect();
        assert_eq!(&prefixes[..2], &["タカバ", "シハナコ"]);
        assert!(prefixes.contains(&"ハナコ"), "{prefixes:?}");
        assert!(plan
            .iter()
            .all(|l| l.kind == KIND_READING && l.prefix.chars().count() >= 2));
        // Longest first: the most selective lookups come before the short ones.
        let lens: Vec<usize> = plan[2..].iter().map(|l| l.prefix.chars().count()).collect();
        assert!(lens.windows(2).all(|w| w[0] >= w[1]), "{lens:?}");
    }

    #[test]
    fn one_typo_in_a_short_name_shares_a_deletion_key() {
        let shares = |a: &str, b: &str| {
            let ka = deletion_keys(a);
            deletion_keys(b).iter().any(|k| ka.contains(k))
        };
        // Replaced, missing, extra, swapped: one edit always meets.
        for typed in [
            "ヤマキヨコ",
            "ヤマキコ",
            "ヤマキヨヨコ",
            "ヤキマヨコ",
            "ヤマキヨカ",
        ] {
            assert!(shares("ヤマキヨコ", typed), "{typed}");
        }
        // Two edits never do.
        assert!(!shares("ヤマキヨコ", "ヤマカヨカ"));
        assert!(!shares("ヤマキヨコ", "ヤキマヨカ"));
        assert_eq!(deletion_keys("アア"), vec!["アア|", "ア|"]);
        // Short full readings are keyed, long ones not; the plan looks them up first.
        let mut body = RecordBody::default();
        body.core.child_name = person("山木", "陽子", "ヤマキ", "ヨウコ");
        let e = index_entry(13, 1, "x", &body);
        assert!(e
            .keys
            .iter()
            .any(|k| k.kind == KIND_DELETION && k.key == "ヤマヨコ|"));
        body.core.child_name = person("渡辺", "健一郎", "ワタナベ", "ケンイチロウ");
        let e = index_entry(13, 1, "x", &body);
        assert!(!e.keys.iter().any(|k| k.kind == KIND_DELETION));
        let p = plan(&q("やまきよこ"));
        assert_eq!(p[0].kind, KIND_DELETION);
        assert_eq!(p[0].prefix, "ヤマキヨコ|");
        assert!(!plan(&q("ワタナベケンイチロウ"))
            .iter()
            .any(|l| l.kind == KIND_DELETION));
    }

    #[test]
    fn suffixes_make_every_part_a_prefix() {
        let s: Vec<String> = suffixes("ヤマダ").collect();
        assert_eq!(s, vec!["マダ"]);
        assert_eq!(suffixes("山田").count(), 0);
        assert_eq!(
            suffixes("ワタナベ").collect::<Vec<_>>(),
            vec!["タナベ", "ナベ"]
        );
    }

    #[test]
    fn ranking_prefers_exact_then_variant_then_reading() {
        let p = person("髙橋", "花子", "タカハシ", "ハナコ");
        let exact = score("髙橋花子", &p).unwrap();
        let variant = score("高橋花子", &p).unwrap();
        let reading = score("たかはし はなこ", &p).unwrap();
        let swapped = score("花子 高橋", &p).unwrap();
        let part = score("高橋", &p).unwrap();
        assert_eq!(exact.1, vec![MatchReason::ExactName]);
        assert_eq!(variant.1, vec![MatchReason::VariantKanji]);
        assert!(reading.1.contains(&MatchReason::SameReading));
        assert!(swapped.1.contains(&MatchReason::SwappedNames));
        assert!(part.1.contains(&MatchReason::PartOfName));
        assert!(
            exact.0 > variant.0
                && variant.0 > reading.0
                && reading.0 > swapped.0
                && swapped.0 > part.0
        );
    }

    #[test]
    fn long_vowels_rank_similar_below_same() {
        let p = person("大野", "翔", "オオノ", "ショウ");
        let same = score("オオノショウ", &p).unwrap();
        let similar = score("オーノショー", &p).unwrap();
        assert!(same.1.contains(&MatchReason::SameReading));
        assert!(similar.1.contains(&MatchReason::SimilarReading));
        assert!(same.0 > similar.0);
    }

    #[test]
    fn loanword_kana_rank_below_similar_above_one_edit() {
        let p = person("佐々木", "ヴィクトル", "ササキ", "ヴィクトル");
        let same = score("ササキヴィクトル", &p).unwrap();
        let similar = score("ササキヴイクトル", &p).unwrap();
        let loan = score("ささき びくとる", &p).unwrap();
        let loan_long = score("ササキビクトール", &p).unwrap();
        let typo = score("ササキヴィクトロ", &p).unwrap();
        assert!(same.1.contains(&MatchReason::SameReading), "{same:?}");
        assert!(
            similar.1.contains(&MatchReason::SimilarReading),
            "{similar:?}"
        );
        assert!(loan.1.contains(&MatchReason::LoanwordKana), "{loan:?}");
        assert!(!loan.1.contains(&MatchReason::SimilarReading), "{loan:?}");
        assert!(
            loan_long.1.contains(&MatchReason::LoanwordKana)
                && loan_long.1.contains(&MatchReason::SimilarReading),
            "{loan_long:?}"
        );
        assert!(typo.1.contains(&MatchReason::OneEdit), "{typo:?}");
        assert!(
            same.0 > similar.0
                && similar.0 > loan.0
                && loan.0 > loan_long.0
                && loan_long.0 > typo.0,
            "{same:?} {similar:?} {loan:?} {loan_long:?} {typo:?}"
        );
        // Both ways, and ヴ alone is a loanword spelling now, not a similar reading.
        let p = person("田中", "ビクトル", "タナカ", "ビクトル");
        assert!(score("タナカヴィクトル", &p)
            .unwrap()
            .1
            .contains(&MatchReason::LoanwordKana));
        let p = person("田中", "ルヴ", "タナカ", "ルヴ");
        assert!(score("タナカルブ", &p)
            .unwrap()
            .1
            .contains(&MatchReason::LoanwordKana));
        // The index holds the loanword key of a reading that has one, and only then.
        let mut body = RecordBody::default();
        body.core.child_name = person("佐々木", "ティナ", "ササキ", "ティナ");
        let e = index_entry(13, 1, "x", &body);
        assert!(e
            .keys
            .iter()
            .any(|k| k.kind == KIND_READING && k.key == "ササキチナ"));
        body.core.child_name = person("佐々木", "花子", "ササキ", "ハナコ");
        let plain = index_entry(13, 1, "x", &body).keys.len();
        body.core.child_name = person("佐々木", "花代", "ササキ", "ハナヨ");
        assert_eq!(index_entry(13, 1, "x", &body).keys.len(), plain);
    }

    #[test]
    fn ties_are_broken_by_evidence_and_shown_fields_never_by_id() {
        let doc = |id: i64, org: &str, name: PersonName, birth: &str| {
            let mut body = RecordBody::default();
            body.core.child_name = name;
            body.core.birth_date = Some(BirthDate {
                date: birth.parse().unwrap(),
                estimated: false,
            });
            index_entry(13, id, org, &body).doc
        };
        let docs = || {
            vec![
                doc(1, "b", person("佐藤", "蓮", "サトウ", "レン"), "2015-04-10"),
                doc(
                    2,
                    "a",
                    person("佐藤", "葵", "サトウ", "アオイ"),
                    "2015-04-02",
                ),
                doc(
                    3,
                    "b",
                    person("佐藤", "葵", "サトウ", "アオイ"),
                    "2015-04-20",
                ),
                doc(
                    4,
                    "a",
                    person("佐藤", "陽", "サトウ", "アオイ"),
                    "2015-04-02",
                ),
            ]
        };
        let order = |q: &Query, mut d: Vec<SearchDoc>| {
            d.reverse();
            let a: Vec<i64> = rank_docs(q, d.clone())
                .iter()
                .map(|h| h.doc.record_id)
                .collect();
            d.reverse();
            let b: Vec<i64> = rank_docs(q, d).iter().map(|h| h.doc.record_id).collect();
            assert_eq!(a, b, "the order does not depend on the candidates' order");
            a
        };
        // No birth filter: all equal (family only), ordered by reading, then name, then date.
        let q0 = q("佐藤");
        assert_eq!(order(&q0, docs()), vec![2, 3, 4, 1]);
        let ranked = rank_docs(&q0, docs());
        assert!(ranked
            .windows(2)
            .all(|w| evidence_cmp(&w[0], &w[1]) == std::cmp::Ordering::Equal));
        // An exact day: the closer birth date first, whoever registered first.
        let qb = Query::parse(Some("佐藤"), None, Some("2015-04-12"), None, None).unwrap();
        let ranked = rank_docs(&qb, docs());
        let ids: Vec<i64> = ranked.iter().map(|h| h.doc.record_id).collect();
        assert_eq!(ids, vec![1, 3, 2, 4]);
        assert_eq!((ranked[0].birth_gap, ranked[1].birth_gap), (2, 8));
        // 2 and 4: same distance, same evidence: a tie, ordered by the name shown (葵 < 陽).
        assert_eq!(
            evidence_cmp(&ranked[2], &ranked[3]),
            std::cmp::Ordering::Equal
        );
        assert_ne!(
            evidence_cmp(&ranked[1], &ranked[2]),
            std::cmp::Ordering::Equal
        );
    }

    #[test]
    fn typo_is_one_edit_and_others_do_not_match() {
        let p = person("山田", "花子", "ヤマダ", "ハナコ");
        assert!(score("ヤマダハナゴ", &p)
            .unwrap()
            .1
            .contains(&MatchReason::OneEdit));
        assert!(score("スズキイチロウ", &p).is_none());
        assert!(score("東京都", &p).is_none());
    }

    #[test]
    fn mixed_script_query_splits_into_two_parts() {
        let nq = NameQuery::parse("山田はなこ");
        assert_eq!(nq.parts.len(), 2);
        assert_eq!(nq.script, "mixed");
        let p = person("山田", "花子", "ヤマダ", "ハナコ");
        let s = score("山田はなこ", &p).unwrap();
        assert!(
            s.1.contains(&MatchReason::ExactName) && s.1.contains(&MatchReason::SameReading),
            "{s:?}"
        );
        // A given name written with kana and kanji stays one part.
        assert!(NameQuery::parse("ゆり子").parts.is_empty());
    }

    #[test]
    fn query_parsing_refuses_short_and_empty() {
        assert_eq!(
            Query::parse(None, None, None, None, None)
                .unwrap_err()
                .field,
            "q"
        );
        assert_eq!(
            Query::parse(Some("　 "), None, None, None, None)
                .unwrap_err()
                .field,
            "q"
        );
        assert_eq!(
            Query::parse(Some("山"), None, None, None, None)
                .unwrap_err()
                .field,
            "q"
        );
        assert!(Query::parse(Some("林"), None, Some("2015-04-01"), None, None).is_ok());
        assert_eq!(
            Query::parse(Some("山田"), None, Some("あした"), None, None)
                .unwrap_err()
                .field,
            "birth"
        );
        assert_eq!(
            Query::parse(Some("山田"), None, None, Some("3"), None)
                .unwrap_err()
                .field,
            "sex"
        );
        assert_eq!(
            Query::parse(Some("山田"), None, None, None, Some("0"))
                .unwrap_err()
                .field,
            "page"
        );
        assert!(Query::parse(Some("山田"), None, None, None, None)
            .unwrap()
            .shape()
            .to_string()
            .find("山田")
            .is_none());
    }

    #[test]
    fn birth_forms() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        let b = parse_birth("H27.4.1").unwrap();
        assert_eq!(
            (b.from, b.to, b.shape),
            (d(2015, 4, 1), d(2015, 4, 1), "day")
        );
        let b = parse_birth("平成27年").unwrap();
        assert_eq!(
            (b.from, b.to, b.shape),
            (d(2015, 1, 1), d(2015, 12, 31), "year")
        );
        let b = parse_birth("2016-02").unwrap();
        assert_eq!((b.from, b.to), (d(2016, 2, 1), d(2016, 2, 29)));
        let b = parse_birth("2014..R2").unwrap();
        assert_eq!(
            (b.from, b.to, b.shape),
            (d(2014, 1, 1), d(2020, 12, 31), "range")
        );
        assert!(parse_birth("2020..2014").is_err());
    }

    #[test]
    fn index_keys_cover_forms_and_never_the_address() {
        let mut body = RecordBody::default();
        body.core.child_name = person("渡邉", "花子", "ワタナベ", "ハナコ");
        body.core.address.street = "住所マーカー1-2-3".into();
        body.core.address.postal_code = "999-9999".into();
        body.core.guardians.push(tsunagu_record::schema::Guardian {
            name: person("渡邉", "太郎", "ワタナベ", "タロウ"),
            relationship: None,
        });
        let e = index_entry(13, 13_000_000_000_001, "cgc-13-01", &body);
        let has = |kind: &str, key: &str| e.keys.iter().any(|k| k.kind == kind && k.key == key);
        assert!(has(KIND_NAME, "渡辺花子"));
        assert!(has(KIND_NAME, "花子渡辺"));
        assert!(has(KIND_NAME, "渡辺"));
        assert!(has(KIND_READING, "ワタナベハナコ"));
        assert!(has(KIND_READING, "タナベ"));
        assert!(has(KIND_READING, "ハナコワタナベ"));
        assert!(has(KIND_GUARDIAN, "渡辺太郎"));
        assert!(has(KIND_GUARDIAN, "タロウ"));
        let all = format!("{:?}", e);
        assert!(!all.contains("住所マーカー") && !all.contains("999-9999"));
    }

    #[test]
    fn grouping_joins_same_child_across_owners() {
        let doc = |id: i64, name: PersonName, birth: &str| {
            let mut body = RecordBody::default();
            body.core.child_name = name;
            body.core.birth_date = Some(BirthDate {
                date: birth.parse().unwrap(),
                estimated: false,
            });
            Ranked {
                doc: index_entry(13, id, "x", &body).doc,
                score: 1.0,
                reasons: vec![],
                birth_gap: 0,
            }
        };
        let groups = group(vec![
            doc(
                1,
                person("髙橋", "花子", "タカハシ", "ハナコ"),
                "2015-04-01",
            ),
            doc(2, person("高橋", "花子", "", ""), "2015-04-01"),
            doc(
                3,
                person("鷹橋", "花子", "タカハシ", "ハナコ"),
                "2015-04-01",
            ),
            doc(
                4,
                person("高橋", "花子", "タカハシ", "ハナコ"),
                "2016-04-01",
            ),
        ]);
        let ids: Vec<Vec<i64>> = groups
            .iter()
            .map(|g| g.iter().map(|h| h.doc.record_id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 2, 3], vec![4]]);
    }

    #[test]
    fn alert_hook_matches_records_and_queries() {
        let alerts = vec![
            AlertSubject {
                alert_id: 1,
                child_name: person("髙橋", "翔", "タカハシ", "ショウ"),
                birth_date: NaiveDate::from_ymd_opt(2016, 5, 5),
                sex: Some(Sex::Male),
                active: true,
            },
            AlertSubject {
                alert_id: 2,
                child_name: person("高橋", "翔", "タカハシ", "ショウ"),
                birth_date: NaiveDate::from_ymd_opt(2016, 5, 5),
                sex: Some(Sex::Male),
                active: false,
            },
            AlertSubject {
                alert_id: 3,
                child_name: person("佐藤", "陽菜", "サトウ", "ヒナ"),
                birth_date: None,
                sex: None,
                active: true,
            },
        ];
        let mut body = RecordBody::default();
        body.core.child_name = person("高橋", "翔", "タカハシ", "ショウ");
        body.core.birth_date = Some(BirthDate {
            date: "2016-05-05".parse().unwrap(),
            estimated: false,
        });
        let m = alerts_matching_record(&body, &alerts);
        assert_eq!(
            m.iter().map(|m| m.alert_id).collect::<Vec<_>>(),
            vec![1],
            "inactive alert 2 is not reported"
        );
        assert!(m[0].reasons.contains(&MatchReason::VariantKanji));
        // Another birth date: no match.
        body.core.birth_date = Some(BirthDate {
            date: "2012-01-01".parse().unwrap(),
            estimated: false,
        });
        assert!(alerts_matching_record(&body, &alerts).is_empty());
        let m = alerts_matching_query(&q("さとう ひな"), &alerts);
        assert_eq!(m.iter().map(|m| m.alert_id).collect::<Vec<_>>(), vec![3]);
        assert!(alerts_matching_query(&q("鈴木"), &alerts).is_empty());
    }
}
