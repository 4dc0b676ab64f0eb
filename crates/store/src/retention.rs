//! Spend-log retention: deleting rows older than a cutoff, and rows beyond
//! a count (the oldest first), in bounded batches.
//!
//! Each batch is one `DELETE … WHERE request_id IN (SELECT … ORDER BY
//! start_time LIMIT n)` statement on the `start_time` index, committed on
//! its own: neither SQLite (one writer at a time) nor PostgreSQL holds a
//! long lock or builds a large transaction, and the spend writer gets the
//! database between two batches. Deletes are idempotent, so several
//! instances pruning one PostgreSQL at once only repeat each other's work
//! (a batch whose rows another instance deleted first affects fewer rows).
//!
//! Only `ferrolite_spend_logs` rows go: the spend of keys, users and teams
//! (their `spend` columns, and so their budgets) is kept in those tables
//! and does not change.

use std::time::Duration;

use sqlx::Row;

use crate::{on_db, Result, Store};

/// What to delete, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Delete rows whose `start_time` is before this (ms since the epoch).
    pub before: Option<i64>,
    /// Keep at most this many rows, the newest; rows sharing the
    /// `start_time` of the oldest one kept are kept too. At least 1.
    pub max_rows: Option<u64>,
    /// Rows per DELETE statement.
    pub batch: u32,
    /// Wait between two statements, so other writers get the database.
    pub pause: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            before: None,
            max_rows: None,
            batch: 5_000,
            pause: Duration::from_millis(20),
        }
    }
}

/// What [`Store::prune_spend_logs`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Rows older than [`Retention::before`].
    pub by_age: u64,
    /// Rows beyond [`Retention::max_rows`].
    pub by_count: u64,
    /// DELETE statements run.
    pub statements: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.by_age + self.by_count
    }
}

const DELETE_BEFORE: &str = "DELETE FROM ferrolite_spend_logs WHERE request_id IN (SELECT request_id FROM ferrolite_spend_logs WHERE start_time < $1 ORDER BY start_time LIMIT $2)";

impl Store {
    /// Delete spend-log rows as `r` says: first those older than
    /// `r.before`, then the oldest beyond `r.max_rows`. Returns how many
    /// went. A failure stops the work; what was deleted before it stays
    /// deleted (each batch commits on its own).
    pub async fn prune_spend_logs(&self, r: &Retention) -> Result<Pruned> {
        let batch = r.batch.max(1);
        let mut out = Pruned::default();
        if let Some(before) = r.before {
            out.by_age = self.delete_before(before, batch, r.pause, &mut out).await?;
        }
        if let Some(max) = r.max_rows {
            if let Some(cut) = self.oldest_kept(max.max(1)).await? {
                out.by_count = self.delete_before(cut, batch, r.pause, &mut out).await?;
            }
        }
        Ok(out)
    }

    /// The `start_time` of the `keep`-th newest row, when there are more
    /// rows than that (else there is nothing to delete).
    async fn oldest_kept(&self, keep: u64) -> Result<Option<i64>> {
        let offset = i64::try_from(keep).unwrap_or(i64::MAX);
        let sql = "SELECT start_time FROM ferrolite_spend_logs ORDER BY start_time DESC LIMIT 2 OFFSET $1";
        // Two rows from the last kept one: the second shows there is more.
        let times: Vec<i64> = on_db!(self, p => sqlx::query(sql)
            .bind(offset - 1)
            .fetch_all(p)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>("start_time"))
            .collect::<std::result::Result<_, sqlx::Error>>()?);
        Ok(match times.as_slice() {
            [kept, _older, ..] => Some(*kept),
            _ => None,
        })
    }

    /// Delete every row older than `cut`, `batch` rows per statement.
    async fn delete_before(
        &self,
        cut: i64,
        batch: u32,
        pause: Duration,
        out: &mut Pruned,
    ) -> Result<u64> {
        let mut deleted = 0u64;
        loop {
            let n = on_db!(self, p => sqlx::query(DELETE_BEFORE)
                .bind(cut)
                .bind(i64::from(batch))
                .execute(p)
                .await?
                .rows_affected());
            out.statements += 1;
            deleted += n;
            if n < u64::from(batch) {
                return Ok(deleted);
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// How many spend-log rows there are.
    pub async fn count_spend_logs(&self) -> Result<i64> {
        let sql = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ferrolite_spend_logs";
        on_db!(self, p => Ok(sqlx::query(sql).fetch_one(p).await?.try_get("n")?))
    }
}
