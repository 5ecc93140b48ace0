//! Synthetic children and guardians for demos, tests and benchmarks. Names come from the IPA
//! dictionary ([`crate::names`]), addresses from the real municipality list; everything else is
//! visibly fake (street "架空町…", postal codes "000xxxx", which Japan Post does not issue), so
//! generated records can never be mistaken for, or collide with, a real family's.
//!
//! Output is a pure function of the seed: ChaCha8's stream is fixed by its spec and rand keeps
//! its sampling value-stable within 0.8, so tests and benchmarks see the same people everywhere.

use std::sync::OnceLock;

use chrono::{Datelike, Days, Months, NaiveDate};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tsunagu_record::codes::{Relationship, Sex};

use crate::localgov::{self, Municipality};
use crate::names::{self, NameEntry};

/// A person's name with katakana readings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SyntheticName {
    pub family: String,
    pub given: String,
    pub family_kana: String,
    pub given_kana: String,
}

/// A child as a case worker would first register them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyntheticChild {
    pub name: SyntheticName,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub birth_date_estimated: bool,
    /// Address municipality (never a designated city itself, only its wards).
    pub lgcode: String,
    /// 7 digits, always "000" then four random digits.
    pub postal_code: String,
    pub street: String,
    /// One or two; the child's mother or father first.
    pub guardians: Vec<(SyntheticName, Relationship)>,
}

/// Fake town names for streets; all start with 架空 so that a screen shows at a glance that the
/// record is synthetic.
const TOWNS: [&str; 8] = [
    "架空町",
    "架空本町",
    "架空台",
    "架空が丘",
    "架空東町",
    "架空西町",
    "架空南町",
    "架空北町",
];

/// Share of estimated birth dates (children found without papers, unregistered births).
const ESTIMATED_SHARE: f64 = 0.05;
/// Share of boys among births in Japan (about 105 boys per 100 girls).
const MALE_SHARE: f64 = 0.512;

/// Municipalities people can live in, per prefecture: designated cities are left out because
/// their residents' addresses are in one of the city's wards.
struct AddressTables {
    by_pref: Vec<Vec<&'static Municipality>>,
    all: Vec<&'static Municipality>,
}

fn address_tables() -> &'static AddressTables {
    static TABLES: OnceLock<AddressTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let all_munis = localgov::municipalities();
        let has_wards = |m: &Municipality| {
            localgov::municipalities_slice(m.pref_code).iter().any(|w| {
                w.name
                    .strip_prefix(m.name.as_str())
                    .is_some_and(|r| r.starts_with(' '))
            })
        };
        let all: Vec<&'static Municipality> = all_munis.iter().filter(|m| !has_wards(m)).collect();
        let by_pref = (0..=47u8)
            .map(|p| all.iter().copied().filter(|m| m.pref_code == p).collect())
            .collect();
        AddressTables { by_pref, all }
    })
}

/// Generates synthetic people from a seed. Tables are parsed once per process and shared, so a
/// generator is cheap to create and [`PeopleGenerator::child`] allocates only its result.
pub struct PeopleGenerator {
    rng: ChaCha8Rng,
    family: &'static [NameEntry],
    given: &'static [NameEntry],
    addresses: &'static AddressTables,
}

