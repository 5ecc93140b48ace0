//! Synthetic data for snapshot tests and benchmarks (names from the masterdata generator,
//! fixed seeds, all organisations 架空).

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::json;
use tsunagu_masterdata::PeopleGenerator;
use tsunagu_record::api::{CaseSummary, LoginResponse, RowMeta};
use tsunagu_record::codes::{CaseStatus, OrgKind, RiskLevel};
use tsunagu_record::schema::{BirthDate, PersonName, Risk};
use tsunagu_record::views::{OwnerContact, Visible, WithheldReason};

use crate::app::{App, Look};
use crate::keymap::Keymap;
use crate::theme::Theme;

pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).expect("date")
}

pub fn owner(i: usize) -> OwnerContact {
    if i % 3 == 0 {
        OwnerContact {
            org_id: "muni-131016".into(),
            org_kind: OrgKind::Municipality,
            name: "千代田区".into(),
            phone: "000-1310-1600".into(),
        }
    } else {
        OwnerContact {
            org_id: "cgc-13-01".into(),
            org_kind: OrgKind::Cgc,
            name: "（架空）東京都第1児童相談所".into(),
            phone: "000-1130-0001".into(),
        }
    }
}

pub fn cases(n: usize) -> Vec<CaseSummary> {
    let mut gen = PeopleGenerator::new(7);
    let munis = ["131016", "131024", "131032", "131041", "131059"];
    (0..n)
        .map(|i| {
            let c = gen.child(Some(13), today());
            CaseSummary {
                id: 13_000_000_000_000 + i as i64 + 1,
                tier: if i % 3 == 0 {
                    "partner".into()
                } else {
                    "owner".into()
                },
                owner: owner(i),
                child_name: PersonName {
                    family: c.name.family,
                    given: c.name.given,
                    family_kana: Some(c.name.family_kana),
                    given_kana: Some(c.name.given_kana),
                },
                sex: Some(c.sex),
                birth_date: Some(BirthDate {
                    date: c.birth_date,
                    estimated: false,
                }),
                municipality_code: if i % 7 == 3 {
                    Visible::Withheld {
                        reason: WithheldReason::OwnerRestriction,
                    }
                } else {
                    Visible::Shown(munis[i % munis.len()].to_string())
                },
                case_number: Visible::Shown(format!("R8-{:05}", i + 1)),
                status: Visible::Shown(if i % 5 == 4 {
                    CaseStatus::Closed
                } else {
                    CaseStatus::Open
                }),
                risk: Visible::Shown(Some(Risk {
                    level: RiskLevel::ALL[i % 4],
                    urgent: i % 4 == 3,
                })),
                next_review: Visible::Shown(NaiveDate::from_ymd_opt(2026, 12, 1 + (i % 28) as u32)),
                meta: Visible::Shown(RowMeta {
                    version: 1,
                    updated_at: Utc
                        .with_ymd_and_hms(2026, 11, 25, 2, 0, 0)
                        .single()
                        .expect("time"),
                }),
            }
        })
        .collect()
}

/// 23:00 in Japan on [`today`]: a report at night.
pub fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap()
}

pub fn app() -> App {
    let mut app = App::new(
        Keymap::builtin("default").expect("keymap"),
        Theme::builtin("default"),
        Look::for_terminal(false),
        "http://127.0.0.1:8080".into(),
        today(),
    );
    app.fixed_now = Some(now());
    app
}

/// The login answer of the demo caseworker of （架空）東京都第1児童相談所.
pub fn login_response() -> LoginResponse {
    serde_json::from_value(json!({
        "token": "t0k3n", "expires_at": "2026-11-25T23:00:00Z", "idle_timeout_secs": 1800,
        "me": { "user_id": 1, "login": "demo-cgc", "display_name": "児相 職員A（架空）", "role": "staff",
                "org": { "id": "cgc-13-01", "kind": "cgc", "name": "（架空）東京都第1児童相談所", "pref_code": 13, "phone": "000-1130-0001" } }
    }))
    .expect("login json")
}
