//! The one owner of state. Input events, API replies and timers come in; state changes,
//! commands for the network go out (`outbox`), and `dirty` says whether to draw again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use crossterm::event::{Event, KeyEvent, KeyEventKind};
use tsunagu_record::api::{CaseSummary, Me, Notification};

use crate::api::ApiErr;
use crate::keymap::{Action, Key, Keymap};
use crate::screens::case_list::CaseListState;
use crate::screens::intake::IntakeState;
use crate::screens::intake_list::IntakesState;
use crate::screens::login::LoginState;
use crate::screens::notifications::NotificationsState;
use crate::screens::record::RecordState;
use crate::screens::search::SearchState;
use crate::tasks::{Cmd, CmdKind, Reply, ReplyKind};
use crate::theme::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Login,
    CaseList,
    Record,
    /// 通告受理: one intake being typed or handled.
    Intake,
    /// The organisation's intakes and their safety deadlines.
    Intakes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Search,
    Notifications,
    Help,
    Accounts,
    /// 業務メニュー: every workflow by number key.
    Menu,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    /// Not logged in yet.
    Idle,
    Connecting,
    Online,
    /// The last request could not reach the server; work continues, edits stay in memory.
    Offline(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Settings that change how things are drawn.
#[derive(Debug, Clone)]
pub struct Look {
    /// No character of ambiguous East Asian width anywhere: ASCII borders, "~" for "…".
    pub ascii: bool,
    pub ellipsis: &'static str,
}

impl Look {
    /// The look for a terminal that draws ambiguous-width characters one cell wide
    /// (`narrow`), or two (Tera Term's Japanese set-up, the default): then none is drawn, or
    /// rows would overflow.
    pub fn for_terminal(narrow: bool) -> Look {
        if narrow {
            Look {
                ascii: false,
                ellipsis: "…",
            }
        } else {
            Look {
                ascii: true,
                ellipsis: "~",
            }
        }
    }
}

/// A demo account the switcher offers: (login, what it shows).
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub login: String,
    pub purpose: String,
}

pub struct App {
    pub keymap: Keymap,
    pub theme: Theme,
    pub look: Look,
    pub today: NaiveDate,
    pub size: (u16, u16),
    pub screen: Screen,
    pub overlay: Option<Overlay>,
    pub server: String,
    pub token: Option<String>,
    pub me: Option<Me>,
    pub conn: Conn,
    pub message: Option<(Level, String)>,
    pub login: LoginState,
    pub cases: CaseListState,
    pub record: Option<RecordState>,
    pub intake: Option<IntakeState>,
    pub intakes: IntakesState,
    /// The earliest unconfirmed intake of each record (for the case list's safety column).
    pub due: HashMap<i64, tsunagu_record::intake::IntakeSummary>,
    pub menu_sel: usize,
    /// Tests fix the clock; otherwise the system's.
    pub fixed_now: Option<chrono::DateTime<chrono::Utc>>,
    pub search: SearchState,
    pub notes: NotificationsState,
    pub help_scroll: usize,
    /// The keymap section whose keys the help overlay lists.
    pub help_section: &'static str,
    pub demo_accounts: Vec<DemoAccount>,
    pub account_sel: usize,
    /// Problems found at start (keymap, theme, config): shown until a key is pressed.
    pub startup_warnings: Vec<String>,
    pub dirty: bool,
    /// Ctrl+L: the next draw first clears the terminal, so whatever garbled it (a line
    /// noise, another program's output over ssh) is gone.
    pub clear_screen: bool,
    pub quit: bool,
    pub outbox: Vec<Cmd>,
    next_id: u64,
    /// The id of the latest command of each kind; replies with another id are stale.
    latest: HashMap<&'static str, u64>,
    /// When a failed save is tried again.
    pub save_retry_at: Option<Instant>,
    pub save_backoff: Duration,
}