impl PeopleGenerator {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        PeopleGenerator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            family: names::family_names(),
            given: names::given_names(),
            addresses: address_tables(),
        }
    }

    /// Picks from a cost-sorted pool with index `n * u²`: half the draws come from the cheapest
    /// quarter, yet every name stays possible.
    fn pick(&mut self, pool: &'static [NameEntry]) -> &'static NameEntry {
        let u: f64 = self.rng.gen();
        let i = (u * u * pool.len() as f64) as usize;
        &pool[i.min(pool.len() - 1)]
    }

    fn family_name(&mut self) -> &'static NameEntry {
        self.pick(self.family)
    }

    /// A family name other than `not`, for a step-parent or partner.
    fn other_family_name(&mut self, not: &str) -> &'static NameEntry {
        loop {
            let f = self.family_name();
            if f.name != not {
                return f;
            }
        }
    }

    fn name_in(&mut self, family: &NameEntry) -> SyntheticName {
        let given = self.pick(self.given);
        SyntheticName {
            family: family.name.to_string(),
            given: given.name.to_string(),
            family_kana: family.reading.to_string(),
            given_kana: given.reading.to_string(),
        }
    }

    /// A random person's name, e.g. for staff accounts.
    pub fn name(&mut self) -> SyntheticName {
        let family = self.family_name();
        self.name_in(family)
    }

    /// A child aged 0–17 on `today`, living in `pref_code` (any prefecture if `None`).
    ///
    /// # Panics
    /// If `pref_code` is not 1..=47, or `today` is within 18 years of chrono's minimum date.
    pub fn child(&mut self, pref_code: Option<u8>, today: NaiveDate) -> SyntheticChild {
        let family = self.family_name();
        let name = self.name_in(family);
        let sex = if self.rng.gen_bool(MALE_SHARE) {
            Sex::Male
        } else {
            Sex::Female
        };

        // Everyone born from the day after `today` minus 18 years is still 17 or younger.
        let earliest = today
            .checked_sub_months(Months::new(18 * 12))
            .and_then(|d| d.succ_opt())
            .expect("today is a realistic date");
        let span = (today - earliest).num_days() as u64;
        let mut birth_date = earliest + Days::new(self.rng.gen_range(0..=span));
        let birth_date_estimated = self.rng.gen_bool(ESTIMATED_SHARE);
        if birth_date_estimated {
            // Estimates are usually recorded as the first of the month.
            let first = birth_date.with_day(1).expect("day 1 exists");
            if first >= earliest {
                birth_date = first;
            }
        }

        let pool = match pref_code {
            None => &self.addresses.all,
            Some(p) => self
                .addresses
                .by_pref
                .get(p as usize)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| panic!("prefecture code {p} is not 1..=47")),
        };
        let lgcode = pool[self.rng.gen_range(0..pool.len())].lgcode.clone();
        let postal_code = format!("000{:04}", self.rng.gen_range(0..10_000u32));
        let town = TOWNS[self.rng.gen_range(0..TOWNS.len())];
        let (chome, banchi, go) = (
            self.rng.gen_range(1..=9u32),
            self.rng.gen_range(1..=30u32),
            self.rng.gen_range(1..=20u32),
        );
        let street = if self.rng.gen_bool(0.3) {
            let room = self.rng.gen_range(1..=5u32) * 100 + self.rng.gen_range(1..=8u32);
            format!("{town}{chome}丁目{banchi}-{go} 架空ハイツ{room}号室")
        } else {
            format!("{town}{chome}丁目{banchi}-{go}")
        };

        let guardians = self.guardians(family);
        SyntheticChild {
            name,
            sex,
            birth_date,
            birth_date_estimated,
            lgcode,
            postal_code,
            street,
            guardians,
        }
    }

    /// Household shapes, roughly: both parents 45%, mother only 30%, father only 7%, mother and
    /// stepfather 10%, mother and her partner 8%. Step-parents and partners have another family
    /// name; a remarried mother has taken the stepfather's half of the time.
    fn guardians(&mut self, family: &'static NameEntry) -> Vec<(SyntheticName, Relationship)> {
        let roll = self.rng.gen_range(0..100u32);
        let mut out = Vec::with_capacity(2);
        match roll {
            0..45 => {
                out.push((self.name_in(family), Relationship::Mother));
                out.push((self.name_in(family), Relationship::Father));
            }
            45..75 => out.push((self.name_in(family), Relationship::Mother)),
            75..82 => out.push((self.name_in(family), Relationship::Father)),
            82..92 => {
                let step = self.other_family_name(family.name);
                let mothers = if self.rng.gen_bool(0.5) { step } else { family };
                out.push((self.name_in(mothers), Relationship::Mother));
                out.push((self.name_in(step), Relationship::Stepfather));
            }
            _ => {
                let partner = self.other_family_name(family.name);
                out.push((self.name_in(family), Relationship::Mother));
                out.push((self.name_in(partner), Relationship::MothersPartner));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::is_katakana;
    use std::collections::{HashMap, HashSet};
    use std::time::{Duration, Instant};
    use tsunagu_record::codes::{lgcode_is_valid, lgcode_prefecture};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn age(birth: NaiveDate, today: NaiveDate) -> i32 {
        let mut years = today.year() - birth.year();
        if (today.month(), today.day()) < (birth.month(), birth.day()) {
            years -= 1;
        }
        years
    }

    fn check_name(n: &SyntheticName) {
        assert!(!n.family.is_empty() && !n.given.is_empty(), "{n:?}");
        assert!(!is_katakana(&n.family) && !is_katakana(&n.given), "{n:?}");
        assert!(
            is_katakana(&n.family_kana) && is_katakana(&n.given_kana),
            "{n:?}"
        );
    }

    #[test]
    fn same_seed_same_people() {
        let today = date(2025, 4, 1);
        let run = |seed| {
            let mut g = PeopleGenerator::new(seed);
            (0..200)
                .map(|i| g.child((i % 3 == 0).then_some(13), today))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert_eq!(
            PeopleGenerator::new(1).name(),
            PeopleGenerator::new(1).name()
        );
    }

    #[test]
    fn ten_thousand_children_keep_the_invariants() {
        let today = date(2025, 4, 1);
        let mut g = PeopleGenerator::new(42);
        let start = Instant::now();
        let mut ages = HashSet::new();
        let (mut estimated, mut males, mut shared, mut guardian_count) = (0, 0, 0, 0);
        let mut relationships = HashSet::new();
        let designated: HashSet<&str> = localgov::municipalities()
            .iter()
            .filter_map(|m| m.name.split_once(' ').map(|(city, _)| city))
            .collect();
        assert_eq!(designated.len(), 20);
        let pool = names::family_names();
        let mut rank = HashMap::new();
        for (i, e) in pool.iter().enumerate().rev() {
            rank.insert((e.name, e.reading), i);
        }
        let mut cheap_quarter = 0;
        for i in 0..10_000u32 {
            let pref = (i % 2 == 0).then_some((i % 47 + 1) as u8);
            let c = g.child(pref, today);
            let a = age(c.birth_date, today);
            assert!((0..=17).contains(&a), "{c:?}");
            ages.insert(a);
            assert!(lgcode_is_valid(&c.lgcode), "{c:?}");
            if let Some(p) = pref {
                assert_eq!(lgcode_prefecture(&c.lgcode), Some(p), "{c:?}");
            }
            let muni = localgov::municipality(&c.lgcode).unwrap();
            assert!(
                !designated.contains(muni.name.as_str()),
                "designated city as address: {c:?}"
            );
            assert!(
                c.postal_code.len() == 7 && c.postal_code.bytes().all(|b| b.is_ascii_digit()),
                "{c:?}"
            );
            assert!(c.street.starts_with("架空"), "{c:?}");
            check_name(&c.name);
            assert!((1..=2).contains(&c.guardians.len()), "{c:?}");
            for (n, r) in &c.guardians {
                check_name(n);
                relationships.insert(*r);
                guardian_count += 1;
                if n.family == c.name.family {
                    shared += 1;
                }
                if matches!(r, Relationship::Stepfather | Relationship::MothersPartner) {
                    assert_ne!(n.family, c.name.family, "{c:?}");
                }
            }
            estimated += c.birth_date_estimated as u32;
            males += (c.sex == Sex::Male) as u32;
            let r = rank[&(c.name.family.as_str(), c.name.family_kana.as_str())];
            cheap_quarter += (r < pool.len() / 4) as u32;
        }
        let elapsed = start.elapsed();
        // Generous even for a debug build; re-parsing tables per call would take minutes.
        assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
        assert_eq!(ages.len(), 18);
        assert!((300..=700).contains(&estimated), "{estimated}");
        assert!((4_800..=5_450).contains(&males), "{males}");
        assert!(
            shared * 100 > guardian_count * 75,
            "{shared}/{guardian_count}"
        );
        assert_eq!(relationships.len(), 4, "{relationships:?}");
        // Weighting: about half the family names come from the cheapest quarter of the pool.
        assert!((4_300..=6_000).contains(&cheap_quarter), "{cheap_quarter}");
    }

    #[test]
    fn ages_stay_in_range_on_leap_days() {
        for today in [
            date(2024, 2, 29),
            date(2025, 2, 28),
            date(2025, 12, 31),
            date(2026, 1, 1),
        ] {
            let mut g = PeopleGenerator::new(3);
            for _ in 0..3_000 {
                let c = g.child(None, today);
                assert!(
                    (0..=17).contains(&age(c.birth_date, today)),
                    "{today}: {c:?}"
                );
            }
        }
    }

    #[test]
    fn estimated_dates_are_first_of_month_when_in_range() {
        let today = date(2025, 6, 15);
        let mut g = PeopleGenerator::new(9);
        let estimated: Vec<_> = (0..4_000)
            .map(|_| g.child(Some(1), today))
            .filter(|c| c.birth_date_estimated)
            .collect();
        assert!(!estimated.is_empty());
        // Only dates in the earliest month, whose 1st is out of range, keep their day.
        assert!(estimated
            .iter()
            .all(|c| c.birth_date.day() == 1 || c.birth_date < date(2007, 7, 1)));
    }

    #[test]
    #[should_panic(expected = "prefecture code 48")]
    fn unknown_prefecture_panics() {
        PeopleGenerator::new(0).child(Some(48), date(2025, 1, 1));
    }
}
