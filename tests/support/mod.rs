//! Test harness: a real server on SQLite with the demo data, and the real client binary in a
//! pseudo-terminal whose output feeds a vt100 screen, with wait-for-text helpers.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use tsunagu_server::app::{self, Running};
use tsunagu_server::auth::{self, PasswordCost};
use tsunagu_server::clock::Clock;
use tsunagu_server::config::Config;
use tsunagu_server::seed;

/// Generous: the machine may be loaded (two cores, parallel test binaries).
pub const WAIT: Duration = Duration::from_secs(60);

pub const CHEAP: PasswordCost = PasswordCost {
    memory_kib: 256,
    iterations: 1,
};

pub struct Server {
    pub running: Running,
    pub dir: tempfile::TempDir,
}

pub async fn start_server(records: usize) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        database_url: format!("sqlite://{}", dir.path().join("e2e.sqlite").display()),
        ..Config::default()
    };
    config.auth.argon2_memory_kib = CHEAP.memory_kib;
    config.auth.argon2_iterations = CHEAP.iterations;
    let store = app::open_keyed_store(&config).await.expect("store");
    seed::seed_demo_database(
        store.as_ref(),
        CHEAP,
        records,
        20261125,
        &Clock::default(),
        &app::totp_key(&config, store.as_ref())
            .await
            .expect("TOTP key"),
        |_| {},
    )
    .await
    .expect("seed");
    let state = app::build_state(store, config).await.expect("state");
    let running = Running::start(state).await.expect("server");
    Server { running, dir }
}

impl Server {
    /// Stops the server and starts it again on the same port and database, as an operator's
    /// restart looks to clients. `between` runs while it is down.
    pub async fn restart(self, between: impl FnOnce()) -> Server {
        let Server { running, dir } = self;
        let addr = running.addr.to_string();
        running.stop().await.expect("stop");
        between();
        let config = Config {
            database_url: format!("sqlite://{}", dir.path().join("e2e.sqlite").display()),
            ..Config::default()
        };
        let store = app::open_keyed_store(&config).await.expect("store");
        let state = app::build_state(store, config).await.expect("state");
        let running = Running::start_at(state, &addr)
            .await
            .expect("restart on the same port");
        Server { running, dir }
    }
}

/// A one-time code for `login`, `ahead` 30-second steps from now (a code is accepted once,
/// so two logins of one account use different steps).
pub fn otp(login: &str, ahead: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    auth::totp_code(&seed::demo_totp_secret(login), now + 30 * ahead).expect("totp")
}

pub struct Client {
    pub screen: Arc<Mutex<vt100::Parser>>,
    /// Every byte the client wrote, to check what it sends to the terminal.
    pub raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    pub child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
    _config: tempfile::TempDir,
}

pub fn spawn_client(args: &[&str], cols: u16, rows: u16) -> Client {
    let pty = native_pty_system();
    let pair = pty
        .openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("pty");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_tsunagu"));
    for a in args {
        cmd.arg(a);
    }
    // A config directory of its own: no user keymap or theme changes what the test sees.
    let config = tempfile::tempdir().expect("config dir");
    cmd.env("XDG_CONFIG_HOME", config.path());
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("NO_COLOR");
    cmd.env_remove("TSUNAGU_SERVER");
    let child = pair.slave.spawn_command(cmd).expect("spawn client");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let writer = pair.master.take_writer().expect("writer");
    let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
    let raw = Arc::new(Mutex::new(Vec::new()));
    let (s2, r2) = (screen.clone(), raw.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            s2.lock().unwrap().process(&buf[..n]);
            r2.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    Client {
        screen,
        raw,
        writer,
        child,
        _master: pair.master,
        _config: config,
    }
}

impl Client {
    pub fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    pub fn send(&mut self, s: &str) {
        self.writer.write_all(s.as_bytes()).expect("write to pty");
        self.writer.flush().expect("flush pty");
        // Keys one at a time, as a person types: a burst could arrive as a paste-like chunk.
        std::thread::sleep(Duration::from_millis(30));
    }

    pub fn keys(&mut self, keys: &[&str]) {
        for k in keys {
            self.send(k);
        }
    }

    /// Waits until `pred` holds for the screen text; panics with the screen when it never does.
    pub fn wait_until(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let c = self.contents();
            if pred(&c) {
                return c;
            }
            if start.elapsed() > WAIT {
                panic!("timed out waiting for {what}; screen:\n{c}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_for(&self, text: &str) -> String {
        self.wait_until(text, |c| c.contains(text))
    }

    pub fn login(&mut self, login: &str, password: &str, otp: &str) {
        self.wait_for("ワンタイムコード");
        self.send(login);
        self.send(TAB);
        self.send(password);
        self.send(TAB);
        self.send(otp);
        self.send(ENTER);
    }

    /// Waits until the status line says the event stream is connected.
    pub fn wait_stream_up(&self, what: &str) -> String {
        self.wait_until(what, |c| c.contains("接続中 ") && !c.contains("再接続待ち"))
    }

    /// Opens the search panel, searches for `query` and opens the first hit, which must be
    /// record `id`. Returns the results screen.
    pub fn open_by_search(&mut self, query: &str, id: i64) -> String {
        self.send(F3);
        self.wait_for("住所は検索結果に表示されません");
        self.send(query);
        let results = self.wait_for("件  1ページ目");
        self.send(ENTER);
        self.wait_for(&format!("記録 {id}"));
        results
    }

    /// On an open record, starts editing the child's given name (the second field) and deletes
    /// the `given` already there.
    pub fn clear_given_name(&mut self, given: &str) {
        self.send(DOWN);
        self.send(ENTER);
        for _ in 0..given.chars().count() + 2 {
            self.send(BACKSPACE);
        }
    }

    pub fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            if start.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!("client did not exit; screen:\n{}", self.contents());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub const ENTER: &str = "\r";
pub const TAB: &str = "\t";
pub const ESC: &str = "\x1b";
pub const BACKSPACE: &str = "\x7f";
pub const DOWN: &str = "\x1b[B";
pub const F3: &str = "\x1bOR";
pub const F4: &str = "\x1bOS";
pub const F10: &str = "\x1b[21~";
pub const F9: &str = "\x1b[20~";
pub const CTRL_S: &str = "\x13";

/// The number in "未読通知 N件" on the status line.
pub fn unread(screen: &str) -> Option<u32> {
    let i = screen.find("未読通知 ")? + "未読通知 ".len();
    screen[i..].split('件').next()?.trim().parse().ok()
}
