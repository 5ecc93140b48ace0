//! PostgreSQL: production. Record, version and audit tables are partitioned by prefecture; every
//! statement names the partition key so the planner touches one partition.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::StoreResult;

pub struct PgStore {
    pub(crate) read: PgPool,
    pub(crate) write: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PgStore {
            read: pool.clone(),
            write: pool,
        })
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.write)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
    }
}

super::sql::impl_storage!(
    PgStore,
    sqlx::Postgres,
    "postgres",
    " FOR UPDATE",
    // DELETE, not TRUNCATE: TRUNCATE would lock searches out for the whole rebuild; with
    // DELETE they keep reading the old keys until the rebuild commits.
    "DELETE FROM search_keys; DELETE FROM search_docs"
);
