//! End to end: a real server (SQLite, demo data) and the real client binary in a pseudo-terminal.
//! One caseworker searches, opens a record, leaves a required field empty (the error shows),
//! fixes it and saves; a second client, logged in as the partner municipality, sees the
//! notification arrive.

mod support;

use support::*;
use tsunagu_record::api::{CaseList, LoginRequest, LoginResponse};

/// A record of demo-cgc's organisation whose child lives in demo-muni's municipality (so the
/// municipality is notified of a change).
async fn target(base: &str) -> (i64, String, String) {
    let http = reqwest::Client::new();
    let login: LoginResponse = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&LoginRequest {
            login: "demo-cgc".into(),
            password: tsunagu_server::seed::DEMO_PASSWORD.into(),
            otp: otp("demo-cgc", 0),
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list: CaseList = http
        .get(format!("{base}/api/v1/records?limit=100&sort=updated_desc"))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let c = list
        .items
        .iter()
        .find(|c| {
            c.tier == "owner" && c.municipality_code.shown().map(String::as_str) == Some("131016")
        })
        .expect("a record of demo-cgc in 千代田区");
    (
        c.id,
        c.child_name.family.clone(),
        c.child_name.given.clone(),
    )
}

#[test]
fn caseworker_edits_and_the_partner_is_notified() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(start_server(120));
    let url = server.running.url();
    let (id, family, given) = rt.block_on(target(&url));

    // The partner municipality first, so it is listening when the change is saved.
    let mut muni = spawn_client(&["--server", &url], 100, 30);
    muni.login(
        "demo-muni",
        tsunagu_server::seed::DEMO_PASSWORD,
        &otp("demo-muni", 0),
    );
    let s = muni.wait_for("ケース一覧");
    muni.wait_stream_up("the event stream");
    let before = unread(&s).expect("unread count on the status line");

    let mut cgc = spawn_client(&["--server", &url], 100, 30);
    // The API login above used this step's code; a code is accepted once, so use the next.
    cgc.login(
        "demo-cgc",
        tsunagu_server::seed::DEMO_PASSWORD,
        &otp("demo-cgc", 1),
    );
    cgc.wait_for("ケース一覧");
    cgc.wait_for("児相 職員A");

    // Search from the list by the child's name; the record is the first hit.
    let s = cgc.open_by_search(&format!("{family}{given}"), id);
    assert!(
        !s.contains("架空町") && !s.contains("架空本町"),
        "an address in search results:\n{s}"
    );
    cgc.wait_for("子どもの氏名（名）");

    // The given name: emptied, then leave the field: the message shows next to it.
    cgc.clear_given_name(&given);
    cgc.send(ENTER);
    cgc.wait_for("子どもの氏名（名）は必須です");
    // Saving is refused with a summary.
    cgc.send(CTRL_S);
    cgc.wait_for("入力内容に1件の誤りがあります");

    // Fix it (Japanese typed through the terminal) and save.
    cgc.send(ENTER);
    cgc.send("花子");
    cgc.send(ENTER);
    cgc.wait_until("the error to clear", |c| !c.contains("は必須です"));
    cgc.send(CTRL_S);
    cgc.wait_for("保存しました（版2）");
    cgc.wait_for("架空");

    // The partner's status line counts the new notification; the pane lists it first.
    muni.wait_until("the notification", |c| {
        unread(c).is_some_and(|n| n > before)
    });
    muni.send(F4);
    let pane = muni.wait_for(&format!("記録 {id}"));
    assert!(pane.contains("更新"), "{pane}");

    // Quit cleanly; the terminal is given back (alternate screen left, cursor shown).
    cgc.send(ESC);
    cgc.send(F10);
    let status = cgc.wait_exit();
    assert!(status.success(), "{status:?}");
    let raw = cgc.raw.lock().unwrap().clone();
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(200)..]).to_string();
    assert!(
        tail.contains("\x1b[?1049l"),
        "alternate screen not left: {tail:?}"
    );
    // Every frame is wrapped in synchronized-output markers.
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(
        text.matches("\x1b[?2026h").count(),
        text.matches("\x1b[?2026l").count()
    );

    muni.send(F10);
    muni.wait_exit();
    rt.block_on(server.running.stop()).unwrap();
}

