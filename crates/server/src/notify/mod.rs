//! The in-process hub that pushes committed notifications to connected event streams. The
//! database inbox is the source of truth; the hub only makes delivery immediate, and a stream
//! that falls behind re-reads the inbox.

pub mod routes;
pub mod service;
pub(crate) mod sql;

use tokio::sync::{broadcast, watch};

use crate::storage::NotificationRow;

#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<NotificationRow>,
    /// Set on shutdown so that open event streams end and graceful shutdown can finish.
    closing: watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(4096);
        let (closing, _) = watch::channel(false);
        Hub { tx, closing }
    }
}

impl Hub {
    pub fn publish(&self, rows: &[NotificationRow]) {
        for r in rows {
            // No receiver is fine: nobody is connected, the inbox keeps it.
            let _ = self.tx.send(r.clone());
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<NotificationRow> {
        self.tx.subscribe()
    }

    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once the server is shutting down.
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}
