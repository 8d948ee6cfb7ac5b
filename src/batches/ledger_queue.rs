//! The batch ledger's writer. Rows are written in the order batches finish; a row
//! Postgres cannot take (it is down) waits in memory with any before it — up to
//! [`MAX_WAITING`], the oldest dropped past that — and is written with the next row
//! once Postgres answers again, so an outage leaves its failed batches in the ledger.

use std::collections::VecDeque;
use std::sync::Mutex;

use sqlx::PgPool;

use crate::storage::ledger::{self, LedgerEntry};

/// Most rows kept waiting for Postgres (about 4 hours of 1m, 5m, 1h and close batches
/// failing together).
pub const MAX_WAITING: usize = 1000;

/// Writes ledger rows, keeping those Postgres could not take.
#[derive(Debug)]
pub struct LedgerQueue {
    db: PgPool,
    waiting: Mutex<VecDeque<LedgerEntry>>,
}

impl LedgerQueue {
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            waiting: Mutex::new(VecDeque::new()),
        }
    }

    /// Writes the rows waiting, then `entry`. On a failure the unwritten rows (this
    /// one included) keep waiting and the error is returned.
    pub async fn write(&self, entry: LedgerEntry) -> Result<(), sqlx::Error> {
        let rows: Vec<LedgerEntry> = {
            let mut waiting = self.waiting.lock().expect("ledger queue lock");
            waiting.push_back(entry);
            waiting.drain(..).collect()
        };
        for (written, row) in rows.iter().enumerate() {
            if let Err(error) = ledger::record(&self.db, row).await {
                let mut waiting = self.waiting.lock().expect("ledger queue lock");
                for row in rows.into_iter().skip(written).rev() {
                    waiting.push_front(row);
                }
                while waiting.len() > MAX_WAITING {
                    waiting.pop_front();
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// How many rows wait for Postgres.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().expect("ledger queue lock").len()
    }
}
