//! The HTTP client of the central API. Compressed responses, a bearer token, ETag revalidation
//! of GETs (the cache is in memory only: nothing about a case is ever written to disk), and
//! errors turned into one type with a Japanese message for each way a request can fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{header, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tsunagu_record::api::ApiError;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiErr {
    /// The server could not be reached (refused, DNS, timeout, TLS).
    Network(String),
    /// The server answered with an error status.
    Status { status: u16, body: Box<ApiError> },
    /// The server answered something that is not what the API sends.
    Garbage(String),
}

impl ApiErr {
    pub fn code(&self) -> &str {
        match self {
            ApiErr::Status { body, .. } => &body.code,
            ApiErr::Network(_) => "network",
            ApiErr::Garbage(_) => "garbage",
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiErr::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn is_network(&self) -> bool {
        matches!(self, ApiErr::Network(_))
    }
    /// The session is gone: log in again (the draft stays in memory).
    pub fn is_auth_lost(&self) -> bool {
        matches!(self, ApiErr::Status { status: 401, body } if body.code != "login_failed")
    }
    /// For people, in Japanese.
    pub fn message(&self) -> String {
        match self {
            ApiErr::Network(m) => m.clone(),
            ApiErr::Garbage(m) => m.clone(),
            ApiErr::Status { status, body } => match body.code.as_str() {
                "login_failed" => "ログインできません。ログインID・パスワード・ワンタイムコードを確認してください".into(),
                "account_locked" => "失敗が続いたため、このアカウントは一時的にロックされています。しばらく待つか管理者に連絡してください".into(),
                "session_expired" => "セッションの有効期限が切れました。再ログインしてください".into(),
                "unauthenticated" => "ログインしていません".into(),
                _ if body.message.is_empty() => format!("サーバーがエラーを返しました（HTTP {status}）"),
                _ => body.message.clone(),
            },
        }
    }
}

fn network_message(e: &reqwest::Error) -> String {
    // The interesting cause (refused, certificate, DNS) sits deep in the source chain.
    let mut chain = String::new();
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        chain.push_str(&s.to_string().to_lowercase());
        chain.push(' ');
        src = s.source();
    }
    // rustls says "received corrupt message of type InvalidContentType" when an https:// URL
    // reaches a server that answers in plain HTTP.
    let tls = [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "invalidcontenttype",
    ];
    if tls.iter().any(|w| chain.contains(w)) {
        "TLS（証明書）の確認に失敗しました。サーバーのURL（https/http）と証明書を確認してください"
            .into()
    } else if e.is_timeout() {
        "サーバーが時間内に応答しませんでした（接続を確認してください）".into()
    } else if chain.contains("dns") || chain.contains("resolve") || chain.contains("lookup") {
        "サーバー名が見つかりません。URLを確認してください".into()
    } else if e.is_connect() || chain.contains("refused") {
        "サーバーに接続できません（停止中か、URLが違います）".into()
    } else {
        "サーバーとの通信が切れました".into()
    }
}

/// Checks a server URL as typed, so a mistake is told before any request.
pub fn parse_base(url: &str) -> Result<reqwest::Url, String> {
    let t = url.trim().trim_end_matches('/');
    let u = reqwest::Url::parse(t).map_err(|_| {
        format!("「{t}」はURLとして読めません（例: https://tsunagu.example.lg.jp）")
    })?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!(
            "URLは http:// か https:// で始めてください（「{t}」）"
        ));
    }
    if u.host_str().is_none() {
        return Err(format!("URLにサーバー名がありません（「{t}」）"));
    }
    Ok(u)
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// url → (etag, body): revalidated with If-None-Match. Memory only, dropped at exit.
    etags: Arc<Mutex<HashMap<String, Cached>>>,
}

/// A GET's last answer: (etag, body).
type Cached = (String, Vec<u8>);

impl Client {
    /// Drops every cached answer: a session's data does not outlive it, even in memory.
    pub fn forget_cache(&self) {
        self.etags.lock().expect("etag cache").clear();
    }

