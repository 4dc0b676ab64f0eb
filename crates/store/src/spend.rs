//! Spend: batched, idempotent writes of spend logs with the matching
//! key/user/team increments; budget resets; spend queries.

use std::collections::{BTreeMap, HashSet};

use sqlx::{QueryBuilder, Row};

use crate::model::{
    BudgetResets, DailySpend, KeySpend, ModelSpend, SpendDimension, SpendLogFilter, SpendRow,
};
use crate::rows::{self, to_json, NO_SPEND_CONTENT, SPEND_COLS, SPEND_CONTENT_COLS};
use crate::time::{format_day, parse_duration};
use crate::{on_db, Result, Store};

/// Rows per INSERT statement (24 parameters each; SQLite allows 32,766).
/// A batch is cut into chunks of these sizes only, largest first, so the
/// database sees at most this many distinct statement texts and prepares
/// each once per connection: preparing a fresh multi-row INSERT for every
/// batch size cost more than the inserts themselves.
const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

/// Cut `rows` into chunks whose sizes are all in [`CHUNKS`].
pub(crate) fn fixed_chunks<T>(mut rows: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    for size in CHUNKS {
        while rows.len() >= size {
            let (head, tail) = rows.split_at(size);
            out.push(head);
            rows = tail;
        }
    }
    out
}

/// The amounts to add, per key hash / user / team, sorted so concurrent
/// writers lock rows in the same order (no deadlocks on PostgreSQL).
#[derive(Default)]
struct Increments<'a> {
    keys: BTreeMap<&'a str, f64>,
    users: BTreeMap<&'a str, f64>,
    teams: BTreeMap<&'a str, f64>,
}

impl<'a> Increments<'a> {
    fn add(&mut self, r: &'a SpendRow) {
        if r.spend == 0.0 || !r.spend.is_finite() {
            return;
        }
        if !r.api_key.is_empty() {
            *self.keys.entry(&r.api_key).or_default() += r.spend;
        }
        if let Some(u) = r.user.as_deref().filter(|u| !u.is_empty()) {
            *self.users.entry(u).or_default() += r.spend;
        }
        if let Some(t) = r.team_id.as_deref().filter(|t| !t.is_empty()) {
            *self.teams.entry(t).or_default() += r.spend;
        }
    }
}

const TABLES: [(&str, &str); 3] = [
    ("ferrolite_keys", "token"),
    ("ferrolite_users", "user_id"),
    ("ferrolite_teams", "team_id"),
];

