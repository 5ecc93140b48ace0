//! The SQL of `AuthStore` (users, sessions, counted login attempts, TOTP secrets), written once
//! and expanded for each engine in `storage/sqlite.rs` and `storage/postgres.rs`.

/// `LIKE` pattern of a sealed TOTP secret.
pub fn sealed_pattern() -> String {
    format!("{}%", crate::totp_key::SEALED_PREFIX)
}

/// The most forgotten rows of unknown logins one attempt deletes: more than one attempt adds,
/// so they cannot pile up, and little enough that no attempt waits on a long delete.
pub const LOGIN_FAILURES_SWEEP: i64 = 100;

/// The SET list that counts a login attempt on a row of table `t` (`users` or
/// `login_failures`), written once for both. `$1` now, `$2` max_failures, `$3` the time at or
/// before which a run of failures is forgotten, `$4` the end of a lockout that starts now.
/// Every expression reads the row as it was before this statement, so the row itself decides:
/// locked → counted, not checked, lockout unchanged; else the count goes on, or restarts at 1
/// when the last lockout has ended, the count already reached the limit, or the run is
/// forgotten; reaching `max_failures` locks.
pub fn reserve_set(t: &str) -> String {
    let locked = format!("{t}.locked_until > $1");
    let restart =
        format!("({t}.locked_until > 0 OR {t}.failed_count >= $2 OR {t}.failed_at <= $3)");
    let next = format!("(CASE WHEN {restart} THEN 1 ELSE {t}.failed_count + 1 END)");
    format!(
        "failed_count = CASE WHEN {locked} THEN {t}.failed_count + 1 ELSE {next} END, \
         locked_until = CASE WHEN {locked} THEN {t}.locked_until WHEN {next} >= $2 THEN $4 ELSE 0 END, \
         failed_at = $1, \
         attempt_checked = CASE WHEN {locked} THEN 0 ELSE 1 END"
    )
}

