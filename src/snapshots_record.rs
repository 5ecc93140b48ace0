//! The whole record in the client: every list edited (add, change, remove, reorder), readings
//! turned into katakana as typed, municipalities picked by name or reading, long texts read in
//! full by every tier that may see them, and the history pane keeping the keys while open.

use serde_json::json;
use tsunagu_record::RecordView;

use crate::snapshots::{
    at, full_record, key, partner_record, render, snap, type_text, with_record,
};
use crate::tasks::{CmdKind, Reply, ReplyKind};

fn saved_body(app: &mut crate::app::App) -> tsunagu_record::RecordBody {
    key(app, "Ctrl+s");
    match app.outbox.pop().map(|c| c.kind) {
        Some(CmdKind::Save { update, .. }) => update.record,
        other => panic!("no save sent: {other:?}"),
    }
}

#[test]
fn a_progress_entry_is_appended_with_several_lines_and_saved() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    let r = app.record.as_mut().unwrap();
    at(r, "casework.progress");
    key(&mut app, "Enter");
    // The new entry's date is today's; Tab goes on to its text, which takes line breaks.
    let r = app.record.as_ref().unwrap();
    assert_eq!(
        r.editing.as_ref().map(|e| e.path.as_str()),
        Some("casework.progress[1].date")
    );
    key(&mut app, "Tab");
    type_text(&mut app, "母親から電話。");
    key(&mut app, "Enter");
    type_text(&mut app, "来週の面接を約束。");
    assert_eq!(
        app.section(),
        "record_edit",
        "Enter in a long text is a line break"
    );
    key(&mut app, "Tab");
    snap("record_progress_added", &mut app);
    let body = saved_body(&mut app);
    assert_eq!(body.casework.progress.len(), 2);
    assert_eq!(
        body.casework.progress[0].text,
        "通告を受理し、安全確認を実施。"
    );
    assert_eq!(
        body.casework.progress[1].text,
        "母親から電話。\n来週の面接を約束。"
    );
    assert_eq!(body.casework.progress[1].date, crate::fixtures::today());
}

#[test]
fn guardians_are_added_reordered_and_removed_with_confirmation() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    let r = app.record.as_mut().unwrap();
    at(r, "core.guardians");
    key(&mut app, "Enter");
    type_text(&mut app, "架空");
    key(&mut app, "Tab");
    type_text(&mut app, "花代");
    key(&mut app, "Tab");
    // The reading turns into katakana as it is typed.
    type_text(&mut app, "かくう");
    let typed = app
        .record
        .as_ref()
        .unwrap()
        .editing
        .as_ref()
        .unwrap()
        .area
        .lines()
        .join("");
    assert_eq!(typed, "カクウ");
    key(&mut app, "Tab");
    key(&mut app, "Tab");
    // 続柄 is a choice: Right cycles it without an editor.
    key(&mut app, "Esc");
    assert_eq!(app.section(), "record");
    let r = app.record.as_mut().unwrap();
    at(r, "core.guardians[1].relationship");
    key(&mut app, "Right");
    assert!(app.record.as_ref().unwrap().draft.core.guardians[1]
        .relationship
        .is_some());
    // Move the new guardian to the top.
    let r = app.record.as_mut().unwrap();
    at(r, "core.guardians[1]");
    key(&mut app, "Alt+Up");
    let r = app.record.as_ref().unwrap();
    assert_eq!(
        r.row().unwrap().path,
        "core.guardians[0]",
        "the cursor follows the item"
    );
    assert_eq!(r.draft.core.guardians[0].name.given, "花代");
    assert_eq!(
        r.draft.core.guardians[0].name.family_kana.as_deref(),
        Some("カクウ")
    );
    // One Delete asks; a second removes.
    let r = app.record.as_mut().unwrap();
    at(r, "core.guardians[1].name.given");
    key(&mut app, "Delete");
    assert_eq!(app.record.as_ref().unwrap().draft.core.guardians.len(), 2);
    key(&mut app, "Delete");
    let body = saved_body(&mut app);
    assert_eq!(body.core.guardians.len(), 1);
    assert_eq!(body.core.guardians[0].name.given, "花代");
}

