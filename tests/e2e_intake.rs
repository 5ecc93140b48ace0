//! End to end, workflows 1 and 2 of system.md in the real client against a real server: a phone
//! report at night from intake to a new record; a second report attached to the existing record;
//! two clients appending to the progress log and editing different fields at once, both kept; a
//! same-field conflict decided per field; a partner reading a long finding in full.

mod support;

use support::*;
use tsunagu_record::api::{CaseList, LoginRequest, LoginResponse, UpdateRecord};
use tsunagu_record::intake::IntakeList;
use tsunagu_record::{RecordBody, RecordView};

const CTRL_T: &str = "\x14";
const CTRL_P: &str = "\x10";
const UP: &str = "\x1b[A";
const RIGHT: &str = "\x1b[C";
const END: &str = "\x1bOF";
const F7: &str = "\x1b[18~";
const F8: &str = "\x1b[19~";
const F11: &str = "\x1b[23~";
const F5: &str = "\x1b[15~";

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    /// Logs in over the API with the code `ahead` steps on (each code is accepted once).
    async fn login(base: &str, login: &str, ahead: u64) -> Api {
        let http = reqwest::Client::new();
        let r: LoginResponse = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&LoginRequest {
                login: login.into(),
                password: tsunagu_server::seed::DEMO_PASSWORD.into(),
                otp: otp(login, ahead),
            })
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api {
            base: base.to_string(),
            token: r.token,
            http,
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let r = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn record(&self, id: i64) -> RecordView {
        self.get(&format!("/records/{id}")).await
    }

    /// Writes a record as its owner from the version read.
    async fn update(&self, id: i64, change: impl FnOnce(&mut RecordBody)) {
        let RecordView::Owner(full) = self.record(id).await else {
            panic!("not the owner of {id}")
        };
        let mut body = RecordBody {
            core: full.core,
            family: full.family,
            casework: full.casework,
            admin: full.admin,
        };
        change(&mut body);
        let r = self
            .http
            .put(format!("{}/api/v1/records/{id}", self.base))
            .bearer_auth(&self.token)
            .json(&UpdateRecord {
                version: full.meta.version,
                record: body,
                resolve: Default::default(),
            })
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

fn owner_body(v: RecordView) -> RecordBody {
    let RecordView::Owner(full) = v else {
        panic!("not the owner's view")
    };
    RecordBody {
        core: full.core,
        family: full.family,
        casework: full.casework,
        admin: full.admin,
    }
}

/// demo-cgc's records whose child lives in 千代田区, demo-muni's municipality (so demo-muni is
/// a partner), most recently updated first.
async fn chiyoda_records(api: &Api) -> Vec<tsunagu_record::api::CaseSummary> {
    let list: CaseList = api.get("/records?limit=100&sort=updated_desc").await;
    list.items
        .into_iter()
        .filter(|c| {
            c.tier == "owner" && c.municipality_code.shown().map(String::as_str) == Some("131016")
        })
        .collect()
}

fn cgc_client(url: &str, ahead: u64) -> Client {
    staff_client(url, "demo-cgc", ahead)
}

/// A client logged in as `login` (a code is accepted once per account: `ahead` steps on from
/// the codes used before).
fn staff_client(url: &str, login: &str, ahead: u64) -> Client {
    let mut c = spawn_client(&["--server", url], 100, 30);
    c.login(
        login,
        tsunagu_server::seed::DEMO_PASSWORD,
        &otp(login, ahead),
    );
    c.wait_for("ケース一覧");
    c
}

/// Moves the record's cursor to the field whose label holds `label` ("/" and its name).
fn goto(c: &mut Client, label: &str) {
    c.send("/");
    c.wait_for("項目へ移動:");
    c.send(label);
    c.send(ENTER);
    c.send(ESC);
    c.wait_until("the prompt to close", |s| !s.contains("項目へ移動:"));
}

fn intake_id(screen: &str) -> i64 {
    let at = screen.find("通告受理  No.").expect("the intake's number") + "通告受理  No.".len();
    screen[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn a_phone_report_at_night_becomes_a_new_record() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(start_server(60));
    let url = server.running.url();
    let child = tsunagu_masterdata::PeopleGenerator::new(0x16_0001).name();
    let mut cgc = cgc_client(&url, 0);

    // One key from the case list; typing goes into the content at once.
    cgc.send(CTRL_T);
    cgc.wait_for("通告受理（未保存）");
    cgc.send("夜中に子どもの泣き声が続いていると近所の住民から電話。");
    cgc.send(TAB);
    cgc.send(DOWN);
    cgc.send(ENTER);
    cgc.send(&child.family);
    cgc.send(TAB);
    cgc.send(&child.given);
    cgc.send(TAB);
    cgc.send(ESC);
    // 性別 (two rows below the reading): 未選択 → 不明 → 男 → 女.
    for _ in 0..2 {
        cgc.send(DOWN);
    }
    for _ in 0..3 {
        cgc.send(RIGHT);
    }
    cgc.send(DOWN);
    cgc.send(ENTER);
    cgc.send("R1.5.20");
    cgc.send(ENTER);
    cgc.wait_for("令和元年5月20日");
    cgc.send(CTRL_S);
    let s = cgc.wait_for("を受理しました");
    let iid = intake_id(&s);
    cgc.wait_for("安全確認（48時間以内）: 確認待ち");
    cgc.wait_until("the lookup", |s| {
        s.contains("全国照会: ") && !s.contains("照会しています")
    });

    // A new record prefilled from the intake; the rest of the national format by hand.
    cgc.send(F11);
    cgc.wait_for("新しい記録");
    cgc.wait_for(&child.given);
    goto(&mut cgc, "住所（市区町村）");
    cgc.send(ENTER);
    cgc.send("ちよだく");
    cgc.wait_for("131016（東京都千代田区）");
    cgc.send(ENTER);
    goto(&mut cgc, "町名・番地");
    cgc.send(ENTER);
    cgc.send("架空町1-2-3");
    cgc.send(ENTER);
    goto(&mut cgc, "保護者1 氏名（氏）");
    cgc.send(ENTER);
    cgc.send(&child.family);
    cgc.send(ENTER);
    goto(&mut cgc, "保護者1 続柄");
    cgc.send(RIGHT);
    goto(&mut cgc, "ケース番号");
    cgc.send(ENTER);
    cgc.send("R8-E2E0001");
    cgc.send(ENTER);
    goto(&mut cgc, "相談種別");
    cgc.send(RIGHT);
    cgc.send(CTRL_S);
    let s = cgc.wait_for("を作成しました（通告と紐づけました）");
    let at = s.find("通告から記録 ").unwrap() + "通告から記録 ".len();
    let rid: i64 = s[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    // The record shows the safety clock its intake started.
    cgc.wait_for(&format!("記録 {rid}"));
    cgc.wait_for(&format!("安全確認: 通告 No.{iid} 期限まで"));

    let api = rt.block_on(Api::login(&url, "demo-cgc", 1));
    let body = owner_body(rt.block_on(api.record(rid)));
    assert_eq!(body.core.child_name.given, child.given);
    assert_eq!(body.core.address.municipality_code, "131016");
    assert_eq!(body.admin.case_number, "R8-E2E0001");
    assert!(body.admin.intake_reports[0].summary.contains("泣き声"));
    let linked: IntakeList = rt.block_on(api.get(&format!("/records/{rid}/intakes")));
    assert_eq!(linked.items.len(), 1);
    assert_eq!(linked.items[0].id, iid);

    cgc.send(F10);
    cgc.wait_exit();
    rt.block_on(server.running.stop()).unwrap();
}

#[test]
fn a_second_report_is_attached_to_the_existing_record() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(start_server(60));
    let url = server.running.url();
    let api = rt.block_on(Api::login(&url, "demo-cgc", 0));
    let target = rt.block_on(chiyoda_records(&api)).remove(0);
    let birth = target.birth_date.expect("a birth date").date;
    let mut cgc = cgc_client(&url, 1);

    cgc.send(CTRL_T);
    cgc.wait_for("通告受理（未保存）");
    cgc.send("学校から: 本児が昨日から登校していない。");
    cgc.send(TAB);
    cgc.send(DOWN);
    cgc.send(ENTER);
    cgc.send(&target.child_name.family);
    cgc.send(TAB);
    cgc.send(&target.child_name.given);
    cgc.send(TAB);
    cgc.send(ESC);
    // From the reading (フリガナ（氏）): フリガナ（名）, 性別, 生年月日.
    for _ in 0..3 {
        cgc.send(DOWN);
    }
    cgc.send(ENTER);
    cgc.send(&birth.format("%Y-%m-%d").to_string());
    cgc.send(ENTER);
    cgc.wait_for(&tsunagu_record::era::format_era(birth));
    cgc.send(CTRL_S);
    let s = cgc.wait_for("を受理しました");
    let iid = intake_id(&s);
    cgc.wait_until("the lookup's hits", |s| {
        s.contains("全国照会: ") && s.contains("自機関の記録")
    });
    cgc.send(F7);
    cgc.send(F8);
    cgc.wait_for(&format!("記録 {} に追加しました", target.id));

    let linked: IntakeList = rt.block_on(api.get(&format!("/records/{}/intakes", target.id)));
    assert!(linked.items.iter().any(|i| i.id == iid), "{linked:?}");
    cgc.send(F10);
    cgc.wait_exit();
    rt.block_on(server.running.stop()).unwrap();
}

#[test]
fn two_appends_and_two_fields_at_once_are_all_kept_and_a_same_field_conflict_is_decided_per_field()
{
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(start_server(60));
    let url = server.running.url();
    let api = rt.block_on(Api::login(&url, "demo-cgc", 0));
    let target = rt.block_on(chiyoda_records(&api)).remove(0);
    let query = format!("{}{}", target.child_name.family, target.child_name.given);
    let mut a = cgc_client(&url, 1);
    // Another member of the same centre (its administrator, who may write records too).
    let mut b = staff_client(&url, "demo-admin", 0);
    a.open_by_search(&query, target.id);
    b.open_by_search(&query, target.id);

    // Both append to the progress log; each also changes a field the other does not.
    a.send(CTRL_P);
    a.send("職員Aの経過: 家庭訪問。");
    a.send(TAB);
    b.send(CTRL_P);
    b.send("職員Bの経過: 学校へ電話。");
    b.send(TAB);
    goto(&mut a, "支援方針");
    a.send(ENTER);
    a.send("Aの支援方針");
    a.send(TAB);
    goto(&mut b, "養育状況");
    b.send(ENTER);
    b.send("Bの養育状況");
    // Tab opens the next field (福祉サービス等利用状況); Esc closes it unchanged.
    b.send(TAB);
    b.send(ESC);
    a.send(CTRL_S);
    a.wait_for("保存しました");
    b.send(CTRL_S);
    b.wait_for("保存しました");
    let body = owner_body(rt.block_on(api.record(target.id)));
    let texts: Vec<&str> = body
        .casework
        .progress
        .iter()
        .map(|p| p.text.as_str())
        .collect();
    assert!(texts.contains(&"職員Aの経過: 家庭訪問。"), "{texts:?}");
    assert!(texts.contains(&"職員Bの経過: 学校へ電話。"), "{texts:?}");
    assert!(body.casework.support_plan.ends_with("Aの支援方針"));
    assert!(body.family.upbringing.ends_with("Bの養育状況"));

    // The same field both ways: B's conflict view shows both in full; B keeps its own for
    // that field, and A's other change of the same save stays.
    let RecordView::Owner(now) = rt.block_on(api.record(target.id)) else {
        panic!("owner")
    };
    for c in [&mut a, &mut b] {
        c.send(F5);
        c.wait_for(&format!("版{}", now.meta.version));
    }
    for (c, date) in [(&mut a, "R9.2.1"), (&mut b, "R9.3.1")] {
        goto(c, "次回見直し日");
        c.send(ENTER);
        for _ in 0..20 {
            c.send(BACKSPACE);
        }
        c.send(date);
        c.send(ENTER);
    }
    a.send(CTRL_P);
    a.send("職員Aの二つ目の経過。");
    a.send(TAB);
    a.send(CTRL_S);
    a.wait_for("保存しました");
    b.send(CTRL_S);
    let s = b.wait_for("保存の競合");
    assert!(
        s.contains("【自分】") && s.contains("【相手】") && s.contains("【共通の元】"),
        "{s}"
    );
    assert!(
        s.contains("令和9年2月1日") && s.contains("令和9年3月1日"),
        "{s}"
    );
    b.send("1");
    b.send(CTRL_S);
    b.wait_for("保存しました");
    let body = owner_body(rt.block_on(api.record(target.id)));
    assert_eq!(
        body.casework.next_review.map(|d| d.to_string()).as_deref(),
        Some("2027-03-01"),
        "B kept its own date"
    );
    assert!(
        body.casework
            .progress
            .iter()
            .any(|p| p.text == "職員Aの二つ目の経過。"),
        "A's other change of the same save stays"
    );

    a.send(F10);
    b.send(F10);
    a.wait_exit();
    b.wait_exit();
    rt.block_on(server.running.stop()).unwrap();
}

#[test]
fn a_partner_reads_a_long_finding_in_full() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(start_server(60));
    let url = server.running.url();
    let cgc = rt.block_on(Api::login(&url, "demo-cgc", 0));
    let muni_api = rt.block_on(Api::login(&url, "demo-muni", 0));
    // A record whose casework the municipality may read (the owner restricted nothing there).
    let mut target = None;
    for c in rt.block_on(chiyoda_records(&cgc)) {
        let v: serde_json::Value = rt.block_on(muni_api.get(&format!("/records/{}", c.id)));
        if v["tier"] == "partner" && v["casework"].get("shown").is_some() {
            target = Some(c);
            break;
        }
    }
    let target = target.expect("a record whose casework the partner sees");
    let long: String = (1..=40)
        .map(|i| format!("{i}行目: 面接で本児が語った内容の記録。"))
        .collect::<Vec<_>>()
        .join("\n");
    rt.block_on(cgc.update(target.id, |b| b.casework.findings = long.clone()));

    let mut muni = spawn_client(&["--server", &url], 100, 30);
    muni.login(
        "demo-muni",
        tsunagu_server::seed::DEMO_PASSWORD,
        &otp("demo-muni", 1),
    );
    muni.wait_for("ケース一覧");
    muni.open_by_search(
        &format!("{}{}", target.child_name.family, target.child_name.given),
        target.id,
    );
    muni.wait_for("閲覧区分: 連携機関");
    goto(&mut muni, "所見");
    muni.send(ENTER);
    muni.wait_for("全文: 所見");
    muni.send(END);
    muni.wait_for("40行目: 面接で本児が語った内容の記録。");
    muni.send(ESC);
    muni.send(UP);
    muni.send(F10);
    muni.wait_exit();
    rt.block_on(server.running.stop()).unwrap();
}
