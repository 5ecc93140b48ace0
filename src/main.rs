//! `tsunagu`: the terminal client of the national child-protection information-sharing system.
//!
//! `tsunagu demo` starts the central server in-process on a temporary SQLite file with synthetic
//! data and logs in as a demo caseworker; `tsunagu --server URL` talks to a real server.

mod api;
mod app;
#[cfg(feature = "embedded-server")]
mod bench;
mod config;
#[cfg(feature = "embedded-server")]
mod demo;
mod event_loop;
#[cfg(any(test, feature = "embedded-server"))]
mod fixtures;
mod form;
mod keymap;
mod screens;
mod scroll;
#[cfg(test)]
mod snapshots;
#[cfg(test)]
mod snapshots_intake;
#[cfg(test)]
mod snapshots_record;
mod tasks;
mod term;
#[cfg(test)]
mod term_tests;
mod text;
mod theme;
mod ui;
mod widgets;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ratatui::Terminal;

#[derive(Parser)]
#[command(
    name = "tsunagu",
    version,
    about = "要保護児童等に関する情報共有システム 端末クライアント"
)]
struct Cli {
    /// The central server, e.g. https://tsunagu.example.lg.jp (also TSUNAGU_SERVER or the config file)
    #[arg(long, env = "TSUNAGU_SERVER")]
    server: Option<String>,
    /// Settings file (default ~/.config/tsunagu/config.toml)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Keymap: default or vim
    #[arg(long)]
    keymap: Option<String>,
    /// Theme: default, light, high-contrast, mono (or a file in ~/.config/tsunagu/themes/)
    #[arg(long)]
    theme: Option<String>,
    /// Monochrome (as NO_COLOR)
    #[arg(long)]
    no_color: bool,
    /// ASCII borders and ellipsis whatever the settings say (the default unless the terminal
    /// draws ambiguous-width characters narrow)
    #[arg(long)]
    ascii: bool,
    /// The terminal draws East Asian ambiguous-width characters (…, ○, box lines) one cell
    /// wide: let the client use them
    #[arg(long)]
    ambiguous_narrow: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start an embedded server with synthetic demo data and log in as a demo caseworker
    Demo {
        /// Synthetic records to create
        #[arg(long, default_value_t = 300)]
        records: usize,
    },
    /// Client benchmark C2 (drawing cost of a one-row move), as JSON on standard output; run by
    /// `tsunagu-bench client`
    #[command(hide = true)]
    Bench {
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tsunagu: 起動できません: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async_main(cli));
    // Spawned network tasks must not keep the process alive after the UI is gone.
    rt.shutdown_background();
    std::process::exit(code);
}

async fn async_main(cli: Cli) -> i32 {
    let loaded = config::load(&config::Choices {
        config_file: cli.config.as_deref(),
        keymap: cli.keymap.as_deref(),
        theme: cli.theme.as_deref(),
        no_color: cli.no_color,
    });
    let narrow = cli.ambiguous_narrow || loaded.file.ambiguous_width.as_deref() == Some("narrow");
    let look = app::Look::for_terminal(narrow && !cli.ascii && loaded.file.ascii != Some(true));
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"))
        .date_naive();
    let server = cli
        .server
        .clone()
        .or(loaded.file.server.clone())
        .unwrap_or_default();
    let scroll = config::scroll_regions(
        &loaded.file,
        std::env::var("TSUNAGU_SCROLL_REGIONS").ok().as_deref(),
    );
    let mut app = app::App::new(loaded.keymap, loaded.theme, look, server, today);
    app.startup_warnings = loaded.warnings;
    #[cfg_attr(not(feature = "embedded-server"), allow(unused_mut))]
    let mut demo_creds = None;
    #[cfg(feature = "embedded-server")]
    let _server_guard;
    match cli.command {
        #[cfg(feature = "embedded-server")]
        Some(Command::Demo { records }) => {
            eprintln!("デモ用サーバーを準備しています（合成データ {records} 件）…");
            match demo::start(records).await {
                Ok(d) => {
                    app.server = d.url.clone();
                    app.login = screens::login::LoginState::new(&d.url);
                    app.demo_accounts = d.accounts.clone();
                    demo_creds = Some(demo::credentials as tasks::DemoCredentials);
                    app.demo_login("demo-cgc");
                    _server_guard = d;
                }
                Err(e) => {
                    eprintln!("tsunagu: デモ用サーバーを起動できません: {e:#}");
                    return 1;
                }
            }
        }
        #[cfg(feature = "embedded-server")]
        Some(Command::Bench { rows }) => {
            return match bench::run(rows).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("tsunagu bench: {e:#}");
                    1
                }
            };
        }
        #[cfg(not(feature = "embedded-server"))]
        Some(_) => {
            eprintln!("tsunagu: この版には組み込みサーバーがありません（--no-default-features でビルドされています）。--server URL で接続してください");
            return 2;
        }
        None => {}
    }
    if let Err(e) = term::enter() {
        term::restore();
        eprintln!("tsunagu: 端末を操作できません（対話型の端末で実行してください）: {e}");
        return 1;
    }
    term::install_panic_hook();
    let writer = term::FrameWriter::new(std::io::stdout());
    let backend = term::TermBackend::new(writer).with_scroll_regions(scroll);
    let mut terminal = match Terminal::new(backend) {
        Ok(t) => t,
        Err(e) => {
            term::restore();
            eprintln!("tsunagu: 端末を初期化できません: {e}");
            return 1;
        }
    };
    let res = event_loop::run(&mut app, &mut terminal, demo_creds).await;
    term::restore();
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tsunagu: {e:#}");
            1
        }
    }
}
