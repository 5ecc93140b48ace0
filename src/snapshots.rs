//! Every screen drawn with Japanese data into a TestBackend, at 80×24 and at a wide size, and
//! compared with the committed snapshots (`src/snapshots/*.snap`). State-change tests too.

use insta::assert_snapshot;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;
use tsunagu_record::api::{Notification, NotificationKind, SearchResults};
use tsunagu_record::RecordView;

use crate::app::{App, Conn, Overlay, Screen};
use crate::fixtures;
use crate::keymap::Key;
use crate::screens::record::RecordState;
use crate::tasks::{CmdKind, Reply, ReplyKind};

const SIZES: [(u16, u16); 2] = [(80, 24), (132, 40)];

pub(crate) fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| crate::ui::draw(f, app)).expect("draw");
    if app.look.ascii {
        assert_no_ambiguous_width(t.backend().buffer());
    }
    plain(t.backend().buffer())
}

/// In the default look no cell may hold a character whose width in a CJK terminal (Tera
/// Term's Japanese set-up draws East Asian ambiguous characters two cells wide) differs from
/// its normal width: the row would overflow. Every screen drawn by these tests passes here.
fn assert_no_ambiguous_width(buf: &ratatui::buffer::Buffer) {
    use unicode_width::UnicodeWidthChar;
    let mut found = Vec::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            for c in buf[(x, y)].symbol().chars() {
                if c.width() != c.width_cjk() {
                    found.push(format!("{c:?} (U+{:04X}) at {x},{y}", c as u32));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "ambiguous-width characters drawn: {found:?}\n{}",
        plain(buf)
    );
}

/// The screen as the user reads it: one line per row, a wide character once (its second cell
/// is the terminal's, not content).
fn plain(buf: &ratatui::buffer::Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut skip = 0;
        for x in 0..buf.area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            out.push_str(sym);
            skip = crate::text::width(sym).saturating_sub(1);
        }
        out.push_str("|\n");
    }
    out
}

pub(crate) fn snap(name: &str, app: &mut App) {
    for (w, h) in SIZES {
        assert_snapshot!(format!("{name}_{w}x{h}"), render(app, w, h));
    }
}

pub(crate) fn logged_in() -> App {
    let mut app = fixtures::app();
    app.request("login", CmdKind::Notifications);
    let id = app.outbox.last().expect("cmd").id;
    app.on_reply(Reply {
        id,
        kind: ReplyKind::LoggedIn(Ok(fixtures::login_response())),
    });
    app.outbox.clear();
    app.cases.items = fixtures::cases(60);
    app.cases.next_cursor = Some("c".into());
    app.cases.loading = false;
    app.notes.stream_up = true;
    app.message = None;
    app
}

pub(crate) fn full_record() -> serde_json::Value {
    json!({
        "tier": "owner", "id": 13000000000240_i64,
        "owner": { "org_id": "cgc-13-01", "org_kind": "cgc", "name": "（架空）東京都第1児童相談所", "phone": "000-1130-0001" },
        "meta": { "version": 3, "created_at": "2026-11-20T01:00:00Z", "created_by": "児相 職員A（架空）",
                  "updated_at": "2026-11-25T02:15:04Z", "updated_by": "児相 職員A（架空）" },
        "core": { "child_name": { "family": "架空", "given": "花子", "family_kana": "カクウ", "given_kana": "ハナコ" },
                  "sex": 2, "birth_date": { "date": "2019-04-01", "estimated": false },
                  "address": { "municipality_code": "131016", "postal_code": "000-0001", "street": "架空町1-2-3 架空ハイツ101号室" },
                  "guardians": [ { "name": { "family": "架空", "given": "太郎" }, "relationship": "father" } ] },
        "family": { "guardian_workplace": "（架空）株式会社つなぐ商事", "household": [ { "name": "架空 太郎", "relationship": "father", "birth_year": 1988, "cohabiting": true, "note": "" } ],
                    "schooling": { "facility_type": "nursery", "facility_name": "（架空）第1保育所" },
                    "upbringing": "主に父親が養育。祖父母の支援は少ない。", "welfare_services": "" },
        "casework": { "interview": "保育所にて本児と面接。表情は明るいが、腕のあざについて説明が一貫しない。", "investigation": "", "findings": "",
                      "support_plan": "週1回の家庭訪問を継続する。", "progress": [ { "date": "2026-04-12", "text": "通告を受理し、安全確認を実施。" } ],
                      "risk": { "level": "high", "urgent": false }, "next_review": "2026-12-01", "attachments": [] },
        "admin": { "case_number": "R8-90001", "status": "open", "consultation_type": "abuse_neglect",
                   "intake_reports": [ { "received_on": "2026-04-12", "source": "近隣住民", "summary": "夜間に泣き声が続くとの通告。" } ],
                   "serious_case": false, "missing": false },
        "restrictions": { "groups": [], "fields": [], "reason": "" }
    })
}

