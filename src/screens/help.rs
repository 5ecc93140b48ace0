//! `?` / F1: the keys of the screen underneath, from the keymap, with their descriptions, and
//! how to set up the terminal.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::App;
use crate::text;
use crate::widgets;

pub fn section_title(s: &str) -> &'static str {
    match s {
        "login" => "ログイン画面",
        "case_list" => "ケース一覧",
        "record" => "記録画面",
        "record_edit" => "記録画面（入力中）",
        "conflict" => "保存の競合",
        "search" => "検索パネル",
        "notifications" => "通知",
        "accounts" => "デモ用アカウントの切替",
        _ => "",
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let el = app.look.ellipsis;
    let th = app.theme.clone();
    let title = format!("キー一覧: {}", section_title(app.help_section));
    let inner = widgets::overlay(f, area, app, &title, "Esc: 閉じる  Up/Down: スクロール");
    let w = inner.width as usize;
    let mut lines = Vec::new();
    for (keys, desc) in app.keymap.help_rows(app.help_section) {
        lines.push(Line::from(vec![
            Span::styled(text::fit(&format!(" {keys}"), 24, el), th.style("key")),
            Span::raw(text::fit(&format!(" {desc}"), w.saturating_sub(24), el)),
        ]));
    }
    lines.push(Line::from(""));
    for t in [
        "端末の設定: Tera Term は「設定 > 端末 > 文字コード UTF-8」、PuTTY は「Window > Translation > UTF-8」。",
        "曖昧幅の文字を1桁で表示する端末では tsunagu --ambiguous-narrow で罫線と省略記号を使えます。",
        "キーの変更は ~/.config/tsunagu/keymap.toml、色は --theme（default/light/high-contrast/mono）。",
    ] {
        lines.push(Line::from(Span::styled(text::fit(&format!(" {t}"), w, el), th.style("dim"))));
    }
    let scroll = app.help_scroll.min(lines.len().saturating_sub(1));
    app.help_scroll = scroll;
    let view: Vec<Line> = lines.into_iter().skip(scroll).collect();
    f.render_widget(Paragraph::new(view).style(th.style("normal")), inner);
}
