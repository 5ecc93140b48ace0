//! The organisation master: which child guidance centres (CGC), municipalities and national
//! bodies use the system, and which CGC's jurisdiction each municipality is in. Real deployments
//! load it from TOML or CSV; demos and tests use [`synthetic`], because no public list of CGC
//! jurisdictions exists.
//!
//! Synthetic phone numbers all start with `000-`: in Japan a leading `00` is a carrier or
//! international prefix, so no subscriber number looks like this, yet the shape (3-4-4, 11 digits)
//! passes the same format check as a real number. The second group encodes the organisation:
//! `0000-000x` national (ministry 0, operator 1), `1pp0-00nn` for CGC `cgc-pp-nn`, and
//! `2abc-def0` for the municipality with lgcode `abcdef`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tsunagu_record::codes::{lgcode_is_valid, lgcode_prefecture, OrgKind};

use crate::localgov;

/// One organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgDef {
    pub id: String,
    pub kind: OrgKind,
    pub name: String,
    /// 1..=47; 0 for national organisations (ministry, operator).
    pub pref_code: u8,
    /// Municipalities only: the 6-digit 全国地方公共団体コード.
    pub lgcode: Option<String>,
    pub phone: String,
    /// Municipalities only: the CGC whose jurisdiction the municipality is in.
    pub cgc_id: Option<String>,
}

/// Every organisation of a deployment, in the order they were listed.
///
/// Lookups scan the list: a national master has about two thousand entries, so a scan costs
/// microseconds; callers on a hot path can build their own index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgMaster {
    pub orgs: Vec<OrgDef>,
}

/// One problem in a master file. `line` is the 1-based line of the CSV row or of the TOML
/// `[[org]]` header, so an administrator can find it in the file they edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}行目: {message}")]
pub struct MasterError {
    pub line: usize,
    pub message: String,
}

/// The CSV columns, in the order [`OrgMaster::to_csv`] writes them.
pub const CSV_COLUMNS: [&str; 7] = [
    "id",
    "kind",
    "name",
    "pref_code",
    "lgcode",
    "phone",
    "cgc_id",
];

/// Municipalities per synthetic CGC; a prefecture gets `ceil(n / 30)` centres, at least one.
const MUNICIPALITIES_PER_SYNTHETIC_CGC: usize = 30;

impl OrgMaster {
    /// The organisation with this id.
    pub fn get(&self, id: &str) -> Option<&OrgDef> {
        self.orgs.iter().find(|o| o.id == id)
    }

    /// The municipality organisation with this lgcode.
    pub fn municipality_by_lgcode(&self, lgcode: &str) -> Option<&OrgDef> {
        self.orgs
            .iter()
            .find(|o| o.kind == OrgKind::Municipality && o.lgcode.as_deref() == Some(lgcode))
    }

    /// The CGC responsible for an address in this municipality: where a case is routed.
    pub fn centre_for_lgcode(&self, lgcode: &str) -> Option<&OrgDef> {
        let cgc_id = self.municipality_by_lgcode(lgcode)?.cgc_id.as_deref()?;
        self.get(cgc_id).filter(|o| o.kind == OrgKind::Cgc)
    }

    /// The CGCs of one prefecture.
    pub fn centres_of(&self, pref: u8) -> impl Iterator<Item = &OrgDef> + '_ {
        self.orgs
            .iter()
            .filter(move |o| o.kind == OrgKind::Cgc && o.pref_code == pref)
    }

    /// The municipalities in one CGC's jurisdiction.
    pub fn jurisdiction<'a>(&'a self, cgc_id: &'a str) -> impl Iterator<Item = &'a OrgDef> + 'a {
        self.orgs
            .iter()
            .filter(move |o| o.kind == OrgKind::Municipality && o.cgc_id.as_deref() == Some(cgc_id))
    }

    /// Writes the master in the CSV form [`from_csv`] reads, header included.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(CSV_COLUMNS).expect("writing to memory");
        for o in &self.orgs {
            let pref = o.pref_code.to_string();
            w.write_record([
                o.id.as_str(),
                o.kind.code(),
                o.name.as_str(),
                pref.as_str(),
                o.lgcode.as_deref().unwrap_or(""),
                o.phone.as_str(),
                o.cgc_id.as_deref().unwrap_or(""),
            ])
            .expect("writing to memory");
        }
        String::from_utf8(w.into_inner().expect("writing to memory")).expect("input was UTF-8")
    }
}

