//! Network work off the UI loop. The app queues [`Cmd`]s; each runs in its own task and answers
//! with a [`Reply`] carrying the command's id, so the app can drop answers it no longer wants.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tsunagu_record::api::{
    CaseList, LoginRequest, LoginResponse, Notification, NotificationList, RecordViewEntry,
    SearchResults, UpdateRecord, VersionEntry,
};
use tsunagu_record::intake::{
    AttachIntake, ConfirmSafety, ConvertIntake, Converted, IntakeInput, IntakeList, IntakeView,
    UpdateIntake,
};
use tsunagu_record::{RecordBody, RecordView};

use crate::api::{ApiErr, Client, SseParser};

/// Logs a demo account in: (login) → (password, one-time code) for now and for the next step
/// (a code is accepted once, so a quick switch back needs the next one).
pub type DemoCredentials = fn(&str) -> Option<(String, [String; 2])>;

#[derive(Debug, Clone)]
pub struct Cmd {
    pub id: u64,
    pub server: String,
    pub token: Option<String>,
    pub kind: CmdKind,
}

#[derive(Debug, Clone)]
pub enum CmdKind {
    Login {
        login: String,
        password: String,
        otp: String,
    },
    DemoLogin {
        login: String,
    },
    Cases {
        query: String,
    },
    Record {
        id: i64,
    },
    Save {
        id: i64,
        update: UpdateRecord,
    },
    Create {
        body: RecordBody,
    },
    History {
        id: i64,
    },
    Views {
        id: i64,
    },
    Search {
        query: String,
    },
    Notifications,
    MarkRead {
        nid: i64,
        read: bool,
    },
    StartStream {
        last_id: i64,
    },
    StopStream,
    Logout,
    /// Receive a report (通告受理): saved at once.
    IntakeCreate {
        input: IntakeInput,
    },
    IntakeUpdate {
        id: i64,
        update: UpdateIntake,
    },
    IntakeGet {
        id: i64,
    },
    /// The organisation's intakes: unconfirmed ones (the duty list), or all.
    Intakes {
        all: bool,
    },
    IntakeAttach {
        id: i64,
        attach: AttachIntake,
    },
    IntakeConvert {
        id: i64,
        convert: ConvertIntake,
    },
    IntakeSafety {
        id: i64,
        confirm: ConfirmSafety,
    },
    RecordIntakes {
        id: i64,
    },
}

#[derive(Debug)]
pub struct Reply {
    pub id: u64,
    pub kind: ReplyKind,
}

#[derive(Debug)]
pub enum ReplyKind {
    LoggedIn(Result<LoginResponse, ApiErr>),
    Cases(Result<CaseList, ApiErr>),
    Record(Result<RecordView, ApiErr>),
    Saved(Result<RecordView, ApiErr>),
    History(Result<Vec<VersionEntry>, ApiErr>),
    Views(Result<Vec<RecordViewEntry>, ApiErr>),
    Search(Result<SearchResults, ApiErr>),
    Notifications(Result<NotificationList, ApiErr>),
    Marked(Result<(), ApiErr>),
    StreamUp,
    StreamDown(ApiErr),
    StreamEvent(Notification),
    Intake(Result<IntakeView, ApiErr>),
    Intakes(Result<IntakeList, ApiErr>),
    Converted(Result<Converted, ApiErr>),
    RecordIntakes(Result<IntakeList, ApiErr>),
}

/// Runs commands; holds one HTTP client per server (connection reuse) and the event stream.
pub struct Executor {
    tx: UnboundedSender<Reply>,
    clients: HashMap<String, Client>,
    stream: Option<JoinHandle<()>>,
    demo: Option<DemoCredentials>,
}

impl Executor {
    pub fn new(tx: UnboundedSender<Reply>, demo: Option<DemoCredentials>) -> Executor {
        Executor {
            tx,
            clients: HashMap::new(),
            stream: None,
            demo,
        }
    }

    fn client(&mut self, server: &str) -> Result<Client, String> {
        if let Some(c) = self.clients.get(server) {
            return Ok(c.clone());
        }
        let c = Client::new(server)?;
        self.clients.insert(server.to_string(), c.clone());
        Ok(c)
    }

