//! Losing the database is the server's fault, not the client's: requests get 503 `unavailable`
//! with `Retry-After`, fast while the database is known to be down, `/healthz` answers within a
//! fixed time, and everything works again once the database is back, without a restart.
//!
//! PostgreSQL only (SQLite is a file and cannot go away like this). The server reaches its test
//! database through a TCP proxy that the test cuts, as a restart or a network failure would: the
//! shared PostgreSQL server itself is never touched.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::{Engine, TestDb, TestServer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:port` to the database; `cut` closes every connection and stops
/// listening (new connections are refused), `restore` listens again on the same port.
struct Proxy {
    port: u16,
    upstream: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

fn listen(port: u16) -> TcpListener {
    let s = TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    s.bind(format!("127.0.0.1:{port}").parse().unwrap())
        .unwrap();
    s.listen(64).unwrap()
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let l = listen(0);
        let port = l.local_addr().unwrap().port();
        let mut p = Proxy {
            port,
            upstream,
            tasks: Default::default(),
            acceptor: None,
        };
        p.run(l);
        p
    }

    fn run(&mut self, l: TcpListener) {
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        self.acceptor = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = l.accept().await {
                let upstream = upstream.clone();
                let t = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().await.push(t);
            }
        }));
    }

    async fn cut(&mut self) {
        if let Some(a) = self.acceptor.take() {
            a.abort();
            let _ = a.await;
        }
        for t in self.tasks.lock().await.drain(..) {
            t.abort();
        }
    }

    fn restore(&mut self) {
        let l = listen(self.port);
        self.run(l);
    }
}

/// `host:port` of a `postgres://` URL (the test server's form: no user info with `@` in a
/// password).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hp = rest.split(['/', '?']).next().unwrap();
    if hp.contains(':') {
        hp.to_string()
    } else {
        format!("{hp}:5432")
    }
}

async fn timed(c: &reqwest::RequestBuilder) -> (StatusCode, Option<String>, String, Duration) {
    let t = Instant::now();
    let r = c.try_clone().unwrap().send().await.unwrap();
    let status = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = r.text().await.unwrap();
    (status, retry, body, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_gives_fast_503_with_retry_after_and_recovers() {
    let Some(mut db) = TestDb::new(Engine::Postgres).await else {
        return;
    };
    let mut proxy = Proxy::start(host_port(&db.url)).await;
    let via_proxy = db
        .url
        .replacen(&host_port(&db.url), &format!("127.0.0.1:{}", proxy.port), 1);
    let via_proxy = if via_proxy.contains('?') {
        format!("{via_proxy}&sslmode=disable")
    } else {
        format!("{via_proxy}?sslmode=disable")
    };
    db.store = tsunagu_server::app::open_store_with(&via_proxy, 4, Duration::from_secs(1))
        .await
        .unwrap();
    tsunagu_server::app::install_audit_key(db.store.as_ref(), &db.mac_key_path())
        .await
        .unwrap();
    let mut config = support::test_config();
    config.auth.session_cache_secs = 0;
    let s = TestServer::start_with(db, config).await;
    let user = s.login("muni").await;
    let list = user.req(reqwest::Method::GET, "/api/v1/records");
    let health = s.http.get(s.url("/healthz"));
    assert_eq!(timed(&list).await.0, StatusCode::OK);

    proxy.cut().await;
    // The first request finds the database gone: at most the acquire timeout (1 s here).
    let (status, retry, body, took) = timed(&list).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(retry.as_deref(), Some("5"));
    assert!(body.contains("\"code\":\"unavailable\""), "{body}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    // While it is known to be down, requests are answered at once.
    for _ in 0..5 {
        let (status, retry, body, took) = timed(&list).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(retry.is_some());
        assert!(
            took < Duration::from_millis(300),
            "took {took:?} while the database was down"
        );
    }
    let (status, _, _, took) = timed(&health).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < Duration::from_millis(2000), "/healthz took {took:?}");

    proxy.restore();
    let t = Instant::now();
    loop {
        let (status, _, body, _) = timed(&list).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "not back 5 s after the database was"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(timed(&health).await.0, StatusCode::OK);
}
