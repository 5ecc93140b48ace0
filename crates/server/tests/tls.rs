//! Serving HTTPS directly with rustls: a client that trusts the certificate gets answers, one
//! that does not is refused.

mod support;

use std::time::Duration;

use support::{Engine, TestDb};
use tsunagu_server::config::TlsConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();

    let db = TestDb::new(Engine::Sqlite).await.unwrap();
    let mut config = support::test_config();
    config.auth.totp_key_file = Some(dir.path().join("totp.key"));
    let state = tsunagu_server::app::build_state(db.store.clone(), config)
        .await
        .unwrap();
    // Find a free port, then serve TLS on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tls = TlsConfig {
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

    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/healthz");
    let mut answered = None;
    for _ in 0..50 {
        match trusted.get(&url).send().await {
            Ok(r) => {
                answered = Some(r.status());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(answered, Some(reqwest::StatusCode::OK));
    // The API answers over TLS too, its rate limits keyed by the peer's address.
    let me = trusted
        .get(format!("https://localhost:{port}/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), reqwest::StatusCode::UNAUTHORIZED);

    let untrusted = reqwest::Client::builder().build().unwrap();
    assert!(
        untrusted.get(&url).send().await.is_err(),
        "an unknown certificate must be refused"
    );
    // Plain HTTP to the TLS port gets no API answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));

    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(40), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
