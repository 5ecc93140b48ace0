//! The use cases of logging in and out, and of resolving a bearer token to its caller.

use serde_json::json;
use tsunagu_record::api::{LoginRequest, LoginResponse, Me};
use tsunagu_record::Role;

use crate::audit::{action, AuditDraft};
use crate::auth;
use crate::error::{AppError, AppResult};
use crate::state::{time, AppState, Viewer};
use crate::storage::{Attempt, AttemptRule, LoginKey, NewSession};

/// A session's last use is written at most this often (a write per request would make every
/// read a write), and at least twice per idle timeout, so a session in continuous use never
/// reaches its idle timeout between writes.
fn session_touch_micros(idle_timeout_secs: u64) -> i64 {
    (idle_timeout_secs as i64 * 1_000_000 / 2).clamp(0, 60 * 1_000_000)
}

impl AppState {
    /// A password check against the dummy hash: the time of a real check, for answers that
    /// must not be told apart from one by their timing.
    async fn hash_like_a_login(&self, password: &str) {
        let (password, dummy) = (password.to_string(), self.dummy_hash.clone());
        let _ = tokio::task::spawn_blocking(move || auth::verify_password(&password, &dummy)).await;
    }

    /// Every attempt is counted in the database before its password is checked
    /// (`Storage::reserve_login`), so concurrent attempts cannot get more than `max_failures`
    /// checks; a login that is no account is counted the same way, with the same answers and
    /// the same work, so neither the answers nor their timing tell which logins exist.
    pub async fn login(&self, req: LoginRequest) -> AppResult<LoginResponse> {
        let now = self.clock.now();
        let cfg = &self.config.auth;
        let rule = AttemptRule {
            now,
            max_failures: cfg.max_failures,
            lockout_micros: cfg.lockout_secs as i64 * 1_000_000,
        };
        let refused = |attempt: &Attempt| {
            if attempt.locked_until > now {
                AppError::Locked {
                    minutes: auth::minutes_left(attempt.locked_until, now),
                }
            } else {
                AppError::LoginFailed
            }
        };
        let login = req.login.trim();
        let Some(user) = self.store.user_by_login(login).await? else {
            let tag = self.totp_key.login_tag(login);
            let attempt = self
                .store
                .reserve_login(LoginKey::Unknown(&tag), &rule)
                .await?;
            self.hash_like_a_login(&req.password).await;
            self.store
                .append_audit(AuditDraft {
                    pref_code: 0,
                    at: now,
                    actor_user: None,
                    actor_org: "-".into(),
                    action: action::LOGIN_FAILED,
                    record_id: None,
                    detail: json!({ "reason": "unknown_user" }),
                })
                .await?;
            return Err(refused(&attempt));
        };
        let org = self.org(&user.org_id)?.clone();
        let draft = |action, detail| AuditDraft {
            pref_code: org.pref_code,
            at: now,
            actor_user: Some(user.id),
            actor_org: org.id.clone(),
            action,
            record_id: None,
            detail,
        };
        let attempt = self
            .store
            .reserve_login(LoginKey::User(user.id), &rule)
            .await?;
        if !attempt.checked {
            // Locked: the password is not checked, but the dummy hash costs what a check
            // costs, so the time taken tells nothing either.
            self.hash_like_a_login(&req.password).await;
            self.store
                .append_audit(draft(action::LOGIN_FAILED, json!({ "reason": "locked" })))
                .await?;
            return Err(refused(&attempt));
        }
        let (password, hash) = (req.password.clone(), user.password_hash.clone());
        let password_ok =
            tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
                .await
                .map_err(|e| AppError::Internal(e.into()))?;
        let step = if password_ok {
            // A secret the key does not open is the server's fault, not the user's: the
            // operator finds the reason in the log (never the secret). The attempt stays
            // counted, as it was counted before the password was checked.
            let secret = self
                .totp_key
                .open(&user.login, &user.totp_secret)
                .map_err(|e| {
                    tracing::error!(user_id = user.id, error = %e, "cannot open a TOTP secret");
                    AppError::Internal(anyhow::anyhow!("TOTP secret of user {}: {e}", user.id))
                })?;
            // The step read with the user only spares work here; the store decides.
            auth::check_totp(
                &secret,
                &req.otp,
                (now / 1_000_000) as u64,
                user.totp_last_step,
            )
        } else {
            None
        };
        if let Some(totp_step) = step {
            let (token, token_hash) = auth::new_token();
            let expires_at = now + cfg.absolute_timeout_secs as i64 * 1_000_000;
            let session = NewSession {
                token_hash,
                created_at: now,
                expires_at,
            };
            let opened = self
                .store
                .open_session(
                    user.id,
                    &attempt,
                    totp_step,
                    &session,
                    draft(action::LOGIN, json!({})),
                )
                .await?;
            if opened {
                return Ok(LoginResponse {
                    token,
                    expires_at: time(expires_at),
                    idle_timeout_secs: cfg.idle_timeout_secs,
                    me: Me {
                        user_id: user.id,
                        login: user.login.clone(),
                        display_name: user.display_name.clone(),
                        role: Role::from_code(&user.role).unwrap_or(Role::Staff),
                        org: org.summary(),
                    },
                });
            }
            // Another login used this code first: a replay, refused like a wrong code.
        }
        let reason = if password_ok { "otp" } else { "password" };
        let locked = attempt.locked_until > now;
        self.store
            .append_audit(draft(
                action::LOGIN_FAILED,
                json!({ "reason": reason, "locked": locked }),
            ))
            .await?;
        Err(refused(&attempt))
    }

