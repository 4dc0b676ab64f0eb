//! The key check, in LiteLLM's order, and the [`Grant`] a passing call holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::ledger::{Budgeted, Ledger};
use super::limits::{LimitHit, LimitKind, Limited, Limits};
use super::shared::{Admission, KeyShare, SharedBudget, SharedHold};
use super::{hash_key, is_admin_role, KeyDirectory, KeyRecord, TeamRecord, UserRecord};
use crate::auth::{Hold, Principal};
use crate::config::Config;
use crate::meter::{CallRecord, CallSink};
use crate::spend::{Pricing, SpendEntry};
use crate::GatewayError;

/// Output tokens reserved for a call that does not set `max_tokens`.
pub const DEFAULT_OUTPUT_ESTIMATE: u64 = 1024;
/// How long a key read from the directory is trusted.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

const PROXY: &str = "proxy";

#[derive(Debug, Clone)]
pub struct EnforcerSettings {
    /// How long a key, its user and team are cached (a change made on
    /// another instance takes effect within this time).
    pub cache_ttl: Duration,
    /// `litellm_settings.max_budget`: the whole proxy's budget.
    pub proxy_max_budget: Option<f64>,
    /// `litellm_settings.budget_duration`: the proxy budget counts spend in
    /// this trailing window (all time when unset).
    pub proxy_budget_window: Option<Duration>,
    /// `general_settings.allow_requests_on_db_unavailable`.
    pub allow_on_db_unavailable: bool,
    pub default_output_tokens: u64,
}

impl Default for EnforcerSettings {
    fn default() -> Self {
        Self {
            cache_ttl: DEFAULT_CACHE_TTL,
            proxy_max_budget: None,
            proxy_budget_window: None,
            allow_on_db_unavailable: false,
            default_output_tokens: DEFAULT_OUTPUT_ESTIMATE,
        }
    }
}

/// What the server learned about the call before the pipeline runs.
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    /// The model the client asked for (`None` on routes without one).
    pub model: Option<String>,
    /// The model group it resolves to, when it does.
    pub group: Option<String>,
    pub prompt_tokens: u64,
    /// `max_tokens` (or the dialect's equivalent), when the client set it.
    pub max_output_tokens: Option<u64>,
}

/// A key with its user and team, as read, and the ledger marks taken first.
#[derive(Debug)]
struct Loaded {
    key: KeyRecord,
    user: Option<UserRecord>,
    team: Option<TeamRecord>,
    marks: [i64; 3],
    /// The Redis `kwrit` marks (key, user, team), when Redis answered.
    rmarks: Option<[i64; 3]>,
}

struct Cached {
    at: Instant,
    loaded: Option<Arc<Loaded>>,
}

struct ProxySpend {
    at: Instant,
    spend: f64,
    mark: i64,
    rmark: Option<i64>,
}

/// See the module documentation.
pub struct KeyEnforcer {
    dir: Arc<dyn KeyDirectory>,
    settings: EnforcerSettings,
    pricing: Arc<Pricing>,
    /// Access group → the model names in it (`model_info.access_groups`).
    access_groups: HashMap<String, Vec<String>>,
    cache: Mutex<HashMap<String, Cached>>,
    proxy: Mutex<Option<ProxySpend>>,
    pub ledger: Ledger,
    pub limits: Limits,
    /// Budgets, limits and key changes shared through Redis, when set.
    share: OnceLock<Arc<KeyShare>>,
    /// Bumped by every invalidation, so that a read that started before
    /// one is not cached after it.
    generation: AtomicU64,
}

/// One budget holder's spend (USD) and `max_budget`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetFigures {
    pub spend: f64,
    pub max_budget: Option<f64>,
}

/// See [`KeyEnforcer::budgets`].
#[derive(Debug, Clone, PartialEq)]
pub struct KeyBudgets {
    pub key: BudgetFigures,
    /// The key's user: id and figures.
    pub user: Option<(String, BudgetFigures)>,
    /// The key's team: id, alias and figures.
    pub team: Option<(String, Option<String>, BudgetFigures)>,
}

