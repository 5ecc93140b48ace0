//! An emulated slow link for C3: a TCP proxy between the client and the server that delays each
//! direction by a one-way latency and paces the bytes at a fixed rate (one queue per direction,
//! shared by every connection, as one access line is). A new connection's first bytes wait one
//! round trip, as behind a TCP handshake. It logs what crosses it, so a measurement can count
//! requests, round trips and bytes in a window of time.
//!
//! Not emulated: TCP/IP headers and acknowledgements (only payload bytes are paced), slow start
//! (a search answer fits in the initial window), loss. The figures are the payload's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone, Copy)]
pub struct LinkParams {
    /// Half the round trip.
    pub one_way: Duration,
    pub bytes_per_sec: f64,
}

impl LinkParams {
    /// 128 kbit/s each way, 300 ms round trip.
    pub fn slow() -> LinkParams {
        LinkParams {
            one_way: Duration::from_millis(150),
            bytes_per_sec: 128_000.0 / 8.0,
        }
    }
    fn rtt(&self) -> Duration {
        self.one_way * 2
    }
}

/// A chunk that crossed: `up` from the client to the server.
#[derive(Debug, Clone)]
pub struct Crossing {
    pub conn: usize,
    pub up: bool,
    pub bytes: usize,
    /// When the sender wrote it, and when it reached the other side.
    pub sent: Instant,
    pub delivered: Instant,
    /// The first line, when this chunk begins an HTTP request.
    pub request_line: Option<String>,
}

struct Conn {
    opened: Instant,
    /// The first request's line: the event stream is told apart by it.
    first_line: Option<String>,
    last_activity: Instant,
    close: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    log: Vec<Crossing>,
    conns: Vec<Conn>,
    /// When each direction's line is free again (index 0: up, 1: down).
    free_at: [Option<Instant>; 2],
}

pub struct Link {
    pub addr: SocketAddr,
    params: LinkParams,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

/// What crossed in a window, without the event stream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Window {
    /// Requests the client started in the window, by their first line.
    pub requests: Vec<String>,
    pub new_connections: usize,
    /// Requests plus the handshakes of new connections: each waits one round trip.
    pub round_trips: usize,
    pub bytes_up: usize,
    pub bytes_down: usize,
    /// The event stream's bytes in the window (keep-alive comments), counted apart.
    pub event_stream_bytes: usize,
}

fn is_event_stream(first_line: &Option<String>) -> bool {
    first_line
        .as_deref()
        .is_some_and(|l| l.contains("/notifications/stream"))
}

