//! Login: server, login ID, password, one-time code. Errors in Japanese; a locked account is
//! named as such.

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::Frame;

use crate::app::{App, Conn, Level, Screen};
use crate::keymap::Action;
use crate::tasks::CmdKind;
use crate::widgets::{self, input::LineInput};
use tsunagu_record::api::LoginResponse;

use crate::api::ApiErr;

pub const LABELS: [&str; 4] = ["サーバー", "ログインID", "パスワード", "ワンタイムコード"];

#[derive(Debug, Clone)]
pub struct LoginState {
    pub inputs: [LineInput; 4],
    pub focus: usize,
    pub busy: bool,
    pub error: Option<String>,
    /// The login of the last session, to tell a re-login (keep the draft) from a new user.
    pub user: String,
}

impl LoginState {
    pub fn new(server: &str) -> LoginState {
        LoginState {
            inputs: [
                LineInput::new(server),
                LineInput::new(""),
                LineInput::new("").masked(),
                LineInput::new(""),
            ],
            focus: if server.is_empty() { 0 } else { 1 },
            busy: false,
            error: None,
            user: String::new(),
        }
    }

    pub fn input(&mut self, k: KeyEvent) {
        self.inputs[self.focus].input(k);
    }

    pub fn paste(&mut self, s: &str) {
        self.inputs[self.focus].paste(s);
    }

    /// Forget the password and code (kept only for the request that used them).
    pub fn reset_secrets(&mut self) {
        self.inputs[2].set("");
        self.inputs[3].set("");
        self.busy = false;
        self.focus = if self.inputs[1].value().is_empty() {
            1
        } else {
            2
        };
    }
}

impl App {
    pub(crate) fn login_action(&mut self, a: Action) {
        let l = &mut self.login;
        match a {
            Action::NextField | Action::Down => l.focus = (l.focus + 1) % 4,
            Action::PrevField | Action::Up => l.focus = (l.focus + 3) % 4,
            Action::Submit | Action::Open => {
                if l.focus < 3 && l.inputs[l.focus + 1].value().is_empty() {
                    l.focus += 1;
                    return;
                }
                self.submit_login();
            }
            _ => {}
        }
    }

    fn submit_login(&mut self) {
        let v: Vec<String> = self
            .login
            .inputs
            .iter()
            .map(|i| i.value().trim().to_string())
            .collect();
        if let Err(m) = crate::api::parse_base(&v[0]) {
            self.login.error = Some(m);
            self.login.focus = 0;
            return;
        }
        for (i, label) in LABELS.iter().enumerate().skip(1) {
            if v[i].is_empty() {
                self.login.error = Some(format!("{label}を入力してください"));
                self.login.focus = i;
                return;
            }
        }
        self.server = v[0].trim_end_matches('/').to_string();
        self.login.busy = true;
        self.login.error = None;
        self.conn = Conn::Connecting;
        self.request(
            "login",
            CmdKind::Login {
                login: v[1].clone(),
                password: v[2].clone(),
                otp: v[3].clone(),
            },
        );
    }

    pub(crate) fn on_logged_in(&mut self, res: Result<LoginResponse, ApiErr>) {
        self.login.busy = false;
        match res {
            Ok(r) => {
                let same_user = self.me.as_ref().is_some_and(|m| m.login == r.me.login);
                if !same_user {
                    // Another person: nothing of the previous one's work stays on screen.
                    self.record = None;
                    self.intake = None;
                    self.intakes = Default::default();
                    self.due.clear();
                    self.search = crate::screens::search::SearchState::new();
                    self.save_retry_at = None;
                }
                self.token = Some(r.token);
                self.login.user = r.me.login.clone();
                self.login.inputs[1].set(&r.me.login);
                self.login.reset_secrets();
                self.login.error = None;
                self.message = None;
                let hello = if self.demo_accounts.is_empty() {
                    format!(
                        "{}（{}）としてログインしました",
                        r.me.display_name, r.me.org.name
                    )
                } else {
                    // The demo's first screen says how to see the other tiers (the status line
                    // names the organisation; this must fit 80 columns).
                    format!(
                        "{}としてログインしました。{}: 他のデモアカウントに切替",
                        r.me.display_name,
                        self.keymap.key_hint("case_list", Action::SwitchAccount)
                    )
                };
                self.say(Level::Info, hello);
                self.me = Some(r.me);
                self.conn = Conn::Online;
                self.screen = if self.record.is_some() {
                    Screen::Record
                } else if self.intake.is_some() {
                    Screen::Intake
                } else {
                    Screen::CaseList
                };
                self.after_login();
                if self.record.as_ref().is_some_and(|r| r.save_pending) {
                    self.save();
                }
            }
            Err(e) => {
                self.conn = if e.is_network() {
                    Conn::Offline(e.message())
                } else {
                    Conn::Idle
                };
                self.login.error = Some(e.message());
                self.screen = Screen::Login;
                self.login.reset_secrets();
                self.login.focus = if e.is_network() { 0 } else { 2 };
            }
        }
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let box_area = widgets::centered(area, 64, 16);
    let inner = widgets::overlay(
        f,
        box_area,
        app,
        "tsunagu ログイン",
        "Tab: 次の欄  Enter: ログイン  F1: キー一覧  F10: 終了",
    );
    let th = app.theme.clone();
    let el = app.look.ellipsis;
    widgets::line(
        f,
        Rect { height: 1, ..inner },
        "要保護児童等に関する情報共有システム",
        th.style("title"),
        el,
    );
    for (i, label) in LABELS.iter().enumerate() {
        let y = inner.y + 2 + i as u16 * 2;
        if y >= inner.bottom() {
            break;
        }
        let row = Rect {
            x: inner.x,
            y,
            width: inner.width,
            height: 1,
        };
        widgets::line(f, Rect { width: 18, ..row }, label, th.style("normal"), el);
        let focused = app.login.focus == i && app.overlay.is_none();
        let style = if focused {
            th.style("input_focus")
        } else {
            th.style("input")
        };
        let field = Rect {
            x: row.x + 18,
            width: row.width.saturating_sub(18),
            ..row
        };
        app.login.inputs[i].draw(f, field, style, focused);
    }
    let msg_y = inner.y + 11;
    if msg_y < inner.bottom() {
        let row = Rect {
            x: inner.x,
            y: msg_y,
            width: inner.width,
            height: 1,
        };
        if app.login.busy {
            widgets::line(f, row, "ログインしています", th.style("dim"), el);
        } else if let Some(e) = &app.login.error {
            // Lockout and TLS messages are long: wrap them over the rows left in the box.
            let rows = Rect {
                height: inner.bottom().saturating_sub(msg_y),
                ..row
            };
            f.render_widget(
                ratatui::widgets::Paragraph::new(crate::text::sanitize(e))
                    .wrap(ratatui::widgets::Wrap { trim: true })
                    .style(th.style("error")),
                rows,
            );
        }
    }
}