    pub fn run(&mut self, cmd: Cmd) {
        let id = cmd.id;
        let tx = self.tx.clone();
        let client = match self.client(&cmd.server) {
            Ok(c) => c,
            Err(m) => {
                // A bad URL fails like a network error, with its own message.
                let err = ApiErr::Network(m);
                let kind = match cmd.kind {
                    CmdKind::Login { .. } | CmdKind::DemoLogin { .. } => {
                        ReplyKind::LoggedIn(Err(err))
                    }
                    CmdKind::StartStream { .. } => ReplyKind::StreamDown(err),
                    _ => return,
                };
                let _ = tx.send(Reply { id, kind });
                return;
            }
        };
        let token = cmd.token.unwrap_or_default();
        let send = move |kind: ReplyKind| {
            let _ = tx.send(Reply { id, kind });
        };
        match cmd.kind {
            CmdKind::Login {
                login,
                password,
                otp,
            } => {
                tokio::spawn(async move {
                    let req = LoginRequest {
                        login,
                        password,
                        otp,
                    };
                    send(ReplyKind::LoggedIn(
                        client
                            .send_json(Method::POST, "/auth/login", None, Some(&req))
                            .await,
                    ));
                });
            }
            CmdKind::DemoLogin { login } => {
                let creds = self.demo.and_then(|f| f(&login));
                tokio::spawn(async move {
                    let Some((password, codes)) = creds else {
                        send(ReplyKind::LoggedIn(Err(ApiErr::Network(
                            "デモ用アカウントではありません".into(),
                        ))));
                        return;
                    };
                    let mut last = Err(ApiErr::Network(String::new()));
                    for otp in codes {
                        let req = LoginRequest {
                            login: login.clone(),
                            password: password.clone(),
                            otp,
                        };
                        last = client
                            .send_json(Method::POST, "/auth/login", None, Some(&req))
                            .await;
                        if !matches!(&last, Err(e) if e.code() == "login_failed") {
                            break;
                        }
                    }
                    send(ReplyKind::LoggedIn(last));
                });
            }
            CmdKind::Cases { query } => {
                tokio::spawn(async move {
                    send(ReplyKind::Cases(
                        client.get(&format!("/records?{query}"), &token).await,
                    ));
                });
            }
            CmdKind::Record { id: rid } => {
                tokio::spawn(async move {
                    send(ReplyKind::Record(
                        client.get(&format!("/records/{rid}"), &token).await,
                    ));
                });
            }
            CmdKind::Save { id: rid, update } => {
                tokio::spawn(async move {
                    let path = format!("/records/{rid}");
                    send(ReplyKind::Saved(
                        client
                            .send_json(Method::PUT, &path, Some(&token), Some(&update))
                            .await,
                    ));
                });
            }
            CmdKind::Create { body } => {
                tokio::spawn(async move {
                    send(ReplyKind::Saved(
                        client
                            .send_json(Method::POST, "/records", Some(&token), Some(&body))
                            .await,
                    ));
                });
            }
            CmdKind::History { id: rid } => {
                tokio::spawn(async move {
                    send(ReplyKind::History(
                        client
                            .get(&format!("/records/{rid}/versions"), &token)
                            .await,
                    ));
                });
            }
            CmdKind::Views { id: rid } => {
                tokio::spawn(async move {
                    send(ReplyKind::Views(
                        client.get(&format!("/records/{rid}/views"), &token).await,
                    ));
                });
            }
            CmdKind::Search { query } => {
                tokio::spawn(async move {
                    send(ReplyKind::Search(
                        client.get(&format!("/search?{query}"), &token).await,
                    ));
                });
            }
            CmdKind::Notifications => {
                tokio::spawn(async move {
                    send(ReplyKind::Notifications(
                        client.get("/notifications?limit=200", &token).await,
                    ));
                });
            }
            CmdKind::MarkRead { nid, read } => {
                tokio::spawn(async move {
                    let path = format!(
                        "/notifications/{nid}/{}",
                        if read { "read" } else { "unread" }
                    );
                    let r: Result<(), ApiErr> = client
                        .send_json::<(), ()>(Method::POST, &path, Some(&token), None)
                        .await;
                    send(ReplyKind::Marked(r));
                });
            }
            CmdKind::IntakeCreate { input } => {
                tokio::spawn(async move {
                    send(ReplyKind::Intake(
                        client
                            .send_json(Method::POST, "/intakes", Some(&token), Some(&input))
                            .await,
                    ));
                });
            }
            CmdKind::IntakeUpdate { id: iid, update } => {
                tokio::spawn(async move {
                    let path = format!("/intakes/{iid}");
                    send(ReplyKind::Intake(
                        client
                            .send_json(Method::PUT, &path, Some(&token), Some(&update))
                            .await,
                    ));
                });
            }
            CmdKind::IntakeGet { id: iid } => {
                tokio::spawn(async move {
                    send(ReplyKind::Intake(
                        client.get(&format!("/intakes/{iid}"), &token).await,
                    ));
                });
            }
            CmdKind::Intakes { all } => {
                tokio::spawn(async move {
                    let filter = if all { "all" } else { "unconfirmed" };
                    send(ReplyKind::Intakes(
                        client
                            .get(&format!("/intakes?filter={filter}&limit=200"), &token)
                            .await,
                    ));
                });
            }
            CmdKind::IntakeAttach { id: iid, attach } => {
                tokio::spawn(async move {
                    let path = format!("/intakes/{iid}/attach");
                    send(ReplyKind::Intake(
                        client
                            .send_json(Method::POST, &path, Some(&token), Some(&attach))
                            .await,
                    ));
                });
            }
            CmdKind::IntakeConvert { id: iid, convert } => {
                tokio::spawn(async move {
                    let path = format!("/intakes/{iid}/convert");
                    send(ReplyKind::Converted(
                        client
                            .send_json(Method::POST, &path, Some(&token), Some(&convert))
                            .await,
                    ));
                });
            }
            CmdKind::IntakeSafety { id: iid, confirm } => {
                tokio::spawn(async move {
                    let path = format!("/intakes/{iid}/safety");
                    send(ReplyKind::Intake(
                        client
                            .send_json(Method::POST, &path, Some(&token), Some(&confirm))
                            .await,
                    ));
                });
            }
            CmdKind::RecordIntakes { id: rid } => {
                tokio::spawn(async move {
                    send(ReplyKind::RecordIntakes(
                        client.get(&format!("/records/{rid}/intakes"), &token).await,
                    ));
                });
            }
            CmdKind::StartStream { last_id } => {
                if let Some(h) = self.stream.take() {
                    h.abort();
                }
                self.stream = Some(tokio::spawn(stream_task(client, token, last_id, send)));
            }
            // Both end a session here (lost, or logged out): its stream and its cached answers go.
            CmdKind::StopStream => {
                if let Some(h) = self.stream.take() {
                    h.abort();
                }
                client.forget_cache();
            }
            CmdKind::Logout => {
                if let Some(h) = self.stream.take() {
                    h.abort();
                }
                client.forget_cache();
                tokio::spawn(async move {
                    let _: Result<(), ApiErr> = client
                        .send_json::<(), ()>(Method::POST, "/auth/logout", Some(&token), None)
                        .await;
                });
            }
        }
    }
}