pub(crate) fn partner_record() -> RecordView {
    serde_json::from_value(json!({
        "tier": "partner", "id": 13000000000241_i64,
        "owner": { "org_id": "cgc-13-01", "org_kind": "cgc", "name": "（架空）東京都第1児童相談所", "phone": "000-1130-0001" },
        "core": { "child_name": { "family": "架空", "given": "一郎", "family_kana": "カクウ", "given_kana": "イチロウ" },
                  "sex": 1, "birth_date": { "date": "2016-08-15", "estimated": true },
                  "address": { "withheld": { "reason": "owner_restriction" } },
                  "guardians": [ { "name": { "family": "架空", "given": "花代" }, "relationship": "mother" } ] },
        "family": { "shown": { "guardian_workplace": { "withheld": { "reason": "owner_restriction" } }, "household": { "shown": [] },
                               "schooling": { "shown": { "facility_type": "elementary", "facility_name": "（架空）第2小学校" } },
                               "upbringing": { "shown": "母子家庭。" }, "welfare_services": { "shown": "" } } },
        "casework": { "withheld": { "reason": "owner_restriction" } },
        "admin": { "withheld": { "reason": "owner_restriction" } }
    }))
    .expect("partner json")
}

pub(crate) fn with_record(view: RecordView) -> App {
    let mut app = logged_in();
    app.record = Some(RecordState::from_view(&view));
    app.screen = Screen::Record;
    app
}

pub(crate) fn key(app: &mut App, k: &str) {
    let key = Key::parse(k).expect("key");
    app.on_key(crossterm::event::KeyEvent::new(key.code, key.mods));
}

pub(crate) fn type_text(app: &mut App, s: &str) {
    for c in s.chars() {
        app.on_key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char(c),
            crossterm::event::KeyModifiers::NONE,
        ));
    }
}

#[test]
fn login_screen() {
    let mut app = fixtures::app();
    snap("login", &mut app);
    app.login.error = Some("失敗が続いたため、このアカウントは一時的にロックされています。しばらく待つか管理者に連絡してください".into());
    snap("login_locked", &mut app);
}

#[test]
fn case_list_screen() {
    let mut app = logged_in();
    snap("case_list", &mut app);
}

#[test]
fn record_screen_owner_and_partner() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    snap("record_owner", &mut app);
    let mut app = with_record(partner_record());
    snap("record_partner_withheld", &mut app);
}

#[test]
fn record_validation_on_leaving_a_field_and_on_save() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    // Second field: the given name. Empty it and leave the field.
    key(&mut app, "Down");
    key(&mut app, "Enter");
    assert_eq!(app.section(), "record_edit");
    for _ in 0..4 {
        key(&mut app, "Backspace");
    }
    key(&mut app, "Enter");
    let r = app.record.as_ref().unwrap();
    assert_eq!(
        r.errors.get("core.child_name.given").map(String::as_str),
        Some("子どもの氏名（名）は必須です")
    );
    assert!(r.unsaved());
    // Saving refuses, lists the problem and sends nothing.
    key(&mut app, "Ctrl+s");
    assert!(app.outbox.is_empty());
    assert_eq!(app.record.as_ref().unwrap().summary.len(), 1);
    snap("record_validation", &mut app);
    // A date field takes an era date; a bad one keeps the editor open with a message.
    let r = app.record.as_mut().unwrap();
    at(r, "core.birth_date");
    key(&mut app, "Enter");
    for _ in 0..12 {
        key(&mut app, "Backspace");
    }
    type_text(&mut app, "R2.2.30");
    key(&mut app, "Enter");
    assert_eq!(app.section(), "record_edit");
    assert!(app.record.as_ref().unwrap().errors["core.birth_date"].contains("日付"));
    key(&mut app, "Ctrl+s");
}

