//! Counter-only spend writes, for `disable_spend_logs`: each call's cost is
//! added to its key, user and team without a spend-log row.
//!
//! Idempotency without a row: the request ids counted are kept in a small
//! table (`ferrolite_spend_counted`: id and time only) for
//! [`COUNTED_TTL_MS`], and a batch adds only the costs of ids it inserted
//! there, in the same transaction as the increments. A batch replayed after
//! a write whose commit was not acknowledged, or a spill file replayed after
//! a restart, is therefore not counted twice — as long as the replay comes
//! within the window. Older ids are pruned by the writes themselves, so the
//! table holds about one window of calls (a few dozen bytes each).
//!
//! The trade-off: a replay older than the window (a spill file left for
//! more than a week with the database down) would be counted again; and a
//! call counted here and later written again by
//! [`Store::record_spend`] (the setting switched off between the failed write
//! and its replay) would be counted twice, since the two writes dedupe
//! against different tables.

use std::collections::{BTreeMap, HashSet};

use sqlx::{QueryBuilder, Row};

use crate::model::SpendRow;
use crate::spend::fixed_chunks;
use crate::{on_db, Result, Store};

/// How long a counted request id is remembered: one week.
pub const COUNTED_TTL_MS: i64 = 7 * 86_400_000;

const TABLES: [(&str, &str); 3] = [
    ("ferrolite_keys", "token"),
    ("ferrolite_users", "user_id"),
    ("ferrolite_teams", "team_id"),
];

impl Store {
    /// Add each call's `spend` to the key (`api_key`), user and team it
    /// names, without writing spend-log rows; only `request_id`, `api_key`,
    /// `user`, `team_id` and `spend` are read. Idempotent per `request_id`
    /// within [`COUNTED_TTL_MS`] of `now` (see the module documentation).
    /// Returns how many calls were new.
    pub async fn record_spend_counters(&self, batch: &[SpendRow], now: i64) -> Result<usize> {
        let mut seen = HashSet::new();
        let mut rows: Vec<&SpendRow> = batch
            .iter()
            .filter(|r| seen.insert(r.request_id.as_str()))
            .collect();
        rows.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        if rows.is_empty() {
            return Ok(0);
        }
        let mut inc: [BTreeMap<&str, f64>; 3] = Default::default();
        let mut counted = 0usize;
        on_db!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM ferrolite_spend_counted WHERE counted_at < $1")
                .bind(now.saturating_sub(COUNTED_TTL_MS))
                .execute(&mut *tx)
                .await?;
            macro_rules! counted_insert {
                ($chunk:expr, $returning:expr) => {{
                let chunk = $chunk;
                let returning: bool = $returning;
                let mut qb = QueryBuilder::new("INSERT INTO ferrolite_spend_counted (request_id, counted_at) ");
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.request_id.as_str()).push_bind(now);
                });
                qb.push(if returning {
                    " ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
                } else {
                    " ON CONFLICT (request_id) DO NOTHING"
                });
                qb
                }};
            }
            // Fast path: every id is new, proven by the affected counts
            // (see `record_spend`); otherwise start over with RETURNING.
            let mut new_rows: Vec<&SpendRow> = Vec::with_capacity(rows.len());
            let mut all_new = true;
            for chunk in fixed_chunks(&rows) {
                let n = counted_insert!(chunk, false).build().execute(&mut *tx).await?.rows_affected();
                if n != chunk.len() as u64 {
                    all_new = false;
                    break;
                }
            }
            if all_new {
                new_rows.extend(rows.iter().copied());
            } else {
                tx.rollback().await?;
                tx = p.begin().await?;
                sqlx::query("DELETE FROM ferrolite_spend_counted WHERE counted_at < $1")
                    .bind(now.saturating_sub(COUNTED_TTL_MS))
                    .execute(&mut *tx)
                    .await?;
                for chunk in fixed_chunks(&rows) {
                    let new: HashSet<String> = counted_insert!(chunk, true)
                        .build()
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<String, _>("request_id"))
                        .collect::<std::result::Result<_, _>>()?;
                    new_rows.extend(chunk.iter().filter(|r| new.contains(&r.request_id)).copied());
                }
            }
            for r in new_rows {
                counted += 1;
                if r.spend == 0.0 || !r.spend.is_finite() {
                    continue;
                }
                let who = [
                    Some(r.api_key.as_str()),
                    r.user.as_deref(),
                    r.team_id.as_deref(),
                ];
                for (m, w) in inc.iter_mut().zip(who) {
                    if let Some(w) = w.filter(|w| !w.is_empty()) {
                        *m.entry(w).or_default() += r.spend;
                    }
                }
            }
            for ((table, id), amounts) in TABLES.iter().zip(&inc) {
                let sql = format!("UPDATE {table} SET spend = spend + $2 WHERE {id} = $1");
                for (who, amount) in amounts {
                    sqlx::query(&sql).bind(*who).bind(*amount).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        });
        Ok(counted)
    }
}
