//! Kanji variant folding (異体字): 髙→高, 﨑→崎, 邊/邉→辺, 齋→斎, 濱/濵→浜, 𠮷→吉, 澤→沢 …
//!
//! The tables are data, not code, and are generated from `data/kanji-variants` (see the test
//! `generated_tables_match_sources`, which rebuilds them when `TSUNAGU_REGEN_VARIANTS=1`):
//! - `variants/mj.tsv`: from the MJ縮退マップ (IPA), licensed CC BY-SA 2.1 JP, kept in its own
//!   file with its notice;
//! - `variants/unihan.tsv`: from Unicode's Unihan variants (Unicode License);
//! - `variants/supplement.tsv`: a few hand-written folds neither table gives.
//!
//! They are parsed once (on first use) into one map in which every chain is already resolved,
//! so folding a name is one hash lookup per character.

use std::collections::HashMap;
use std::sync::OnceLock;

const MJ: &str = include_str!("variants/mj.tsv");
const UNIHAN: &str = include_str!("variants/unihan.tsv");
const SUPPLEMENT: &str = include_str!("variants/supplement.tsv");

fn parse(table: &str) -> impl Iterator<Item = (char, char)> + '_ {
    table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (a, b) = l.split_once('\t')?;
            let mut a = a.chars();
            let mut b = b.chars();
            let (Some(s), None, Some(t), None) = (a.next(), a.next(), b.next(), b.next()) else {
                return None;
            };
            Some((s, t))
        })
}

/// Merges the tables (supplement first, then MJ, then Unihan: the first table that names a
/// source wins) and resolves chains (邉→邊→辺 becomes 邉→辺).
fn build() -> HashMap<char, char> {
    build_from(&[SUPPLEMENT, MJ, UNIHAN])
}

/// [`build`] over any tables, in precedence order (the coverage measure compares table sets).
fn build_from(tables: &[&str]) -> HashMap<char, char> {
    let mut direct: HashMap<char, char> = HashMap::new();
    for (s, t) in tables.iter().flat_map(|t| parse(t)) {
        if s != t {
            direct.entry(s).or_insert(t);
        }
    }
    let mut resolved = HashMap::with_capacity(direct.len());
    for &s in direct.keys() {
        // Follow the chain to its end; a cycle (輀 → 轜 → 輀) ends at its smallest member, so
        // every member of it folds to the same char.
        let mut path = vec![s];
        let mut cur = s;
        let end = loop {
            match direct.get(&cur) {
                None => break cur,
                Some(&next) => {
                    if let Some(i) = path.iter().position(|&c| c == next) {
                        break *path[i..].iter().min().expect("non-empty cycle");
                    }
                    path.push(next);
                    cur = next;
                }
            }
        };
        if end != s {
            resolved.insert(s, end);
        }
    }
    resolved
}

fn table() -> &'static HashMap<char, char> {
    static TABLE: OnceLock<HashMap<char, char>> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// The common form of one character (itself when it has none).
pub fn fold_char(c: char) -> char {
    // ASCII and kana are never variants: skip the lookup.
    if (c as u32) < 0x3400 {
        return c;
    }
    table().get(&c).copied().unwrap_or(c)
}