/// The server goes away while a caseworker edits: the edit stays (in memory), saving says the
/// server cannot be reached, and once the server is back the draft is saved by itself and the
/// event stream reconnects.
#[test]
fn a_server_restart_loses_no_typing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(start_server(60));
    let url = server.running.url();
    let (id, family, given) = rt.block_on(target(&url));

    let mut cgc = spawn_client(&["--server", &url], 100, 30);
    cgc.login(
        "demo-cgc",
        tsunagu_server::seed::DEMO_PASSWORD,
        &otp("demo-cgc", 1),
    );
    cgc.wait_stream_up("the event stream");
    cgc.open_by_search(&format!("{family}{given}"), id);
    // The given name becomes 再起動.
    cgc.clear_given_name(&given);
    cgc.send("再起動");
    cgc.send(ENTER);

    let server = rt.block_on(server.restart(|| {
        cgc.send(CTRL_S);
        let s = cgc.wait_until("the save to fail", |c| {
            c.contains("接続できません") || c.contains("再接続待ち")
        });
        assert!(s.contains("再起動"), "the edit is still on screen:\n{s}");
    }));
    cgc.wait_for("保存しました（版2）");
    cgc.wait_stream_up("the event stream again");

    // It is really stored, as version 2.
    let stored = rt
        .block_on(server.running.state.store.get_record(id))
        .unwrap()
        .expect("the record");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.body.core.child_name.given, "再起動");
    cgc.send(F10);
    cgc.wait_exit();
    rt.block_on(server.running.stop()).unwrap();
}

/// The README's first command: `tsunagu demo` starts the server in process on a fresh SQLite
/// file, opens the case list logged in as the demo caseworker, says how to switch accounts, and
/// switching shows another organisation's view.
#[test]
fn the_demo_command_opens_the_working_system() {
    let mut c = spawn_client(&["demo", "--records", "40"], 100, 30);
    let s = c.wait_for("ケース一覧");
    c.wait_for("児相 職員A（架空）");
    assert!(c.contents().contains("他のデモアカウントに切替"), "{s}");
    c.send(F9);
    c.wait_for("デモ用アカウントの切替");
    // Every demo account is offered, the organisation's administrator too.
    c.wait_for("demo-admin");
    c.send(DOWN);
    c.send(ENTER);
    c.wait_for("区 職員B（架空）");
    c.wait_for("ケース一覧");
    c.send(F10);
    assert!(c.wait_exit().success());
}

#[test]
fn wrong_server_and_wrong_password_are_told_in_japanese() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(start_server(5));
    let url = server.running.url();
    // Nothing listens on port 9 of loopback.
    let mut c = spawn_client(&["--server", "http://127.0.0.1:9"], 90, 26);
    c.login("demo-cgc", "x", "123456");
    c.wait_for("サーバーに接続できません");
    c.send(F10);
    assert!(c.wait_exit().success());

    let mut c = spawn_client(&["--server", &url], 90, 26);
    c.login("demo-cgc", "wrong-password", "000000");
    c.wait_for("ログインできません");
    c.send(F10);
    assert!(c.wait_exit().success());
    rt.block_on(server.running.stop()).unwrap();
}

/// A web server that is not tsunagu, a TLS mismatch and a malformed URL: each is told in
/// Japanese at the login, and the client goes on running.
#[test]
fn a_wrong_kind_of_server_is_told_in_japanese() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Any HTTP server answering an HTML page to everything.
    let garbage = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut sock, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let body = "<html><body>It works!</body></html>";
                    let _ = sock
                        .write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes())
                        .await;
                });
            }
        });
        addr
    });
    let mut c = spawn_client(&["--server", &format!("http://{garbage}")], 90, 26);
    c.login("demo-cgc", "x", "123456");
    c.wait_for("サーバーの応答が読めません");
    c.send(F10);
    assert!(c.wait_exit().success());

    // https:// to a server that speaks plain HTTP.
    let server = rt.block_on(start_server(5));
    let https = server.running.url().replace("http://", "https://");
    let mut c = spawn_client(&["--server", &https], 90, 26);
    c.login("demo-cgc", "x", "123456");
    c.wait_for("TLS（証明書）の確認に失敗しました");
    c.send(F10);
    assert!(c.wait_exit().success());

    let mut c = spawn_client(&["--server", "tsunagu.example"], 90, 26);
    c.login("demo-cgc", "x", "123456");
    c.wait_for("URLとして読めません");
    c.send(F10);
    assert!(c.wait_exit().success());
    rt.block_on(server.running.stop()).unwrap();
}

#[test]
fn sigterm_restores_the_terminal() {
    let mut c = spawn_client(&["--server", "http://127.0.0.1:9"], 90, 26);
    c.wait_for("ワンタイムコード");
    let pid = c.child.process_id().expect("pid");
    // SAFETY-free: kill(1) is the plain way to send a signal from a test.
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    c.wait_exit();
    let raw = c.raw.lock().unwrap().clone();
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(200)..]).to_string();
    assert!(tail.contains("\x1b[?1049l"), "{tail:?}");
}