    pub fn new(base: &str) -> Result<Client, String> {
        let u = parse_base(base)?;
        let http = reqwest::Client::builder()
            .gzip(true)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("tsunagu-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTPクライアントを作れません: {e}"))?;
        Ok(Client {
            http,
            base: u.as_str().trim_end_matches('/').to_string(),
            etags: Arc::default(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiErr> {
        req.send()
            .await
            .map_err(|e| ApiErr::Network(network_message(&e)))
    }

    async fn error_of(resp: reqwest::Response) -> ApiErr {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        match decode_reply::<ApiError>(&bytes) {
            Ok(body) => ApiErr::Status {
                status,
                body: Box::new(body),
            },
            Err(_) if status == 503 || status == 502 || status == 504 => ApiErr::Network(
                "サーバーが一時的に応答できません（しばらくして再試行します）".into(),
            ),
            Err(_) => ApiErr::Status {
                status,
                body: Box::new(ApiError {
                    code: match status {
                        404 => "not_found".into(),
                        401 => "unauthenticated".into(),
                        _ => format!("http_{status}"),
                    },
                    message: format!("サーバーが予期しない応答を返しました（HTTP {status}）"),
                    request_id: None,
                    fields: vec![],
                    conflicts: vec![],
                    current: None,
                }),
            },
        }
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiErr> {
        decode_reply(bytes).map_err(|_| {
            ApiErr::Garbage(
                "サーバーの応答が読めません（tsunagu のサーバーではないか、版が合っていません）"
                    .into(),
            )
        })
    }

    /// GET with ETag revalidation: a 304 answers from the in-memory copy.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, token: &str) -> Result<T, ApiErr> {
        let url = self.url(path);
        let cached = self.etags.lock().expect("etag cache").get(&url).cloned();
        let mut req = self.http.get(&url).bearer_auth(token);
        if let Some((tag, _)) = &cached {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let resp = self.send(req).await?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            if let Some((_, body)) = cached {
                return Self::decode(&body);
            }
        }
        if !resp.status().is_success() {
            return Err(Self::error_of(resp).await);
        }
        let tag = resp
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .bytes()
            .await
            .map_err(|e| ApiErr::Network(network_message(&e)))?;
        let value = Self::decode(&body)?;
        if let Some(tag) = tag {
            let mut cache = self.etags.lock().expect("etag cache");
            // Bounded: a long session's pages must not grow without end.
            if cache.len() > 256 {
                cache.clear();
            }
            cache.insert(url, (tag, body.to_vec()));
        }
        Ok(value)
    }

    pub async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<T, ApiErr> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(Self::error_of(resp).await);
        }
        if resp.status() == StatusCode::NO_CONTENT {
            return Self::decode(b"null");
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| ApiErr::Network(network_message(&e)))?;
        Self::decode(&body)
    }

    /// Opens the event stream, replaying after `last_id`.
    pub async fn stream(&self, token: &str, last_id: i64) -> Result<reqwest::Response, ApiErr> {
        let mut req = self
            .http
            .get(self.url("/notifications/stream"))
            .bearer_auth(token)
            .header(header::ACCEPT, "text/event-stream");
        if last_id > 0 {
            req = req.header("last-event-id", last_id.to_string());
        }
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(Self::error_of(resp).await);
        }
        Ok(resp)
    }
}

/// Decodes a JSON reply of the server with every string in it (keys too) made terminal-safe
/// first (`text::terminal_safe`). It is the one way server data enters the client (answers,
/// error bodies, event-stream data), so no string from a server, however it was stored, can
/// move the cursor or set the window title when drawn.
pub fn decode_reply<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes)?;
    scrub(&mut v);
    serde_json::from_value(v)
}

fn scrub(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(safe) = crate::text::terminal_safe(s) {
                *s = safe;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut item) in old {
                scrub(&mut item);
                map.insert(crate::text::terminal_safe(&k).into_owned(), item);
            }
        }
        _ => {}
    }
}

/// A minimal server-sent-events parser: feed bytes, get (id, event, data) for each event.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    id: Option<String>,
    event: String,
    data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    out.push(SseEvent {
                        id: self.id.take(),
                        event: std::mem::take(&mut self.event),
                        data: std::mem::take(&mut self.data),
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // keep-alive comment
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "id" => self.id = Some(value.to_string()),
                "event" => self.event = value.to_string(),
                "data" => {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\nid: 3\nevent: notif").is_empty());
        let ev = p.feed(b"ication\ndata: {\"a\":1}\n\n");
        assert_eq!(
            ev,
            vec![SseEvent {
                id: Some("3".into()),
                event: "notification".into(),
                data: "{\"a\":1}".into()
            }]
        );
    }

    #[test]
    fn replies_are_decoded_without_terminal_controls() {
        let body = br#"{"code":"x\u001b]0;PWNED\u0007","message":"\u001b[2J\u001b[H\u009b31m\u202eabc","request_id":null,"fields":[{"field":"a\u001bb","code":"c","message":"1\n2\t3\r"}]}"#;
        let e: ApiError = decode_reply(body).unwrap();
        let all = format!(
            "{}{}{}{}",
            e.code, e.message, e.fields[0].field, e.fields[0].message
        );
        for c in ['\u{1b}', '\u{9b}', '\u{7}', '\u{202e}', '\r'] {
            assert!(!all.contains(c), "{c:?} in {all:?}");
        }
        assert_eq!(e.code, "x\u{FFFD}]0;PWNED\u{FFFD}");
        // Line breaks and tabs of long texts are kept.
        assert_eq!(e.fields[0].message, "1\n2\t3\u{FFFD}");
    }

    #[test]
    fn bad_urls_are_told_in_japanese() {
        assert!(parse_base("ftp://x").unwrap_err().contains("http"));
        assert!(parse_base("not a url").unwrap_err().contains("URL"));
        assert!(parse_base("https://tsunagu.example.lg.jp/").is_ok());
    }
}
