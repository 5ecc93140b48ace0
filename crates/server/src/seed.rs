//! Synthetic data: the organisation master, demo accounts and records for the demo, and large
//! record sets for benchmarks. Every person is generated from the name tables; every
//! organisation that is not in the public master is marked 架空 (fictional).

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sha2::{Digest, Sha256};
use tsunagu_masterdata::{orgs as master, PeopleGenerator, SyntheticChild, SyntheticName};
use tsunagu_record::restrict::{Field, Group};
use tsunagu_record::schema::*;
use tsunagu_record::{
    ConsultationType, FacilityType, OrgKind, RecordBody, Restrictions, RiskLevel, Role,
};

use crate::audit::{action, AuditDraft};
use crate::auth::{self, PasswordCost};
use crate::domain;
use crate::orgs::{rows_from_master, Org, OrgDirectory};
use crate::storage::{NewUser, RecordWrite, Storage, StoreError};

/// The password of every demo account. Demo data only: real accounts get random passwords.
pub const DEMO_PASSWORD: &str = "tsunagu-demo-2026";

/// A demo account: who it is and why it is there (to show one tier).
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub login: &'static str,
    pub org_id: String,
    pub role: Role,
    pub display_name: &'static str,
    pub purpose: &'static str,
}

/// The demo accounts over the synthetic master: a centre, a municipality in its jurisdiction,
/// a municipality outside it, a centre in another prefecture, the ministry, the centre's admin.
pub fn demo_accounts(m: &master::OrgMaster) -> Vec<DemoAccount> {
    let cgc = "cgc-13-01".to_string();
    let muni = m
        .jurisdiction(&cgc)
        .next()
        .expect("synthetic centre has municipalities")
        .id
        .clone();
    let other = m
        .jurisdiction("cgc-13-02")
        .next()
        .expect("second Tokyo centre has municipalities")
        .id
        .clone();
    vec![
        DemoAccount {
            login: "demo-cgc",
            org_id: cgc,
            role: Role::Staff,
            display_name: "児相 職員A（架空）",
            purpose: "児童相談所の職員（所有・連携機関の記録を閲覧）",
        },
        DemoAccount {
            login: "demo-muni",
            org_id: muni,
            role: Role::Staff,
            display_name: "区 職員B（架空）",
            purpose: "同じ管轄の市区町村の職員（連携機関）",
        },
        DemoAccount {
            login: "demo-muni-other",
            org_id: other,
            role: Role::Staff,
            display_name: "区 職員C（架空）",
            purpose: "管轄外の市区町村の職員（他市区町村の記録は閲覧不可）",
        },
        DemoAccount {
            login: "demo-cgc-osaka",
            org_id: "cgc-27-01".into(),
            role: Role::Staff,
            display_name: "大阪 児相 職員D（架空）",
            purpose: "他県の児童相談所の職員（基本情報と家族の状況のみ）",
        },
        DemoAccount {
            login: "demo-ministry",
            org_id: "ministry".into(),
            role: Role::Ministry,
            display_name: "こども家庭庁 職員E（架空）",
            purpose: "こども家庭庁（重大事案のみ閲覧）",
        },
        DemoAccount {
            login: "demo-admin",
            org_id: "cgc-13-01".into(),
            role: Role::OrgAdmin,
            display_name: "児相 管理者F（架空）",
            purpose: "児童相談所の組織管理者",
        },
    ]
}

/// The demo accounts' TOTP secret, derived from the login so the demo client can compute codes.
pub fn demo_totp_secret(login: &str) -> String {
    let d = Sha256::digest(format!("tsunagu demo totp {login}").as_bytes());
    totp_rs::Secret::Raw(d[..20].to_vec())
        .to_encoded()
        .to_string()
}

pub async fn load_orgs(
    store: &dyn Storage,
    m: &master::OrgMaster,
    at: i64,
) -> Result<(), StoreError> {
    store.upsert_orgs(&rows_from_master(m)).await?;
    store
        .append_audit(AuditDraft::by_operator(
            0,
            at,
            action::ORGS_LOADED,
            json!({ "orgs": m.orgs.len() }),
        ))
        .await?;
    Ok(())
}

pub async fn create_demo_users(
    store: &dyn Storage,
    m: &master::OrgMaster,
    cost: PasswordCost,
    at: i64,
    key: &crate::totp_key::TotpKey,
) -> anyhow::Result<Vec<DemoAccount>> {
    let accounts = demo_accounts(m);
    let hash = auth::hash_password(DEMO_PASSWORD, cost);
    for a in &accounts {
        if store.user_by_login(a.login).await?.is_some() {
            continue;
        }
        let pref = m.get(&a.org_id).map(|o| o.pref_code as i64).unwrap_or(0);
        store
            .create_user(
                &NewUser {
                    org_id: a.org_id.clone(),
                    login: a.login.into(),
                    display_name: a.display_name.into(),
                    role: a.role.code().into(),
                    password_hash: hash.clone(),
                    totp_secret: key.seal(a.login, &demo_totp_secret(a.login)),
                },
                AuditDraft::by_operator(pref, at, action::USER_CREATED, json!({})),
            )
            .await?;
    }
    Ok(accounts)
}