/// A master for demos and tests: every real municipality, synthetic CGCs that partition each
/// prefecture's municipalities in contiguous lgcode runs, the ministry and the operator.
/// Deterministic: the same data always gives the same master.
pub fn synthetic() -> OrgMaster {
    let mut orgs = vec![
        OrgDef {
            id: "ministry".into(),
            kind: OrgKind::Ministry,
            name: "こども家庭庁".into(),
            pref_code: 0,
            lgcode: None,
            phone: "000-0000-0000".into(),
            cgc_id: None,
        },
        OrgDef {
            id: "operator".into(),
            kind: OrgKind::Operator,
            name: "システム運用者".into(),
            pref_code: 0,
            lgcode: None,
            phone: "000-0000-0001".into(),
            cgc_id: None,
        },
    ];
    for pref in localgov::prefectures() {
        let munis = localgov::municipalities_slice(pref.code);
        let centres = munis
            .len()
            .div_ceil(MUNICIPALITIES_PER_SYNTHETIC_CGC)
            .max(1);
        let pp = pref.code;
        for nn in 1..=centres {
            let cgc_id = format!("cgc-{pp:02}-{nn:02}");
            orgs.push(OrgDef {
                id: cgc_id.clone(),
                kind: OrgKind::Cgc,
                name: format!("（架空）{}第{nn}児童相談所", pref.name),
                pref_code: pp,
                lgcode: None,
                phone: format!("000-1{pp:02}0-00{nn:02}"),
                cgc_id: None,
            });
            // Even split: centre nn-1 of k takes [i*n/k, (i+1)*n/k).
            let range = (nn - 1) * munis.len() / centres..nn * munis.len() / centres;
            for m in &munis[range] {
                orgs.push(OrgDef {
                    id: format!("muni-{}", m.lgcode),
                    kind: OrgKind::Municipality,
                    name: m.name.clone(),
                    pref_code: pp,
                    lgcode: Some(m.lgcode.clone()),
                    phone: format!("000-2{}-{}0", &m.lgcode[..3], &m.lgcode[3..]),
                    cgc_id: Some(cgc_id.clone()),
                });
            }
        }
    }
    OrgMaster { orgs }
}

/// An entry as read, before validation; `None` where the text could not be parsed (already
/// reported).
struct RawOrg {
    line: usize,
    id: String,
    kind: Option<OrgKind>,
    name: String,
    pref_code: Option<u8>,
    lgcode: Option<String>,
    phone: String,
    cgc_id: Option<String>,
}

fn err(line: usize, message: impl Into<String>) -> MasterError {
    MasterError {
        line,
        message: message.into(),
    }
}

fn parse_kind(line: usize, text: &str, errors: &mut Vec<MasterError>) -> Option<OrgKind> {
    let kind = OrgKind::from_code(text);
    if kind.is_none() {
        errors.push(err(
            line,
            format!(
                "組織種別 \"{text}\" は不明です（cgc, municipality, ministry, operator のいずれか）"
            ),
        ));
    }
    kind
}