/// Puts the record's cursor on the row of `path`.
pub(crate) fn at(r: &mut crate::screens::record::RecordState, path: &str) {
    r.cursor = r
        .rows()
        .iter()
        .position(|row| row.path == path)
        .unwrap_or_else(|| panic!("no row {path}"));
}

#[test]
fn save_sends_the_version_and_a_conflict_shows_both() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    let r = app.record.as_mut().unwrap();
    at(r, "casework.support_plan");
    key(&mut app, "Enter");
    type_text(&mut app, "　月2回に増やす。");
    key(&mut app, "Tab");
    key(&mut app, "Ctrl+s");
    let cmd = app.outbox.pop().expect("save sent");
    match &cmd.kind {
        CmdKind::Save { id, update } => {
            assert_eq!(*id, 13000000000240);
            assert_eq!(update.version, 3);
            assert!(update
                .record
                .casework
                .support_plan
                .ends_with("月2回に増やす。"));
        }
        other => panic!("{other:?}"),
    }
    // Someone else saved version 4 meanwhile.
    let mut current = full_record();
    current["meta"]["version"] = json!(4);
    current["meta"]["updated_by"] = json!("児相 職員G（架空）");
    current["casework"]["support_plan"] = json!("一時保護を検討する。");
    let mut body: tsunagu_record::api::ApiError =
        serde_json::from_value(json!({"code":"version_conflict","message":"競合"})).unwrap();
    let cur: RecordView = serde_json::from_value(current).unwrap();
    let RecordView::Owner(full) = cur else {
        unreachable!()
    };
    body.current = Some(Box::new(full));
    app.on_reply(Reply {
        id: cmd.id,
        kind: ReplyKind::Saved(Err(crate::api::ApiErr::Status {
            status: 409,
            body: Box::new(body),
        })),
    });
    assert_eq!(app.section(), "conflict");
    snap("record_conflict", &mut app);
    // Keep mine: saved again on top of version 4.
    key(&mut app, "1");
    match &app.outbox.last().expect("resave").kind {
        CmdKind::Save { update, .. } => assert_eq!(update.version, 4),
        other => panic!("{other:?}"),
    }
}

