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
    let mut direct: HashMap<char, char> = HashMap::new();
    for (s, t) in parse(SUPPLEMENT).chain(parse(MJ)).chain(parse(UNIHAN)) {
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
        let (mj, unihan) = gen::tables(&mj_src, &unihan_src);
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
        use std::collections::{BTreeMap, HashSet};

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
# Derivation: kZVariant, kSemanticVariant and kSpecializedSemanticVariant pairs whose source is
# not folded by the MJ table and whose target is a common form of the MJ table (a character the
# MJ table folds others to, and never folds itself). Chinese simplified/traditional pairs are
# not used: they would fold distinct Japanese names together.
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

        pub fn tables(mj_src: &str, unihan_src: &str) -> (String, String) {
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
            let mut out = UNIHAN_NOTICE.to_string();
            for (s, t) in uni {
                out.push_str(&format!("{s}\t{t}\n"));
            }
            (mj, out)
        }
    }
}
