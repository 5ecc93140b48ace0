//! Draws a whole frame: the current screen, an overlay if one is open, and the status line.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{App, Conn, Level, Overlay, Screen};
use crate::keymap::Action;
use crate::screens;
use crate::text;
use crate::widgets;

pub const MIN_W: u16 = 80;
pub const MIN_H: u16 = 20;

pub fn draw(f: &mut Frame, app: &mut App) {
    let area = f.area();
    app.size = (area.width, area.height);
    f.render_widget(Paragraph::new("").style(app.theme.style("normal")), area);
    if area.width < MIN_W || area.height < MIN_H {
        let msg = format!(
            "端末が小さすぎます（{MIN_W}x{MIN_H} 以上が必要、現在 {}x{}）。ウィンドウを広げてください。",
            area.width, area.height
        );
        f.render_widget(
            Paragraph::new(msg)
                .wrap(ratatui::widgets::Wrap { trim: true })
                .style(app.theme.style("error")),
            area,
        );
        return;
    }
    if !app.startup_warnings.is_empty() {
        draw_warnings(f, area, app);
        return;
    }
    let main = Rect {
        height: area.height - 2,
        ..area
    };
    match app.screen {
        Screen::Login => screens::login::draw(f, main, app),
        Screen::CaseList => screens::case_list::draw(f, main, app),
        Screen::Record => screens::record::draw(f, main, app),
        Screen::Intake => screens::intake::draw(f, main, app),
        Screen::Intakes => screens::intake_list::draw(f, main, app),
    }
    let over = Rect {
        x: area.x,
        y: area.y + 1,
        width: area.width,
        height: area.height - 3,
    };
    match app.overlay {
        Some(Overlay::Search) => screens::search::draw(f, over, app),
        Some(Overlay::Notifications) => screens::notifications::draw(f, over, app),
        Some(Overlay::Help) => screens::help::draw(f, over, app),
        Some(Overlay::Accounts) => draw_accounts(f, widgets::centered(area, 76, 14), app),
        Some(Overlay::Menu) => screens::menu::draw(f, over, app),
        None => {}
    }
    draw_message(
        f,
        Rect {
            y: area.bottom() - 2,
            height: 1,
            ..area
        },
        app,
    );
    draw_status(
        f,
        Rect {
            y: area.bottom() - 1,
            height: 1,
            ..area
        },
        app,
    );
}

fn draw_message(f: &mut Frame, area: Rect, app: &App) {
    let el = app.look.ellipsis;
    match &app.message {
        Some((level, m)) => {
            let role = match level {
                Level::Info => "normal",
                Level::Warn => "withheld",
                Level::Error => "error",
            };
            widgets::line(f, area, &format!(" {m}"), app.theme.style(role), el);
        }
        None => {
            let s = app.section();
            let k = &app.keymap;
            let mut hint = format!(
                " {}: キー一覧  {}: 検索  {}: 通知",
                k.key_hint(s, Action::Help),
                k.key_hint(s, Action::Search),
                k.key_hint(s, Action::Notifications)
            );
            if !app.demo_accounts.is_empty() {
                hint.push_str(&format!(
                    "  {}: 他のデモアカウントに切替",
                    k.key_hint(s, Action::SwitchAccount)
                ));
            }
            hint.push_str(&format!("  {}: 終了", k.key_hint(s, Action::Quit)));
            widgets::line(f, area, &hint, app.theme.style("dim"), el);
        }
    }
}

/// User, organisation, connection state, unread count.
fn draw_status(f: &mut Frame, area: Rect, app: &App) {
    let el = app.look.ellipsis;
    let w = area.width as usize;
    let (conn, role) = match &app.conn {
        Conn::Idle => ("未接続".to_string(), "status"),
        Conn::Connecting => ("接続しています".to_string(), "status_warn"),
        Conn::Online if app.notes.stream_up || app.token.is_none() => {
            ("接続中".to_string(), "status_ok")
        }
        Conn::Online => ("接続中（通知 再接続待ち）".to_string(), "status_warn"),
        Conn::Offline(_) => ("切断（再接続を試みています）".to_string(), "status_error"),
    };
    let who = match &app.me {
        Some(me) if app.token.is_some() => format!(" {}  {}", me.display_name, me.org.name),
        Some(me) => format!(" {}（ログアウト中）", me.display_name),
        None => " 未ログイン".to_string(),
    };
    let unread = app.notes.unread();
    let unread_s = if app.token.is_some() {
        format!("  未読通知 {unread}件 ")
    } else {
        String::new()
    };
    let conn_s = format!(" {conn} ");
    let left_w = w.saturating_sub(text::width(&conn_s) + text::width(&unread_s));
    let spans = vec![
        Span::styled(text::fit(&who, left_w, el), app.theme.style("status")),
        Span::styled(
            unread_s.clone(),
            if unread > 0 {
                app.theme.style("status_warn")
            } else {
                app.theme.style("status")
            },
        ),
        Span::styled(conn_s, app.theme.style(role)),
    ];
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_accounts(f: &mut Frame, area: Rect, app: &mut App) {
    let el = app.look.ellipsis;
    let th = app.theme.clone();
    let inner = widgets::overlay(
        f,
        area,
        app,
        "デモ用アカウントの切替",
        "Up/Down: 選ぶ  Enter: ログイン  Esc: 閉じる",
    );
    let mut lines = vec![Line::from(Span::styled(
        "閲覧区分の違いを確かめられます（パスワードとワンタイムコードは自動で入力します）",
        th.style("dim"),
    ))];
    for (i, a) in app.demo_accounts.iter().enumerate() {
        let style = if i == app.account_sel {
            th.style("selected")
        } else {
            th.style("normal")
        };
        let cur = if app.me.as_ref().is_some_and(|m| m.login == a.login) {
            "*"
        } else {
            " "
        };
        lines.push(Line::from(Span::styled(
            text::fit(
                &format!("{cur}{:<16} {}", a.login, a.purpose),
                inner.width as usize,
                el,
            ),
            style,
        )));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_warnings(f: &mut Frame, area: Rect, app: &App) {
    let el = app.look.ellipsis;
    let mut lines = vec![Line::from(Span::styled(
        " 設定ファイルに問題があります（該当箇所は無視し、標準の設定で続けます）",
        app.theme.style("error"),
    ))];
    for w in &app.startup_warnings {
        lines.push(Line::from(text::fit(
            &format!(" {w}"),
            area.width as usize,
            el,
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        " 何かキーを押すと続けます",
        app.theme.style("key"),
    )));
    f.render_widget(Paragraph::new(lines).style(app.theme.style("normal")), area);
}