#[test]
fn a_delete_then_another_key_removes_nothing() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    let r = app.record.as_mut().unwrap();
    at(r, "family.household[0]");
    key(&mut app, "Delete");
    key(&mut app, "Down");
    key(&mut app, "Up");
    key(&mut app, "Delete");
    assert_eq!(app.record.as_ref().unwrap().draft.family.household.len(), 1);
}

#[test]
fn every_list_of_the_national_format_takes_an_item() {
    for list in [
        "core.guardians",
        "family.household",
        "casework.progress",
        "casework.attachments",
        "admin.intake_reports",
    ] {
        let mut app = with_record(serde_json::from_value(full_record()).unwrap());
        let before = crate::form::rows(&app.record.as_ref().unwrap().draft, true)
            .iter()
            .filter(|r| r.kind == crate::form::RowKind::Item && r.list.is_some_and(|l| l.0 == list))
            .count();
        let r = app.record.as_mut().unwrap();
        at(r, list);
        key(&mut app, "Enter");
        key(&mut app, "Esc");
        let after = crate::form::rows(&app.record.as_ref().unwrap().draft, true)
            .iter()
            .filter(|r| r.kind == crate::form::RowKind::Item && r.list.is_some_and(|l| l.0 == list))
            .count();
        assert_eq!(after, before + 1, "{list}");
    }
}

#[test]
fn a_municipality_is_picked_by_its_reading() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    let r = app.record.as_mut().unwrap();
    at(r, "core.address.municipality_code");
    key(&mut app, "Enter");
    for _ in 0..6 {
        key(&mut app, "Backspace");
    }
    type_text(&mut app, "ちよだ");
    let picks = app
        .record
        .as_ref()
        .unwrap()
        .editing
        .as_ref()
        .unwrap()
        .picks
        .clone();
    let codes: Vec<&str> = picks.iter().map(|(c, _)| c.as_str()).collect();
    assert!(codes.contains(&"131016"), "東京都千代田区: {picks:?}");
    assert!(codes.contains(&"105236"), "群馬県千代田町: {picks:?}");
    snap("record_municipality_picks", &mut app);
    let want = codes.iter().position(|c| *c == "105236").unwrap();
    for _ in 0..want {
        key(&mut app, "Down");
    }
    key(&mut app, "Enter");
    let r = app.record.as_ref().unwrap();
    assert!(r.editing.is_none());
    assert_eq!(r.draft.core.address.municipality_code, "105236");
    // By name and by code too.
    for typed in ["千代田区", "13101"] {
        let p = crate::widgets::field::municipality_picks(typed, 8);
        assert_eq!(
            p.first().map(|(c, _)| c.as_str()),
            Some("131016"),
            "{typed}: {p:?}"
        );
    }
    assert!(crate::widgets::field::municipality_picks("ぬぬぬぬ", 8).is_empty());
}

#[test]
fn a_partner_reads_a_long_finding_in_full() {
    let long: String = (1..=40)
        .map(|i| format!("{i}行目: 本児の様子を記録した所見の本文。"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut v: serde_json::Value = serde_json::to_value(partner_record()).unwrap();
    v["casework"] = json!({ "shown": {
        "interview": { "shown": "" }, "investigation": { "shown": "" },
        "findings": { "shown": long }, "support_plan": { "shown": "" },
        "progress": { "shown": [] }, "attachments": { "shown": [] },
        "risk": null, "next_review": null } });
    let view: RecordView = serde_json::from_value(v).expect("partner with casework");
    let mut app = with_record(view);
    let r = app.record.as_mut().unwrap();
    at(r, "casework.findings");
    key(&mut app, "Enter");
    assert_eq!(
        app.section(),
        "reader",
        "Enter reads for a partner, it does not refuse"
    );
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("1行目"), "{screen}");
    assert!(!screen.contains("40行目"));
    key(&mut app, "End");
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("40行目: 本児の様子を記録した所見の本文。"),
        "{screen}"
    );
    snap("record_reader_end", &mut app);
    key(&mut app, "Esc");
    assert_eq!(app.section(), "record");
    // A withheld part says why instead of opening.
    let r = app.record.as_mut().unwrap();
    at(r, "core.address.street");
    key(&mut app, "F6");
    assert_eq!(app.section(), "record");
    assert!(app.message.as_ref().unwrap().1.contains("表示されません"));
}