impl App {
    pub fn new(keymap: Keymap, theme: Theme, look: Look, server: String, today: NaiveDate) -> App {
        App {
            keymap,
            theme,
            look,
            today,
            size: (80, 24),
            screen: Screen::Login,
            overlay: None,
            login: LoginState::new(&server),
            server,
            token: None,
            me: None,
            conn: Conn::Idle,
            message: None,
            cases: CaseListState::default(),
            record: None,
            intake: None,
            intakes: IntakesState::default(),
            due: HashMap::new(),
            menu_sel: 0,
            fixed_now: None,
            search: SearchState::new(),
            notes: NotificationsState::default(),
            help_scroll: 0,
            help_section: "login",
            demo_accounts: vec![],
            account_sel: 0,
            startup_warnings: vec![],
            dirty: true,
            clear_screen: false,
            quit: false,
            outbox: vec![],
            next_id: 1,
            latest: HashMap::new(),
            save_retry_at: None,
            save_backoff: Duration::from_secs(2),
        }
    }

    /// Queues a command; `slot` names the kind whose older replies become stale.
    pub fn request(&mut self, slot: &'static str, kind: CmdKind) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.latest.insert(slot, id);
        self.outbox.push(Cmd {
            id,
            server: self.server.clone(),
            token: self.token.clone(),
            kind,
        });
        id
    }

    pub fn is_latest(&self, slot: &str, id: u64) -> bool {
        self.latest.get(slot) == Some(&id)
    }

    pub fn forget(&mut self, slot: &str) {
        self.latest.remove(slot);
    }

    /// The user's organisation is a centre or a municipality: it keeps records, receives
    /// intakes and searches (the ministry and the operator do none of these).
    pub fn keeps_cases(&self) -> bool {
        self.me.as_ref().is_some_and(|m| {
            matches!(
                m.org.kind,
                tsunagu_record::OrgKind::Cgc | tsunagu_record::OrgKind::Municipality
            )
        })
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.fixed_now.unwrap_or_else(chrono::Utc::now)
    }

    pub fn say(&mut self, level: Level, msg: impl Into<String>) {
        self.message = Some((level, msg.into()));
        self.dirty = true;
    }