/// A 409 naming the fields changed both ways: either choice sends the same save again, from
/// the same version, with the decision for those fields, so the server keeps everything else
/// of both sides (it merged them already).
#[test]
fn a_named_conflict_is_decided_per_field_and_loses_nothing_else() {
    for (k, want) in [
        ("1", tsunagu_record::merge::Resolution::Mine),
        ("2", tsunagu_record::merge::Resolution::Theirs),
    ] {
        let mut app = with_record(serde_json::from_value(full_record()).unwrap());
        let r = app.record.as_mut().unwrap();
        at(r, "casework.support_plan");
        key(&mut app, "Enter");
        type_text(&mut app, "　月2回に増やす。");
        key(&mut app, "Tab");
        key(&mut app, "Ctrl+s");
        let cmd = app.outbox.pop().expect("save sent");
        let mut current = full_record();
        current["meta"]["version"] = json!(4);
        current["casework"]["support_plan"] = json!("一時保護を検討する。");
        let cur: RecordView = serde_json::from_value(current).unwrap();
        let RecordView::Owner(full) = cur else {
            unreachable!()
        };
        let mut body: tsunagu_record::api::ApiError = serde_json::from_value(json!({
            "code": "version_conflict", "message": "競合",
            "conflicts": [{ "field": "casework.support_plan", "base": "元", "mine": "私", "theirs": "一時保護を検討する。" }]
        }))
        .unwrap();
        body.current = Some(Box::new(full));
        app.on_reply(Reply {
            id: cmd.id,
            kind: ReplyKind::Saved(Err(crate::api::ApiErr::Status {
                status: 409,
                body: Box::new(body),
            })),
        });
        if k == "1" {
            snap("record_conflict_named", &mut app);
        }
        key(&mut app, k);
        assert_eq!(app.section(), "conflict", "a choice alone sends nothing");
        key(&mut app, "Ctrl+s");
        match &app.outbox.last().expect("resave").kind {
            CmdKind::Save { update, .. } => {
                assert_eq!(
                    update.version, 3,
                    "from the version edited, not over theirs"
                );
                assert!(update
                    .record
                    .casework
                    .support_plan
                    .ends_with("月2回に増やす。"));
                assert_eq!(
                    update.resolve.get("casework.support_plan"),
                    Some(&want),
                    "{k}"
                );
                assert_eq!(update.resolve.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_dropped_connection_keeps_the_draft_and_retries() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    app.record.as_mut().unwrap().draft.family.upbringing = "追記".into();
    app.save();
    let cmd = app.outbox.pop().unwrap();
    app.on_reply(Reply {
        id: cmd.id,
        kind: ReplyKind::Saved(Err(crate::api::ApiErr::Network(
            "サーバーに接続できません".into(),
        ))),
    });
    assert!(matches!(app.conn, Conn::Offline(_)));
    assert!(app.save_retry_at.is_some());
    assert_eq!(app.record.as_ref().unwrap().draft.family.upbringing, "追記");
    // The session expired meanwhile: the login screen, the draft still in memory.
    app.on_timer(app.save_retry_at.unwrap());
    let cmd = app.outbox.pop().unwrap();
    let expired = crate::api::ApiErr::Status {
        status: 401,
        body: Box::new(
            serde_json::from_value(json!({"code":"session_expired","message":"x"})).unwrap(),
        ),
    };
    app.on_reply(Reply {
        id: cmd.id,
        kind: ReplyKind::Saved(Err(expired)),
    });
    assert_eq!(app.screen, Screen::Login);
    assert!(app.token.is_none());
    snap("login_after_expiry", &mut app);
    // Logging in again as the same person saves the draft.
    app.outbox.clear();
    app.request("login", CmdKind::Notifications);
    let id = app.outbox.pop().unwrap().id;
    app.on_reply(Reply {
        id,
        kind: ReplyKind::LoggedIn(Ok(fixtures::login_response())),
    });
    assert_eq!(app.screen, Screen::Record);
    assert!(app.outbox.iter().any(|c| matches!(&c.kind, CmdKind::Save { update, .. } if update.record.family.upbringing == "追記")));
}

#[test]
fn stale_replies_are_dropped() {
    let mut app = logged_in();
    app.open_record(1);
    let first = app.outbox.pop().unwrap().id;
    app.open_record(2);
    let _second = app.outbox.pop().unwrap().id;
    let view: RecordView = serde_json::from_value(full_record()).unwrap();
    app.on_reply(Reply {
        id: first,
        kind: ReplyKind::Record(Ok(view)),
    });
    assert!(
        app.record.as_ref().unwrap().loading,
        "the answer for record 1 must not fill record 2"
    );
}

pub(crate) fn search_results() -> SearchResults {
    serde_json::from_value(json!({
        "groups": [
            { "score": 0.98, "hits": [
                { "record_id": 13000000000240_i64, "score": 0.98, "reasons": ["exact_name", "birth_date_exact"],
                  "child_name": { "family": "架空", "given": "花子", "family_kana": "カクウ", "given_kana": "ハナコ" },
                  "sex": 2, "birth_date": { "date": "2019-04-01", "estimated": false },
                  "guardians": [ { "family": "架空", "given": "太郎" } ],
                  "owner": { "org_id": "cgc-13-01", "org_kind": "cgc", "name": "（架空）東京都第1児童相談所", "phone": "000-1130-0001" },
                  "tier": "owner" },
                { "record_id": 27000000000011_i64, "score": 0.91, "reasons": ["same_reading"],
                  "child_name": { "family": "架空", "given": "華子", "family_kana": "カクウ", "given_kana": "ハナコ" },
                  "sex": 2, "birth_date": { "date": "2019-04-01", "estimated": false },
                  "guardians": [],
                  "owner": { "org_id": "cgc-27-01", "org_kind": "cgc", "name": "（架空）大阪府第1児童相談所", "phone": "000-2770-0001" },
                  "tier": "none" } ] } ],
        "total_hits": 2, "capped": false, "page": 1, "has_more": false, "address_withheld": true
    }))
    .unwrap()
}

#[test]
fn search_panel_debounces_and_shows_no_address() {
    let mut app = logged_in();
    key(&mut app, "F3");
    assert_eq!(app.overlay, Some(Overlay::Search));
    type_text(&mut app, "かくう");
    assert!(app.outbox.is_empty(), "no request while typing");
    let due = app.next_deadline().expect("debounce timer");
    app.on_timer(due);
    let cmd = app.outbox.pop().expect("search sent after the pause");
    match &cmd.kind {
        CmdKind::Search { query } => assert!(query.starts_with("q=%E3%81%8B"), "{query}"),
        other => panic!("{other:?}"),
    }
    app.on_reply(Reply {
        id: cmd.id,
        kind: ReplyKind::Search(Ok(search_results())),
    });
    let screen = render(&mut app, 80, 24);
    // (The wire type of a hit has no address field at all, so there is none to show; the
    // server-side leak scan checks that no address reaches the answer.)
    assert!(screen.contains("住所は検索結果に表示されません"));
    snap("search", &mut app);
    // A hit the tier does not allow is not opened; the owner's phone is given instead. (The
    // first Down goes from the fields into the results, the second to the second hit.)
    key(&mut app, "Down");
    key(&mut app, "Down");
    key(&mut app, "Enter");
    assert!(app.message.as_ref().unwrap().1.contains("000-2770-0001"));
}

/// The search panel open with `name` typed and the answer `results` shown.
fn searched(name: &str, birth: &str) -> App {
    let mut app = logged_in();
    key(&mut app, "F3");
    type_text(&mut app, name);
    if !birth.is_empty() {
        key(&mut app, "Tab");
        key(&mut app, "Tab");
        type_text(&mut app, birth);
        key(&mut app, "Tab");
        key(&mut app, "Tab");
    }
    key(&mut app, "Enter");
    let cmd = app.outbox.pop().expect("search sent at Enter");
    app.on_reply(Reply {
        id: cmd.id,
        kind: ReplyKind::Search(Ok(search_results())),
    });
    app
}

#[test]
fn birth_ranges_and_eras_are_sent_as_the_api_documents() {
    use crate::screens::search::birth_param;
    for (typed, sent) in [
        ("2008..2010", "2008..2010"),
        ("R2..R5", "2020..2023"),
        ("2008〜2010", "2008..2010"),
        ("H27.4.1", "2015-04-01"),
        ("平成27年4月1日..令和2年", "2015-04-01..2020"),
        ("2019", "2019"),
    ] {
        assert_eq!(birth_param(typed).as_deref(), Ok(sent), "{typed}");
    }
    for bad in ["..2010", "2008..", "あした"] {
        assert!(birth_param(bad).is_err(), "{bad}");
    }
    let mut app = logged_in();
    key(&mut app, "F3");
    type_text(&mut app, "かくう");
    key(&mut app, "Tab");
    key(&mut app, "Tab");
    type_text(&mut app, "R2..R5");
    key(&mut app, "Enter");
    match &app.outbox.pop().expect("sent").kind {
        CmdKind::Search { query } => assert!(query.contains("birth=2020..2023"), "{query}"),
        other => panic!("{other:?}"),
    }
    assert!(app.search.error.is_none());
}

#[test]
fn enter_in_a_field_searches_and_enter_on_a_result_opens_it() {
    let mut app = searched("かくう", "");
    // Typing more restarts the pause; Down then Enter opens the hit shown, not a new search.
    type_text(&mut app, "た");
    assert!(app.search.debounce_until.is_some());
    key(&mut app, "Down");
    key(&mut app, "Enter");
    let hit = app.search.hits()[0].record_id;
    assert!(
        app.outbox
            .iter()
            .any(|c| matches!(c.kind, CmdKind::Record { id } if id == hit)),
        "{:?}",
        app.outbox.iter().map(|c| &c.kind).collect::<Vec<_>>()
    );
    // Back in the field, Enter searches at once.
    let mut app = searched("かくう", "");
    type_text(&mut app, "た");
    key(&mut app, "Enter");
    assert!(matches!(
        app.outbox.last().map(|c| &c.kind),
        Some(CmdKind::Search { .. })
    ));
    // Up from the first result goes back to the fields.
    let mut app = searched("かくう", "");
    key(&mut app, "Down");
    assert!(app.search.in_results);
    key(&mut app, "Up");
    assert!(!app.search.in_results);
}

#[test]
fn a_later_success_clears_the_earlier_failure() {
    let mut app = logged_in();
    key(&mut app, "F3");
    type_text(&mut app, "山田");
    key(&mut app, "Enter");
    let cmd = app.outbox.pop().unwrap();
    app.on_reply(Reply {
        id: cmd.id,
        kind: ReplyKind::Search(Err(crate::api::ApiErr::Network(
            "サーバーに接続できません".into(),
        ))),
    });
    assert!(render(&mut app, 80, 24).contains("サーバーに接続できません"));
    type_text(&mut app, "花子");
    key(&mut app, "Enter");
    let cmd = app.outbox.pop().unwrap();
    app.on_reply(Reply {
        id: cmd.id,
        kind: ReplyKind::Search(Ok(search_results())),
    });
    let s = render(&mut app, 80, 24);
    assert!(!s.contains("サーバーに接続できません"), "{s}");
    assert!(app.search.error.is_none() && app.message.is_none());
}

#[test]
fn a_match_within_a_year_is_not_labelled_as_the_birth_date() {
    let with_year = render(&mut searched("かくう", "2018"), 132, 40);
    assert!(with_year.contains("生年月日が範囲内"), "{with_year}");
    assert!(!with_year.contains("生年月日一致"), "{with_year}");
    let with_day = render(&mut searched("かくう", "2018-05-05"), 132, 40);
    assert!(with_day.contains("生年月日一致"), "{with_day}");
}

#[test]
fn the_ministry_is_told_it_may_not_search_before_it_types() {
    let mut app = logged_in();
    let me = app.me.as_mut().unwrap();
    me.org.kind = tsunagu_record::OrgKind::Ministry;
    me.role = tsunagu_record::Role::Ministry;
    key(&mut app, "F3");
    let s = render(&mut app, 80, 24);
    assert!(
        s.contains("全国検索を利用できるのは児童相談所と市区町村の職員のみです"),
        "{s}"
    );
    type_text(&mut app, "山田");
    key(&mut app, "Enter");
    if let Some(due) = app.next_deadline() {
        app.on_timer(due);
    }
    assert!(
        !app.outbox
            .iter()
            .any(|c| matches!(c.kind, CmdKind::Search { .. })),
        "no search request is sent"
    );
}

#[test]
fn search_without_a_server_endpoint_says_so() {
    let mut app = logged_in();
    key(&mut app, "F3");
    type_text(&mut app, "山田");
    key(&mut app, "Enter");
    let cmd = app.outbox.pop().unwrap();
    let nf = crate::api::ApiErr::Status {
        status: 404,
        body: Box::new(
            serde_json::from_value(json!({"code":"not_found","message":"そのAPIはありません"}))
                .unwrap(),
        ),
    };
    app.on_reply(Reply {
        id: cmd.id,
        kind: ReplyKind::Search(Err(nf)),
    });
    assert!(render(&mut app, 80, 24).contains("検索機能がまだありません"));
}

fn note(id: i64, read: bool) -> Notification {
    Notification {
        id,
        kind: if id % 2 == 0 {
            NotificationKind::RecordUpdated
        } else {
            NotificationKind::RecordCreated
        },
        record_id: Some(13000000000200 + id),
        intake_id: None,
        transfer_id: None,
        from_org_id: "muni-131016".into(),
        from_org_name: "千代田区".into(),
        at: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 25, 1, id as u32, 0)
            .single()
            .unwrap(),
        read,
        // Every third entry is about a record the reader's tier shows no row of.
        subject: (id % 3 != 0).then(|| tsunagu_record::api::NotificationSubject {
            child_name: tsunagu_record::schema::PersonName {
                family: "架空".into(),
                given: format!("子{id}"),
                family_kana: None,
                given_kana: None,
            },
            case_number: if id % 2 == 0 {
                tsunagu_record::views::Visible::Shown(format!("R8-{id:05}"))
            } else {
                tsunagu_record::views::Visible::Withheld {
                    reason: tsunagu_record::views::WithheldReason::OwnerRestriction,
                }
            },
        }),
    }
}

#[test]
fn notifications_unread_first_and_enter_opens() {
    let mut app = logged_in();
    let sid = app.outbox.len();
    let _ = sid;
    app.request("stream", CmdKind::StartStream { last_id: 0 });
    let stream = app.outbox.pop().unwrap().id;
    for (i, read) in [(1, true), (2, false), (3, true), (4, false)] {
        app.on_reply(Reply {
            id: stream,
            kind: ReplyKind::StreamEvent(note(i, read)),
        });
    }
    assert_eq!(app.notes.unread(), 2);
    assert!(render(&mut app, 80, 24).contains("未読通知 2件"));
    key(&mut app, "F4");
    let ids: Vec<i64> = app.notes.items.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![4, 2, 3, 1]);
    snap("notifications", &mut app);
    key(&mut app, "Enter");
    assert_eq!(app.notes.unread(), 1);
    assert!(app
        .outbox
        .iter()
        .any(|c| matches!(c.kind, CmdKind::MarkRead { nid: 4, read: true })));
    assert!(app
        .outbox
        .iter()
        .any(|c| matches!(c.kind, CmdKind::Record { id: 13000000000204 })));
    assert_eq!(app.screen, Screen::Record);
}

#[test]
fn help_lists_the_current_screens_keys() {
    let mut app = logged_in();
    key(&mut app, "?");
    assert_eq!(app.help_section, "case_list");
    snap("help_case_list", &mut app);
}

#[test]
fn home_and_end_on_the_record_and_ctrl_l_redraws() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    key(&mut app, "End");
    let last = app.record.as_ref().unwrap().cursor;
    assert!(last > 10, "the last field: {last}");
    key(&mut app, "Home");
    assert_eq!(app.record.as_ref().unwrap().cursor, 0);
    key(&mut app, "Ctrl+l");
    assert!(app.clear_screen, "the next draw clears the terminal first");
}

#[test]
fn too_small_terminal_says_so() {
    let mut app = logged_in();
    let s = render(&mut app, 60, 15);
    assert!(s.contains("端末が小さすぎます"));
}

#[test]
fn the_default_look_and_the_mono_theme_draw_no_ambiguous_chrome() {
    let mut app = logged_in();
    assert!(
        app.look.ascii,
        "the default assumes a terminal that draws them wide"
    );
    app.theme = crate::theme::Theme::builtin("mono");
    app.overlay = Some(Overlay::Notifications);
    let s = render(&mut app, 80, 24);
    for c in ['─', '│', '┌', '…', '○', '×', '※'] {
        assert!(!s.contains(c), "{c} in\n{s}");
    }
    snap("notifications_ascii", &mut app);
}

#[test]
fn a_terminal_that_draws_them_narrow_gets_the_ellipsis() {
    let mut app = logged_in();
    app.look = crate::app::Look::for_terminal(true);
    app.cases.items[0].child_name.given = "とても長い名前の子どもの名前です".repeat(3);
    let s = render(&mut app, 80, 24);
    assert!(s.contains('…'), "{s}");
    snap("case_list_narrow", &mut app);
}

#[test]
fn logout_revokes_the_session_and_forgets_its_data() {
    let mut app = logged_in();
    // A page of the list is on its way when the user logs out.
    app.load_cases(true);
    let pending = app.outbox.last().expect("a cases command").id;
    key(&mut app, "F11");
    let cmd = app.outbox.last().expect("a logout command");
    assert!(matches!(cmd.kind, CmdKind::Logout));
    assert_eq!(
        cmd.token.as_deref(),
        Some("t0k3n"),
        "the old token is revoked"
    );
    assert_eq!(app.screen, Screen::Login);
    assert!(app.token.is_none() && app.me.is_none());
    assert!(app.cases.items.is_empty(), "no case data kept after logout");
    // The old session's answer arriving late is dropped.
    app.on_reply(Reply {
        id: pending,
        kind: ReplyKind::Cases(Ok(tsunagu_record::api::CaseList {
            items: fixtures::cases(3),
            next_cursor: None,
        })),
    });
    assert!(app.cases.items.is_empty());
}

#[test]
fn logout_with_unsaved_edits_is_refused() {
    let mut app = logged_in();
    let view: RecordView = serde_json::from_value(full_record()).expect("view");
    app.record = Some(RecordState::from_view(&view));
    app.record.as_mut().unwrap().draft.core.child_name.given = "変更".into();
    app.logout();
    assert!(app.token.is_some());
    assert!(app.record.is_some());
}

#[test]
fn a_lost_session_drops_its_late_answers_but_keeps_the_draft() {
    let mut app = logged_in();
    let view: RecordView = serde_json::from_value(full_record()).expect("view");
    app.record = Some(RecordState::from_view(&view));
    app.record.as_mut().unwrap().draft.core.child_name.given = "下書き".into();
    let search = app.request(
        "search",
        CmdKind::Search {
            query: "q=x".into(),
        },
    );
    app.session_lost();
    app.on_reply(Reply {
        id: search,
        kind: ReplyKind::Search(Ok(search_results())),
    });
    assert!(
        app.search.results.is_none(),
        "a lost session's answer was shown"
    );
    assert_eq!(
        app.record.as_ref().unwrap().draft.core.child_name.given,
        "下書き"
    );
    assert!(matches!(
        app.outbox.last().map(|c| &c.kind),
        Some(CmdKind::StopStream)
    ));
}

/// Puts `hostile` into every string of a JSON value (keys apart).
fn poison(v: &mut serde_json::Value, hostile: &str) {
    match v {
        serde_json::Value::String(s) => s.push_str(hostile),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| poison(x, hostile)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|x| poison(x, hostile)),
        _ => {}
    }
}