#[test]
fn the_history_pane_keeps_the_keys_while_open() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    let cursor = app.record.as_ref().unwrap().cursor;
    key(&mut app, "F7");
    let cmd = app.outbox.pop().expect("history asked");
    let versions: Vec<tsunagu_record::api::VersionEntry> = (1..=3)
        .map(|v| {
            let mut rec = full_record();
            rec["meta"]["version"] = json!(v);
            let changes = if v == 1 {
                json!([])
            } else {
                json!([
                    { "field": "casework.support_plan", "before": format!("方針{}", v - 1), "after": format!("方針{v}") },
                    { "field": "casework.progress[1]", "after": { "date": "2026-11-25", "text": format!("経過{v}") } },
                    { "field": "casework.findings", "withheld": true }
                ])
            };
            serde_json::from_value(json!({
                "written": { "shown": { "version": v, "at": "2026-11-25T02:15:04Z", "author": "児相 職員A（架空）" } },
                "record": rec,
                "changes": changes
            }))
            .unwrap()
        })
        .collect();
    app.on_reply(Reply {
        id: cmd.id,
        kind: ReplyKind::History(Ok(versions)),
    });
    assert_eq!(app.section(), "history");
    // What each version changed, newest first, within the tier.
    let screen = render(&mut app, 132, 40);
    assert!(
        screen.contains("支援方針: 「方針2」から「方針3」へ"),
        "{screen}"
    );
    assert!(screen.contains("所見: 変更あり（非表示）"), "{screen}");
    snap("record_history", &mut app);
    key(&mut app, "Down");
    key(&mut app, "Enter");
    let r = app.record.as_ref().unwrap();
    assert_eq!(r.cursor, cursor, "Down scrolls the pane, not the record");
    assert!(r.editing.is_none(), "Enter starts no edit behind the pane");
    // Enter reads the history in full.
    assert_eq!(app.section(), "reader");
    let screen = render(&mut app, 132, 40);
    assert!(screen.contains("経過2: 追加"), "{screen}");
    key(&mut app, "Esc");
    assert_eq!(app.section(), "history");
    key(&mut app, "Esc");
    assert_eq!(app.section(), "record");
}

#[test]
fn a_field_is_reached_by_typing_its_name_and_progress_is_appended_with_one_key() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    key(&mut app, "/");
    assert_eq!(app.section(), "record_goto");
    type_text(&mut app, "支援方針");
    key(&mut app, "Enter");
    let r = app.record.as_ref().unwrap();
    assert_eq!(r.row().unwrap().path, "casework.support_plan");
    // Enter again goes on to the next match, wrapping: 氏名 is in the child's and the
    // guardian's rows.
    key(&mut app, "Esc");
    key(&mut app, "/");
    type_text(&mut app, "氏名（氏）");
    key(&mut app, "Enter");
    let first = app.record.as_ref().unwrap().row().unwrap().path;
    key(&mut app, "Enter");
    let second = app.record.as_ref().unwrap().row().unwrap().path;
    assert_ne!(first, second);
    assert!([first.as_str(), second.as_str()].contains(&"core.guardians[0].name.family"));
    key(&mut app, "Esc");
    key(&mut app, "/");
    type_text(&mut app, "存在しない項目");
    key(&mut app, "Enter");
    assert!(app
        .message
        .as_ref()
        .unwrap()
        .1
        .contains("という項目はありません"));
    key(&mut app, "Esc");
    key(&mut app, "Ctrl+p");
    assert_eq!(app.section(), "record_edit");
    type_text(&mut app, "母親と電話で面談。");
    key(&mut app, "Tab");
    let body = saved_body(&mut app);
    assert_eq!(
        body.casework.progress.last().unwrap().text,
        "母親と電話で面談。"
    );
    assert_eq!(body.casework.progress.len(), 2);
}

