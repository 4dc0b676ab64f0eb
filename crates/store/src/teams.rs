//! Teams and their members.

use crate::model::{Team, TeamMember};
use crate::rows::{self, conflict, to_json, TEAM_COLS};
use crate::{on_db, Result, Store};

impl Store {
    /// Insert a new team; a duplicate id is [`crate::StoreError::Conflict`].
    pub async fn create_team(&self, t: &Team) -> Result<()> {
        let sql = format!(
            "INSERT INTO ferrolite_teams ({TEAM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        on_db!(self, p => sqlx::query(&sql)
            .bind(&t.team_id)
            .bind(&t.team_alias)
            .bind(to_json(&t.members_with_roles))
            .bind(t.max_budget)
            .bind(t.spend)
            .bind(to_json(&t.models))
            .bind(t.tpm_limit)
            .bind(t.rpm_limit)
            .bind(t.max_parallel_requests)
            .bind(&t.budget_duration)
            .bind(t.budget_reset_at)
            .bind(t.blocked)
            .bind(to_json(&t.metadata))
            .bind(t.created_at)
            .bind(t.updated_at)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(|e| conflict(e, || format!("team \"{}\" already exists", t.team_id))))
    }

    pub async fn get_team(&self, team_id: &str) -> Result<Option<Team>> {
        let sql = format!("SELECT {TEAM_COLS} FROM ferrolite_teams WHERE team_id = $1");
        on_db!(self, p => match sqlx::query(&sql).bind(team_id).fetch_optional(p).await? {
            Some(r) => rows::team(&r).map(Some),
            None => Ok(None),
        })
    }

    /// Write every field except `team_id`, `spend`, `created_at` and the
    /// members (see [`Store::update_team_members`]). `false` when unknown.
    pub async fn update_team(&self, t: &Team) -> Result<bool> {
        let sql = "UPDATE ferrolite_teams SET team_alias = $2, max_budget = $3, models = $4, tpm_limit = $5, rpm_limit = $6, max_parallel_requests = $7, budget_duration = $8, budget_reset_at = $9, blocked = $10, metadata = $11, updated_at = $12 WHERE team_id = $1";
        on_db!(self, p => sqlx::query(sql)
            .bind(&t.team_id)
            .bind(&t.team_alias)
            .bind(t.max_budget)
            .bind(to_json(&t.models))
            .bind(t.tpm_limit)
            .bind(t.rpm_limit)
            .bind(t.max_parallel_requests)
            .bind(&t.budget_duration)
            .bind(t.budget_reset_at)
            .bind(t.blocked)
            .bind(to_json(&t.metadata))
            .bind(t.updated_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(Into::into))
    }

    /// Change a team's member list with `edit`, atomically: the list is
    /// written only if nobody changed it meanwhile (retried otherwise), so
    /// concurrent adds on several instances are all kept. Returns the team
    /// after the change, `None` if unknown. `edit` may refuse with an error
    /// message, returned as `Ok(Err(msg))`.
    pub async fn update_team_members<F>(
        &self,
        team_id: &str,
        now: i64,
        mut edit: F,
    ) -> Result<Option<std::result::Result<Team, String>>>
    where
        F: FnMut(&mut Vec<TeamMember>) -> std::result::Result<(), String>,
    {
        for _ in 0..20 {
            let Some(mut team) = self.get_team(team_id).await? else {
                return Ok(None);
            };
            let before = to_json(&team.members_with_roles);
            if let Err(msg) = edit(&mut team.members_with_roles) {
                return Ok(Some(Err(msg)));
            }
            let after = to_json(&team.members_with_roles);
            let n = on_db!(self, p => sqlx::query(
                "UPDATE ferrolite_teams SET members_with_roles = $2, updated_at = $3 WHERE team_id = $1 AND members_with_roles = $4",
            )
            .bind(team_id)
            .bind(&after)
            .bind(now)
            .bind(&before)
            .execute(p)
            .await?
            .rows_affected());
            if n > 0 {
                team.updated_at = now;
                return Ok(Some(Ok(team)));
            }
        }
        Err(crate::StoreError::Conflict(format!(
            "team \"{team_id}\" is being changed concurrently; try again"
        )))
    }

    /// Delete teams; returns the ids that existed. Keys of the team keep
    /// their `team_id` (the caller decides what to do with them).
    pub async fn delete_teams(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        on_db!(self, p => {
            let mut tx = p.begin().await?;
            for id in ids {
                let n = sqlx::query("DELETE FROM ferrolite_teams WHERE team_id = $1")
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

    /// Every team, oldest first (`user_id`: only teams it is a member of).
    pub async fn list_teams(&self, user_id: Option<&str>) -> Result<Vec<Team>> {
        let sql = format!("SELECT {TEAM_COLS} FROM ferrolite_teams ORDER BY created_at, team_id");
        let all = on_db!(self, p => sqlx::query(&sql)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| rows::team(r))
            .collect::<Result<Vec<_>>>()?);
        Ok(match user_id {
            None => all,
            Some(u) => all
                .into_iter()
                .filter(|t| t.members_with_roles.iter().any(|m| m.user_id == u))
                .collect(),
        })
    }
}
