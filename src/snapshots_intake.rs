//! 通告受理 in the client: a report typed at night and saved at once, the nationwide lookup on
//! what was typed, attached to a record found or converted into a new prefilled record, the
//! safety clock on the intake, the record and the case list, and the workflow menu.

use serde_json::json;
use tsunagu_record::intake::{IntakeList, IntakeView};

use crate::app::{Overlay, Screen};
use crate::snapshots::{key, logged_in, render, search_results, snap, type_text};
use crate::tasks::{CmdKind, Reply, ReplyKind};

fn view(status: &str, record_id: Option<i64>) -> IntakeView {
    serde_json::from_value(json!({
        "id": 42, "status": status, "record_id": record_id, "version": 1,
        "org": { "org_id": "cgc-13-01", "org_kind": "cgc", "name": "（架空）東京都第1児童相談所", "phone": "000-1130-0001" },
        "input": { "received_at": "2026-11-25T14:00:00Z", "channel": "neighbour",
                   "reporter_relationship": "近所の住民", "content": "夜中に子どもの泣き声が続いている。",
                   "child": { "name": { "family": "架空", "given": "花子" }, "sex": 2,
                              "birth_date": { "date": "2019-04-01", "estimated": false },
                              "age_note": "", "municipality_code": "131016", "address_note": "架空町の団地" },
                   "guardians": [ { "name": { "family": "架空", "given": "太郎" }, "relationship": "father" } ],
                   "urgency": "high" },
        "safety": { "hours": 48, "due_at": "2026-11-27T14:00:00Z", "state": "pending", "confirmation": null },
        "received_by": "児相 職員A（架空）",
        "created_at": "2026-11-25T14:00:00Z", "updated_at": "2026-11-25T14:00:00Z"
    }))
    .expect("intake view")
}

/// Answers the latest command of the kind the reply is for.
fn reply(app: &mut crate::app::App, kind: ReplyKind) {
    let wants = |c: &CmdKind| match &kind {
        ReplyKind::Search(_) => matches!(c, CmdKind::Search { .. }),
        ReplyKind::Intakes(_) => matches!(c, CmdKind::Intakes { .. }),
        ReplyKind::RecordIntakes(_) => matches!(c, CmdKind::RecordIntakes { .. }),
        ReplyKind::Converted(_) => matches!(c, CmdKind::IntakeConvert { .. }),
        _ => !matches!(
            c,
            CmdKind::Search { .. } | CmdKind::Intakes { .. } | CmdKind::RecordIntakes { .. }
        ),
    };
    let id = app
        .outbox
        .iter()
        .rev()
        .find(|c| wants(&c.kind))
        .expect("a command this answers")
        .id;
    app.on_reply(Reply { id, kind });
}

/// From the case list: one key, type what the caller says, save.
fn typed_and_saved() -> crate::app::App {
    let mut app = logged_in();
    key(&mut app, "Ctrl+t");
    assert_eq!(app.screen, Screen::Intake);
    assert_eq!(
        app.section(),
        "record_edit",
        "typing starts in the content at once"
    );
    type_text(&mut app, "夜中に子どもの泣き声が続いている。");
    key(&mut app, "Tab");
    let st = app.intake.as_mut().unwrap();
    let at = |st: &crate::screens::intake::IntakeState, p: &str| {
        st.form.rows().iter().position(|r| r.path == p).unwrap()
    };
    st.form.cursor = at(st, "channel");
    for _ in 0..8 {
        key(&mut app, "Right");
    }
    let st = app.intake.as_mut().unwrap();
    st.form.cursor = at(st, "child.name.family");
    key(&mut app, "Enter");
    type_text(&mut app, "架空");
    key(&mut app, "Tab");
    type_text(&mut app, "花子");
    key(&mut app, "Tab");
    type_text(&mut app, "かくう");
    key(&mut app, "Tab");
    key(&mut app, "Tab");
    assert_eq!(app.section(), "intake", "a choice opens no editor");
    let st = app.intake.as_mut().unwrap();
    st.form.cursor = at(st, "child.birth_date");
    key(&mut app, "Enter");
    type_text(&mut app, "H31.4.1");
    key(&mut app, "Enter");
    snap("intake_typing", &mut app);
    key(&mut app, "Ctrl+s");
    app
}

#[test]
fn a_report_at_night_is_saved_at_once_with_its_time() {
    let mut app = typed_and_saved();
    let cmd = app.outbox.pop().expect("saved");
    let CmdKind::IntakeCreate { input } = cmd.kind else {
        panic!("{:?}", cmd.kind)
    };
    assert_eq!(input.received_at, crate::fixtures::now());
    assert_eq!(input.content, "夜中に子どもの泣き声が続いている。");
    assert_eq!(input.child.name.family, "架空");
    assert_eq!(input.child.name.family_kana.as_deref(), Some("カクウ"));
    assert_eq!(
        input
            .child
            .birth_date
            .map(|b| b.date.to_string())
            .as_deref(),
        Some("2019-04-01")
    );
    assert!(input.channel.is_some());
    assert!(input.guardians.is_empty(), "an empty guardian is not sent");
}

