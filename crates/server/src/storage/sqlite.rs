//! SQLite: the embedded default. One file in WAL mode; one writer connection (SQLite allows one
//! writer at a time, and queueing in the pool beats retrying on SQLITE_BUSY) and a small pool of
//! readers that see committed snapshots. The who-viewed index lives in a second file beside it
//! (`views_path`): derived from the audit log, with a write lock of its own, so that filling it
//! never holds up the log's commits.

use std::path::{Path, PathBuf};
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
    /// The who-viewed index file (see `views_path`).
    pub(crate) views: SqlitePool,
}

/// The who-viewed index's file: the database's name with `.views` added. It holds only what
/// can be rebuilt from the audit log, so backups may leave it out (docs/operations.md).
pub fn views_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".views");
    PathBuf::from(name)
}

/// The who-viewed index's schema; created when the file is opened (it is derived data, so it
/// has no migrations: a new layout would be a new file rebuilt from the log).
const VIEWS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_views (
    pref_code INTEGER NOT NULL,
    record_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (pref_code, record_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_views_done (
    pref_code INTEGER PRIMARY KEY,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL
);
";

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
        let filename = opts.get_filename().to_path_buf();
        let read_opts = opts.pragma("cache_size", "-4096");
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(read_opts)
            .await?;
        checkpoint_in_background(read.clone());
        // Derived data: NORMAL is enough (a power cut may lose the newest index rows together
        // with their watermark, and the indexer writes them again). Two connections: the
        // indexer writes while an owner's list of viewers reads.
        let views_opts = SqliteConnectOptions::new()
            .filename(views_path(&filename))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let views = SqlitePoolOptions::new()
            .max_connections(2)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(views_opts)
            .await?;
        sqlx::raw_sql(VIEWS_SCHEMA).execute(&views).await?;
        Ok(SqliteStore {
            read,
            audit: write.clone(),
            write,
            views,
        })
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.write)
            .await?;
        Ok(())
    }

    /// Closes the pools, flushing the WAL.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
        self.views.close().await;
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

super::sql::impl_storage!(
    SqliteStore,
    sqlx::Sqlite,
    "sqlite",
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
        store.close().await;
    }
}