    /// The keymap section of what has the keyboard now.
    pub fn section(&self) -> &'static str {
        match self.overlay {
            Some(Overlay::Search) => "search",
            Some(Overlay::Notifications) => "notifications",
            Some(Overlay::Help) => "help",
            Some(Overlay::Accounts) => "accounts",
            Some(Overlay::Menu) => "menu",
            None => match self.screen {
                Screen::Login => "login",
                Screen::CaseList => "case_list",
                Screen::Record => match &self.record {
                    Some(r) if r.conflict.is_some() => "conflict",
                    Some(r) if r.goto.is_some() => "record_goto",
                    Some(r) if r.reader.is_some() => "reader",
                    Some(r) if r.editing.is_some() => "record_edit",
                    Some(r) if !matches!(r.side, crate::screens::record::Side::None) => "history",
                    _ => "record",
                },
                Screen::Intake => match &self.intake {
                    Some(i) if i.editing() => "record_edit",
                    _ => "intake",
                },
                Screen::Intakes => "intakes",
            },
        }
    }

    /// Whether a text input has the keyboard (plain characters are typed, not looked up).
    fn typing(&self) -> bool {
        matches!(
            self.section(),
            "login" | "search" | "record_edit" | "record_goto"
        )
    }

    pub fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Key(k) if k.kind != KeyEventKind::Release => self.on_key(k),
            Event::Paste(s) => self.on_paste(&s),
            Event::Resize(w, h) => {
                self.size = (w, h);
                self.dirty = true;
            }
            _ => {}
        }
    }

    pub fn on_key(&mut self, k: KeyEvent) {
        if !self.startup_warnings.is_empty() {
            // The start-up report stays until acknowledged, so it cannot scroll by unseen.
            self.startup_warnings.clear();
            self.dirty = true;
            return;
        }
        let key = Key::from_event(&k);
        // Ctrl+C always quits, whatever the keymap says: the way out must never be lost.
        if key.code == crossterm::event::KeyCode::Char('c')
            && key.mods.contains(crossterm::event::KeyModifiers::CONTROL)
        {
            self.quit = true;
            return;
        }
        let section = self.section();
        let action = if self.typing() && key.is_text() {
            None
        } else {
            self.keymap.lookup(section, &key)
        };
        // Over ssh an Esc and the next key often arrive in one packet, which the terminal
        // parser reads as Alt+key. Unless Alt+key means something here, they are the two keys
        // the user pressed: Esc first, then the key.
        if action.is_none() && k.modifiers.contains(crossterm::event::KeyModifiers::ALT) {
            let esc = KeyEvent::new(
                crossterm::event::KeyCode::Esc,
                crossterm::event::KeyModifiers::NONE,
            );
            let mut plain = k;
            plain.modifiers.remove(crossterm::event::KeyModifiers::ALT);
            self.on_key(esc);
            self.on_key(plain);
            return;
        }
        self.dirty = true;
        match action {
            Some(a) => self.on_action(a),
            None => self.on_text_key(k),
        }
    }

    fn on_action(&mut self, a: Action) {
        // Global actions first; they open overlays over any screen.
        match a {
            Action::Quit => {
                if self.record.as_ref().is_some_and(|r| r.unsaved())
                    && self.message.as_ref().map(|m| m.1.as_str()) != Some(QUIT_CONFIRM)
                {
                    self.say(Level::Warn, QUIT_CONFIRM);
                } else {
                    self.quit = true;
                }
                return;
            }
            Action::Help if self.overlay != Some(Overlay::Help) => {
                self.help_scroll = 0;
                self.help_section = self.section();
                self.overlay = Some(Overlay::Help);
                return;
            }
            Action::Search if self.token.is_some() && self.overlay != Some(Overlay::Search) => {
                self.overlay = Some(Overlay::Search);
                return;
            }
            Action::Notifications
                if self.token.is_some() && self.overlay != Some(Overlay::Notifications) =>
            {
                self.overlay = Some(Overlay::Notifications);
                self.notes.sort();
                return;
            }
            Action::Redraw => {
                self.clear_screen = true;
                return;
            }
            Action::SwitchAccount if !self.demo_accounts.is_empty() => {
                self.overlay = Some(Overlay::Accounts);
                return;
            }
            Action::Menu if self.token.is_some() && self.overlay != Some(Overlay::Menu) => {
                self.overlay = Some(Overlay::Menu);
                return;
            }
            Action::NewIntake if self.token.is_some() => {
                self.new_intake();
                return;
            }
            _ => {}
        }
        match self.overlay {
            Some(Overlay::Help) => match a {
                Action::Back | Action::Help => self.overlay = None,
                Action::Down => self.help_scroll += 1,
                Action::Up => self.help_scroll = self.help_scroll.saturating_sub(1),
                _ => {}
            },
            Some(Overlay::Accounts) => match a {
                Action::Back => self.overlay = None,
                Action::Down => {
                    self.account_sel =
                        (self.account_sel + 1).min(self.demo_accounts.len().saturating_sub(1))
                }
                Action::Up => self.account_sel = self.account_sel.saturating_sub(1),
                Action::Open => {
                    let login = self.demo_accounts[self.account_sel].login.clone();
                    self.overlay = None;
                    self.demo_login(&login);
                }
                _ => {}
            },
            Some(Overlay::Menu) => self.menu_action(a),
            Some(Overlay::Search) => self.search_action(a),
            Some(Overlay::Notifications) => self.notifications_action(a),
            None => match self.screen {
                Screen::Login => self.login_action(a),
                Screen::CaseList => self.case_list_action(a),
                Screen::Record => self.record_action(a),
                Screen::Intake => self.intake_action(a),
                Screen::Intakes => self.intakes_action(a),
            },
        }
    }

    fn on_text_key(&mut self, k: KeyEvent) {
        match self.section() {
            "login" => self.login.input(k),
            "search" => self.search_input(k),
            "record_edit" if self.screen == Screen::Intake => {
                if let Some(e) = self.intake.as_mut().and_then(|i| i.editor()) {
                    e.key(k);
                }
            }
            "record_goto" => {
                if let Some(g) = self.record.as_mut().and_then(|r| r.goto.as_mut()) {
                    g.input(k);
                }
            }
            "record_edit" => {
                if let Some(r) = self.record.as_mut() {
                    r.type_key(k);
                }
            }
            _ => self.dirty = false,
        }
    }

    fn on_paste(&mut self, s: &str) {
        self.dirty = true;
        match self.section() {
            "login" => self.login.paste(s),
            "search" => {
                self.search.paste(s);
                self.search_changed();
            }
            "record_edit" if self.screen == Screen::Intake => {
                if let Some(e) = self.intake.as_mut().and_then(|i| i.editor()) {
                    e.paste(s);
                }
            }
            "record_edit" => {
                if let Some(r) = self.record.as_mut() {
                    r.paste(s);
                }
            }
            _ => {}
        }
    }

    /// Ends the session on the server and here. An unsaved record is not thrown away by it:
    /// the user is told to save or discard first.
    pub fn logout(&mut self) {
        if self.record.as_ref().is_some_and(|r| r.unsaved()) {
            self.say(
                Level::Warn,
                "保存していない変更があります。保存するか取り消してからログアウトしてください",
            );
            return;
        }
        self.end_session();
        self.screen = Screen::Login;
        self.say(Level::Info, "ログアウトしました");
    }

    /// Revokes the current token on the server (best effort) and forgets everything of it.
    fn end_session(&mut self) {
        if self.token.is_some() {
            self.request("logout", CmdKind::Logout);
        }
        self.token = None;
        self.me = None;
        self.conn = Conn::Idle;
        self.overlay = None;
        self.record = None;
        self.intake = None;
        self.intakes = IntakesState::default();
        self.due.clear();
        self.cases = CaseListState::default();
        self.search = SearchState::new();
        self.notes = NotificationsState::default();
        self.login.reset_secrets();
        // Answers still on their way belong to the old session.
        for slot in [
            "cases", "record", "save", "side", "search", "notes", "stream",
        ] {
            self.forget(slot);
        }
    }

    /// Logs in as a demo account (demo mode only), keeping nothing of the previous one.
    pub fn demo_login(&mut self, login: &str) {
        if self.record.as_ref().is_some_and(|r| r.unsaved()) {
            self.say(
                Level::Warn,
                "保存していない変更があります。保存するか取り消してから切り替えてください",
            );
            return;
        }
        self.end_session();
        self.login.user = login.to_string();
        self.login.busy = true;
        self.conn = Conn::Connecting;
        self.say(Level::Info, format!("{login} でログインしています"));
        self.request(
            "login",
            CmdKind::DemoLogin {
                login: login.to_string(),
            },
        );
    }

    pub fn on_reply(&mut self, r: Reply) {
        self.dirty = true;
        match r.kind {
            ReplyKind::LoggedIn(res) if self.is_latest("login", r.id) => self.on_logged_in(res),
            ReplyKind::Cases(res) if self.is_latest("cases", r.id) => self.on_cases(res),
            ReplyKind::Record(res) if self.is_latest("record", r.id) => self.on_record(res),
            ReplyKind::Saved(res) if self.is_latest("save", r.id) => self.on_saved(res),
            ReplyKind::History(res) if self.is_latest("side", r.id) => self.on_history(res),
            ReplyKind::Views(res) if self.is_latest("side", r.id) => self.on_views(res),
            ReplyKind::Search(res) if self.is_latest("search", r.id) => self.on_search(res),
            ReplyKind::Search(res) if self.is_latest("intake_lookup", r.id) => {
                self.on_intake_lookup(res)
            }
            ReplyKind::Intake(res) if self.is_latest("intake_save", r.id) => self.on_intake(res),
            ReplyKind::Intakes(res) if self.is_latest("intakes", r.id) => self.on_intakes(res),
            ReplyKind::Intakes(res) if self.is_latest("due", r.id) => self.on_due(res),
            ReplyKind::Converted(res) if self.is_latest("save", r.id) => self.on_converted(res),
            ReplyKind::RecordIntakes(res) if self.is_latest("record_intakes", r.id) => {
                if let (Some(rec), Ok(l)) = (self.record.as_mut(), res) {
                    rec.intakes = l.items;
                }
            }
            ReplyKind::Notifications(res) if self.is_latest("notes", r.id) => {
                self.on_notifications(res)
            }
            ReplyKind::Marked(res) => {
                if let Err(e) = res {
                    self.on_error(&e);
                }
            }
            ReplyKind::StreamUp if self.is_latest("stream", r.id) => {
                self.notes.stream_up = true;
                self.online();
            }
            ReplyKind::StreamDown(e) if self.is_latest("stream", r.id) => {
                self.notes.stream_up = false;
                if e.is_auth_lost() {
                    self.session_lost();
                } else if e.is_network() {
                    self.conn = Conn::Offline(e.message());
                }
            }
            ReplyKind::StreamEvent(n) if self.is_latest("stream", r.id) => self.on_notification(n),
            _ => self.dirty = false, // stale: an answer nobody waits for any more
        }
    }

    pub fn online(&mut self) {
        let was_offline = matches!(self.conn, Conn::Offline(_));
        self.conn = Conn::Online;
        // Back online: unsaved edits that failed to save go now rather than at the next retry.
        if was_offline && self.save_retry_at.is_some() {
            self.save_retry_at = Some(Instant::now());
        }
    }

    /// A failed request: network trouble keeps everything and says so; a lost session goes to
    /// the login screen with the draft kept in memory.
    pub fn on_error(&mut self, e: &ApiErr) {
        if e.is_auth_lost() {
            self.session_lost();
        } else if e.is_network() {
            self.conn = Conn::Offline(e.message());
            self.say(Level::Error, e.message());
        } else {
            self.say(Level::Error, e.message());
        }
    }

    pub fn session_lost(&mut self) {
        self.token = None;
        self.overlay = None;
        self.screen = Screen::Login;
        self.conn = Conn::Idle;
        self.request("stream", CmdKind::StopStream);
        // Answers still on their way belong to the lost session; the record (a draft the user
        // may be typing) stays and is saved after the next login.
        for slot in [
            "cases",
            "side",
            "search",
            "notes",
            "intakes",
            "due",
            "intake_lookup",
            "record_intakes",
        ] {
            self.forget(slot);
        }
        self.login.reset_secrets();
        let keep = if self.record.as_ref().is_some_and(|r| r.unsaved()) {
            "（編集中の内容は保持しています。ログイン後に保存します）"
        } else {
            ""
        };
        self.say(
            Level::Warn,
            format!("セッションが切れました。再ログインしてください{keep}"),
        );
    }

    pub fn after_login(&mut self) {
        self.notes = NotificationsState::default();
        self.request("notes", CmdKind::Notifications);
        self.request("stream", CmdKind::StartStream { last_id: 0 });
        self.load_cases(false);
        self.load_due();
    }

    /// The earliest moment a timer needs the loop: search debounce, save retry.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.search.debounce_until, self.save_retry_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn on_timer(&mut self, now: Instant) {
        if self.search.debounce_until.is_some_and(|t| t <= now) {
            self.search.debounce_until = None;
            self.run_search();
        }
        if self.save_retry_at.is_some_and(|t| t <= now) {
            self.save_retry_at = None;
            if self.token.is_some() {
                self.save();
            }
        }
    }

    pub fn selected_case(&self) -> Option<&CaseSummary> {
        self.cases.items.get(self.cases.selected)
    }

    /// A notification from the stream. An open record it concerns is read again at once when
    /// nothing is being edited there (else the user is told, and saving merges); an open list
    /// that shows the record says so.
    pub fn on_notification(&mut self, n: Notification) {
        let rid = n.record_id;
        let who = n.from_org_name.clone();
        let what = match n.kind {
            tsunagu_record::api::NotificationKind::RecordUpdated => "更新",
            tsunagu_record::api::NotificationKind::IntakeForwarded => "通告を送付",
            _ => "",
        };
        self.notes.push(n);
        let Some(rid) = rid.filter(|_| !what.is_empty()) else {
            return;
        };
        let record_open = self.screen == Screen::Record
            && self
                .record
                .as_ref()
                .is_some_and(|r| r.id == Some(rid) && !r.loading);
        if record_open {
            let busy = self.record.as_ref().is_some_and(|r| {
                r.unsaved() || r.conflict.is_some() || r.reader.is_some() || r.goto.is_some()
            });
            if busy {
                self.say(
                    Level::Warn,
                    format!("この記録を{who}が{what}しました。保存すると統合されます（編集を終えたら F5 で読み直せます）"),
                );
            } else {
                self.reload_record(rid);
                self.say(
                    Level::Info,
                    format!("この記録を{who}が{what}したため読み直しました"),
                );
            }
        } else if self.screen == Screen::CaseList
            && self.overlay.is_none()
            && self.cases.items.iter().any(|c| c.id == rid)
        {
            self.say(
                Level::Info,
                format!("一覧の記録 {rid} を{who}が{what}しました（F5 で再読み込み）"),
            );
        }
    }
}

pub const QUIT_CONFIRM: &str = "保存していない変更があります。もう一度押すと変更を捨てて終了します";
