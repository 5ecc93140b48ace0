//! Serving connections: HTTP/1.1 over TCP (or TLS) with a head-read timeout, an idle keep-alive
//! timeout and caps on open connections, in total and per peer address. `axum::serve` has none
//! of these, so a client could hold thousands of idle or half-sent connections.
//!
//! Each connection has a watchdog. While a request is in flight (from its head being parsed to
//! its response body being dropped, so an event stream counts as in flight for as long as it is
//! open) nothing is timed here: `[limits] request_timeout_secs` bounds handlers. Otherwise the
//! connection is closed when
//! - a new connection has not delivered a complete request head within `header_read`,
//! - a kept-alive connection has been silent for `idle` since its last response, or
//! - a request head, once its first byte arrived, is not complete within `header_read`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::LimitsConfig;

/// The connection settings of `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read: Duration,
    pub idle: Duration,
    pub max_connections: usize,
    pub max_per_ip: usize,
}

impl From<&LimitsConfig> for ConnLimits {
    fn from(l: &LimitsConfig) -> Self {
        ConnLimits {
            header_read: Duration::from_secs(l.header_read_timeout_secs.max(1)),
            idle: Duration::from_secs(l.keepalive_idle_secs.max(1)),
            max_connections: l.max_connections.max(1),
            max_per_ip: l.max_connections_per_ip.max(1),
        }
    }
}

/// How an accepted TCP stream becomes the stream HTTP is spoken on.
pub trait Handshake: Clone + Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<Self::Io>> + Send;
    /// Whether a refused connection can be told why in plain HTTP.
    const PLAIN: bool;
}

/// Plain HTTP (behind a TLS-terminating proxy, or on localhost).
#[derive(Clone)]
pub struct Plain;

impl Handshake for Plain {
    type Io = TcpStream;
    async fn handshake(&self, tcp: TcpStream) -> io::Result<TcpStream> {
        Ok(tcp)
    }
    const PLAIN: bool = true;
}

/// HTTPS with rustls.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub struct Tls(pub tokio_rustls::TlsAcceptor);

#[cfg(feature = "tls")]
impl Handshake for Tls {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    async fn handshake(&self, tcp: TcpStream) -> io::Result<Self::Io> {
        self.0.accept(tcp).await
    }
    const PLAIN: bool = false;
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets each
/// connection finish its in-flight request and waits for all of them to close.
pub async fn serve<H: Handshake>(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    handshake: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let caps = Arc::new(Caps::new(limits));
    let (stop_tx, stop_rx) = watch::channel(());
    let (closed_tx, closed_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin; the caps are
                // meant to keep this from happening.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = caps.open(peer.ip()) else {
            refuse::<H>(tcp, &caps);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (app, handshake, stop_rx, closed_rx) = (
            app.clone(),
            handshake.clone(),
            stop_rx.clone(),
            closed_rx.clone(),
        );
        tokio::spawn(async move {
            connection(tcp, peer, app, limits, handshake, stop_rx).await;
            drop(slot);
            drop(closed_rx);
        });
    }
    drop(listener);
    drop(stop_rx);
    // Every connection is told to finish; each holds a receiver until it has closed.
    drop(stop_tx);
    drop(closed_rx);
    closed_tx.closed().await;
    Ok(())
}

/// Over a cap: answered at once (a plain 503 where the connection speaks plain HTTP) and
/// closed, rather than left waiting for a slot.
fn refuse<H: Handshake>(tcp: TcpStream, caps: &Caps) {
    if H::PLAIN {
        // A fresh socket's send buffer is empty, so this does not block or get cut short.
        let _ = tcp.try_write(REFUSAL.as_bytes());
    }
    // One line a second at most: a flood of connections must not become a flood of log lines.
    let refused = caps
        .refused
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let mut last = caps.last_warned.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
        *last = Some(Instant::now());
        tracing::warn!(
            refused_since_start = refused,
            "connection refused: the connection limit is reached"
        );
    }
}