#[test]
fn empty_content_is_refused_and_nothing_is_sent() {
    let mut app = logged_in();
    key(&mut app, "Ctrl+t");
    key(&mut app, "Esc");
    key(&mut app, "Ctrl+s");
    assert!(!app
        .outbox
        .iter()
        .any(|c| matches!(c.kind, CmdKind::IntakeCreate { .. })));
    let st = app.intake.as_ref().unwrap();
    assert_eq!(
        st.form.errors.get("content").map(String::as_str),
        Some("通告内容は必須です")
    );
}

#[test]
fn the_lookup_runs_on_what_was_typed_and_a_hit_takes_the_intake() {
    let mut app = typed_and_saved();
    reply(&mut app, ReplyKind::Intake(Ok(view("open", None))));
    let q = app
        .outbox
        .iter()
        .find_map(|c| match &c.kind {
            CmdKind::Search { query } => Some(query.clone()),
            _ => None,
        })
        .expect("the lookup runs after the save");
    assert!(q.contains("birth=2019-04-01"), "{q}");
    assert!(
        q.contains(&format!("q={}", crate::screens::search::enc("架空 花子"))),
        "{q}"
    );
    reply(&mut app, ReplyKind::Search(Ok(search_results())));
    snap("intake_lookup", &mut app);
    key(&mut app, "F7");
    // The second hit may not be opened: attaching to it is refused here, nothing sent.
    key(&mut app, "Down");
    let before = app.outbox.len();
    key(&mut app, "F8");
    assert_eq!(app.outbox.len(), before);
    key(&mut app, "Up");
    key(&mut app, "F8");
    match &app.outbox.last().unwrap().kind {
        CmdKind::IntakeAttach { id, attach } => {
            assert_eq!(*id, 42);
            assert_eq!(attach.record_id, 13000000000240);
            assert_eq!(attach.version, 1);
        }
        other => panic!("{other:?}"),
    }
    reply(
        &mut app,
        ReplyKind::Intake(Ok(view("attached", Some(13000000000240)))),
    );
    assert!(app
        .message
        .as_ref()
        .unwrap()
        .1
        .contains("記録 13000000000240 に追加しました"));
}

#[test]
fn a_new_record_is_prefilled_from_the_intake_and_made_by_converting_it() {
    let mut app = typed_and_saved();
    reply(&mut app, ReplyKind::Intake(Ok(view("open", None))));
    reply(&mut app, ReplyKind::Search(Ok(search_results())));
    key(&mut app, "F11");
    assert_eq!(app.screen, Screen::Record);
    let r = app.record.as_ref().unwrap();
    assert_eq!(r.draft.core.child_name.given, "花子");
    assert_eq!(r.draft.core.address.municipality_code, "131016");
    assert_eq!(r.draft.admin.intake_reports.len(), 1);
    assert!(r.draft.admin.intake_reports[0].summary.contains("泣き声"));
    // Complete what the national format requires, then save: the intake is converted.
    let r = app.record.as_mut().unwrap();
    r.draft.core.address.street = "架空町1-2-3".into();
    r.draft.admin.case_number = "R8-90100".into();
    r.draft.admin.consultation_type = Some(tsunagu_record::codes::ConsultationType::ALL[0]);
    key(&mut app, "Ctrl+s");
    let (id, convert) = match &app.outbox.last().unwrap().kind {
        CmdKind::IntakeConvert { id, convert } => (*id, convert.clone()),
        other => panic!("not converted: {other:?}"),
    };
    assert_eq!(id, 42);
    assert_eq!(convert.version, 1);
    assert_eq!(convert.record.admin.case_number, "R8-90100");
    let converted = tsunagu_record::intake::Converted {
        intake: view("converted", Some(13000000000999)),
        record_id: 13000000000999,
    };
    reply(&mut app, ReplyKind::Converted(Ok(converted)));
    assert!(app
        .outbox
        .iter()
        .any(|c| matches!(c.kind, CmdKind::Record { id: 13000000000999 })));
    assert_eq!(
        app.intake
            .as_ref()
            .unwrap()
            .view
            .as_ref()
            .unwrap()
            .record_id,
        Some(13000000000999)
    );
}

