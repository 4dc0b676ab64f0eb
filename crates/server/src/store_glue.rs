//! The store behind core's traits ([`KeyDirectory`] for key checks,
//! [`SpendBackend`] for the spend writer), and the wiring of virtual keys,
//! pricing and spend into a gateway at startup.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrolite_core::keys::{
    EnforcerSettings, KeyDirectory, KeyEnforcer, KeyRecord, TeamRecord, UserRecord,
};
use ferrolite_core::spend::{Pricing, SpendBackend, SpendEntry, SpendWriter, WriterConfig};
use ferrolite_core::Gateway;
use ferrolite_store::{SpendRow, Store};
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

/// How often budgets whose `budget_duration` is over are reset.
pub const BUDGET_RESET_EVERY: Duration = Duration::from_secs(60);

/// The store, as core sees it.
pub struct StoreBackend(pub Arc<Store>);

fn err(e: ferrolite_store::StoreError) -> String {
    e.to_string()
}

impl KeyDirectory for StoreBackend {
    fn key<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, String>> {
        Box::pin(async move {
            Ok(self.0.get_key(hash).await.map_err(err)?.map(|k| KeyRecord {
                token: k.token,
                key_alias: k.key_alias,
                spend: k.spend,
                max_budget: k.max_budget,
                expires: k.expires,
                models: k.models,
                user_id: k.user_id,
                team_id: k.team_id,
                max_parallel_requests: k.max_parallel_requests,
                tpm_limit: k.tpm_limit,
                rpm_limit: k.rpm_limit,
                blocked: k.blocked,
                aliases: k
                    .aliases
                    .into_iter()
                    .filter_map(|(from, to)| to.as_str().map(|to| (from, to.to_owned())))
                    .collect(),
            }))
        })
    }

    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        Box::pin(async move {
            Ok(self.0.get_user(id).await.map_err(err)?.map(|u| UserRecord {
                user_id: u.user_id,
                user_role: u.user_role,
                spend: u.spend,
                max_budget: u.max_budget,
                models: u.models,
                max_parallel_requests: u.max_parallel_requests,
                tpm_limit: u.tpm_limit,
                rpm_limit: u.rpm_limit,
            }))
        })
    }

    fn team<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TeamRecord>, String>> {
        Box::pin(async move {
            Ok(self.0.get_team(id).await.map_err(err)?.map(|t| TeamRecord {
                team_id: t.team_id,
                team_alias: t.team_alias,
                spend: t.spend,
                max_budget: t.max_budget,
                models: t.models,
                max_parallel_requests: t.max_parallel_requests,
                tpm_limit: t.tpm_limit,
                rpm_limit: t.rpm_limit,
                blocked: t.blocked,
            }))
        })
    }

    fn total_spend(&self, since_ms: Option<i64>) -> BoxFuture<'_, Result<f64, String>> {
        Box::pin(async move { self.0.global_spend(since_ms, None).await.map_err(err) })
    }

    fn reset_budgets(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async move {
            let r = self.0.reset_budgets(now_ms).await.map_err(err)?;
            Ok(r.keys + r.users + r.teams)
        })
    }
}

/// A spend entry as the store's row. With `full` false
/// (`disable_spend_logs`) only what the spend counters need is kept.
fn row(e: &SpendEntry, full: bool) -> SpendRow {
    let mut r = SpendRow::new(e.request_id.clone(), e.api_key.clone(), e.start_time);
    r.spend = e.spend;
    r.user.clone_from(&e.user);
    r.team_id.clone_from(&e.team_id);
    r.status.clone_from(&e.status);
    if !full {
        return r;
    }
    r.call_type.clone_from(&e.call_type);
    r.total_tokens = i64::try_from(e.total_tokens).unwrap_or(i64::MAX);
    r.prompt_tokens = i64::try_from(e.prompt_tokens).unwrap_or(i64::MAX);
    r.completion_tokens = i64::try_from(e.completion_tokens).unwrap_or(i64::MAX);
    r.end_time = e.end_time;
    r.model.clone_from(&e.model);
    r.model_id.clone_from(&e.model_id);
    r.model_group.clone_from(&e.model_group);
    r.api_base.clone_from(&e.api_base);
    r.custom_llm_provider.clone_from(&e.provider);
    r.end_user.clone_from(&e.end_user);
    r.request_tags.clone_from(&e.tags);
    r.cache_hit = e.cache_hit;
    r.latency_ms = e.latency_ms;
    r.messages.clone_from(&e.messages);
    r.response.clone_from(&e.response);
    let mut m = Map::new();
    if let Some(a) = &e.key_alias {
        m.insert("user_api_key_alias".into(), Value::String(a.clone()));
    }
    if e.usage_estimated {
        m.insert("usage_estimated".into(), Value::Bool(true));
    }
    if let Some(err) = &e.error {
        m.insert("error_class".into(), Value::String(err.clone()));
    }
    r.metadata = m;
    r
}

impl SpendBackend for StoreBackend {
    fn write<'a>(
        &'a self,
        batch: &'a [SpendEntry],
        store_rows: bool,
    ) -> BoxFuture<'a, Result<(), String>> {
        // With `disable_spend_logs` only the key/user/team counters move
        // (idempotent per request id through the store's dedupe window).
        Box::pin(async move {
            let rows: Vec<SpendRow> = batch.iter().map(|e| row(e, store_rows)).collect();
            if store_rows {
                self.0.record_spend(&rows).await.map(|_| ()).map_err(err)
            } else {
                let now = ferrolite_store::now_ms();
                self.0
                    .record_spend_counters(&rows, now)
                    .await
                    .map(|_| ())
                    .map_err(err)
            }
        })
    }
}