/// What a call admitted with a virtual key holds until it is over.
pub struct Grant {
    enforcer: Arc<KeyEnforcer>,
    holders: Vec<String>,
    limited: Vec<String>,
    estimate: i64,
    settled: AtomicBool,
    /// What the call holds in Redis, when Redis admitted it.
    shared: Option<SharedHold>,
    /// The key's spend when the call was admitted (`x-litellm-key-spend`).
    pub key_spend: f64,
    pub key_max_budget: Option<f64>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("holders", &self.holders)
            .field("estimate", &self.estimate)
            .finish()
    }
}

impl Grant {
    /// The call's record arrived: settle the reservation at the actual
    /// cost and give the parallel slots back (sinks may keep the record,
    /// and so the grant, alive for longer).
    fn settle(&self, cost: f64, tokens: u64) {
        if !self.settled.swap(true, Ordering::AcqRel) {
            let cost = super::to_nano(cost);
            self.enforcer
                .ledger
                .settle(&self.holders, self.estimate, cost);
            self.enforcer.limits.release(&self.limited);
            if let Some(share) = self.enforcer.share.get() {
                share.settle(
                    self.shared.as_ref(),
                    &self.holders,
                    &self.limited,
                    cost,
                    tokens,
                );
            }
        }
        self.enforcer.limits.add_tokens(&self.limited, tokens);
    }

    /// The amount reserved for this call, in USD.
    pub fn reserved(&self) -> f64 {
        self.estimate as f64 / 1e9
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if !self.settled.swap(true, Ordering::AcqRel) {
            self.enforcer.ledger.release(&self.holders, self.estimate);
            self.enforcer.limits.release(&self.limited);
            if let (Some(share), Some(hold)) = (self.enforcer.share.get(), &self.shared) {
                share.settle(Some(hold), &self.holders, &self.limited, 0, 0);
            }
        }
    }
}

fn key_id(hash: &str) -> String {
    format!("key:{hash}")
}
fn user_id(id: &str) -> String {
    format!("user:{id}")
}
fn team_id(id: &str) -> String {
    format!("team:{id}")
}

/// The budget holders a spend row counts against.
fn holders_of(api_key: &str, user: Option<&str>, team: Option<&str>) -> Vec<String> {
    let mut v = vec![PROXY.to_owned()];
    if !api_key.is_empty() {
        v.push(key_id(api_key));
    }
    v.extend(user.filter(|u| !u.is_empty()).map(user_id));
    v.extend(team.filter(|t| !t.is_empty()).map(team_id));
    v
}

/// A list as Python prints it (LiteLLM's messages do).
fn py_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|m| format!("'{m}'")).collect();
    format!("[{}]", inner.join(", "))
}

fn denied(status: u16, kind: &'static str, message: String) -> GatewayError {
    GatewayError::Denied {
        status,
        kind,
        message,
        param: None,
    }
}

/// LiteLLM's answer to a spent budget (`id` is a ledger holder).
fn budget_exceeded(id: &str, spend: f64, max_budget: f64) -> GatewayError {
    let who = match id.split_once(':') {
        Some(("key", h)) => format!("Key={h} "),
        Some(("user", u)) => format!("User={u} "),
        Some(("team", t)) => format!("Team={t} "),
        _ => String::new(),
    };
    denied(
        400,
        "budget_exceeded",
        format!("Budget has been exceeded! {who}Current cost: {spend}, Max budget: {max_budget}"),
    )
}

/// LiteLLM's answer to a reached rate limit.
fn limit_exceeded(limited: &[Limited], hit: &LimitHit, hash: &str) -> GatewayError {
    let (descriptor, value) = match limited.get(hit.index).and_then(|l| l.id.split_once(':')) {
        Some(("key", h)) => ("api_key", h.to_owned()),
        Some(("user", u)) => ("user", u.to_owned()),
        Some(("team", t)) => ("team", t.to_owned()),
        _ => ("api_key", hash.to_owned()),
    };
    let message = match hit.kind {
        LimitKind::Parallel => format!(
            "Rate limit exceeded for {descriptor}: {value}. Limit type: max_parallel_requests. Current limit: {}, Remaining: 0. Try again shortly.",
            hit.limit
        ),
        LimitKind::Requests | LimitKind::Tokens => format!(
            "Rate limit exceeded for {descriptor}: {value}. Limit type: {}. Current limit: {}, Remaining: 0. Limit resets in {} seconds.",
            if hit.kind == LimitKind::Requests { "requests" } else { "tokens" },
            hit.limit,
            hit.retry_after
        ),
    };
    denied(429, "rate_limit_error", message)
}

fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl KeyEnforcer {
    pub fn new(
        dir: Arc<dyn KeyDirectory>,
        config: &Config,
        pricing: Arc<Pricing>,
        settings: EnforcerSettings,
    ) -> Arc<Self> {
        let mut access_groups: HashMap<String, Vec<String>> = HashMap::new();
        for d in &config.deployments {
            let groups = d.model_info.get("access_groups").and_then(|v| v.as_array());
            for g in groups.into_iter().flatten().filter_map(|g| g.as_str()) {
                let members = access_groups.entry(g.to_owned()).or_default();
                if !members.contains(&d.model_name) {
                    members.push(d.model_name.clone());
                }
            }
        }
        Arc::new(Self {
            dir,
            settings,
            pricing,
            access_groups,
            cache: Mutex::new(HashMap::new()),
            proxy: Mutex::new(None),
            ledger: Ledger::default(),
            limits: Limits::default(),
            share: OnceLock::new(),
            generation: AtomicU64::new(0),
        })
    }

    /// Share budgets, rate limits and key changes with every instance
    /// through Redis (call once, before the gateway serves; start
    /// [`KeyEnforcer::spawn_sync`] with the gateway's background work).
    pub fn share_through(&self, share: Arc<KeyShare>) {
        let _ = self.share.set(share);
    }

    /// The Redis side, when configured.
    pub fn shared(&self) -> Option<&Arc<KeyShare>> {
        self.share.get()
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forget a cached key (all keys when `None`) on this instance and,
    /// through Redis, on every other: the next request reads it from the
    /// directory again. Call after changing a key, its user or its team.
    pub fn invalidate(&self, hash: Option<&str>) {
        self.forget(hash);
        if let Some(share) = self.share.get() {
            share.publish(hash);
        }
    }

    /// Forget a cached key (all when `None`) on this instance only.
    pub fn forget(&self, hash: Option<&str>) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        match hash {
            Some(h) => {
                self.cache().remove(h);
            }
            None => self.cache().clear(),
        }
        *self.proxy.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A key's budgets and those of its user and team, from the key cache
    /// (never the database), for the budget metrics. The spend is what this
    /// instance knows: stored, plus settled here and not yet written. `None`
    /// when the key is not cached (never used here, or just changed).
    pub fn budgets(&self, hash: &str) -> Option<KeyBudgets> {
        let l = self.cache().get(hash).and_then(|c| c.loaded.clone())?;
        let figures = |id: String, db_spend: f64, mark: i64, max_budget: Option<f64>| {
            let spend = self.ledger.spend(&Budgeted {
                id,
                db_spend,
                mark,
                max_budget,
            });
            BudgetFigures { spend, max_budget }
        };
        let k = &l.key;
        Some(KeyBudgets {
            key: figures(key_id(hash), k.spend, l.marks[0], k.max_budget),
            user: l.user.as_ref().map(|u| {
                let f = figures(user_id(&u.user_id), u.spend, l.marks[1], u.max_budget);
                (u.user_id.clone(), f)
            }),
            team: l.team.as_ref().map(|t| {
                let f = figures(team_id(&t.team_id), t.spend, l.marks[2], t.max_budget);
                (t.team_id.clone(), t.team_alias.clone(), f)
            }),
        })
    }

    async fn read(&self, hash: &str) -> Result<Option<Arc<Loaded>>, String> {
        let marks_before = |k: &KeyRecord| {
            [
                self.ledger.mark(&key_id(&k.token)),
                k.user_id
                    .as_deref()
                    .map_or(0, |u| self.ledger.mark(&user_id(u))),
                k.team_id
                    .as_deref()
                    .map_or(0, |t| self.ledger.mark(&team_id(t))),
            ]
        };
        // The marks must precede the reads; the key's ids are not known yet,
        // so take the key's mark now and the user's and team's before theirs.
        let key_mark = self.ledger.mark(&key_id(hash));
        let share = self.share.get();
        let rkey = match share {
            Some(s) => s.marks(&[&key_id(hash)]).await,
            None => None,
        };
        let Some(key) = self.dir.key(hash).await? else {
            return Ok(None);
        };
        let mut marks = marks_before(&key);
        marks[0] = key_mark;
        let (uid, tid) = (
            key.user_id.as_deref().map(user_id).unwrap_or_default(),
            key.team_id.as_deref().map(team_id).unwrap_or_default(),
        );
        let rmarks = match (share, rkey.as_deref()) {
            (Some(s), Some(&[k])) => s
                .marks(&[&uid, &tid])
                .await
                .and_then(|v| (v.len() == 2).then(|| [k, v[0], v[1]])),
            _ => None,
        };
        let user = match &key.user_id {
            Some(u) => self.dir.user(u).await?,
            None => None,
        };
        let team = match &key.team_id {
            Some(t) => self.dir.team(t).await?,
            None => None,
        };
        Ok(Some(Arc::new(Loaded {
            key,
            user,
            team,
            marks,
            rmarks,
        })))
    }

    /// The key, from the cache when fresh. A directory failure falls back
    /// to a stale entry when there is one.
    async fn load(&self, hash: &str) -> Result<Option<Arc<Loaded>>, String> {
        let stale = {
            let c = self.cache();
            match c.get(hash) {
                Some(e) if e.at.elapsed() < self.settings.cache_ttl => return Ok(e.loaded.clone()),
                Some(e) => Some(e.loaded.clone()),
                None => None,
            }
        };
        let generation = self.generation.load(Ordering::Acquire);
        match self.read(hash).await {
            Ok(loaded) => {
                let mut cache = self.cache();
                if self.generation.load(Ordering::Acquire) != generation {
                    // Changed while it was read: use it, do not keep it.
                    return Ok(loaded);
                }
                cache.insert(
                    hash.to_owned(),
                    Cached {
                        at: Instant::now(),
                        loaded: loaded.clone(),
                    },
                );
                Ok(loaded)
            }
            Err(e) => match stale {
                Some(loaded) => {
                    tracing::warn!(
                        "cannot read a key from the database ({e}); using the cached copy"
                    );
                    Ok(loaded)
                }
                None => Err(e),
            },
        }
    }

    async fn proxy_spend(&self) -> Result<(f64, i64, Option<i64>), String> {
        {
            let p = self.proxy.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = p
                .as_ref()
                .filter(|p| p.at.elapsed() < self.settings.cache_ttl)
            {
                return Ok((p.spend, p.mark, p.rmark));
            }
        }
        let mark = self.ledger.mark(PROXY);
        let rmark = match self.share.get() {
            Some(s) => s.marks(&[PROXY]).await.and_then(|v| v.first().copied()),
            None => None,
        };
        let since = self
            .settings
            .proxy_budget_window
            .map(|w| now_ms() - i64::try_from(w.as_millis()).unwrap_or(i64::MAX / 2));
        let spend = self.dir.total_spend(since).await?;
        *self.proxy.lock().unwrap_or_else(|e| e.into_inner()) = Some(ProxySpend {
            at: Instant::now(),
            spend,
            mark,
            rmark,
        });
        Ok((spend, mark, rmark))
    }

    fn model_allowed(&self, models: &[String], call: &CallInfo) -> bool {
        let Some(model) = call.model.as_deref() else {
            return true;
        };
        if models.is_empty() {
            return true;
        }
        let group = call.group.as_deref();
        models.iter().any(|m| {
            m == "*"
                || m == "all-proxy-models"
                || m == model
                || Some(m.as_str()) == group
                || self.access_groups.get(m).is_some_and(|members| {
                    members
                        .iter()
                        .any(|g| g == model || Some(g.as_str()) == group)
                })
                || m.strip_suffix('*')
                    .is_some_and(|prefix| model.starts_with(prefix))
        })
    }

    /// Check `presented` (not the master key) for a call, in LiteLLM's
    /// order, and admit it: the returned principal holds the call's
    /// [`Grant`] when the call is billable (`call.model` is set).
    pub async fn authorize(
        self: &Arc<Self>,
        presented: &str,
        call: &CallInfo,
    ) -> Result<Principal, GatewayError> {
        let hash = hash_key(presented);
        let loaded = match self.load(&hash).await {
            Ok(l) => l,
            Err(e) if self.settings.allow_on_db_unavailable => {
                tracing::warn!("database unavailable ({e}): request allowed (allow_requests_on_db_unavailable)");
                return Ok(Principal {
                    key_hash: Some(hash),
                    ..Default::default()
                });
            }
            Err(e) => {
                tracing::error!("cannot check a virtual key: {e}");
                return Err(denied(
                    503,
                    "no_db_connection",
                    "Authentication Error: the key could not be checked, the database is unavailable. Try again shortly.".into(),
                ));
            }
        };
        // 1. exists
        let Some(l) = loaded else {
            return Err(denied(
                401,
                "token_not_found_in_db",
                "Authentication Error, Invalid proxy server token passed. Received API Key = sk-...redacted. Unable to find token in cache or `LiteLLM_VerificationTokenTable`".into(),
            ));
        };
        let k = &l.key;
        // 2. blocked
        if k.blocked {
            return Err(denied(
                401,
                "auth_error",
                "Authentication Error, Key is blocked. Update via `/key/unblock` if you're admin."
                    .into(),
            ));
        }
        if let Some(t) = l.team.as_ref().filter(|t| t.blocked) {
            return Err(denied(
                401,
                "team_blocked",
                format!(
                    "Authentication Error, Team={} is blocked. Update via `/team/unblock` if you're admin.",
                    t.team_id
                ),
            ));
        }
        // 3. expired
        let now = now_ms();
        if let Some(exp) = k.expires.filter(|e| *e < now) {
            return Err(denied(
                401,
                "expired_key",
                format!(
                    "Authentication Error - Expired Key. Key Expiry time {} and current time {}",
                    format_ms(exp),
                    format_ms(now)
                ),
            ));
        }
        // The key's own model aliases (LiteLLM's key `aliases`): the call is
        // checked, limited and served as a call to the group it maps to.
        let model_alias = call
            .model
            .as_deref()
            .and_then(|m| k.aliases.get(m))
            .filter(|target| !target.is_empty())
            .cloned();
        let aliased;
        let call = match &model_alias {
            Some(target) => {
                aliased = CallInfo {
                    model: Some(target.clone()),
                    group: Some(target.clone()),
                    ..call.clone()
                };
                &aliased
            }
            None => call,
        };
        // 4. model access: the key's models, then its team's.
        let model = call.model.as_deref().unwrap_or_default();
        if !self.model_allowed(&k.models, call) {
            return Err(denied(
                401,
                "key_model_access_denied",
                format!(
                    "key not allowed to access model. This key can only access models={}. Tried to access {model}",
                    py_list(&k.models)
                ),
            ));
        }
        if let Some(t) = &l.team {
            if !self.model_allowed(&t.models, call) {
                return Err(denied(
                    401,
                    "team_model_access_denied",
                    format!(
                        "team not allowed to access model. This team can only access models={}. Tried to access {model}",
                        py_list(&t.models)
                    ),
                ));
            }
        }
        let admin = l
            .user
            .as_ref()
            .is_some_and(|u| is_admin_role(u.user_role.as_deref()));
        let mut principal = Principal {
            key_hash: Some(hash.clone()),
            key_alias: k.key_alias.clone(),
            user_id: k.user_id.clone(),
            team_id: k.team_id.clone(),
            team_alias: l.team.as_ref().and_then(|t| t.team_alias.clone()),
            admin,
            model_alias,
            hold: None,
        };
        if call.model.is_none() {
            return Ok(principal);
        }
        // 5. budgets: key, user, team, proxy.
        let mut budgets = vec![Budgeted {
            id: key_id(&hash),
            db_spend: k.spend,
            mark: l.marks[0],
            max_budget: k.max_budget,
        }];
        let mut rmarks = l.rmarks.map(|m| vec![m[0]]);
        if let Some(u) = &l.user {
            budgets.push(Budgeted {
                id: user_id(&u.user_id),
                db_spend: u.spend,
                mark: l.marks[1],
                max_budget: u.max_budget,
            });
            if let (Some(r), Some(m)) = (rmarks.as_mut(), l.rmarks) {
                r.push(m[1]);
            }
        }
        if let Some(t) = &l.team {
            budgets.push(Budgeted {
                id: team_id(&t.team_id),
                db_spend: t.spend,
                mark: l.marks[2],
                max_budget: t.max_budget,
            });
            if let (Some(r), Some(m)) = (rmarks.as_mut(), l.rmarks) {
                r.push(m[2]);
            }
        }
        if self.settings.proxy_max_budget.is_some() {
            let (spend, mark, rmark) = self.proxy_spend().await.unwrap_or_else(|e| {
                tracing::warn!("cannot read the proxy's spend ({e})");
                (0.0, self.ledger.mark(PROXY), None)
            });
            budgets.push(Budgeted {
                id: PROXY.to_owned(),
                db_spend: spend,
                mark,
                max_budget: self.settings.proxy_max_budget,
            });
            rmarks = match (rmarks, rmark) {
                (Some(mut r), Some(m)) => {
                    r.push(m);
                    Some(r)
                }
                _ => None,
            };
        }
        let holders = holders_of(&hash, k.user_id.as_deref(), k.team_id.as_deref());
        let output = call
            .max_output_tokens
            .unwrap_or(self.settings.default_output_tokens);
        let group = call.group.as_deref().unwrap_or(model);
        let estimate = super::to_nano(self.pricing.estimate(group, call.prompt_tokens, output));
        let key_spend = self.ledger.spend(&budgets[0]);
        // 6. rate limits: key, then user, then team.
        let mut limited = vec![Limited {
            id: key_id(&hash),
            rpm: k.rpm_limit,
            tpm: k.tpm_limit,
            parallel: k.max_parallel_requests,
        }];
        if let Some(u) = &l.user {
            limited.push(Limited {
                id: user_id(&u.user_id),
                rpm: u.rpm_limit,
                tpm: u.tpm_limit,
                parallel: u.max_parallel_requests,
            });
        }
        if let Some(t) = &l.team {
            limited.push(Limited {
                id: team_id(&t.team_id),
                rpm: t.rpm_limit,
                tpm: t.tpm_limit,
                parallel: t.max_parallel_requests,
            });
        }
        limited.retain(|l| l.rpm.is_some() || l.tpm.is_some() || l.parallel.is_some());
        // Through Redis when it answers (every instance's reservations and
        // counts), else on this instance's ledger and counters.
        let shared = match (self.share.get(), rmarks) {
            (Some(share), Some(rmarks)) => {
                self.admit_shared(share, &budgets, &rmarks, &limited, estimate, &hash)
                    .await?
            }
            _ => None,
        };
        if shared.is_some() {
            self.ledger.hold(&holders, estimate);
            self.limits.take(&limited);
        } else {
            if let Err(x) = self.ledger.reserve(&budgets, &holders, estimate) {
                return Err(budget_exceeded(&budgets[x.index].id, x.spend, x.max_budget));
            }
            // From here on the reservation is held (released on error).
            if let Err(hit) = self.limits.acquire(&limited) {
                self.ledger.release(&holders, estimate);
                return Err(limit_exceeded(&limited, &hit, &hash));
            }
        }
        let grant = Grant {
            enforcer: Arc::clone(self),
            holders,
            limited: limited.into_iter().map(|l| l.id).collect(),
            estimate,
            settled: AtomicBool::new(false),
            shared,
            key_spend,
            key_max_budget: k.max_budget,
        };
        principal.hold = Some(Hold(Arc::new(grant)));
        Ok(principal)
    }

    /// Admit through Redis: `Ok(Some(hold))` admitted, `Ok(None)` Redis
    /// did not answer (decide locally), `Err` refused.
    async fn admit_shared(
        &self,
        share: &Arc<KeyShare>,
        budgets: &[Budgeted],
        rmarks: &[i64],
        limited: &[Limited],
        estimate: i64,
        hash: &str,
    ) -> Result<Option<SharedHold>, GatewayError> {
        let checked: Vec<(usize, SharedBudget)> = budgets
            .iter()
            .zip(rmarks)
            .enumerate()
            .filter_map(|(i, (b, mark))| {
                b.max_budget.map(|max| {
                    (
                        i,
                        SharedBudget {
                            id: b.id.clone(),
                            db_spend: super::to_nano(b.db_spend),
                            mark: *mark,
                            max_budget: super::to_nano(max),
                        },
                    )
                })
            })
            .collect();
        let only: Vec<SharedBudget> = checked.iter().map(|(_, b)| b.clone()).collect();
        let Ok((admission, hold)) = share.admit(&only, limited, estimate).await else {
            return Ok(None);
        };
        match admission {
            Admission::Admitted => Ok(Some(hold)),
            Admission::Budget { index, spend } => {
                let i = checked.get(index).map_or(0, |(i, _)| *i);
                let Some(b) = budgets.get(i) else {
                    return Ok(None);
                };
                Err(budget_exceeded(
                    &b.id,
                    spend as f64 / 1e9,
                    b.max_budget.unwrap_or_default(),
                ))
            }
            Admission::Limit { index, kind } => {
                let Some(l) = limited.get(index) else {
                    return Ok(None);
                };
                let limit = match kind {
                    LimitKind::Requests => l.rpm,
                    LimitKind::Tokens => l.tpm,
                    LimitKind::Parallel => l.parallel,
                }
                .unwrap_or_default();
                let now = super::limits::now_secs();
                let hit = LimitHit {
                    index,
                    kind,
                    limit,
                    retry_after: if kind == LimitKind::Parallel {
                        1
                    } else {
                        60 - now % 60
                    },
                };
                Err(limit_exceeded(limited, &hit, hash))
            }
        }
    }

    /// Reset the budgets whose period is over (the store decides which) and
    /// forget the cache when any was reset.
    pub async fn reset_budgets(&self) -> Result<u64, String> {
        let n = self.dir.reset_budgets(now_ms()).await?;
        if n > 0 {
            self.invalidate(None);
        }
        Ok(n)
    }

    /// Reset budgets every `every` until the returned task is aborted.
    pub fn spawn_budget_resets(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                match me.reset_budgets().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(reset = n, "budgets reset"),
                    Err(e) => tracing::warn!("budget reset failed: {e}"),
                }
            }
        })
    }

    /// Tell the ledger that the spend writer stored these rows.
    pub fn written(&self, rows: &[SpendEntry]) {
        let mut shared: HashMap<String, i64> = HashMap::new();
        for r in rows {
            let cost = super::to_nano(r.spend);
            if cost == 0 {
                continue;
            }
            for h in holders_of(&r.api_key, r.user.as_deref(), r.team_id.as_deref()) {
                self.ledger.written(&h, cost);
                *shared.entry(h).or_default() += cost;
            }
        }
        if let Some(share) = self.share.get() {
            share.written(shared);
        }
    }

    /// Start following key changes published by other instances (and
    /// replaying Redis writes that failed), when Redis is configured. The
    /// task ends when the enforcer is dropped. On every (re)connection the
    /// whole cache is forgotten, since changes may have been missed.
    pub fn spawn_sync(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let share = Arc::clone(self.share.get()?);
        let me = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            use futures_util::StreamExt;
            let tick = Duration::from_secs(1);
            loop {
                let Some(ps) = share.subscribe().await else {
                    tokio::time::sleep(tick).await;
                    match me.upgrade() {
                        Some(_) => continue,
                        None => return,
                    }
                };
                match me.upgrade() {
                    Some(e) => e.forget(None),
                    None => return,
                }
                share.replay().await;
                let mut messages = ps.into_on_message();
                loop {
                    match tokio::time::timeout(tick, messages.next()).await {
                        Ok(Some(msg)) => {
                            let Some(e) = me.upgrade() else { return };
                            match msg.get_payload::<String>() {
                                Ok(h) if h != "*" => e.forget(Some(&h)),
                                _ => e.forget(None),
                            }
                        }
                        // The connection is gone: subscribe again.
                        Ok(None) => break,
                        Err(_) => {
                            if me.upgrade().is_none() {
                                return;
                            }
                            share.replay().await;
                        }
                    }
                }
            }
        }))
    }
}

/// Settles each call's reservation at its actual cost (and counts its
/// tokens against `tpm_limit`) when its record arrives. Register it after
/// the pricing finisher, with the spend writer.
impl CallSink for KeyEnforcer {
    fn record(&self, rec: &CallRecord) {
        let tokens = rec.usage.as_ref().map_or(0, |u| u.total_tokens);
        match rec.principal.as_deref().and_then(|p| p.held::<Grant>()) {
            Some(grant) => grant.settle(rec.cost, tokens),
            None => {
                let p = rec.principal.as_deref();
                let holders = holders_of(
                    p.and_then(|p| p.key_hash.as_deref()).unwrap_or_default(),
                    p.and_then(|p| p.user_id.as_deref()),
                    p.and_then(|p| p.team_id.as_deref()),
                );
                let cost = super::to_nano(rec.cost);
                self.ledger.settle(&holders, 0, cost);
                if let Some(share) = self.share.get() {
                    share.settle(None, &holders, &[], cost, tokens);
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) fn format_ms_for_tests(ms: i64) -> String {
    format_ms(ms)
}
