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
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await?;
        // Every commit makes each reader drop its whole page cache at its next read (SQLite's
        // WAL rule), and dropping walks the cache: a large one makes every read after a write
        // slow. Readers keep a small cache; the pages come back from the OS's file cache.
        // (A memory map does not help: the same rule unmaps and maps it again.)
        let read_opts = opts.pragma("cache_size", "-4096");
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(read_opts)
            .await?;
        Ok(SqliteStore { read, write })
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.write)
            .await?;
        Ok(())
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

super::sql::impl_storage!(
    SqliteStore,
    sqlx::Sqlite,
    "sqlite",
    "",
    "DELETE FROM search_keys; DELETE FROM search_docs;",
    // Data-modifying WITH: several writes in one statement.
    false
);