    /// Whether a session is still good, without counting this as use: for open event streams,
    /// which must end when their session is logged out, expires or goes idle. Always reads the
    /// store, so a session ended by another process ends the stream too.
    pub async fn session_is_live(&self, token_hash: &str) -> AppResult<bool> {
        let Some(s) = self.store.session(token_hash).await? else {
            self.sessions.forget(token_hash, self.clock.now());
            return Ok(false);
        };
        Ok(!self.session_expired(&s, self.clock.now()))
    }

    /// Past its absolute expiry, or unused for longer than the idle timeout.
    fn session_expired(&self, s: &crate::storage::SessionRow, now: i64) -> bool {
        let idle = self.config.auth.idle_timeout_secs as i64 * 1_000_000;
        now >= s.expires_at || now - s.last_seen_at >= idle
    }

    /// Resolves a bearer token to the caller, enforcing idle and absolute expiry.
    pub async fn authenticate(&self, token: &str) -> AppResult<Viewer> {
        let unauth = |code, message: &str| AppError::Unauthenticated {
            code,
            message: message.into(),
        };
        let hash = auth::token_hash(token);
        let now = self.clock.now();
        let s = match self.sessions.get(&hash, now) {
            Some(s) => s,
            None => match self.store.session(&hash).await? {
                Some(s) => self.sessions.put(s, now),
                None => return Err(unauth("unauthenticated", "ログインしてください")),
            },
        };
        if self.session_expired(&s, now) {
            self.store.end_session(&hash, None).await?;
            self.sessions.forget(&hash, now);
            return Err(unauth(
                "session_expired",
                "セッションの有効期限が切れました。再度ログインしてください",
            ));
        }
        if now - s.last_seen_at >= session_touch_micros(self.config.auth.idle_timeout_secs) {
            self.store.touch_session(&hash, now).await?;
            self.sessions.touched(&hash, now);
        }
        let org = self.org(&s.user.org_id)?.clone();
        Ok(Viewer {
            user_id: s.user.id,
            login: s.user.login.clone(),
            display_name: s.user.display_name.clone(),
            role: Role::from_code(&s.user.role)
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown role stored")))?,
            org,
            token_hash: hash,
        })
    }

    pub async fn logout(&self, v: &Viewer) -> AppResult<()> {
        let audit = v.audit(
            self.clock.now(),
            v.org.pref_code,
            action::LOGOUT,
            None,
            json!({}),
        );
        self.store.end_session(&v.token_hash, Some(audit)).await?;
        self.sessions.forget(&v.token_hash, self.clock.now());
        Ok(())
    }
}
