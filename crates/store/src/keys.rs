//! Virtual keys.

use sqlx::Row;

use crate::model::{Key, KeyFilter};
use crate::rows::{self, conflict, to_json, KEY_COLS};
use crate::{on_db, Result, Store};

fn key_conflict(k: &Key) -> impl FnOnce() -> String + '_ {
    move || match &k.key_alias {
        Some(a) => format!("a key with alias \"{a}\" (or the same hash) already exists"),
        None => "a key with the same hash already exists".to_owned(),
    }
}

impl Store {
    /// Insert a new key. A duplicate hash or alias is
    /// [`crate::StoreError::Conflict`].
    pub async fn create_key(&self, k: &Key) -> Result<()> {
        let sql = format!(
            "INSERT INTO ferrolite_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        );
        on_db!(self, p => sqlx::query(&sql)
            .bind(&k.token)
            .bind(&k.key_name)
            .bind(&k.key_alias)
            .bind(k.spend)
            .bind(k.max_budget)
            .bind(&k.budget_duration)
            .bind(k.budget_reset_at)
            .bind(k.expires)
            .bind(to_json(&k.models))
            .bind(to_json(&k.aliases))
            .bind(&k.user_id)
            .bind(&k.team_id)
            .bind(k.max_parallel_requests)
            .bind(k.tpm_limit)
            .bind(k.rpm_limit)
            .bind(to_json(&k.metadata))
            .bind(k.blocked)
            .bind(to_json(&k.allowed_routes))
            .bind(k.created_at)
            .bind(k.updated_at)
            .bind(&k.created_by)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(|e| conflict(e, key_conflict(k))))
    }

    /// The key with this hash.
    pub async fn get_key(&self, token: &str) -> Result<Option<Key>> {
        let sql = format!("SELECT {KEY_COLS} FROM ferrolite_keys WHERE token = $1");
        on_db!(self, p => match sqlx::query(&sql).bind(token).fetch_optional(p).await? {
            Some(r) => rows::key(&r).map(Some),
            None => Ok(None),
        })
    }

    /// The key with this alias.
    pub async fn get_key_by_alias(&self, alias: &str) -> Result<Option<Key>> {
        let sql = format!("SELECT {KEY_COLS} FROM ferrolite_keys WHERE key_alias = $1");
        on_db!(self, p => match sqlx::query(&sql).bind(alias).fetch_optional(p).await? {
            Some(r) => rows::key(&r).map(Some),
            None => Ok(None),
        })
    }

    /// Write every field of `k` except `token`, `spend`, `created_at` and
    /// `created_by` (spend only moves through [`Store::record_spend`] and
    /// [`Store::reset_budgets`], so an edit never loses concurrent spend).
    /// `false` when no key has this hash.
    pub async fn update_key(&self, k: &Key) -> Result<bool> {
        let sql = "UPDATE ferrolite_keys SET key_name = $2, key_alias = $3, max_budget = $4, budget_duration = $5, budget_reset_at = $6, expires = $7, models = $8, aliases = $9, user_id = $10, team_id = $11, max_parallel_requests = $12, tpm_limit = $13, rpm_limit = $14, metadata = $15, blocked = $16, allowed_routes = $17, updated_at = $18 WHERE token = $1";
        on_db!(self, p => sqlx::query(sql)
            .bind(&k.token)
            .bind(&k.key_name)
            .bind(&k.key_alias)
            .bind(k.max_budget)
            .bind(&k.budget_duration)
            .bind(k.budget_reset_at)
            .bind(k.expires)
            .bind(to_json(&k.models))
            .bind(to_json(&k.aliases))
            .bind(&k.user_id)
            .bind(&k.team_id)
            .bind(k.max_parallel_requests)
            .bind(k.tpm_limit)
            .bind(k.rpm_limit)
            .bind(to_json(&k.metadata))
            .bind(k.blocked)
            .bind(to_json(&k.allowed_routes))
            .bind(k.updated_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(|e| conflict(e, key_conflict(k))))
    }

    /// Delete keys by hash; returns the hashes that existed.
    pub async fn delete_keys(&self, tokens: &[String]) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        on_db!(self, p => {
            let mut tx = p.begin().await?;
            for t in tokens {
                let n = sqlx::query("DELETE FROM ferrolite_keys WHERE token = $1")
                    .bind(t)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    deleted.push(t.clone());
                }
            }
            tx.commit().await?;
        });
        Ok(deleted)
    }

    /// Keys matching every filter given, oldest first, one page; and how
    /// many match in all.
    pub async fn list_keys(&self, f: &KeyFilter) -> Result<(Vec<Key>, i64)> {
        let size = i64::from(f.size.clamp(1, 1000));
        let offset = i64::from(f.page.max(1) - 1) * size;
        let cond = "($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR team_id = $2) AND ($3 IS NULL OR key_alias = $3)";
        let sql = format!(
            "SELECT {KEY_COLS} FROM ferrolite_keys WHERE {cond} ORDER BY created_at, token LIMIT $4 OFFSET $5"
        );
        let count = format!("SELECT COUNT(*) AS n FROM ferrolite_keys WHERE {cond}");
        on_db!(self, p => {
            let list = sqlx::query(&sql)
                .bind(&f.user_id)
                .bind(&f.team_id)
                .bind(&f.key_alias)
                .bind(size)
                .bind(offset)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| rows::key(r))
                .collect::<Result<Vec<_>>>()?;
            let total: i64 = sqlx::query(&count)
                .bind(&f.user_id)
                .bind(&f.team_id)
                .bind(&f.key_alias)
                .fetch_one(p)
                .await?
                .try_get("n")?;
            Ok((list, total))
        })
    }

    /// Block or unblock a key; the key after the change, `None` if unknown.
    pub async fn set_key_blocked(
        &self,
        token: &str,
        blocked: bool,
        now: i64,
    ) -> Result<Option<Key>> {
        let n = on_db!(self, p => sqlx::query(
            "UPDATE ferrolite_keys SET blocked = $2, updated_at = $3 WHERE token = $1",
        )
        .bind(token)
        .bind(blocked)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        if n == 0 {
            return Ok(None);
        }
        self.get_key(token).await
    }

    /// Give a key a new hash and display name, keeping the row (spend,
    /// limits, alias). `None` if no key has `old_token`.
    pub async fn regenerate_key(
        &self,
        old_token: &str,
        new_token: &str,
        new_key_name: &str,
        now: i64,
    ) -> Result<Option<Key>> {
        let n = on_db!(self, p => sqlx::query(
            "UPDATE ferrolite_keys SET token = $2, key_name = $3, updated_at = $4 WHERE token = $1",
        )
        .bind(old_token)
        .bind(new_token)
        .bind(new_key_name)
        .bind(now)
        .execute(p)
        .await
        .map_err(|e| conflict(e, || "a key with the new hash already exists".to_owned()))?
        .rows_affected());
        if n == 0 {
            return Ok(None);
        }
        self.get_key(new_token).await
    }
}