#[test]
fn the_safety_confirmation_is_recorded_on_the_intake() {
    let mut app = typed_and_saved();
    reply(&mut app, ReplyKind::Intake(Ok(view("open", None))));
    key(&mut app, "F7");
    key(&mut app, "F6");
    assert!(app.intake.as_ref().unwrap().safety.is_some());
    snap("intake_safety", &mut app);
    key(&mut app, "Ctrl+s");
    match &app.outbox.last().unwrap().kind {
        CmdKind::IntakeSafety { id, confirm } => {
            assert_eq!(*id, 42);
            assert_eq!(
                confirm.confirmation.method,
                tsunagu_record::intake::SafetyMethod::DirectSighting
            );
            assert_eq!(confirm.confirmation.confirmed_at, crate::fixtures::now());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_menu_opens_every_workflow_by_number() {
    let mut app = logged_in();
    key(&mut app, "Ctrl+g");
    assert_eq!(app.overlay, Some(Overlay::Menu));
    snap("menu", &mut app);
    key(&mut app, "2");
    assert_eq!(app.screen, Screen::Intakes);
    assert!(matches!(
        app.outbox.last().unwrap().kind,
        CmdKind::Intakes { all: false }
    ));
    let list: IntakeList = serde_json::from_value(json!({ "items": [
        { "id": 40, "status": "open", "record_id": null, "received_at": "2026-11-23T10:00:00Z",
          "channel": "police", "urgency": "immediate", "child_name": { "family": "", "given": "" },
          "due_at": "2026-11-25T10:00:00Z", "state": "overdue" },
        { "id": 41, "status": "attached", "record_id": 13000000000240_i64, "received_at": "2026-11-25T01:00:00Z",
          "channel": "school", "urgency": "normal", "child_name": { "family": "架空", "given": "花子" },
          "due_at": "2026-11-27T01:00:00Z", "state": "pending" } ] }))
    .unwrap();
    reply(&mut app, ReplyKind::Intakes(Ok(list)));
    snap("intakes_list", &mut app);
    // Every workflow of the menu, in both shipped keymaps, has a key and a description.
    for name in ["default", "vim"] {
        let k = crate::keymap::Keymap::builtin(name).unwrap();
        for a in crate::screens::menu::MENU {
            let b = &k.sections["menu"].actions[a];
            assert!(!b.keys.is_empty() && !b.desc.is_empty(), "{name}: {a:?}");
        }
    }
    for (k, screen) in [("1", Screen::Intake), ("3", Screen::CaseList)] {
        key(&mut app, "Ctrl+g");
        key(&mut app, k);
        assert_eq!(app.screen, screen, "{k}");
        key(&mut app, "Esc");
        key(&mut app, "Esc");
    }
}

#[test]
fn the_case_list_and_the_record_show_the_safety_clock() {
    let mut app = logged_in();
    let rid = app.cases.items[0].id;
    let due: IntakeList = serde_json::from_value(json!({ "items": [
        { "id": 40, "status": "attached", "record_id": rid, "received_at": "2026-11-23T10:00:00Z",
          "channel": "police", "urgency": "immediate", "child_name": { "family": "", "given": "" },
          "due_at": "2026-11-25T10:00:00Z", "state": "overdue" } ] }))
    .unwrap();
    app.load_due();
    reply(&mut app, ReplyKind::Intakes(Ok(due.clone())));
    let screen = render(&mut app, 132, 40);
    assert!(screen.contains("超過4時"), "{screen}");
    app.open_record(rid);
    reply(&mut app, ReplyKind::RecordIntakes(Ok(due)));
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("安全確認: 通告 No.40 期限超過 4時間0分"),
        "{screen}"
    );
}

#[test]
fn a_new_report_with_only_a_name_typed_is_not_left_without_asking() {
    let mut app = logged_in();
    key(&mut app, "Ctrl+t");
    // Nothing typed: Esc leaves the content, Esc again leaves the screen at once.
    key(&mut app, "Esc");
    assert!(!app.intake.as_ref().unwrap().unsaved());
    // A name typed, no content yet: leaving asks first.
    let st = app.intake.as_mut().unwrap();
    st.form.cursor = st
        .form
        .rows()
        .iter()
        .position(|r| r.path == "child.name.family")
        .unwrap();
    key(&mut app, "Enter");
    type_text(&mut app, "架空");
    assert!(
        app.intake.as_ref().unwrap().unsaved(),
        "text in an editor is unsaved"
    );
    key(&mut app, "Enter");
    assert!(app.intake.as_ref().unwrap().unsaved());
    key(&mut app, "Esc");
    assert_eq!(app.screen, Screen::Intake, "the first Esc only warns");
    assert!(app
        .message
        .as_ref()
        .unwrap()
        .1
        .contains("保存していない通告があります"));
    key(&mut app, "Esc");
    assert_eq!(app.screen, Screen::CaseList);
}