fn name(n: &SyntheticName) -> PersonName {
    PersonName {
        family: n.family.clone(),
        given: n.given.clone(),
        family_kana: Some(n.family_kana.clone()),
        given_kana: Some(n.given_kana.clone()),
    }
}

const INTERVIEW: &[&str] = &[
    "母親と面接。子どもの様子について聞き取りを行った。夜間に泣き声が続くとの近隣からの情報について説明を求めた。",
    "保育所にて本児と面接。表情は明るいが、腕のあざについて説明が一貫しない。",
    "家庭訪問を実施。室内は散乱しており、食事の準備がされていない様子であった。",
    "学校にて本児と面接。最近眠れていないと話す。",
];
const FINDINGS: &[&str] = &[
    "養育環境の改善が必要。定期的な見守りを継続する。",
    "身体的虐待の疑いが否定できない。関係機関と情報共有のうえ対応を検討。",
    "保護者の養育負担が大きい。子育て支援サービスの利用を勧める。",
];
const PLANS: &[&str] = &[
    "月1回の家庭訪問と保育所での見守り。次回ケース会議で再評価。",
    "一時保護の要否を検討。保護者との面接を継続。",
    "要保護児童対策地域協議会の個別ケース検討会議で支援方針を共有。",
];

/// Builds one synthetic record for an owner, the child living in `child.lgcode`.
pub fn synthetic_body(
    rng: &mut StdRng,
    child: &SyntheticChild,
    case_no: &str,
    today: NaiveDate,
) -> RecordBody {
    let pick = |rng: &mut StdRng, xs: &[&str]| xs[rng.gen_range(0..xs.len())].to_string();
    let age = today.years_since(child.birth_date).unwrap_or(0);
    let facility = match age {
        0..=2 => FacilityType::Nursery,
        3..=5 => [
            FacilityType::Nursery,
            FacilityType::Kindergarten,
            FacilityType::CertifiedCenter,
        ][rng.gen_range(0..3)],
        6..=11 => FacilityType::Elementary,
        12..=14 => FacilityType::JuniorHigh,
        _ => FacilityType::HighSchool,
    };
    let consultation = [
        ConsultationType::AbusePsychological,
        ConsultationType::AbusePsychological,
        ConsultationType::AbusePhysical,
        ConsultationType::AbuseNeglect,
        ConsultationType::AbuseSexual,
        ConsultationType::ProtectionOther,
        ConsultationType::Upbringing,
        ConsultationType::Delinquency,
    ][rng.gen_range(0..8)];
    let level = [
        RiskLevel::Low,
        RiskLevel::Medium,
        RiskLevel::Medium,
        RiskLevel::High,
        RiskLevel::Critical,
    ][rng.gen_range(0..5)];
    let opened = today - Duration::days(rng.gen_range(1..700));
    RecordBody {
        core: Core {
            child_name: name(&child.name),
            sex: Some(child.sex),
            birth_date: Some(BirthDate {
                date: child.birth_date,
                estimated: child.birth_date_estimated,
            }),
            address: Address {
                municipality_code: child.lgcode.clone(),
                postal_code: child.postal_code.clone(),
                street: child.street.clone(),
            },
            guardians: child
                .guardians
                .iter()
                .map(|(n, r)| Guardian {
                    name: name(n),
                    relationship: Some(*r),
                })
                .collect(),
        },
        family: Family {
            guardian_workplace: if rng.gen_bool(0.6) {
                "（架空）株式会社つなぐ商事".into()
            } else {
                String::new()
            },
            household: child
                .guardians
                .iter()
                .map(|(n, r)| HouseholdMember {
                    name: n.display(),
                    relationship: Some(*r),
                    birth_year: None,
                    cohabiting: true,
                    note: String::new(),
                })
                .collect(),
            schooling: Schooling {
                facility_type: Some(facility),
                facility_name: format!("（架空）第{}{}", rng.gen_range(1..9), facility.label_ja()),
            },
            upbringing: "主に母親が養育。祖父母の支援は少ない。".into(),
            welfare_services: if rng.gen_bool(0.3) {
                "子育て短期支援事業を利用".into()
            } else {
                String::new()
            },
        },
        casework: Casework {
            interview: pick(rng, INTERVIEW),
            investigation: "近隣及び関係機関への調査を実施。".into(),
            findings: pick(rng, FINDINGS),
            support_plan: pick(rng, PLANS),
            progress: vec![ProgressEntry::new(opened, "通告を受理し、安全確認を実施。")],
            risk: Some(Risk {
                level,
                urgent: level == RiskLevel::Critical,
            }),
            next_review: Some(today + Duration::days(rng.gen_range(-10..90))),
            attachments: Vec::new(),
        },
        admin: AdminInput {
            case_number: case_no.into(),
            status: Some(if rng.gen_bool(0.85) {
                tsunagu_record::CaseStatus::Open
            } else {
                tsunagu_record::CaseStatus::Closed
            }),
            consultation_type: Some(consultation),
            intake_reports: vec![IntakeReport {
                received_on: opened,
                source: ["近隣住民", "学校", "警察", "保育所", "医療機関"][rng.gen_range(0..5)]
                    .into(),
                summary: "泣き声通告。".into(),
            }],
            serious_case: rng.gen_bool(0.03),
            missing: rng.gen_bool(0.01),
        },
    }
}

