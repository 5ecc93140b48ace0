//! SQLite: the embedded default. One file in WAL mode; one writer connection (SQLite allows one
//! writer at a time, and queueing in the pool beats retrying on SQLITE_BUSY) and a small pool of
//! readers that see committed snapshots.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreResult;

pub struct SqliteStore {
    pub(crate) read: SqlitePool,
    pub(crate) write: SqlitePool,
    /// The read-audit batcher's pool: the writer (SQLite has one).
    pub(crate) audit: SqlitePool,
    /// The audit MAC key, installed once it is read (`Storage::install_audit_key`).
    pub(crate) mac: super::MacSlot,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let url = format!("sqlite://{}", path.display());
        Self::connect(&url).await
    }

    pub async fn connect(url: &str) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives power loss, not only a crash of the process.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        // The writer checkpoints by itself only as a backstop; `checkpoint_in_background` does
        // it off the commit path, so a commit does not wait for the database file's fsync.
        // No ping before each use (sqlx's default): an in-process connection cannot have been
        // dropped by a server, and the ping is one more round trip to the connection's thread.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone().pragma("wal_autocheckpoint", "16384"))
            .await?;
        // Every commit makes each reader drop its whole page cache at its next read (SQLite's
        // WAL rule), and dropping walks the cache: a large one makes every read after a write
        // slow. Readers keep a small cache; the pages come back from the OS's file cache.
        // (A memory map does not help: the same rule unmaps and maps it again.)
        let read_opts = opts.pragma("cache_size", "-4096");
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(read_opts)
            .await?;
        checkpoint_in_background(read.clone());
        Ok(SqliteStore {
            read,
            audit: write.clone(),
            write,
            mac: Default::default(),
        })
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.write)
            .await?;
        Ok(())
    }

    /// Whether the database answers now (a file: only an I/O failure makes it not).
    pub async fn probe_connection(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes both pools without folding the WAL: for commands that only read, beside a
    /// running server. A TRUNCATE checkpoint from this second process would take the writer's
    /// lock and make the server's requests fail as "database is locked".
    pub async fn close_reader_pools(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// Copies the WAL into the database file and empties it, then closes both pools. The
    /// checkpoint is explicit: a closed pool may leave its connections' final close (which
    /// would checkpoint too) to their threads after the process has gone.
    pub async fn close_pools(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.write)
            .await
        {
            tracing::warn!(error = %e, "final WAL checkpoint failed; the next start recovers the WAL");
        }
        self.read.close().await;
        self.write.close().await;
    }
}

/// Copies committed WAL pages into the database file every few hundred milliseconds from a
/// reader connection (PASSIVE: it never blocks the writer or readers). Ends when the pool closes.
fn checkpoint_in_background(pool: SqlitePool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                if pool.is_closed() {
                    break;
                }
                tracing::warn!(error = %e, "WAL checkpoint failed; the writer's own checkpoints remain");
            }
        }
    });
}

// One SQL body, two engines: every area's statements, expanded here for SQLite and in
// `postgres.rs` for PostgreSQL (see `sql.rs`). No row locks: the single writer serialises writes.
super::sql::impl_common!(SqliteStore, sqlx::Sqlite, "sqlite", "");
crate::orgs::sql::impl_org_store!(SqliteStore, sqlx::Sqlite, "");
crate::auth::sql::impl_auth_store!(SqliteStore, sqlx::Sqlite, "");
crate::records::sql::impl_record_store!(SqliteStore, sqlx::Sqlite, "");
crate::audit::sql::impl_audit_store!(SqliteStore, sqlx::Sqlite, "");
crate::notify::sql::impl_notification_store!(SqliteStore, sqlx::Sqlite, "");
crate::intake::sql::impl_intake_store!(SqliteStore, sqlx::Sqlite, "");
crate::transfers::sql::impl_transfer_store!(SqliteStore, sqlx::Sqlite, "");
crate::search::sql::impl_search_store!(
    SqliteStore,
    sqlx::Sqlite,
    "",
    "DELETE FROM search_keys; DELETE FROM search_docs;"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages committed to the WAL reach the database file without the writer checkpointing
    /// (its own threshold, 16,384 pages, is far above what this writes).
    #[tokio::test]
    async fn committed_pages_reach_the_file_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let store = SqliteStore::open(&path).await.unwrap();
        store.run_migrations().await.unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        sqlx::raw_sql(
            "CREATE TABLE filler (x TEXT); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO filler SELECT printf('%.1000c', 'x') FROM n;",
        )
        .execute(&store.write)
        .await
        .unwrap();
        let mut grown = 0;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            grown = std::fs::metadata(&path)
                .unwrap()
                .len()
                .saturating_sub(before);
            if grown >= 2_000_000 {
                break;
            }
        }
        assert!(grown >= 2_000_000, "the file grew by only {grown} bytes");
        store.close_pools().await;
    }
}