/// Rows the spend queue keeps in memory (more are spilled to disk while
/// the database is down) when calls' content is stored: each row may then
/// carry up to twice `maximum_spend_logs_content_bytes`.
pub const QUEUE_WITH_CONTENT: usize = 1_000;

/// Virtual keys and spend, attached to a gateway.
pub struct KeysAndSpend {
    pub enforcer: Arc<KeyEnforcer>,
    pub writer: Arc<SpendWriter>,
    resets: tokio::task::JoinHandle<()>,
    retention: Option<tokio::task::JoinHandle<()>>,
}

/// Where spend rows wait on disk while the database is down: the
/// configured `spend_spill_path`, or beside a SQLite database file, or
/// `ferrolite-spend-spill.jsonl` in the working directory.
pub fn spill_path(gw: &Gateway, database_url: &str) -> PathBuf {
    if let Some(p) = &gw.config.general.spend.spill_path {
        return PathBuf::from(p);
    }
    let file = database_url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        .filter(|p| !p.is_empty() && !p.contains(":memory:"));
    match file {
        Some(f) => PathBuf::from(format!("{f}.spend-spill.jsonl")),
        None => PathBuf::from("ferrolite-spend-spill.jsonl"),
    }
}

/// Load a user's LiteLLM-format price map named by
/// `LITELLM_MODEL_COST_MAP_URL` when it is a local file (a path or a
/// `file://` URL); its entries replace the built-in ones. Remote URLs are
/// not fetched (the built-in table is used, with a warning).
pub fn apply_price_map(gw: &mut Gateway, url: Option<&str>) -> Result<(), String> {
    let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    if url.starts_with("http://") || url.starts_with("https://") {
        tracing::warn!("LITELLM_MODEL_COST_MAP_URL is a remote URL: ferrolite does not fetch price maps; using the built-in prices (point it at a local file instead)");
        return Ok(());
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("LITELLM_MODEL_COST_MAP_URL: cannot read {path}: {e}"))?;
    let pricing = Pricing::with_user_map(&gw.config, &text)
        .map_err(|e| format!("LITELLM_MODEL_COST_MAP_URL: {path}: {e}"))?;
    gw.set_pricing(pricing);
    tracing::info!("prices loaded from {path}");
    Ok(())
}

impl KeysAndSpend {
    /// Enforce virtual keys from `store` and write every call's spend into
    /// it. Call before the gateway is shared, inside a Tokio runtime.
    pub fn attach(gw: &mut Gateway, store: Arc<Store>, spill: Option<PathBuf>) -> Self {
        let retention =
            crate::spend_retention::spawn(Arc::clone(&store), &gw.config.general.spend.logs);
        let backend = Arc::new(StoreBackend(store));
        let general = &gw.config.general.spend;
        let budget = &gw.config.litellm.proxy_budget;
        let settings = EnforcerSettings {
            cache_ttl: general
                .key_cache_ttl
                .unwrap_or(ferrolite_core::keys::DEFAULT_CACHE_TTL),
            proxy_max_budget: budget.max_budget,
            proxy_budget_window: budget
                .budget_duration
                .as_deref()
                .and_then(|d| ferrolite_store::parse_duration(d).ok())
                .map(|d| Duration::from_secs(d.approx_secs())),
            allow_on_db_unavailable: general.allow_requests_on_db_unavailable,
            ..Default::default()
        };
        let enforcer = KeyEnforcer::new(
            backend.clone(),
            &gw.config,
            Arc::clone(&gw.pricing),
            settings,
        );
        let e2 = Arc::clone(&enforcer);
        let writer = SpendWriter::start(
            WriterConfig {
                interval: general.batch_write_at.unwrap_or(Duration::from_secs(1)),
                spill_path: spill,
                store_rows: !general.disable_spend_logs,
                capacity: if general.logs.store_prompts {
                    QUEUE_WITH_CONTENT
                } else {
                    WriterConfig::default().capacity
                },
                ..Default::default()
            },
            backend,
            Some(Arc::new(move |rows: &[SpendEntry]| e2.written(rows))),
        );
        if let (Some(redis), Some(settings)) = (&gw.shared, &gw.config.router.redis) {
            match ferrolite_core::keys::KeyShare::new(Arc::clone(redis), settings) {
                Ok(share) => enforcer.share_through(share),
                Err(e) => tracing::warn!("key budgets and limits stay per instance: {e}"),
            }
        }
        gw.add_sink(enforcer.clone());
        gw.add_sink(writer.clone());
        gw.keys = Some(Arc::clone(&enforcer));
        let resets = enforcer.spawn_budget_resets(BUDGET_RESET_EVERY);
        Self {
            enforcer,
            writer,
            resets,
            retention,
        }
    }

    /// Stop resetting budgets and pruning spend logs, and flush the spend
    /// queue (spilling what the database does not take within `timeout`).
    pub async fn shutdown(&self, timeout: Duration) {
        self.resets.abort();
        if let Some(r) = &self.retention {
            r.abort();
        }
        self.writer.close(timeout).await;
    }
}