fn parse_pref(line: usize, text: &str, errors: &mut Vec<MasterError>) -> Option<u8> {
    let pref = text.parse::<u8>().ok().filter(|p| *p <= 47);
    if pref.is_none() {
        errors.push(err(
            line,
            format!("都道府県コード \"{text}\" が不正です（0〜47の数字）"),
        ));
    }
    pref
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Loads a master from CSV with the header `id,kind,name,pref_code,lgcode,phone,cgc_id` (any
/// column order; empty `lgcode`/`cgc_id` mean none). Reports every problem at once.
pub fn from_csv(text: &str) -> Result<OrgMaster, Vec<MasterError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![err(1, format!("見出し行を読めません: {e}"))]),
    };
    let mut col = [0usize; 7];
    for (i, name) in CSV_COLUMNS.iter().enumerate() {
        match header.iter().position(|h| h == *name) {
            Some(p) => col[i] = p,
            None => errors.push(err(1, format!("列 \"{name}\" がありません"))),
        }
    }
    for h in header.iter().filter(|h| !CSV_COLUMNS.contains(h)) {
        errors.push(err(1, format!("列 \"{h}\" は不明です")));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut raws = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                errors.push(err(line, format!("CSV として読めません: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.len() != header.len() {
            errors.push(err(
                line,
                format!("列の数が {} です（{} 列必要）", record.len(), header.len()),
            ));
            continue;
        }
        let field = |i: usize| &record[col[i]];
        raws.push(RawOrg {
            line,
            id: field(0).to_string(),
            kind: parse_kind(line, field(1), &mut errors),
            name: field(2).to_string(),
            pref_code: parse_pref(line, field(3), &mut errors),
            lgcode: non_empty(field(4)),
            phone: field(5).to_string(),
            cgc_id: non_empty(field(6)),
        });
    }
    validate(raws, errors)
}

/// Loads a master from TOML, one `[[org]]` table per organisation with the keys `id`, `kind`,
/// `name`, `pref_code` (integer), `phone` and, for municipalities, `lgcode` and `cgc_id`.
/// Reports every problem at once.
pub fn from_toml(text: &str) -> Result<OrgMaster, Vec<MasterError>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        org: Vec<toml::Spanned<toml::Table>>,
    }
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let file: File = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(s.start));
        vec![err(
            line,
            format!("TOML として読めません: {}", e.message().trim_end()),
        )]
    })?;

    let mut errors = Vec::new();
    let mut raws = Vec::new();
    for entry in file.org {
        let line = line_of(entry.span().start);
        let table = entry.into_inner();
        for key in table.keys().filter(|k| !CSV_COLUMNS.contains(&k.as_str())) {
            errors.push(err(line, format!("項目 \"{key}\" は不明です")));
        }
        let mut string = |key: &str, required: bool| -> String {
            match table.get(key) {
                Some(toml::Value::String(s)) => s.trim().to_string(),
                Some(_) => {
                    errors.push(err(line, format!("{key} は文字列で指定してください")));
                    String::new()
                }
                None => {
                    if required {
                        errors.push(err(line, format!("{key} がありません")));
                    }
                    String::new()
                }
            }
        };
        let id = string("id", true);
        let kind_text = string("kind", true);
        let name = string("name", true);
        let lgcode = non_empty(&string("lgcode", false));
        let phone = string("phone", true);
        let cgc_id = non_empty(&string("cgc_id", false));
        let kind = if kind_text.is_empty() {
            None
        } else {
            parse_kind(line, &kind_text, &mut errors)
        };
        let pref_code = match table.get("pref_code") {
            Some(toml::Value::Integer(n)) => parse_pref(line, &n.to_string(), &mut errors),
            Some(_) => {
                errors.push(err(line, "pref_code は整数で指定してください"));
                None
            }
            None => {
                errors.push(err(line, "pref_code がありません"));
                None
            }
        };
        raws.push(RawOrg {
            line,
            id,
            kind,
            name,
            pref_code,
            lgcode,
            phone,
            cgc_id,
        });
    }
    validate(raws, errors)
}

/// 10 or 11 ASCII digits, unseparated or in three hyphenated groups: the shapes of Japanese
/// landline, mobile and toll-free numbers.
fn phone_is_well_formed(phone: &str) -> bool {
    let groups: Vec<&str> = phone.split('-').collect();
    let digits: usize = groups.iter().map(|g| g.len()).sum();
    matches!(groups.len(), 1 | 3)
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
        && (10..=11).contains(&digits)
}

