//! Connections are bounded: a head sent slowly is cut off, an idle kept-alive connection is
//! closed, an open event stream is not, and over the connection caps new connections are
//! answered 503 and closed at once while existing ones keep working. The engine does not
//! matter here: SQLite only.

mod support;

use std::time::{Duration, Instant};

use support::{Engine, TestDb, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn server(configure: impl FnOnce(&mut tsunagu_server::config::LimitsConfig)) -> TestServer {
    let db = TestDb::new(Engine::Sqlite).await.unwrap();
    let mut config = support::test_config();
    configure(&mut config.limits);
    TestServer::start_with(db, config).await
}

/// Reads one response (head and a `content-length` body) from a kept-alive connection.
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    format!("{head}{}", String::from_utf8_lossy(&body))
}

async fn health_on(s: &mut TcpStream) -> String {
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    read_response(s).await
}

/// Waits for the server to close `s`; the time it took, or `None` if still open after `max`.
async fn closed_within(s: &mut TcpStream, max: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut sink = [0u8; 1024];
    loop {
        match tokio::time::timeout(max.saturating_sub(t.elapsed()), s.read(&mut sink)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_head_is_cut_off_within_the_header_timeout() {
    let s = server(|l| {
        l.header_read_timeout_secs = 1;
        l.keepalive_idle_secs = 30;
    })
    .await;
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    let t = Instant::now();
    c.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // One more header line every 200 ms, for up to 6 s; the server must hang up first.
    let mut cut = None;
    for i in 0..30 {
        if c.write_all(format!("x-slow-{i}: a\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = Some(t.elapsed());
            break;
        }
        if closed_within(&mut c, Duration::from_millis(200))
            .await
            .is_some()
        {
            cut = Some(t.elapsed());
            break;
        }
    }
    let cut = cut.expect("a head trickling in for 6 s was never cut off");
    assert!(
        cut >= Duration::from_millis(900) && cut < Duration::from_millis(2500),
        "cut after {cut:?}, the header timeout is 1 s"
    );
    // A normal client is unaffected.
    let mut ok = TcpStream::connect(s.running.addr).await.unwrap();
    assert!(health_on(&mut ok).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = server(|l| {
        l.header_read_timeout_secs = 5;
        l.keepalive_idle_secs = 1;
    })
    .await;
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    assert!(health_on(&mut c).await.starts_with("HTTP/1.1 200"));
    // Still kept alive for a second request within the idle time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(health_on(&mut c).await.starts_with("HTTP/1.1 200"));
    let closed = closed_within(&mut c, Duration::from_secs(4))
        .await
        .expect("an idle connection was kept open for 4 s; the idle timeout is 1 s");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_millis(2500),
        "closed after {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_outlives_the_idle_timeout() {
    let s = server(|l| {
        l.header_read_timeout_secs = 1;
        l.keepalive_idle_secs = 1;
    })
    .await;
    let user = s.login("muni").await;
    let mut c = TcpStream::connect(s.running.addr).await.unwrap();
    c.write_all(
        format!(
            "GET /api/v1/notifications/stream HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {}\r\naccept: text/event-stream\r\n\r\n",
            user.token
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert_eq!(
        closed_within(&mut c, Duration::from_secs(3)).await,
        None,
        "the event stream was cut by the idle or header timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_new_connections_are_refused_at_once_and_existing_ones_keep_working() {
    let s = server(|l| {
        l.header_read_timeout_secs = 30;
        l.keepalive_idle_secs = 30;
        l.max_connections = 3;
        l.max_connections_per_ip = 3;
    })
    .await;
    let addr = s.running.addr;
    let mut session = TcpStream::connect(addr).await.unwrap();
    assert!(health_on(&mut session).await.starts_with("HTTP/1.1 200"));
    let idle1 = TcpStream::connect(addr).await.unwrap();
    let _idle2 = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A fourth connection: answered 503 and closed, promptly.
    let t = Instant::now();
    let mut over = TcpStream::connect(addr).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(1), over.read_to_end(&mut answer))
        .await
        .expect("a connection over the cap was left hanging")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(t.elapsed() < Duration::from_millis(500));

    // The kept-alive session is not starved.
    for _ in 0..3 {
        assert!(health_on(&mut session).await.starts_with("HTTP/1.1 200"));
    }

    // Once an idle connection goes, a new one is accepted.
    drop(idle1);
    let mut served = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut fresh = TcpStream::connect(addr).await.unwrap();
        if fresh
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .is_ok()
        {
            let mut first = [0u8; 12];
            if fresh.read_exact(&mut first).await.is_ok() && &first == b"HTTP/1.1 200" {
                served = true;
                break;
            }
        }
    }
    assert!(served, "no new connection was accepted after one closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_leaves_other_addresses_alone() {
    let s = server(|l| {
        l.header_read_timeout_secs = 30;
        l.max_connections = 10;
        l.max_connections_per_ip = 2;
    })
    .await;
    let addr = s.running.addr;
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(1), third.read_to_end(&mut answer))
        .await
        .expect("a third connection from one address was left hanging")
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // Another loopback address is its own peer.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = sock.connect(addr).await.unwrap();
    assert!(health_on(&mut other).await.starts_with("HTTP/1.1 200"));
}

/// Direct TLS has the same bounds: a connection that never completes its handshake is closed
/// within the head-read timeout, and one over the cap is closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_same_bounds_apply() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let db = TestDb::new(Engine::Sqlite).await.unwrap();
    let mut config = support::test_config();
    config.auth.totp_key_file = Some(dir.path().join("totp.key"));
    config.limits.header_read_timeout_secs = 1;
    config.limits.max_connections = 2;
    let state = tsunagu_server::app::build_state(db.store.clone(), config)
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tls = tsunagu_server::config::TlsConfig {
        cert: cert_path,
        key: key_path,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        tsunagu_server::app::serve_tls(state, addr, &tls, async move {
            let _ = rx.await;
        })
        .await
    });
    let mut silent = None;
    for _ in 0..50 {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                silent = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let mut silent = silent.expect("the TLS server listens");
    let mut second = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Over the cap: closed at once, without a handshake.
    let mut over = TcpStream::connect(addr).await.unwrap();
    let closed = closed_within(&mut over, Duration::from_secs(1)).await;
    assert!(
        closed.is_some_and(|t| t < Duration::from_millis(500)),
        "{closed:?}"
    );
    // The two silent ones are closed by the head-read timeout.
    for s in [&mut silent, &mut second] {
        let closed = closed_within(s, Duration::from_secs(3)).await;
        assert!(
            closed.is_some(),
            "a connection without a handshake was kept open"
        );
    }
    // And the server answers HTTPS again once they are gone.
    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = trusted
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}