macro_rules! impl_auth_store {
    ($store:ty, $db:ty, $for_update:literal) => {
        use $crate::auth::sql::{reserve_set, sealed_pattern, LOGIN_FAILURES_SWEEP};

        fn user_from_row(r: &DbRow) -> StoreResult<UserRow> {
            Ok(UserRow {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                login: r.try_get("login")?,
                display_name: r.try_get("display_name")?,
                role: r.try_get("role")?,
                password_hash: r.try_get("password_hash")?,
                totp_secret: r.try_get("totp_secret")?,
                totp_last_step: r.try_get("totp_last_step")?,
                failed_count: r.try_get("failed_count")?,
                locked_until: r.try_get("locked_until")?,
            })
        }

        /// Sets one of a user's credentials (`set`, whose `$1` is `value`), clears the failure
        /// count and any lockout, ends the user's sessions and appends `audit`, inside the
        /// caller's transaction.
        async fn reset_credential(conn: &mut Conn, key: &MacKey, set: &str, value: &str, user_id: i64, audit: AuditDraft) -> StoreResult<()> {
            let sql = format!("UPDATE users SET {set}, failed_count = 0, locked_until = 0 WHERE id = $2");
            let n = sqlx::query(&sql).bind(value).bind(user_id).execute(&mut *conn).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await?;
            append_audit_tx(conn, key, audit).await?;
            Ok(())
        }

        fn map_unique(e: sqlx::Error) -> StoreError {
            match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Duplicate,
                _ => StoreError::Db(e),
            }
        }

        #[async_trait::async_trait]
        impl AuthStore for $store {
            async fn create_user(&self, u: &NewUser, mut audit: AuditDraft) -> StoreResult<i64> {
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(
                    "INSERT INTO users (org_id, login, display_name, role, password_hash, totp_secret, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(&u.org_id)
                .bind(&u.login)
                .bind(&u.display_name)
                .bind(&u.role)
                .bind(&u.password_hash)
                .bind(&u.totp_secret)
                .bind(audit.at)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_unique)?;
                let id: i64 = row.try_get("id")?;
                audit.detail = serde_json::json!({ "user_id": id, "role": u.role });
                append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRow>> {
                let row = sqlx::query("SELECT * FROM users WHERE login = $1")
                    .bind(login)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn set_totp_secret(&self, user_id: i64, sealed: &str, audit: AuditDraft) -> StoreResult<()> {
                let mut tx = self.write.begin().await?;
                reset_credential(&mut tx, &*self.mac.get()?, "totp_secret = $1, totp_last_step = 0", sealed, user_id, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn sealed_totp_sample(&self) -> StoreResult<Option<(String, String)>> {
                let row = sqlx::query("SELECT login, totp_secret FROM users WHERE totp_secret LIKE $1 ORDER BY id LIMIT 1")
                    .bind(sealed_pattern())
                    .fetch_optional(&self.read)
                    .await?;
                row.map(|r| Ok((r.try_get("login")?, r.try_get("totp_secret")?))).transpose()
            }

            async fn rewrite_totp_secrets(
                &self,
                which: TotpSecrets,
                rewrite: &(dyn for<'a, 'b> Fn(&'a str, &'b str) -> Result<String, String> + Send + Sync),
                mut audit: AuditDraft,
            ) -> StoreResult<u64> {
                let mut tx = self.write.begin().await?;
                let filter = match which {
                    TotpSecrets::Plain => "NOT LIKE",
                    TotpSecrets::Sealed => "LIKE",
                };
                let rows = sqlx::query(&format!("SELECT id, login, totp_secret FROM users WHERE totp_secret {filter} $1 ORDER BY id"))
                    .bind(sealed_pattern())
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.is_empty() {
                    return Ok(0);
                }
                for r in &rows {
                    let (id, login, stored): (i64, String, String) = (r.try_get("id")?, r.try_get("login")?, r.try_get("totp_secret")?);
                    let new = rewrite(&login, &stored)
                        .map_err(|why| StoreError::Corrupt(format!("the TOTP secret of user {id}: {why}")))?;
                    sqlx::query("UPDATE users SET totp_secret = $1 WHERE id = $2")
                        .bind(new)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                audit.detail = serde_json::json!({ "users": rows.len() });
                append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                tx.commit().await?;
                Ok(rows.len() as u64)
            }

            async fn set_password(&self, user_id: i64, hash: &str, audit: AuditDraft) -> StoreResult<()> {
                let mut tx = self.write.begin().await?;
                reset_credential(&mut tx, &*self.mac.get()?, "password_hash = $1", hash, user_id, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn reserve_login(&self, key: LoginKey<'_>, rule: &AttemptRule) -> StoreResult<Attempt> {
                let (now, stale, until) = (rule.now, rule.now - rule.lockout_micros, rule.now + rule.lockout_micros);
                // Forgotten runs of unknown logins go first, a few per attempt, for every login
                // alike (so that an unknown login costs no statement more than an account);
                // SKIP LOCKED so that no attempt waits for (or deadlocks with) another's sweep.
                let lock = if postgres() { " FOR UPDATE SKIP LOCKED" } else { "" };
                sqlx::query(&format!(
                    "DELETE FROM login_failures WHERE login_tag IN (SELECT login_tag FROM login_failures \
                     WHERE failed_at <= $1 AND locked_until <= $2 LIMIT $3{lock})"
                ))
                .bind(stale)
                .bind(now)
                .bind(LOGIN_FAILURES_SWEEP)
                .execute(&self.write)
                .await?;
                let row = match key {
                    LoginKey::User(id) => {
                        sqlx::query(&format!(
                            "UPDATE users SET {} WHERE id = $5 RETURNING failed_count, locked_until, attempt_checked",
                            reserve_set("users")
                        ))
                        .bind(now)
                        .bind(rule.max_failures)
                        .bind(stale)
                        .bind(until)
                        .bind(id)
                        .fetch_optional(&self.write)
                        .await?
                        .ok_or(StoreError::NotFound)?
                    }
                    LoginKey::Unknown(tag) => {
                        sqlx::query(&format!(
                            "INSERT INTO login_failures (login_tag, failed_count, locked_until, failed_at, attempt_checked) \
                             VALUES ($5, 1, CASE WHEN 1 >= $2 THEN $4 ELSE 0 END, $1, 1) \
                             ON CONFLICT (login_tag) DO UPDATE SET {} \
                             RETURNING failed_count, locked_until, attempt_checked",
                            reserve_set("login_failures")
                        ))
                        .bind(now)
                        .bind(rule.max_failures)
                        .bind(stale)
                        .bind(until)
                        .bind(tag)
                        .fetch_one(&self.write)
                        .await?
                    }
                };
                Ok(Attempt {
                    number: row.try_get("failed_count")?,
                    locked_until: row.try_get("locked_until")?,
                    checked: row.try_get::<i64, _>("attempt_checked")? == 1,
                })
            }

            async fn open_session(
                &self,
                user_id: i64,
                attempt: &Attempt,
                totp_step: i64,
                session: &NewSession,
                audit: AuditDraft,
            ) -> StoreResult<bool> {
                let mut tx = self.write.begin().await?;
                // The step only moves forward: of concurrent logins with one code, one moves it.
                let moved = sqlx::query(
                    "UPDATE users SET totp_last_step = $1, \
                     failed_count = CASE WHEN failed_count = $2 THEN 0 \
                                         WHEN failed_count > $2 AND locked_until <= $3 THEN failed_count - $2 \
                                         ELSE failed_count END, \
                     locked_until = CASE WHEN failed_count = $2 THEN 0 ELSE locked_until END \
                     WHERE id = $4 AND totp_last_step < $1",
                )
                .bind(totp_step)
                .bind(attempt.number)
                .bind(session.created_at)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if moved == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
                     VALUES ($1, $2, $3, $3, $4)",
                )
                .bind(&session.token_hash)
                .bind(user_id)
                .bind(session.created_at)
                .bind(session.expires_at)
                .execute(&mut *tx)
                .await?;
                append_audit_tx(&mut tx, &*self.mac.get()?, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn session(&self, token_hash: &str) -> StoreResult<Option<SessionRow>> {
                let row = sqlx::query(
                    "SELECT s.token_hash, s.created_at AS s_created_at, s.last_seen_at, s.expires_at, u.* \
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.read)
                .await?;
                row.as_ref()
                    .map(|r| {
                        Ok(SessionRow {
                            token_hash: r.try_get("token_hash")?,
                            created_at: r.try_get("s_created_at")?,
                            last_seen_at: r.try_get("last_seen_at")?,
                            expires_at: r.try_get("expires_at")?,
                            user: user_from_row(r)?,
                        })
                    })
                    .transpose()
            }

            async fn touch_session(&self, token_hash: &str, at: i64) -> StoreResult<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                    .bind(at)
                    .bind(token_hash)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn end_session(&self, token_hash: &str, audit: Option<AuditDraft>) -> StoreResult<()> {
                let mut tx = self.write.begin().await?;
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&mut *tx)
                    .await?;
                if let Some(a) = audit {
                    append_audit_tx(&mut tx, &*self.mac.get()?, a).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_auth_store;