trait Display {
    fn display(&self) -> String;
}

impl Display for SyntheticName {
    fn display(&self) -> String {
        format!("{}\u{3000}{}", self.family, self.given)
    }
}

/// A seeded write: the record as its owner would create it, with its audit entry.
pub fn seeded_write(
    owner: &Org,
    mut body: RecordBody,
    restrictions: Restrictions,
    at: i64,
) -> RecordWrite {
    let author = "データ移行（架空）";
    tsunagu_record::lists::stamp(
        None,
        &mut body,
        author,
        chrono::DateTime::from_timestamp_micros(at).unwrap_or_default(),
    );
    RecordWrite {
        pref_code: owner.pref_code,
        owner_org: owner.id.clone(),
        author: author.into(),
        at,
        columns: domain::columns(&body, &restrictions),
        body,
        restrictions,
        audit: AuditDraft {
            pref_code: owner.pref_code,
            at,
            actor_user: None,
            actor_org: owner.id.clone(),
            action: action::RECORD_SEEDED,
            record_id: None,
            detail: json!({ "version": 1 }),
        },
        notify: Vec::new(),
    }
}

fn restrictions_for(rng: &mut StdRng) -> Restrictions {
    let roll: f64 = rng.gen();
    if roll < 0.05 {
        Restrictions {
            groups: vec![],
            fields: vec![Field::CoreAddress],
            reason: "DV被害のため住所非開示".into(),
        }
    } else if roll < 0.08 {
        Restrictions {
            groups: vec![Group::Casework],
            fields: vec![],
            reason: "捜査中のため".into(),
        }
    } else {
        Restrictions::default()
    }
}

/// The child's address for a record of `owner`: the owner's own municipality, or one in the
/// centre's jurisdiction.
fn child_for(
    gen: &mut PeopleGenerator,
    rng: &mut StdRng,
    owner: &Org,
    dir: &[&Org],
    today: NaiveDate,
) -> SyntheticChild {
    let mut child = gen.child(Some(owner.pref_code as u8), today);
    match owner.kind {
        OrgKind::Municipality => child.lgcode = owner.lgcode.clone().unwrap_or(child.lgcode),
        OrgKind::Cgc => {
            let mine: Vec<&&Org> = dir
                .iter()
                .filter(|o| o.cgc_id.as_deref() == Some(owner.id.as_str()))
                .collect();
            if !mine.is_empty() {
                if let Some(l) = &mine[rng.gen_range(0..mine.len())].lgcode {
                    child.lgcode = l.clone();
                }
            }
        }
        _ => {}
    }
    child
}

/// Demo records: most owned by the demo centre and the municipalities of its jurisdiction, the
/// rest by the other demo organisations and anywhere in the country.
pub async fn seed_demo_records(
    store: &dyn Storage,
    dir: &OrgDirectory,
    count: usize,
    seed: u64,
    today: NaiveDate,
    at: i64,
) -> anyhow::Result<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut gen = PeopleGenerator::new(seed);
    let all: Vec<&Org> = {
        let mut v: Vec<&Org> = dir
            .iter()
            .filter(|o| matches!(o.kind, OrgKind::Cgc | OrgKind::Municipality))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    };
    let get = |id: &str| {
        dir.get(id)
            .ok_or_else(|| anyhow::anyhow!("demo organisation {id} missing"))
    };
    let centre = get("cgc-13-01")?;
    let jurisdiction: Vec<&Org> = all
        .iter()
        .copied()
        .filter(|o| o.cgc_id.as_deref() == Some("cgc-13-01"))
        .collect();
    let other_muni = all
        .iter()
        .copied()
        .find(|o| o.cgc_id.as_deref() == Some("cgc-13-02"))
        .ok_or_else(|| anyhow::anyhow!("no municipality under cgc-13-02"))?;
    let osaka = get("cgc-27-01")?;
    let mut writes = Vec::with_capacity(count);
    for i in 0..count {
        let roll: f64 = rng.gen();
        let owner = if roll < 0.4 {
            centre
        } else if roll < 0.55 {
            jurisdiction[0]
        } else if roll < 0.7 {
            jurisdiction[rng.gen_range(0..jurisdiction.len())]
        } else if roll < 0.8 {
            other_muni
        } else if roll < 0.9 {
            osaka
        } else {
            all[rng.gen_range(0..all.len())]
        };
        let child = child_for(&mut gen, &mut rng, owner, &all, today);
        let body = synthetic_body(&mut rng, &child, &format!("R8-{:05}", i + 1), today);
        let restrictions = restrictions_for(&mut rng);
        writes.push(seeded_write(owner, body, restrictions, at));
    }
    store.seed_records(writes).await?;
    Ok(count)
}

