//! The loop: one `select!` over terminal events, API replies and the next timer (only when a
//! timer is set). It draws only when the app says something changed: an idle screen writes
//! nothing at all.

use std::io::Write;

use futures::StreamExt;
use ratatui::Terminal;
use tokio::sync::mpsc;

use crate::app::App;
use crate::tasks::{DemoCredentials, Executor, Reply};

pub async fn run<W: Write>(
    app: &mut App,
    terminal: &mut Terminal<crate::term::TermBackend<W>>,
    demo: Option<DemoCredentials>,
) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
    let mut exec = Executor::new(tx, demo);
    let mut events = crossterm::event::EventStream::new();
    #[cfg(unix)]
    let (mut term, mut hup) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        )
    };
    if let Ok((w, h)) = crossterm::terminal::size() {
        app.size = (w, h);
    }
    loop {
        for cmd in app.outbox.drain(..) {
            exec.run(cmd);
        }
        if app.quit {
            break;
        }
        if app.clear_screen {
            terminal.clear()?;
            app.clear_screen = false;
            app.dirty = true;
        }
        if app.dirty {
            crate::term::draw(terminal, |f| crate::ui::draw(f, app))?;
            app.dirty = false;
        }
        let deadline = app.next_deadline();
        #[cfg(unix)]
        let signalled = async {
            tokio::select! {
                _ = term.recv() => {},
                _ = hup.recv() => {},
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ev)) => app.on_event(ev),
                // The terminal went away (ssh dropped): nothing more can be shown.
                Some(Err(_)) | None => break,
            },
            Some(reply) = rx.recv() => app.on_reply(reply),
            _ = async { tokio::time::sleep_until(deadline.expect("guarded").into()).await }, if deadline.is_some() => {
                app.on_timer(std::time::Instant::now());
            }
            _ = signalled => break,
        }
    }
    Ok(())
}
