//! PostgreSQL: production. Record, version and audit tables are partitioned by prefecture; every
//! statement names the partition key so the planner touches one partition.

use std::time::Duration;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection as _;

use super::StoreResult;

pub struct PgStore {
    pub(crate) read: PgPool,
    pub(crate) write: PgPool,
    /// The read-audit batcher's own connection (see `Storage::append_chained`).
    pub(crate) audit: PgPool,
    /// The audit MAC key, installed once it is read (`Storage::install_audit_key`).
    pub(crate) mac: super::MacSlot,
    /// For `probe`: a connection of its own, so a busy pool does not look like a lost database.
    opts: PgConnectOptions,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        Self::connect_with(url, max_connections, Duration::from_secs(10)).await
    }

    /// `acquire_timeout` bounds how long a request waits for a pooled connection, which while
    /// the database is unreachable is how long sqlx keeps retrying to open one.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> StoreResult<Self> {
        // Hot statements name a prefecture's partition (see `records_table`), up to 48
        // variants each: room for all of them, so none is prepared again.
        let opts = PgConnectOptions::from_str(url)?.statement_cache_capacity(1024);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(opts.clone())
            .await?;
        // The read-audit batcher's connection, apart from the pool: under full load every pooled
        // connection is taken by reads, and a batch queued behind them would hold up every read
        // waiting for its entry. (Pooled connections keep sqlx's ping before use: a server
        // restart leaves broken connections behind, and the ping replaces them.)
        // Opened lazily: the batcher's first batch opens it from the batcher's own runtime,
        // which then serves its socket (see `AuditBatcher::start`). The pool above has already
        // shown that the database answers.
        let audit = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(opts.clone());
        Ok(PgStore {
            read: pool.clone(),
            write: pool,
            audit,
            mac: Default::default(),
            opts,
        })
    }

    /// Whether the database answers a new connection now.
    pub async fn probe_connection(&self) -> StoreResult<()> {
        let mut c = PgConnection::connect_with(&self.opts).await?;
        sqlx::query("SELECT 1").execute(&mut c).await?;
        let _ = c.close().await;
        Ok(())
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.write)
            .await?;
        Ok(())
    }

    pub async fn close_pools(&self) {
        self.write.close().await;
        self.audit.close().await;
    }

    pub async fn close_reader_pools(&self) {
        self.close_pools().await
    }
}

// One SQL body, two engines: every area's statements, expanded here for PostgreSQL and in
// `sqlite.rs` for SQLite (see `sql.rs`).
super::sql::impl_common!(PgStore, sqlx::Postgres, "postgres", " FOR UPDATE");
crate::orgs::sql::impl_org_store!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::auth::sql::impl_auth_store!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::records::sql::impl_record_store!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::audit::sql::impl_audit_store!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::notify::sql::impl_notification_store!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::intake::sql::impl_intake_store!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::transfers::sql::impl_transfer_store!(PgStore, sqlx::Postgres, " FOR UPDATE");
crate::search::sql::impl_search_store!(
    PgStore,
    sqlx::Postgres,
    " FOR UPDATE",
    // DELETE, not TRUNCATE: TRUNCATE would lock searches out for the whole rebuild; with
    // DELETE they keep reading the old keys until the rebuild commits.
    "DELETE FROM search_keys; DELETE FROM search_docs"
);