/// Keeps the event stream open: after a drop it reconnects with Last-Event-ID (the last id
/// received), backing off from 1 s up to 30 s. A lost session ends it.
/// How long the event stream may be silent before the link is taken as dead.
const STREAM_SILENCE: Duration = Duration::from_secs(45);

async fn stream_task(client: Client, token: String, mut last_id: i64, send: impl Fn(ReplyKind)) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match client.stream(&token, last_id).await {
            Ok(resp) => {
                send(ReplyKind::StreamUp);
                backoff = Duration::from_secs(1);
                let mut body = resp.bytes_stream();
                let mut parser = SseParser::default();
                // The server sends a keep-alive comment every 15 s: a link that stays silent
                // three times as long is dead (a dropped VPN sends no FIN), so reconnect.
                while let Ok(Some(chunk)) = tokio::time::timeout(STREAM_SILENCE, body.next()).await
                {
                    let Ok(chunk) = chunk else {
                        break;
                    };
                    for ev in parser.feed(&chunk) {
                        if ev.event != "notification" && !ev.event.is_empty() {
                            continue;
                        }
                        if let Ok(n) = crate::api::decode_reply::<Notification>(ev.data.as_bytes())
                        {
                            last_id = last_id.max(n.id);
                            send(ReplyKind::StreamEvent(n));
                        }
                    }
                }
                send(ReplyKind::StreamDown(ApiErr::Network(
                    "通知の接続が切れました（再接続します）".into(),
                )));
            }
            Err(e) => {
                let lost = e.is_auth_lost();
                send(ReplyKind::StreamDown(e));
                if lost {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