impl Link {
    pub async fn start(upstream: SocketAddr, params: LinkParams) -> anyhow::Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let opened = Instant::now();
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (close, closed) = watch::channel(false);
                let id = {
                    let mut s = st.lock().expect("link state");
                    s.conns.push(Conn {
                        opened,
                        first_line: None,
                        last_activity: opened,
                        close,
                    });
                    s.conns.len() - 1
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                // The client's first bytes leave once the handshake's round trip is over.
                let ready = opened + params.rtt();
                tokio::spawn(pump(
                    cr,
                    sw,
                    id,
                    true,
                    ready,
                    params,
                    st.clone(),
                    closed.clone(),
                ));
                tokio::spawn(pump(sr, cw, id, false, opened, params, st.clone(), closed));
            }
        });
        Ok(Link {
            addr,
            params,
            state,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn params(&self) -> LinkParams {
        self.params
    }

    /// Closes every connection but the event stream that has been quiet for `idle`, as a
    /// server's keep-alive timeout does: the client's next request opens a new connection.
    pub fn drop_idle(&self, idle: Duration) -> usize {
        let s = self.state.lock().expect("link state");
        let mut n = 0;
        for c in &s.conns {
            if !is_event_stream(&c.first_line) && c.last_activity.elapsed() >= idle {
                let _ = c.close.send(true);
                n += 1;
            }
        }
        n
    }

    /// When the link last carried anything but the event stream.
    pub fn last_activity(&self) -> Option<Instant> {
        let s = self.state.lock().expect("link state");
        s.conns
            .iter()
            .filter(|c| !is_event_stream(&c.first_line))
            .map(|c| c.last_activity)
            .max()
    }

    /// Answers delivered to the client for requests whose line contains `needle`.
    pub fn answered(&self, needle: &str) -> usize {
        let s = self.state.lock().expect("link state");
        let mut n = 0;
        let mut open: Vec<bool> = vec![false; s.conns.len()];
        for c in &s.log {
            if c.up {
                if c.request_line
                    .as_deref()
                    .is_some_and(|l| l.contains(needle))
                {
                    open[c.conn] = true;
                } else if c.request_line.is_some() {
                    open[c.conn] = false;
                }
            } else if open[c.conn] {
                n += 1;
                open[c.conn] = false;
            }
        }
        n
    }

    /// What crossed from `from` (the client's writes from then on) to `to` (what was
    /// delivered by then).
    pub fn window(&self, from: Instant, to: Instant) -> Window {
        let s = self.state.lock().expect("link state");
        let sse = |conn: usize| is_event_stream(&s.conns[conn].first_line);
        let mut w = Window {
            requests: Vec::new(),
            new_connections: s
                .conns
                .iter()
                .filter(|c| c.opened >= from && c.opened <= to && !is_event_stream(&c.first_line))
                .count(),
            round_trips: 0,
            bytes_up: 0,
            bytes_down: 0,
            event_stream_bytes: 0,
        };
        for c in s.log.iter().filter(|c| c.sent >= from && c.delivered <= to) {
            if sse(c.conn) {
                w.event_stream_bytes += c.bytes;
                continue;
            }
            if c.up {
                w.bytes_up += c.bytes;
                if let Some(l) = &c.request_line {
                    w.requests.push(l.clone());
                }
            } else {
                w.bytes_down += c.bytes;
            }
        }
        w.round_trips = w.requests.len() + w.new_connections;
        w
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
        for c in &self.state.lock().expect("link state").conns {
            let _ = c.close.send(true);
        }
    }
}

/// Does a chunk begin an HTTP request? Then its first line.
fn request_line(b: &[u8]) -> Option<String> {
    const METHODS: [&[u8]; 5] = [b"GET ", b"POST ", b"PUT ", b"DELETE ", b"PATCH "];
    if !METHODS.iter().any(|m| b.starts_with(m)) {
        return None;
    }
    let end = b
        .iter()
        .position(|&c| c == b'\r')
        .unwrap_or(b.len())
        .min(200);
    Some(String::from_utf8_lossy(&b[..end]).into_owned())
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    conn: usize,
    up: bool,
    ready: Instant,
    params: LinkParams,
    state: Arc<Mutex<State>>,
    mut closed: watch::Receiver<bool>,
) {
    // Reading and delivering are apart, so bytes keep arriving while earlier ones wait.
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Instant, Vec<u8>)>();
    let st = state.clone();
    let mut closed2 = closed.clone();
    let deliver = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                n = rx.recv() => n,
                _ = closed2.wait_for(|c| *c) => None,
            };
            let Some((sent, at, bytes)) = next else { break };
            tokio::time::sleep_until(at.into()).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
            let now = Instant::now();
            let mut s = st.lock().expect("link state");
            let request_line = if up { request_line(&bytes) } else { None };
            if let Some(l) = &request_line {
                if s.conns[conn].first_line.is_none() {
                    s.conns[conn].first_line = Some(l.clone());
                }
            }
            s.conns[conn].last_activity = now;
            s.log.push(Crossing {
                conn,
                up,
                bytes: bytes.len(),
                sent,
                delivered: now,
                request_line,
            });
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = closed.wait_for(|c| *c) => break,
        };
        let now = Instant::now();
        let at = {
            let mut s = state.lock().expect("link state");
            s.conns[conn].last_activity = now;
            let dir = usize::from(!up);
            let start = now.max(ready).max(s.free_at[dir].unwrap_or(now));
            let done = start + Duration::from_secs_f64(n as f64 / params.bytes_per_sec);
            s.free_at[dir] = Some(done);
            done + params.one_way
        };
        if tx.send((now, at, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = deliver.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_waits_the_handshake_and_both_ways_and_is_paced() {
        // An echo server behind the link.
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut b = vec![0u8; 65536];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let params = LinkParams {
            one_way: Duration::from_millis(50),
            bytes_per_sec: 100_000.0,
        };
        let link = Link::start(echo_addr, params).await.unwrap();
        let t0 = Instant::now();
        let mut c = TcpStream::connect(link.addr).await.unwrap();
        let req = b"GET /api/v1/search?q=x HTTP/1.1\r\nHost: h\r\n\r\n".repeat(100);
        c.write_all(&req).await.unwrap();
        let mut got = vec![0u8; req.len()];
        c.read_exact(&mut got).await.unwrap();
        let took = t0.elapsed();
        // Handshake (100 ms) + up (50 ms) + down (50 ms) + 2 × 4.6 KB at 100 KB/s (≥ 92 ms).
        assert!(took >= Duration::from_millis(290), "{took:?}");
        assert!(took < Duration::from_millis(900), "{took:?}");
        let w = link.window(t0, Instant::now());
        assert_eq!(w.new_connections, 1);
        assert_eq!(w.requests.len(), 1, "{:?}", w.requests);
        assert_eq!(w.round_trips, 2);
        assert_eq!(w.bytes_up, req.len());
        assert_eq!(w.bytes_down, req.len());
        assert_eq!(link.answered("/search"), 1);
        assert_eq!(link.drop_idle(Duration::ZERO), 1);
    }
}