const REFUSAL: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 128\r\n\r\n{\"code\":\"unavailable\",\"message\":\"接続数が上限に達しています。しばらくしてから再度お試しください\"}";

async fn connection<H: Handshake>(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    handshake: H,
    mut stop_rx: watch::Receiver<()>,
) {
    let opened = Instant::now();
    let io = match tokio::time::timeout(limits.header_read, handshake.handshake(tcp)).await {
        Ok(Ok(io)) => io,
        _ => return,
    };
    let act = Arc::new(Activity::new(opened));
    let io = TokioIo::new(Watched {
        inner: io,
        act: act.clone(),
    });
    let svc_act = act.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = InFlight::start(svc_act.clone());
        // What `into_make_service_with_connect_info::<SocketAddr>()` would insert: handlers
        // and layers keyed by the peer address read it from here.
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let resp = app
                .oneshot(req.map(Body::new))
                .await
                .unwrap_or_else(|e: Infallible| match e {});
            // The guard lives as long as the response body: an open event stream keeps the
            // connection counted as busy.
            Ok::<_, Infallible>(resp.map(|b| {
                Body::new(b.map_frame(move |frame| {
                    let _busy = &guard;
                    frame
                }))
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // No hyper timer: hyper's own head timeout would also run between requests; the
    // watchdog below times both cases separately.
    builder.keep_alive(true);
    let conn = builder.serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = act.deadline(&limits);
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = stop_rx.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = act.changed.notified() => {}
            _ = sleep_until(deadline) => {
                if act.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    // Nothing is in flight: dropping the connection loses no answer.
                    tracing::debug!("connection closed: head-read or idle timeout");
                    break;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Open connections, in total and per peer address.
struct Caps {
    limits: ConnLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    refused: std::sync::atomic::AtomicU64,
    last_warned: Mutex<Option<Instant>>,
}

impl Caps {
    fn new(limits: ConnLimits) -> Caps {
        Caps {
            limits,
            open: Mutex::new((0, HashMap::new())),
            refused: Default::default(),
            last_warned: Mutex::new(None),
        }
    }

    fn open(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut g = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_ip) = &mut *g;
        let mine = per_ip.get(&ip).copied().unwrap_or(0);
        if *total >= self.limits.max_connections || mine >= self.limits.max_per_ip {
            return None;
        }
        *total += 1;
        per_ip.insert(ip, mine + 1);
        Some(Slot {
            caps: self.clone(),
            ip,
        })
    }
}

/// One open connection's place under the caps, given back when it closes.
struct Slot {
    caps: Arc<Caps>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut g = self.caps.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_ip) = &mut *g;
        *total -= 1;
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// What the watchdog of one connection needs to know.
struct Activity {
    state: Mutex<ActState>,
    changed: Notify,
}

struct ActState {
    in_flight: usize,
    /// Whether a request has been answered on this connection (it is then kept alive).
    served: bool,
    /// When the connection opened or its last response ended.
    idle_since: Instant,
    /// When the first byte of the next request head arrived.
    head_started: Option<Instant>,
}

impl Activity {
    fn new(opened: Instant) -> Activity {
        Activity {
            state: Mutex::new(ActState {
                in_flight: 0,
                served: false,
                idle_since: opened,
                head_started: None,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deadline(&self, limits: &ConnLimits) -> Option<Instant> {
        let s = self.lock();
        if s.in_flight > 0 {
            return None;
        }
        Some(match (s.served, s.head_started) {
            (false, _) => s.idle_since + limits.header_read,
            (true, Some(t)) => t + limits.header_read,
            (true, None) => s.idle_since + limits.idle,
        })
    }

    fn bytes_read(&self) {
        let mut s = self.lock();
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }
}

/// A request in flight, from its head to the end of its response body.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(act: Arc<Activity>) -> InFlight {
        {
            let mut s = act.lock();
            s.in_flight += 1;
            s.head_started = None;
        }
        act.changed.notify_one();
        InFlight(act)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut s = self.0.lock();
            s.in_flight -= 1;
            s.served = true;
            if s.in_flight == 0 {
                s.idle_since = Instant::now();
                s.head_started = None;
            }
        }
        self.0.changed.notify_one();
    }
}

/// The connection's stream, noting when request bytes arrive.
struct Watched<T> {
    inner: T,
    act: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.act.bytes_read();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_declares_its_length() {
        let (_, body) = REFUSAL.split_once("\r\n\r\n").unwrap();
        assert!(REFUSAL.contains(&format!("content-length: {}\r\n", body.len())));
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }
}