fn update_note(id: i64, record_id: i64) -> tsunagu_record::api::Notification {
    serde_json::from_value(json!({
        "id": id, "kind": "record_updated", "record_id": record_id, "intake_id": null,
        "from_org_id": "muni-131016", "from_org_name": "千代田区", "at": "2026-11-25T13:50:00Z",
        "read": false,
        "subject": { "child_name": { "family": "架空", "given": "花子" }, "case_number": { "shown": "R8-90001" } }
    }))
    .unwrap()
}

#[test]
fn a_notification_names_the_child_and_an_open_record_is_read_again() {
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    app.outbox.clear();
    // Nothing edited: read again at once, in place.
    app.on_notification(update_note(1, 13000000000240));
    assert!(app
        .outbox
        .iter()
        .any(|c| matches!(c.kind, CmdKind::Record { id: 13000000000240 })));
    assert!(app
        .message
        .as_ref()
        .unwrap()
        .1
        .contains("千代田区が更新したため読み直しました"));
    // Editing: told, not reloaded under the user's hands.
    app.outbox.clear();
    let r = app.record.as_mut().unwrap();
    at(r, "casework.findings");
    key(&mut app, "Enter");
    type_text(&mut app, "追記");
    app.on_notification(update_note(2, 13000000000240));
    assert!(app.outbox.is_empty(), "{:?}", app.outbox);
    assert!(app
        .message
        .as_ref()
        .unwrap()
        .1
        .contains("保存すると統合されます"));
    // Another record's notification changes nothing here.
    app.on_notification(update_note(3, 13000000000999));
    assert!(app.outbox.is_empty());
    // The pane names the child and the case number.
    key(&mut app, "Esc");
    key(&mut app, "F4");
    let screen = render(&mut app, 132, 40);
    assert!(
        screen.contains("記録 13000000000240 架空　花子（R8-90001）"),
        "{screen}"
    );
}

#[test]
fn an_esc_read_together_with_the_next_key_is_both_keys() {
    // Esc then "/" in one packet arrives as Alt+/: the edit is left, then the prompt opens.
    let mut app = with_record(serde_json::from_value(full_record()).unwrap());
    let r = app.record.as_mut().unwrap();
    at(r, "casework.findings");
    key(&mut app, "Enter");
    assert_eq!(app.section(), "record_edit");
    key(&mut app, "Alt+/");
    assert_eq!(app.section(), "record_goto");
    // A binding with Alt keeps its meaning.
    key(&mut app, "Esc");
    at(app.record.as_mut().unwrap(), "core.guardians[0]");
    key(&mut app, "Alt+Down");
    assert_eq!(app.section(), "record");
    assert_eq!(
        app.record.as_ref().unwrap().row().unwrap().path,
        "core.guardians[0]",
        "one guardian: nowhere to move"
    );
}

#[test]
fn a_record_transferred_out_is_read_only_and_says_where_it_went() {
    let mut v = full_record();
    v["admin"]["status"] = json!("transferred_out");
    v["meta"]["transferred_to"] = json!({
        "transfer_id": 7, "destination": { "org_id": "cgc-27-01", "name": "（架空）大阪府第1児童相談所" },
        "record_id": 27000000000031_i64, "transferred_at": "2026-11-24T01:00:00Z" });
    let mut app = with_record(serde_json::from_value(v).unwrap());
    assert!(!app.record.as_ref().unwrap().editable);
    let screen = render(&mut app, 100, 30);
    assert!(
        screen.contains("転出済み（2026-11-24）: （架空）大阪府第1児童相談所の記録 27000000000031 へ移管しました"),
        "{screen}"
    );
    // Enter reads; nothing starts an edit.
    key(&mut app, "Enter");
    assert_eq!(app.section(), "reader");
    key(&mut app, "Esc");
    key(&mut app, "Ctrl+p");
    assert_eq!(app.section(), "record");
}