/// Benchmark records spread over every centre and municipality of the country, in batches.
pub async fn seed_bulk_records(
    store: &dyn Storage,
    dir: &OrgDirectory,
    count: usize,
    seed: u64,
    today: NaiveDate,
    at: i64,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut gen = PeopleGenerator::new(seed);
    let mut all: Vec<&Org> = dir
        .iter()
        .filter(|o| matches!(o.kind, OrgKind::Cgc | OrgKind::Municipality))
        .collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let mut done = 0;
    while done < count {
        let n = (count - done).min(20_000);
        let mut writes = Vec::with_capacity(n);
        for i in 0..n {
            let owner = all[rng.gen_range(0..all.len())];
            let child = child_for(&mut gen, &mut rng, owner, &[], today);
            let body = synthetic_body(&mut rng, &child, &format!("B-{:07}", done + i + 1), today);
            writes.push(seeded_write(owner, body, restrictions_for(&mut rng), at));
        }
        store.seed_records(writes).await?;
        done += n;
        progress(done);
    }
    Ok(())
}

/// `count` synthetic records all owned by one organisation (children in its jurisdiction), in
/// batches: a caseworker's long case list, for the client's benchmarks.
pub async fn seed_org_records(
    store: &dyn Storage,
    dir: &OrgDirectory,
    owner_id: &str,
    count: usize,
    seed: u64,
    today: NaiveDate,
    at: i64,
) -> anyhow::Result<()> {
    let owner = dir
        .get(owner_id)
        .ok_or_else(|| anyhow::anyhow!("no organisation {owner_id}"))?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0e9);
    let mut gen = PeopleGenerator::new(seed ^ 0x0e9);
    let mut done = 0;
    while done < count {
        let n = (count - done).min(5_000);
        let mut writes = Vec::with_capacity(n);
        for i in 0..n {
            let child = child_for(&mut gen, &mut rng, owner, &[], today);
            let body = synthetic_body(&mut rng, &child, &format!("L-{:07}", done + i + 1), today);
            writes.push(seeded_write(owner, body, Restrictions::default(), at));
        }
        store.seed_records(writes).await?;
        done += n;
    }
    Ok(())
}

/// Demo accounts have a published password: they are never added to a database in use.
pub async fn ensure_empty(store: &dyn Storage) -> anyhow::Result<()> {
    let existing = store.counts().await?;
    anyhow::ensure!(
        existing.records == 0 && existing.users == 0,
        "this database already holds {} records and {} users: seed-demo only runs on an empty database",
        existing.records,
        existing.users
    );
    Ok(())
}

/// Everything `seed-demo` loads into an empty database: the synthetic master, the demo accounts
/// and `records` synthetic records. Refuses a database that already holds records or users, as
/// the demo accounts have a published password.
pub async fn seed_demo_database(
    store: &dyn Storage,
    cost: PasswordCost,
    records: usize,
    seed: u64,
    clock: &crate::clock::Clock,
    key: &crate::totp_key::TotpKey,
    progress: impl FnMut(usize),
) -> anyhow::Result<Vec<DemoAccount>> {
    anyhow::ensure!(records <= 1_000_000, "--records is at most 1,000,000");
    ensure_empty(store).await?;
    let m = master::synthetic();
    load_orgs(store, &m, clock.now()).await?;
    let accounts = create_demo_users(store, &m, cost, clock.now(), key).await?;
    let dir = OrgDirectory::from_rows(store.list_orgs().await?)?;
    if records <= 5_000 {
        seed_demo_records(store, &dir, records, seed, clock.today(), clock.now()).await?;
    } else {
        seed_bulk_records(
            store,
            &dir,
            records,
            seed,
            clock.today(),
            clock.now(),
            progress,
        )
        .await?;
    }
    Ok(accounts)
}