impl Store {
    /// Write a batch of spend logs and add their cost to the keys, users and
    /// teams they name, in one transaction. Idempotent per `request_id`: a
    /// row already stored (a batch replayed after a failed write, or a
    /// duplicate inside the batch) is neither inserted nor counted again.
    /// Returns how many rows were new.
    pub async fn record_spend(&self, batch: &[SpendRow]) -> Result<usize> {
        // First occurrence of each request id, in id order (lock order).
        let mut seen = HashSet::new();
        let mut rows: Vec<&SpendRow> = batch
            .iter()
            .filter(|r| seen.insert(r.request_id.as_str()))
            .collect();
        rows.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        if rows.is_empty() {
            return Ok(0);
        }
        let mut inc = Increments::default();
        let mut inserted = 0usize;
        on_db!(self, p => {
            // One multi-row INSERT per chunk; with `returning`, the ids that
            // were new come back (one row each, streamed by the driver).
            macro_rules! spend_insert {
                ($chunk:expr, $returning:expr) => {{
                let chunk = $chunk;
                let returning: bool = $returning;
                let mut qb = QueryBuilder::new(format!("INSERT INTO ferrolite_spend_logs ({SPEND_COLS}, {SPEND_CONTENT_COLS}) "));
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.request_id.as_str())
                        .push_bind(r.call_type.as_str())
                        .push_bind(r.api_key.as_str())
                        .push_bind(r.spend)
                        .push_bind(r.total_tokens)
                        .push_bind(r.prompt_tokens)
                        .push_bind(r.completion_tokens)
                        .push_bind(r.start_time)
                        .push_bind(r.end_time)
                        .push_bind(r.model.as_str())
                        .push_bind(r.model_id.as_str())
                        .push_bind(r.model_group.as_str())
                        .push_bind(r.api_base.as_str())
                        .push_bind(r.custom_llm_provider.as_str())
                        .push_bind(r.user.as_deref())
                        .push_bind(r.team_id.as_deref())
                        .push_bind(r.end_user.as_deref())
                        .push_bind(to_json(&r.request_tags))
                        .push_bind(to_json(&r.metadata))
                        .push_bind(r.cache_hit)
                        .push_bind(r.status.as_str())
                        .push_bind(r.latency_ms)
                        .push_bind(r.messages.as_deref())
                        .push_bind(r.response.as_deref());
                });
                qb.push(if returning {
                    " ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
                } else {
                    " ON CONFLICT (request_id) DO NOTHING"
                });
                qb
                }};
            }
            let mut tx = p.begin().await?;
            // Fast path, the common case: every row is new. Plain INSERTs,
            // one round trip per chunk and nothing returned; the affected
            // counts prove every row went in.
            let mut all_new = true;
            for chunk in fixed_chunks(&rows) {
                let n = spend_insert!(chunk, false).build().execute(&mut *tx).await?.rows_affected();
                if n != chunk.len() as u64 {
                    all_new = false;
                    break;
                }
            }
            if all_new {
                for r in &rows {
                    inc.add(r);
                }
                inserted = rows.len();
            } else {
                // Some rows were stored before (a replayed batch): start
                // over and learn which ones are new from RETURNING.
                tx.rollback().await?;
                tx = p.begin().await?;
                for chunk in fixed_chunks(&rows) {
                    let new: HashSet<String> = spend_insert!(chunk, true)
                        .build()
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<String, _>("request_id"))
                        .collect::<std::result::Result<_, _>>()?;
                    for r in chunk.iter().filter(|r| new.contains(&r.request_id)) {
                        inserted += 1;
                        inc.add(r);
                    }
                }
            }
            for ((table, id), amounts) in TABLES.iter().zip([&inc.keys, &inc.users, &inc.teams]) {
                let sql = format!("UPDATE {table} SET spend = spend + $2 WHERE {id} = $1");
                for (who, amount) in amounts {
                    sqlx::query(&sql).bind(*who).bind(*amount).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        });
        Ok(inserted)
    }

    /// Reset `spend` to 0 for every key, user and team whose
    /// `budget_reset_at` is due (`<= now`), and move `budget_reset_at` to
    /// `now + budget_duration` (cleared if the duration is unset or invalid).
    /// Safe to run on several instances at once: a row is reset once.
    pub async fn reset_budgets(&self, now: i64) -> Result<BudgetResets> {
        let mut counts = [0u64; 3];
        for (i, (table, id)) in TABLES.iter().enumerate() {
            let due_sql = format!(
                "SELECT {id} AS id, budget_duration, budget_reset_at FROM {table} WHERE budget_reset_at IS NOT NULL AND budget_reset_at <= $1"
            );
            let reset_sql = format!(
                "UPDATE {table} SET spend = 0, budget_reset_at = $2 WHERE {id} = $1 AND budget_reset_at = $3"
            );
            let due: Vec<(String, Option<String>, i64)> = on_db!(self, p => sqlx::query(&due_sql)
                .bind(now)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("budget_duration")?, r.try_get("budget_reset_at")?)))
                .collect::<std::result::Result<_, sqlx::Error>>()?);
            for (who, duration, was) in due {
                let next = duration
                    .as_deref()
                    .and_then(|d| parse_duration(d).ok())
                    .map(|d| d.after(now));
                let n = on_db!(self, p => sqlx::query(&reset_sql)
                    .bind(&who)
                    .bind(next)
                    .bind(was)
                    .execute(p)
                    .await?
                    .rows_affected());
                counts[i] += n;
            }
        }
        Ok(BudgetResets {
            keys: counts[0],
            users: counts[1],
            teams: counts[2],
        })
    }

    /// Spend logs matching every filter given, newest first.
    pub async fn spend_logs(&self, f: &SpendLogFilter) -> Result<Vec<SpendRow>> {
        let most = if f.content { 10_000 } else { 100_000 };
        let limit = i64::from(if f.limit == 0 {
            1000
        } else {
            f.limit.min(most)
        });
        let content = if f.content {
            SPEND_CONTENT_COLS
        } else {
            NO_SPEND_CONTENT
        };
        let sql = format!(
            "SELECT {SPEND_COLS}, {content} FROM ferrolite_spend_logs WHERE ($1 IS NULL OR request_id = $1) AND ($2 IS NULL OR api_key = $2) AND ($3 IS NULL OR user_id = $3) AND ($4 IS NULL OR team_id = $4) AND ($5 IS NULL OR start_time >= $5) AND ($6 IS NULL OR start_time < $6) ORDER BY start_time DESC, request_id LIMIT $7"
        );
        on_db!(self, p => sqlx::query(&sql)
            .bind(&f.request_id)
            .bind(&f.api_key)
            .bind(&f.user_id)
            .bind(&f.team_id)
            .bind(f.start)
            .bind(f.end)
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| rows::spend_row(r))
            .collect())
    }

    /// Total spend in the logs, optionally within `[start, end)`.
    pub async fn global_spend(&self, start: Option<i64>, end: Option<i64>) -> Result<f64> {
        let sql = "SELECT CAST(COALESCE(SUM(spend), 0) AS DOUBLE PRECISION) AS total FROM ferrolite_spend_logs WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2)";
        on_db!(self, p => Ok(sqlx::query(sql).bind(start).bind(end).fetch_one(p).await?.try_get("total")?))
    }

    /// The keys that spent the most (from the keys' `spend`), highest first.
    pub async fn spend_per_key(&self, limit: u32) -> Result<Vec<KeySpend>> {
        let sql = "SELECT token, key_name, key_alias, spend FROM ferrolite_keys ORDER BY spend DESC, token LIMIT $1";
        on_db!(self, p => sqlx::query(sql)
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| Ok(KeySpend {
                token: r.try_get("token")?,
                key_name: r.try_get("key_name")?,
                key_alias: r.try_get("key_alias")?,
                spend: r.try_get("spend")?,
            }))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(Into::into))
    }

    /// Spend per model group in the logs, highest first.
    pub async fn spend_per_model(
        &self,
        start: Option<i64>,
        end: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ModelSpend>> {
        let sql = "SELECT model_group, CAST(SUM(spend) AS DOUBLE PRECISION) AS total, CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(total_tokens) AS BIGINT) AS tokens FROM ferrolite_spend_logs WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) GROUP BY model_group ORDER BY total DESC, model_group LIMIT $3";
        on_db!(self, p => sqlx::query(sql)
            .bind(start)
            .bind(end)
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| Ok(ModelSpend {
                model: r.try_get("model_group")?,
                spend: r.try_get("total")?,
                requests: r.try_get("n")?,
                total_tokens: r.try_get("tokens")?,
            }))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(Into::into))
    }

    /// Spend per UTC day and per key / team / model group / user, from the
    /// logs in `[start, end)`; ordered by day, then group.
    pub async fn spend_per_day(
        &self,
        by: SpendDimension,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<Vec<DailySpend>> {
        let col = match by {
            SpendDimension::Key => "api_key",
            SpendDimension::Team => "COALESCE(team_id, '')",
            SpendDimension::Model => "model_group",
            SpendDimension::User => "COALESCE(user_id, '')",
        };
        let sql = format!(
            "SELECT start_time / 86400000 AS day, {col} AS grp, CAST(SUM(spend) AS DOUBLE PRECISION) AS total, CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(prompt_tokens) AS BIGINT) AS pt, CAST(SUM(completion_tokens) AS BIGINT) AS ct, CAST(SUM(total_tokens) AS BIGINT) AS tt FROM ferrolite_spend_logs WHERE ($1 IS NULL OR start_time >= $1) AND ($2 IS NULL OR start_time < $2) GROUP BY start_time / 86400000, {col} ORDER BY day, grp"
        );
        on_db!(self, p => sqlx::query(&sql)
            .bind(start)
            .bind(end)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| Ok(DailySpend {
                day: format_day(r.try_get("day")?),
                group: r.try_get("grp")?,
                spend: r.try_get("total")?,
                requests: r.try_get("n")?,
                prompt_tokens: r.try_get("pt")?,
                completion_tokens: r.try_get("ct")?,
                total_tokens: r.try_get("tt")?,
            }))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(Into::into))
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::fixed_chunks;

    #[test]
    fn batches_are_cut_into_a_few_fixed_sizes() {
        for n in [0usize, 1, 3, 5, 257, 500, 1000, 1023] {
            let rows: Vec<usize> = (0..n).collect();
            let chunks = fixed_chunks(&rows);
            assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), n);
            assert!(chunks
                .iter()
                .all(|c| [256, 64, 16, 4, 1].contains(&c.len())));
            let flat: Vec<usize> = chunks.concat();
            assert_eq!(flat, rows, "order kept");
        }
        // 500 = 256 + 3×64 + 3×16 + 4
        assert_eq!(fixed_chunks(&[0u8; 500]).len(), 8);
    }
}