fn pref_label(code: u8) -> String {
    localgov::prefecture(code).map_or_else(|| code.to_string(), |p| p.name.clone())
}

fn validate(
    raws: Vec<RawOrg>,
    mut errors: Vec<MasterError>,
) -> Result<OrgMaster, Vec<MasterError>> {
    let mut first_by_id: HashMap<&str, &RawOrg> = HashMap::new();
    for r in &raws {
        if r.id.is_empty() {
            errors.push(err(r.line, "id が空です"));
        } else if let Some(first) = first_by_id.get(r.id.as_str()) {
            errors.push(err(
                r.line,
                format!(
                    "id \"{}\" が重複しています（{}行目と同じ）",
                    r.id, first.line
                ),
            ));
        } else {
            first_by_id.insert(&r.id, r);
        }
    }

    let mut first_by_lgcode: HashMap<&str, &RawOrg> = HashMap::new();
    for r in &raws {
        let line = r.line;
        if r.name.is_empty() {
            errors.push(err(line, "名称が空です"));
        }
        if !phone_is_well_formed(&r.phone) {
            errors.push(err(
                line,
                format!(
                    "電話番号 \"{}\" の形式が不正です（数字10〜11桁、区切りはハイフン）",
                    r.phone
                ),
            ));
        }
        let Some(kind) = r.kind else { continue };
        let national = matches!(kind, OrgKind::Ministry | OrgKind::Operator);
        if let Some(pref) = r.pref_code {
            if national && pref != 0 {
                errors.push(err(
                    line,
                    format!(
                        "{}の都道府県コードは 0 です（{pref} が指定されています）",
                        kind.label_ja()
                    ),
                ));
            } else if !national && pref == 0 {
                errors.push(err(
                    line,
                    format!("{}には都道府県コード（1〜47）が必要です", kind.label_ja()),
                ));
            }
        }
        if kind != OrgKind::Municipality {
            if r.lgcode.is_some() {
                errors.push(err(line, "lgcode を指定できるのは市区町村だけです"));
            }
            if r.cgc_id.is_some() {
                errors.push(err(line, "cgc_id を指定できるのは市区町村だけです"));
            }
            continue;
        }

        match &r.lgcode {
            None => errors.push(err(line, "市区町村には lgcode が必要です")),
            Some(code) if !lgcode_is_valid(code) => errors.push(err(
                line,
                format!("lgcode \"{code}\" が不正です（6桁の数字で、最後の検査数字が合いません）"),
            )),
            Some(code) => {
                let code_pref = lgcode_prefecture(code);
                if let Some(pref) = r.pref_code.filter(|p| *p != 0) {
                    if code_pref != Some(pref) {
                        errors.push(err(
                            line,
                            format!(
                                "lgcode \"{code}\" は{}のコードで、pref_code {pref}（{}）と一致しません",
                                code_pref.map_or_else(|| "不明な都道府県".to_string(), pref_label),
                                pref_label(pref)
                            ),
                        ));
                    }
                }
                if let Some(first) = first_by_lgcode.get(code.as_str()) {
                    errors.push(err(
                        line,
                        format!(
                            "lgcode \"{code}\" が重複しています（{}行目の \"{}\" と同じ）",
                            first.line, first.id
                        ),
                    ));
                } else {
                    first_by_lgcode.insert(code, r);
                }
            }
        }

        match &r.cgc_id {
            None => errors.push(err(
                line,
                "市区町村には管轄の児童相談所（cgc_id）が必要です",
            )),
            Some(cgc_id) => match first_by_id.get(cgc_id.as_str()) {
                None => errors.push(err(line, format!("cgc_id \"{cgc_id}\" の組織がありません"))),
                // An unparseable kind was reported on its own line already.
                Some(cgc) if cgc.kind.is_some_and(|k| k != OrgKind::Cgc) => errors.push(err(
                    line,
                    format!(
                        "cgc_id \"{cgc_id}\" は児童相談所ではありません（{}行目）",
                        cgc.line
                    ),
                )),
                Some(cgc) => {
                    if let (Some(own), Some(theirs)) = (r.pref_code, cgc.pref_code) {
                        if own != theirs {
                            errors.push(err(
                                line,
                                format!(
                                    "cgc_id \"{cgc_id}\" は{}の児童相談所で、この市区町村（{}）と都道府県が異なります",
                                    pref_label(theirs),
                                    pref_label(own)
                                ),
                            ));
                        }
                    }
                }
            },
        }
    }

    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }
    let orgs = raws
        .into_iter()
        .map(|r| OrgDef {
            id: r.id,
            kind: r.kind.expect("no errors, so parsed"),
            name: r.name,
            pref_code: r.pref_code.expect("no errors, so parsed"),
            lgcode: r.lgcode,
            phone: r.phone,
            cgc_id: r.cgc_id,
        })
        .collect();
    Ok(OrgMaster { orgs })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID_CSV: &str = "\
id,kind,name,pref_code,lgcode,phone,cgc_id
ministry,ministry,こども家庭庁,0,,03-0000-0000,
cgc-a,cgc,中央児童相談所,13,,03-1111-2222,
cgc-b,cgc,\"多摩児童相談所, 分室\",13,,042-111-2222,
muni-131016,municipality,千代田区,13,131016,03-3264-2111,cgc-a
muni-132012,municipality,八王子市,13,132012,042-626-3111,cgc-b
";

    const VALID_TOML: &str = r#"
