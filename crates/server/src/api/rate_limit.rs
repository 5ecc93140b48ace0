//! Per-address rate limits (`[limits] login_per_minute`, `api_per_second`), with
//! tower_governor: a token bucket (GCRA) per client address, in memory. Over the limit the
//! request is answered 429 `rate_limited` with `Retry-After` before any handler runs.
//!
//! The client address is the TCP peer's (`ConnectInfo`), never a header such as
//! `X-Forwarded-For`, which any client can set: behind a proxy every request has the proxy's
//! address, so the limits there are limits for everyone together (see docs/operations.md).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use axum::Router;
use governor::middleware::NoOpMiddleware;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

use crate::config::LimitsConfig;
use crate::error::AppError;
use crate::state::AppState;

/// Keys requests by client: an IPv4 address, or an IPv6 address's /64, the block one
/// subscriber usually gets (so that moving within it gives no new quota).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr;

impl KeyExtractor for ClientAddr {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| client_key(c.0.ip()))
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

type Layer = GovernorLayer<ClientAddr, NoOpMiddleware, Body>;

/// A limiter of `burst` requests at once, then one per `period`, per client.
fn layer(period: Duration, burst: u32) -> Layer {
    let config: Arc<GovernorConfig<ClientAddr, NoOpMiddleware>> = Arc::new(
        GovernorConfigBuilder::default()
            .key_extractor(ClientAddr)
            .period(period.max(Duration::from_nanos(1)))
            .burst_size(burst.max(1))
            .finish()
            .expect("a period and a burst above zero"),
    );
    // Clients that have their whole burst back are forgotten once a minute, so the memory
    // held is for recent clients only. The task ends with the limiter (with the router).
    let limiter = Arc::downgrade(config.limiter());
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(l) = limiter.upgrade() else { break };
                l.retain_recent();
                l.shrink_to_fit();
            }
        });
    }
    GovernorLayer::new(config).error_handler(answer)
}

/// The project's JSON error instead of tower_governor's plain text.
fn answer(e: GovernorError) -> Response<Body> {
    match e {
        // `wait_time` is whole seconds rounded down; a client waiting one more is let in.
        GovernorError::TooManyRequests { wait_time, .. } => AppError::RateLimited {
            retry_after_secs: wait_time + 1,
        }
        .into_response(),
        GovernorError::UnableToExtractKey => AppError::Internal(anyhow::anyhow!(
            "no peer address on the request: serve with into_make_service_with_connect_info"
        ))
        .into_response(),
        GovernorError::Other { code, msg, .. } => AppError::Internal(anyhow::anyhow!(
            "rate limiter: {code} {}",
            msg.unwrap_or_default()
        ))
        .into_response(),
    }
}

/// Every route of `router` shares one limit per client (`api_per_second`, `api_burst`).
pub fn limit_api(router: Router<AppState>, limits: &LimitsConfig) -> Router<AppState> {
    match limits.api_per_second {
        0 => router,
        n => router.layer(layer(Duration::from_secs(1) / n, limits.api_burst)),
    }
}

/// The login route's own limit per client (`login_per_minute`, `login_burst`).
pub fn limit_login(route: MethodRouter<AppState>, limits: &LimitsConfig) -> MethodRouter<AppState> {
    match limits.login_per_minute {
        0 => route,
        n => route.layer(layer(Duration::from_secs(60) / n, limits.login_burst)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_addresses_and_ipv6_slash_64s() {
        let k = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(k("192.0.2.7"), k("192.0.2.7"));
        assert_ne!(k("192.0.2.7"), k("192.0.2.8"));
        assert_eq!(k("::ffff:192.0.2.7"), k("192.0.2.7"));
        assert_eq!(k("2001:db8:1:2:aaaa::1"), k("2001:db8:1:2:bbbb::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
    }
}