/// Cells holding anything a terminal would act on rather than show.
fn controls_drawn(app: &mut App, w: u16, h: u16) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| crate::ui::draw(f, app)).expect("draw");
    let buf = t.backend().buffer();
    buf.content()
        .iter()
        .map(|c| c.symbol())
        .filter(|s| s.chars().any(crate::text::is_terminal_control))
        .map(|s| format!("{s:?}"))
        .collect()
}

/// Data that reached the client without passing `api::decode_reply` (defence in depth): no
/// screen draws a control character or a bidi control from it, so no string can move the
/// cursor, set the window title or reorder the line.
#[test]
fn drawing_never_emits_terminal_controls_from_data() {
    const HOSTILE: &str = "\x1b]0;PWNED\x07\x1b[2J\u{9b}H\u{202E}\u{2066}\r\n\t";
    let mut record = full_record();
    poison(&mut record, HOSTILE);
    // Codes and dates must still parse: put the poison only where text is free.
    for (path, value) in [
        ("/tier", "owner"),
        ("/owner/org_kind", "cgc"),
        ("/owner/org_id", "cgc-13-01"),
        ("/meta/created_at", "2026-11-20T01:00:00Z"),
        ("/meta/updated_at", "2026-11-25T02:15:04Z"),
        ("/core/birth_date/date", "2019-04-01"),
        ("/core/guardians/0/relationship", "father"),
        ("/core/address/municipality_code", "131016"),
        ("/family/household/0/relationship", "father"),
        ("/family/schooling/facility_type", "nursery"),
        ("/casework/progress/0/date", "2026-04-12"),
        ("/casework/risk/level", "high"),
        ("/casework/next_review", "2026-12-01"),
        ("/admin/status", "open"),
        ("/admin/consultation_type", "abuse_neglect"),
        ("/admin/intake_reports/0/received_on", "2026-04-12"),
    ] {
        *record.pointer_mut(path).unwrap_or_else(|| panic!("{path}")) = json!(value);
    }
    record["restrictions"]["reason"] = json!(format!("理由{HOSTILE}"));
    let view: RecordView = serde_json::from_value(record).expect("poisoned record");
    let mut app = with_record(view);
    for (w, h) in SIZES {
        assert_eq!(
            controls_drawn(&mut app, w, h),
            Vec::<String>::new(),
            "record {w}x{h}"
        );
    }

    let mut app = logged_in();
    for c in app.cases.items.iter_mut() {
        c.child_name.family.push_str(HOSTILE);
        c.owner.name.push_str(HOSTILE);
    }
    for (w, h) in SIZES {
        assert_eq!(
            controls_drawn(&mut app, w, h),
            Vec::<String>::new(),
            "case list {w}x{h}"
        );
    }
}
