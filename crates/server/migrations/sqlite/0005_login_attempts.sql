-- Login attempts are counted by one conditional statement each (see `reserve_login` in
-- storage/sql.rs), so concurrent attempts cannot exceed the failure limit or reuse a code.
-- failed_at: when the last attempt was counted; a run of failures older than the lockout is
-- forgotten. attempt_checked: whether the last attempt got its password checked (1) or was
-- refused as locked (0), as that statement decided from the row it replaced.
ALTER TABLE users ADD COLUMN failed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN attempt_checked INTEGER NOT NULL DEFAULT 0;

-- Logins that are no account, counted exactly like accounts, so that answers (and restarts) do
-- not tell which logins exist. Keyed by an HMAC of the login under a key derived from the TOTP
-- key file, so a password typed into the login field is not kept readable. Rows whose run of
-- failures is forgotten are deleted as new failures arrive (see `reserve_login`).
CREATE TABLE login_failures (
    login_tag       TEXT PRIMARY KEY,
    failed_count    INTEGER NOT NULL,
    locked_until    INTEGER NOT NULL,
    failed_at       INTEGER NOT NULL,
    attempt_checked INTEGER NOT NULL
);
CREATE INDEX login_failures_failed_at ON login_failures(failed_at);