/// Every character of `s` in its common form.
pub fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_folds() {
        for (from, to) in [
            ("髙", "高"),
            ("\u{FA11}", "崎"),
            ("邊", "辺"),
            ("邉", "辺"),
            ("齋", "斎"),
            ("濱", "浜"),
            ("濵", "浜"),
            ("𠮷", "吉"),
            ("澤", "沢"),
        ] {
            assert_eq!(fold(from), to, "{from}");
        }
        // Everyday pairs both tables keep apart (issue 15): JIS X 0208:1983's changed glyphs,
        // 人名用漢字 variants, and Unihan pairs the name dictionary attests.
        for pair in [
            "槇槙", "舘館", "嵜崎", "桧檜", "薮藪", "凜凛", "遙遥", "埼崎", "佑祐", "鯵鰺", "邇迩",
        ] {
            let c: Vec<char> = pair.chars().collect();
            assert_eq!(fold_char(c[0]), fold_char(c[1]), "{pair}");
        }
        assert_eq!(fold("髙橋"), "高橋");
        assert_eq!(fold("渡邉"), fold("渡辺"));
    }

    #[test]
    fn common_forms_and_kana_stay() {
        for s in [
            "高橋",
            "山田",
            "佐藤",
            "鈴木",
            "斎藤",
            "斉藤",
            "ヤマダ",
            "abc",
            "辺",
            "浜",
        ] {
            assert_eq!(fold(s), s, "{s}");
        }
        // 斉 and 斎 are different characters: only the reading brings them together.
        assert_ne!(fold("斉藤"), fold("斎藤"));
    }

    #[test]
    fn no_chain_is_left_unresolved() {
        let t = table();
        for (s, e) in t {
            assert!(!t.contains_key(e), "{s} → {e} → {} left unresolved", t[e]);
        }
    }

    /// The coverage measure of issue 15: of the most frequent kanji in the dictionary's family
    /// and given names, the share whose known variants (Unihan kZVariant / kSemanticVariant /
    /// kSpecializedSemanticVariant and the MJ map, where the variant occurs in names too) all
    /// fold to the same form; and the same over the variants the dictionary attests as one name
    /// spelled both ways. Prints the table for docs/search.md (`--nocapture`); with
    /// `TSUNAGU_VARIANT_COVERAGE_BASE=DIR` (a directory with older supplement.tsv, mj.tsv,
    /// unihan.tsv) it prints that table set's figures too, for a before/after.
    #[test]
    fn variant_coverage_of_name_kanji() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/kanji-variants");
        let (Ok(mj_src), Ok(unihan_src), Ok(names_src)) = (
            std::fs::read_to_string(root.join("mj-shrink-map.tsv")),
            std::fs::read_to_string(root.join("Unihan_Variants.txt")),
            std::fs::read_to_string(root.join("../names/ipadic-person-names.tsv")),
        ) else {
            eprintln!("SKIPPED: data/kanji-variants or data/names not present");
            return;
        };
        let now = build_from(&[SUPPLEMENT, MJ, UNIHAN]);
        let base = std::env::var("TSUNAGU_VARIANT_COVERAGE_BASE")
            .ok()
            .map(|d| {
                let read =
                    |f: &str| std::fs::read_to_string(std::path::Path::new(&d).join(f)).unwrap();
                let (s, m, u) = (read("supplement.tsv"), read("mj.tsv"), read("unihan.tsv"));
                build_from(&[&s, &m, &u])
            });
        for top in [100, 500, 2000] {
            let c = gen::coverage(&now, &mj_src, &unihan_src, &names_src, top);
            eprintln!("coverage now, top {top}: {c:?}");
            if let Some(b) = &base {
                eprintln!(
                    "coverage base, top {top}: {:?}",
                    gen::coverage(b, &mj_src, &unihan_src, &names_src, top)
                );
            }
            // Every attested name variant folds, except pairs whose forms the tables already
            // give different common forms (齊→斉, 齋→斎).
            assert_eq!(
                c.attested_folded + c.attested_kept_apart,
                c.attested_kanji,
                "top {top}: {c:?}"
            );
        }
    }

    /// Rebuilds the three tables from `data/kanji-variants` and checks the committed files are
    /// what the sources give. `TSUNAGU_REGEN_VARIANTS=1` writes them instead.
    #[test]
    fn generated_tables_match_sources() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/kanji-variants");
        let Ok(mj_src) = std::fs::read_to_string(root.join("mj-shrink-map.tsv")) else {
            eprintln!("SKIPPED: data/kanji-variants not present");
            return;
        };
        let unihan_src = std::fs::read_to_string(root.join("Unihan_Variants.txt")).unwrap();
        let names_src = std::fs::read_to_string(root.join("../names/ipadic-person-names.tsv"))
            .expect("data/names beside data/kanji-variants");
        let (mj, unihan) = gen::tables(&mj_src, &unihan_src, &names_src);
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/variants");
        if std::env::var("TSUNAGU_REGEN_VARIANTS").is_ok() {
            std::fs::write(here.join("mj.tsv"), &mj).unwrap();
            std::fs::write(here.join("unihan.tsv"), &unihan).unwrap();
        } else {
            assert!(
                MJ == mj,
                "variants/mj.tsv is stale: run with TSUNAGU_REGEN_VARIANTS=1"
            );
            assert!(
                UNIHAN == unihan,
                "variants/unihan.tsv is stale: run with TSUNAGU_REGEN_VARIANTS=1"
            );
        }
    }

    /// The generator (test-only: the tables are committed data).
    mod gen {
        use std::collections::{BTreeMap, HashMap, HashSet};

        /// The Unihan fields that relate a character to its variants.
        pub const ALL_FIELDS: &[&str] = &[
            "kZVariant",
            "kSemanticVariant",
            "kSpecializedSemanticVariant",
            "kTraditionalVariant",
            "kSimplifiedVariant",
        ];

        /// The fields the coverage measure counts as "known variants" of a name kanji.
        pub const VARIANT_FIELDS: &[&str] = &[
            "kZVariant",
            "kSemanticVariant",
            "kSpecializedSemanticVariant",
        ];

        /// Unordered pairs (smaller char first) related by one of `fields`, both forms as NFKC
        /// leaves them.
        pub fn unihan_pairs(unihan_src: &str, fields: &[&str]) -> HashSet<(char, char)> {
            let mut out = HashSet::new();
            for line in unihan_src.lines().filter(|l| !l.starts_with('#')) {
                let f: Vec<&str> = line.split('\t').collect();
                if f.len() < 3 || !fields.contains(&f[1]) {
                    continue;
                }
                let Some(s) = cp(f[0]).filter(|&c| nfkc_char(c) == Some(c)) else {
                    continue;
                };
                for v in f[2].split(' ') {
                    let Some(t) =
                        cp(v.split('<').next().unwrap_or("")).filter(|&c| nfkc_char(c) == Some(c))
                    else {
                        continue;
                    };
                    if s != t {
                        out.insert((s.min(t), s.max(t)));
                    }
                }
            }
            out
        }

        /// What the name dictionary says about kanji in names.
        pub struct NameStats {
            /// Dictionary entries (family and given names) each kanji occurs in.
            pub count: HashMap<char, usize>,
            /// Kanji pairs (smaller first) that are the only difference between two spellings
            /// of one name with the same reading (山崎/山嵜 ヤマザキ).
            pub same_name_pairs: HashSet<(char, char)>,
        }

        fn is_kanji(c: char) -> bool {
            matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
        }

        impl NameStats {
            pub fn of(names_src: &str) -> NameStats {
                let mut count: HashMap<char, usize> = HashMap::new();
                let mut groups: HashMap<(&str, &str, usize), Vec<Vec<char>>> = HashMap::new();
                for line in names_src.lines().skip(1) {
                    let f: Vec<&str> = line.split('\t').collect();
                    if f.len() < 3 {
                        continue;
                    }
                    let name: Vec<char> = f[1].chars().filter_map(nfkc_char).collect();
                    let mut seen = HashSet::new();
                    for &c in name.iter().filter(|c| is_kanji(**c)) {
                        if seen.insert(c) {
                            *count.entry(c).or_default() += 1;
                        }
                    }
                    groups
                        .entry((f[0], f[2], name.len()))
                        .or_default()
                        .push(name);
                }
                let mut same_name_pairs = HashSet::new();
                for names in groups.values() {
                    for (i, a) in names.iter().enumerate() {
                        for b in &names[i + 1..] {
                            let mut diff = a.iter().zip(b).filter(|(x, y)| x != y);
                            if let (Some((&x, &y)), None) = (diff.next(), diff.next()) {
                                if is_kanji(x) && is_kanji(y) {
                                    same_name_pairs.insert((x.min(y), x.max(y)));
                                }
                            }
                        }
                    }
                }
                NameStats {
                    count,
                    same_name_pairs,
                }
            }
        }

        pub const MJ_NOTICE: &str = "\
# Kanji variant folds derived from the MJ縮退マップ (MJ Shrink Map) Ver.1.2.0, 2018-01-26,
# by the Information-technology Promotion Agency, Japan (IPA) / 文字情報技術促進協議会,
# code points resolved through MJ文字情報一覧表 Ver.006.02, via data/kanji-variants/mj-shrink-map.tsv.
# License: Creative Commons Attribution-ShareAlike 2.1 Japan
# (https://creativecommons.org/licenses/by-sa/2.1/jp/). This file is a derived work under the
# same license, kept apart from the code (MIT OR Apache-2.0).
# Derivation: one target per source (a target that is not itself a source first, then one with
# family-register-notice or jis-inclusion-rule evidence, then best_rank, then file order);
# rows whose only evidence is reading-shape-analogy are left out.
# Generated by crates/record/src/variants.rs (test generated_tables_match_sources); do not edit.
# source<TAB>target
";

        pub const UNIHAN_NOTICE: &str = "\
# Kanji variant folds derived from the Unicode Unihan database (Unihan_Variants.txt, Unicode
# 15.0.0), Copyright © Unicode, Inc., under the Unicode License
# (https://www.unicode.org/license.txt).
# Derivation, two rules:
# 1. kZVariant, kSemanticVariant and kSpecializedSemanticVariant pairs whose source is not
#    folded by the MJ table and whose target is a common form of the MJ table (a character the
#    MJ table folds others to, and never folds itself).
# 2. Name variants both of whose forms are everyday characters the MJ table keeps apart (槇/槙,
#    埼/崎, 桧/檜): a pair of any Unihan variant field (the three above, kTraditionalVariant,
#    kSimplifiedVariant) is folded when the name dictionary (data/names) spells one name with
#    the same reading both ways (山崎/山埼 ヤマザキ), unless the tables already fold each form
#    to a different common form (齊→斉, 齋→斎 stay apart). The rarer form in the dictionary's
#    names folds to the more frequent one. Without that evidence Chinese simplified/traditional
#    pairs are not used: they would fold distinct Japanese names together.
# Generated by crates/record/src/variants.rs (test generated_tables_match_sources); do not edit.
# source<TAB>target
";

        /// NFKC of one char, when it is still one char.
        fn nfkc_char(c: char) -> Option<char> {
            use unicode_normalization::UnicodeNormalization;
            let mut it = std::iter::once(c).nfkc();
            match (it.next(), it.next()) {
                (Some(x), None) => Some(x),
                _ => None,
            }
        }

        fn cp(s: &str) -> Option<char> {
            u32::from_str_radix(s.trim().trim_start_matches("U+"), 16)
                .ok()
                .and_then(char::from_u32)
        }

        /// See `variant_coverage_of_name_kanji`.
        #[derive(Debug)]
        #[allow(dead_code)] // Read through Debug, for the printed table.
        pub struct Coverage {
            pub top: usize,
            /// Of the `top` kanji, those with a known variant that occurs in names.
            pub with_variants: usize,
            /// … whose every such variant folds with them.
            pub folded: usize,
            /// Of the `top` kanji, those with a variant the dictionary attests (one name, one
            /// reading, spelled with either).
            pub attested_kanji: usize,
            pub attested_folded: usize,
            /// Attested, but each form folds to a different common form already (kept apart).
            pub attested_kept_apart: usize,
        }

        pub fn coverage(
            fold: &HashMap<char, char>,
            mj_src: &str,
            unihan_src: &str,
            names_src: &str,
            top: usize,
        ) -> Coverage {
            let f = |c: char| fold.get(&c).copied().unwrap_or(c);
            let names = NameStats::of(names_src);
            let mut known = unihan_pairs(unihan_src, VARIANT_FIELDS);
            for line in mj_src.lines().skip(1) {
                let x: Vec<&str> = line.split('\t').collect();
                if x.len() < 7 || x[4] == "reading-shape-analogy" {
                    continue;
                }
                if let (Some(a), Some(b)) =
                    (cp(x[2]).and_then(nfkc_char), cp(x[3]).and_then(nfkc_char))
                {
                    if a != b {
                        known.insert((a.min(b), a.max(b)));
                    }
                }
            }
            let mut ranked: Vec<(char, usize)> =
                names.count.iter().map(|(c, n)| (*c, *n)).collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut partners: HashMap<char, Vec<char>> = HashMap::new();
            for &(a, b) in &known {
                if names.count.contains_key(&a) && names.count.contains_key(&b) {
                    partners.entry(a).or_default().push(b);
                    partners.entry(b).or_default().push(a);
                }
            }
            let mut c = Coverage {
                top,
                with_variants: 0,
                folded: 0,
                attested_kanji: 0,
                attested_folded: 0,
                attested_kept_apart: 0,
            };
            // Which forms the MJ table and rule 1 alone give a common form of their own.
            for &(k, _) in ranked.iter().take(top) {
                let Some(vs) = partners.get(&k) else { continue };
                c.with_variants += 1;
                if vs.iter().all(|&v| f(v) == f(k)) {
                    c.folded += 1;
                }
                let att: Vec<char> = vs
                    .iter()
                    .copied()
                    .filter(|&v| names.same_name_pairs.contains(&(k.min(v), k.max(v))))
                    .collect();
                if att.is_empty() {
                    continue;
                }
                c.attested_kanji += 1;
                if att.iter().all(|&v| f(v) == f(k)) {
                    c.attested_folded += 1;
                } else if att
                    .iter()
                    .all(|&v| f(v) == f(k) || (f(v) != v && f(k) != k))
                {
                    c.attested_kept_apart += 1;
                }
            }
            c
        }

        pub fn tables(mj_src: &str, unihan_src: &str, names_src: &str) -> (String, String) {
            struct Row {
                s: char,
                t: char,
                strong: bool,
                rank: u32,
                order: usize,
            }
            let mut rows = Vec::new();
            for (order, line) in mj_src.lines().skip(1).enumerate() {
                let f: Vec<&str> = line.split('\t').collect();
                if f.len() < 7 {
                    continue;
                }
                let (Some(s), Some(t)) = (cp(f[2]), cp(f[3])) else {
                    continue;
                };
                // Folding runs after NFKC: a source NFKC already changes never reaches the
                // table, and a target is stored as NFKC gives it (突 → U+FA55 is 突 itself).
                let Some(t) = nfkc_char(t) else { continue };
                let bases = f[4];
                if bases == "reading-shape-analogy" || s == t || nfkc_char(s) != Some(s) {
                    continue;
                }
                rows.push(Row {
                    s,
                    t,
                    strong: bases.contains("family-register-notice")
                        || bases.contains("jis-inclusion-rule"),
                    rank: f[5].parse().unwrap_or(u32::MAX),
                    order,
                });
            }
            let sources: HashSet<char> = rows.iter().map(|r| r.s).collect();
            let mut best: BTreeMap<char, &Row> = BTreeMap::new();
            let key = |r: &Row| (sources.contains(&r.t), !r.strong, r.rank, r.order);
            for r in &rows {
                match best.get(&r.s) {
                    Some(b) if key(b) <= key(r) => {}
                    _ => {
                        best.insert(r.s, r);
                    }
                }
            }
            let mut mj = MJ_NOTICE.to_string();
            for (s, r) in &best {
                mj.push_str(&format!("{s}\t{}\n", r.t));
            }
            let targets: HashSet<char> = best
                .values()
                .map(|r| r.t)
                .filter(|t| !sources.contains(t))
                .collect();
            let mut uni: BTreeMap<char, char> = BTreeMap::new();
            for line in unihan_src.lines() {
                if line.starts_with('#') {
                    continue;
                }
                let f: Vec<&str> = line.split('\t').collect();
                if f.len() < 3
                    || !matches!(
                        f[1],
                        "kZVariant" | "kSemanticVariant" | "kSpecializedSemanticVariant"
                    )
                {
                    continue;
                }
                let Some(s) = cp(f[0]) else { continue };
                if sources.contains(&s) || targets.contains(&s) || nfkc_char(s) != Some(s) {
                    continue;
                }
                for v in f[2].split(' ') {
                    let Some(t) = cp(v.split('<').next().unwrap_or("")).and_then(nfkc_char) else {
                        continue;
                    };
                    if t != s && targets.contains(&t) {
                        uni.entry(s).or_insert(t);
                    }
                }
            }
            // Rule 2: name variants the dictionary attests, resolved over everything above
            // (the supplement first, as `build` merges them).
            let mut direct: HashMap<char, char> = HashMap::new();
            for (a, b) in super::super::parse(super::super::SUPPLEMENT) {
                direct.entry(a).or_insert(b);
            }
            for (a, r) in &best {
                direct.entry(*a).or_insert(r.t);
            }
            for (a, b) in &uni {
                direct.entry(*a).or_insert(*b);
            }
            let root = |direct: &HashMap<char, char>, mut c: char| {
                let mut hops = 0;
                while let Some(&n) = direct.get(&c) {
                    if n == c || hops > 16 {
                        break;
                    }
                    c = n;
                    hops += 1;
                }
                c
            };
            let names = NameStats::of(names_src);
            let variants = unihan_pairs(unihan_src, ALL_FIELDS);
            let mut attested: Vec<(char, char)> = names
                .same_name_pairs
                .iter()
                .copied()
                .filter(|p| variants.contains(p))
                .collect();
            attested.sort_unstable();
            for (a, b) in attested {
                let (ra, rb) = (root(&direct, a), root(&direct, b));
                if ra == rb || (ra != a && rb != b) {
                    continue;
                }
                let count = |c: char| names.count.get(&c).copied().unwrap_or(0);
                // The more frequent form is the target; equal counts: the lower code point.
                let (from, to) =
                    if (count(ra), std::cmp::Reverse(ra)) >= (count(rb), std::cmp::Reverse(rb)) {
                        (rb, ra)
                    } else {
                        (ra, rb)
                    };
                direct.insert(from, to);
                uni.insert(from, to);
            }
            let mut out = UNIHAN_NOTICE.to_string();
            for (s, t) in uni {
                out.push_str(&format!("{s}\t{t}\n"));
            }
            (mj, out)
        }
    }
}
