//! Users.

use sqlx::Row;

use crate::model::User;
use crate::rows::{self, conflict, to_json, USER_COLS};
use crate::{on_db, Result, Store};

impl Store {
    /// Insert a new user; a duplicate id is [`crate::StoreError::Conflict`].
    pub async fn create_user(&self, u: &User) -> Result<()> {
        let sql = format!(
            "INSERT INTO ferrolite_users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        on_db!(self, p => sqlx::query(&sql)
            .bind(&u.user_id)
            .bind(&u.user_email)
            .bind(&u.user_role)
            .bind(u.max_budget)
            .bind(u.spend)
            .bind(to_json(&u.models))
            .bind(u.tpm_limit)
            .bind(u.rpm_limit)
            .bind(u.max_parallel_requests)
            .bind(&u.budget_duration)
            .bind(u.budget_reset_at)
            .bind(to_json(&u.metadata))
            .bind(u.created_at)
            .bind(u.updated_at)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(|e| conflict(e, || format!("user \"{}\" already exists", u.user_id))))
    }

    pub async fn get_user(&self, user_id: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM ferrolite_users WHERE user_id = $1");
        on_db!(self, p => match sqlx::query(&sql).bind(user_id).fetch_optional(p).await? {
            Some(r) => rows::user(&r).map(Some),
            None => Ok(None),
        })
    }

    /// Write every field except `user_id`, `spend` and `created_at`.
    /// `false` when the user does not exist.
    pub async fn update_user(&self, u: &User) -> Result<bool> {
        let sql = "UPDATE ferrolite_users SET user_email = $2, user_role = $3, max_budget = $4, models = $5, tpm_limit = $6, rpm_limit = $7, max_parallel_requests = $8, budget_duration = $9, budget_reset_at = $10, metadata = $11, updated_at = $12 WHERE user_id = $1";
        on_db!(self, p => sqlx::query(sql)
            .bind(&u.user_id)
            .bind(&u.user_email)
            .bind(&u.user_role)
            .bind(u.max_budget)
            .bind(to_json(&u.models))
            .bind(u.tpm_limit)
            .bind(u.rpm_limit)
            .bind(u.max_parallel_requests)
            .bind(&u.budget_duration)
            .bind(u.budget_reset_at)
            .bind(to_json(&u.metadata))
            .bind(u.updated_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(Into::into))
    }

    /// Delete users; returns the ids that existed. Their keys stay (LiteLLM
    /// deletes a user's keys too: the caller decides, see
    /// [`Store::delete_keys`]).
    pub async fn delete_users(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        on_db!(self, p => {
            let mut tx = p.begin().await?;
            for id in ids {
                let n = sqlx::query("DELETE FROM ferrolite_users WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    deleted.push(id.clone());
                }
            }
            tx.commit().await?;
        });
        Ok(deleted)
    }

    /// Users, oldest first, one page (`page` from 1); and the total count.
    pub async fn list_users(
        &self,
        role: Option<&str>,
        page: u32,
        size: u32,
    ) -> Result<(Vec<User>, i64)> {
        let size = i64::from(size.clamp(1, 1000));
        let offset = i64::from(page.max(1) - 1) * size;
        let sql = format!(
            "SELECT {USER_COLS} FROM ferrolite_users WHERE ($1 IS NULL OR user_role = $1) ORDER BY created_at, user_id LIMIT $2 OFFSET $3"
        );
        on_db!(self, p => {
            let list = sqlx::query(&sql)
                .bind(role)
                .bind(size)
                .bind(offset)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| rows::user(r))
                .collect::<Result<Vec<_>>>()?;
            let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM ferrolite_users WHERE ($1 IS NULL OR user_role = $1)")
                .bind(role)
                .fetch_one(p)
                .await?
                .try_get("n")?;
            Ok((list, total))
        })
    }
}