[[org]]
id = "operator"
kind = "operator"
name = "運用者"
pref_code = 0
phone = "0120-000-000"

[[org]]
id = "cgc-a"
kind = "cgc"
name = "中央児童相談所"
pref_code = 13
phone = "03-1111-2222"

[[org]]
id = "muni-131016"
kind = "municipality"
name = "千代田区"
pref_code = 13
lgcode = "131016"
phone = "03-3264-2111"
cgc_id = "cgc-a"
"#;

    /// (line, fragment) pairs that must each match one reported error.
    fn assert_errors(errors: &[MasterError], expected: &[(usize, &str)]) {
        for (line, fragment) in expected {
            assert!(
                errors
                    .iter()
                    .any(|e| e.line == *line && e.message.contains(fragment)),
                "no error at line {line} containing {fragment:?} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        assert!(errors.windows(2).all(|w| w[0].line <= w[1].line));
    }

    #[test]
    fn synthetic_partitions_every_prefecture() {
        let m = synthetic();
        let ministry = m.get("ministry").unwrap();
        assert_eq!((ministry.kind, ministry.pref_code), (OrgKind::Ministry, 0));
        assert_eq!(ministry.name, "こども家庭庁");
        assert_eq!(m.get("operator").unwrap().kind, OrgKind::Operator);

        let munis: Vec<_> = m
            .orgs
            .iter()
            .filter(|o| o.kind == OrgKind::Municipality)
            .collect();
        assert_eq!(munis.len(), localgov::municipalities().len());
        for lg in localgov::municipalities() {
            let org = m.municipality_by_lgcode(&lg.lgcode).unwrap();
            assert_eq!(org.id, format!("muni-{}", lg.lgcode));
            assert_eq!(org.pref_code, lg.pref_code);
            let centre = m.centre_for_lgcode(&lg.lgcode).unwrap();
            assert_eq!(centre.pref_code, lg.pref_code, "{org:?}");
            assert!(centre.name.starts_with("（架空）"));
        }
        // Exactly one jurisdiction: each municipality is listed once in the whole master.
        let mut listed = std::collections::HashMap::new();
        for c in m.orgs.iter().filter(|o| o.kind == OrgKind::Cgc) {
            for o in m.jurisdiction(&c.id) {
                *listed.entry(o.id.as_str()).or_insert(0) += 1;
            }
        }
        assert_eq!(listed.len(), munis.len());
        assert!(listed.values().all(|n| *n == 1));
        for pref in 1..=47u8 {
            let centres: Vec<_> = m.centres_of(pref).collect();
            assert!(!centres.is_empty(), "prefecture {pref}");
            let covered: usize = centres.iter().map(|c| m.jurisdiction(&c.id).count()).sum();
            assert_eq!(covered, localgov::municipalities_of(pref).count());
            for (i, c) in centres.iter().enumerate() {
                assert_eq!(c.id, format!("cgc-{pref:02}-{:02}", i + 1));
                let n = m.jurisdiction(&c.id).count();
                assert!(
                    (1..=MUNICIPALITIES_PER_SYNTHETIC_CGC).contains(&n),
                    "{c:?}: {n}"
                );
            }
        }
        assert_eq!(m.centres_of(13).count(), 3); // 62 municipalities in Tokyo.
        assert_eq!(m.centres_of(0).count(), 0);
        let phones: std::collections::HashSet<_> = m.orgs.iter().map(|o| &o.phone).collect();
        assert_eq!(phones.len(), m.orgs.len(), "synthetic phones are unique");
        assert!(m.orgs.iter().all(|o| o.phone.starts_with("000-")));
        assert_eq!(synthetic(), m, "deterministic");
    }

    #[test]
    fn synthetic_round_trips_through_csv() {
        let m = synthetic();
        let csv = m.to_csv();
        assert!(csv.starts_with("id,kind,name,pref_code,lgcode,phone,cgc_id\n"));
        assert!(csv.contains("\nmuni-011011,municipality,札幌市 中央区,1,011011,"));
        assert_eq!(from_csv(&csv), Ok(m));
    }

    #[test]
    fn accepts_small_valid_masters() {
        let m = from_csv(VALID_CSV).unwrap();
        assert_eq!(m.orgs.len(), 5);
        assert_eq!(m.get("cgc-b").unwrap().name, "多摩児童相談所, 分室");
        assert_eq!(m.centre_for_lgcode("132012").unwrap().id, "cgc-b");
        assert_eq!(m.get("ministry").unwrap().lgcode, None);
        assert_eq!(from_csv(&m.to_csv()), Ok(m));

        let t = from_toml(VALID_TOML).unwrap();
        assert_eq!(t.orgs.len(), 3);
        assert_eq!(
            t.municipality_by_lgcode("131016")
                .unwrap()
                .cgc_id
                .as_deref(),
            Some("cgc-a")
        );
        assert_eq!(t.get("operator").unwrap().kind, OrgKind::Operator);
        assert_eq!(from_toml(""), Ok(OrgMaster::default()));
    }

    #[test]
    fn csv_reports_every_problem_with_its_line() {
        let text = "\
id,kind,name,pref_code,lgcode,phone,cgc_id
cgc-a,cgc,中央,13,,03-1111-2222,
cgc-z,cgc,大阪,27,,06-1111-2222,
cgc-a,cgc,重複,13,,03-1111-2223,
x,agency,不明,13,,03-1111-2224,
m1,municipality,千代田区,13,131017,03-0000-0001,cgc-a
m2,municipality,札幌市,13,011002,03-0000-0002,cgc-a
m3,municipality,中央区,13,131024,03-0000-0003,
m4,municipality,港区,13,131032,03-0000-0004,nowhere
m5,municipality,新宿区,13,131041,03-0000-0005,cgc-z
m6,municipality,新宿区,13,131041,03-0000-0006,cgc-a
m7,municipality,文京区,13,131059,03-0000-0007,m6
cgc-empty,cgc,管轄なし,13,,03-0000-0008,
short,cgc
p,cgc,電話,99,,電話番号,
";
        let errors = from_csv(text).unwrap_err();
        assert_errors(
            &errors,
            &[
                (4, "id \"cgc-a\" が重複しています（2行目と同じ）"),
                (5, "組織種別 \"agency\" は不明です"),
                (6, "lgcode \"131017\" が不正です"),
                (7, "pref_code 13（東京都）と一致しません"),
                (8, "cgc_id"),
                (9, "cgc_id \"nowhere\" の組織がありません"),
                (10, "大阪府の児童相談所"),
                (
                    11,
                    "lgcode \"131041\" が重複しています（10行目の \"m5\" と同じ）",
                ),
                (12, "児童相談所ではありません"),
                (14, "列の数が 2 です"),
                (15, "都道府県コード \"99\" が不正です"),
                (15, "電話番号 \"電話番号\" の形式が不正です"),
            ],
        );
        assert_eq!(
            errors[0].to_string(),
            format!("4行目: {}", errors[0].message)
        );
    }

    #[test]
    fn csv_header_problems_are_reported_on_line_one() {
        let errors = from_csv("id,kind,name,pref_code,phone,cgc_id,extra\n").unwrap_err();
        assert_errors(
            &errors,
            &[
                (1, "列 \"lgcode\" がありません"),
                (1, "列 \"extra\" は不明です"),
            ],
        );
        // Column order is free and a BOM is tolerated.
        let reordered =
            "\u{feff}kind,id,name,pref_code,lgcode,phone,cgc_id\nministry,m,庁,0,,03-0000-0000,\n";
        assert_eq!(from_csv(reordered).unwrap().orgs[0].id, "m");
    }

    #[test]
    fn toml_reports_every_problem_with_its_line() {
        let text = r#"[[org]]
id = "ministry"
kind = "ministry"
name = "こども家庭庁"
pref_code = 13
phone = "03-0000-0000"
lgcode = "131016"

[[org]]
id = "cgc-a"
kind = "centre"
name = "中央"
pref_code = "13"
phone = "03-1111-2222"

[[org]]
id = "m1"
kind = "municipality"
pref_code = 13
lgcode = "131016"
phone = "03-1111-2222"
cgc_id = "ministry"
colour = "red"

[[org]]
id = "m1"
kind = "municipality"
name = "港区"
pref_code = 0
lgcode = "131032"
phone = "03-1111-2222"
cgc_id = "cgc-a"
"#;
        let errors = from_toml(text).unwrap_err();
        assert_errors(
            &errors,
            &[
                (1, "こども家庭庁の都道府県コードは 0 です"),
                (1, "lgcode を指定できるのは市区町村だけです"),
                (9, "組織種別 \"centre\" は不明です"),
                (9, "pref_code は整数で指定してください"),
                (16, "項目 \"colour\" は不明です"),
                (16, "name がありません"),
                (16, "名称が空です"),
                (16, "児童相談所ではありません（1行目）"),
                (25, "id \"m1\" が重複しています（16行目と同じ）"),
                (25, "市区町村には都道府県コード（1〜47）が必要です"),
            ],
        );
    }

    #[test]
    fn toml_syntax_errors_carry_a_line() {
        let errors = from_toml("[[org]]\nid = \"a\"\nkind = \n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3, "{errors:?}");
        let errors = from_toml("[[orgs]]\nid = \"a\"\n").unwrap_err();
        assert_eq!(errors[0].line, 1, "{errors:?}");
    }

    #[test]
    fn phone_shapes() {
        for ok in [
            "03-1234-5678",
            "0120-000-000",
            "090-1234-5678",
            "0312345678",
        ] {
            assert!(phone_is_well_formed(ok), "{ok}");
        }
        for bad in [
            "",
            "03-1234-567",
            "03--1234-5678",
            "-03-1234-5678",
            "03-1234-5678-9",
            "０３-1234-5678",
        ] {
            assert!(!phone_is_well_formed(bad), "{bad}");
        }
    }
}
