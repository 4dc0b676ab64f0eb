//! `GET /metrics`: LiteLLM's Prometheus metrics, with its names, types,
//! label sets and latency buckets, so existing dashboards keep working.
//!
//! Label values never carry raw client input: a requested model that is not
//! a configured group, alias or wildcard pattern is recorded as `other` (as
//! LiteLLM does); `end_user`, `client_ip` and `user_agent` are always `None`
//! (LiteLLM fills them only when configured to); a missing value is `None`,
//! the string LiteLLM's Python client writes for it.
//!
//! Recording is cheap: the metric handles for one combination of labels
//! (deployment, requested model, caller, outcome) are resolved once and kept
//! in a per-thread cache, so a call costs a hash lookup and a few atomic
//! adds, with no lock shared by every request. The retry loop reports each
//! upstream attempt the same way ([`Metrics::attempt`]): deployment
//! successes, failures, cooldowns and state. Budgets, cooldowns learned from
//! other instances, in-flight requests and process figures are read when the
//! endpoint is scraped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::auth::Principal;
use crate::cache::{CacheMode, CacheSettings, CallKind};
use crate::meter::{CallRecord, CallSink, CallType};
use crate::router::health::DeploymentState;
use crate::router::Router;
use crate::{Gateway, GatewayError};

use super::process::{self, ProcessStats};

/// LiteLLM's `LATENCY_BUCKETS` (seconds); `+Inf` is added by the encoder.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 420.0,
    600.0,
];

/// The Python client's default histogram buckets, which LiteLLM keeps for
/// `litellm_deployment_latency_per_output_token`.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The value LiteLLM records for a requested model no group answers to.
pub const OTHER_MODEL: &str = "other";
/// What LiteLLM's Python client writes for a label without a value.
pub const NONE: &str = "None";

/// The Content-Type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, Arc<str>)>;
type Hist = Family<Labels, Histogram, fn() -> Histogram>;
type FloatCounter = Counter<f64, AtomicU64>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

fn default_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS.iter().copied())
}

// Label names, in LiteLLM's order (`PrometheusMetricLabels`, with `org_id`
// and `org_alias` appended where its `get_labels` appends them).
const PROXY_TOTAL: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "status_code",
    "user_email",
    "route",
    "client_ip",
    "user_agent",
    "model_id",
    "api_provider",
    "org_id",
    "org_alias",
];
const PROXY_FAILED: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "user_email",
    "exception_status",
    "exception_class",
    "route",
    "client_ip",
    "user_agent",
    "model_id",
    "api_provider",
    "org_id",
    "org_alias",
];
const REQUESTS: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "model",
    "team",
    "team_alias",
    "user",
    "user_email",
    "client_ip",
    "user_agent",
    "requested_model",
    "model_id",
    "api_provider",
    "org_id",
    "org_alias",
];
const SPEND: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "model",
    "team",
    "team_alias",
    "user",
    "user_email",
    "client_ip",
    "user_agent",
    "requested_model",
    "model_id",
    "api_provider",
    "service_tier",
    "org_id",
    "org_alias",
];
const TOKENS: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "model",
    "team",
    "team_alias",
    "user",
    "user_email",
    "requested_model",
    "model_id",
    "api_provider",
    "org_id",
    "org_alias",
];
const TOTAL_LATENCY: &[&str] = &[
    "model_group",
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "model",
    "model_id",
    "api_provider",
    "service_tier",
    "org_id",
    "org_alias",
];
const API_LATENCY: &[&str] = &[
    "model_group",
    "model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "requested_model",
    "end_user",
    "user",
    "model_id",
    "api_provider",
    "service_tier",
    "org_id",
    "org_alias",
];
const DEPLOYMENT_REQUESTS: &[&str] = &[
    "model_group",
    "requested_model",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "client_ip",
    "user_agent",
];
const DEPLOYMENT_FAILURES: &[&str] = &[
    "model_group",
    "requested_model",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "exception_status",
    "exception_class",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "client_ip",
    "user_agent",
];
const REMAINING: &[&str] = &[
    "model_group",
    "api_provider",
    "api_base",
    "litellm_model_name",
    "hashed_api_key",
    "api_key_alias",
    "model_id",
];
const DEPLOYMENT_STATE: &[&str] = &["litellm_model_name", "model_id", "api_base", "api_provider"];
const COOLED_DOWN: &[&str] = &[
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "exception_status",
];
const LATENCY_PER_TOKEN: &[&str] = &[
    "model_group",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
];
const CACHE_LABELS: &[&str] = &[
    "model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "end_user",
    "user",
    "model_id",
    "api_provider",
];

/// A configured deployment's label values, interned once.
#[derive(Debug, Clone)]
struct DeploymentLabels {
    model_id: Arc<str>,
    group: Arc<str>,
    /// The upstream model without its provider prefix (LiteLLM's `model`
    /// and `litellm_model_name`).
    model: Arc<str>,
    api_base: Arc<str>,
    provider: Arc<str>,
}

impl DeploymentLabels {
    /// `litellm_deployment_state`'s labels.
    fn state_labels(&self) -> Labels {
        self.named(DEPLOYMENT_STATE, &self.model)
    }

    /// `litellm_deployment_cooled_down`'s labels but `exception_status`.
    /// LiteLLM's cooldown callback puts the model group's name in
    /// `litellm_model_name`, not the upstream model.
    fn cooled_labels(&self) -> Labels {
        self.named(&COOLED_DOWN[..4], &self.group)
    }

    /// `names` (model name, id, API base, provider, in that order) with
    /// `model` as the model name.
    fn named(&self, names: &[&'static str], model: &Arc<str>) -> Labels {
        let values = [model, &self.model_id, &self.api_base, &self.provider];
        names
            .iter()
            .zip(values)
            .map(|(n, v)| (*n, Arc::clone(v)))
            .collect()
    }
}

/// Every label value of one call.
struct Values {
    end_user: Arc<str>,
    hashed_api_key: Arc<str>,
    api_key_alias: Arc<str>,
    team: Arc<str>,
    team_alias: Arc<str>,
    user: Arc<str>,
    requested_model: Arc<str>,
    status_code: Arc<str>,
    exception_status: Arc<str>,
    exception_class: Arc<str>,
    route: Arc<str>,
    deployment: Option<DeploymentLabels>,
    /// The requested model's provider, when no deployment is known.
    provider: Option<Arc<str>>,
    none: Arc<str>,
}

impl Values {
    fn get(&self, name: &str) -> Arc<str> {
        let d = self.deployment.as_ref();
        let v = match name {
            "end_user" => &self.end_user,
            "hashed_api_key" => &self.hashed_api_key,
            "api_key_alias" => &self.api_key_alias,
            "team" => &self.team,
            "team_alias" => &self.team_alias,
            "user" => &self.user,
            "requested_model" => &self.requested_model,
            "status_code" => &self.status_code,
            "exception_status" => &self.exception_status,
            "exception_class" => &self.exception_class,
            "route" => &self.route,
            "model_group" => d.map_or(&self.requested_model, |d| &d.group),
            "model" | "litellm_model_name" => d.map_or(&self.none, |d| &d.model),
            "model_id" => d.map_or(&self.none, |d| &d.model_id),
            "api_base" => d.map_or(&self.none, |d| &d.api_base),
            "api_provider" => d.map_or(self.provider.as_ref().unwrap_or(&self.none), |d| {
                &d.provider
            }),
            _ => &self.none,
        };
        Arc::clone(v)
    }

    fn labels(&self, names: &[&'static str]) -> Labels {
        names.iter().map(|n| (*n, self.get(n))).collect()
    }
}

/// The metric handles one combination of labels records into.
struct Handles {
    proxy_total: Counter,
    proxy_failed: Option<Counter>,
    /// Success only.
    requests: Option<Counter>,
    spend: Option<FloatCounter>,
    total_tokens: Option<Counter>,
    input_tokens: Option<Counter>,
    output_tokens: Option<Counter>,
    total_latency: Option<Histogram>,
    api_latency: Option<Histogram>,
    ttft: Option<Histogram>,
    cache_hits: Option<Counter>,
    cached_tokens: Option<Counter>,
    /// Only where the response cache was on for the call's kind.
    cache_misses: Option<Counter>,
    /// With a deployment only.
    latency_per_token: Option<Histogram>,
    remaining_requests: Option<Gauge>,
    remaining_tokens: Option<Gauge>,
}

/// The counters one upstream attempt adds to.
struct AttemptHandles {
    total: Counter,
    /// `litellm_deployment_success_responses` or `_failure_responses`.
    outcome: Counter,
}

/// What identifies an [`AttemptHandles`] in the per-thread cache.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct AttemptKey {
    instance: u64,
    deployment: usize,
    requested: Option<usize>,
    status: u16,
    class: &'static str,
    caller: u64,
}

/// What identifies a [`Handles`] in the per-thread cache.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    instance: u64,
    deployment: Option<usize>,
    requested: Option<usize>,
    status: u16,
    class: &'static str,
    call_type: u8,
    /// Stream, cache hit, remaining requests known, remaining tokens known:
    /// they decide which series a call feeds.
    flags: u8,
    caller: u64,
}

thread_local! {
    /// Per-thread handle cache; entries carry the caller they were made for,
    /// so a hash collision is detected and never mislabels a call.
    static CACHE: RefCell<HashMap<Key, (CallerId, Arc<Handles>)>> = RefCell::new(HashMap::new());
    /// The same for upstream attempts.
    static ATTEMPTS: RefCell<HashMap<AttemptKey, (CallerId, AttemptHandles)>> =
        RefCell::new(HashMap::new());
}

/// Most cached label combinations per thread; past it the cache is cleared.
const CACHE_LIMIT: usize = 4096;
/// Most virtual keys whose budgets are reported.
const BUDGET_KEYS_LIMIT: usize = 10_000;

static INSTANCES: AtomicU64 = AtomicU64::new(0);

type CallerId = [Option<String>; 5];

fn caller_of(p: Option<&Principal>) -> [Option<&str>; 5] {
    match p {
        None => [None; 5],
        Some(p) => [
            p.key_hash.as_deref(),
            p.key_alias.as_deref(),
            p.team_id.as_deref(),
            p.team_alias.as_deref(),
            p.user_id.as_deref(),
        ],
    }
}

/// The gateway's Prometheus registry and the families it records into.
pub struct Metrics {
    instance: u64,
    registry: Registry,
    hasher: std::collections::hash_map::RandomState,
    deployments: Vec<DeploymentLabels>,
    by_id: HashMap<String, usize>,
    /// The router's deployment slot → index in `deployments`.
    by_slot: Vec<Option<usize>>,
    /// `litellm_deployment_state` of each deployment, by index.
    state: Vec<Gauge>,
    /// Bit `call_type as u8`: a successful call of that kind not answered
    /// from the cache counts as a cache miss.
    miss_kinds: u8,
    /// Virtual keys seen (hash → alias), whose budgets are read at scrape.
    budget_keys: Mutex<HashMap<String, Arc<str>>>,
    /// Configured group names, aliases and wildcard patterns.
    names: HashMap<String, usize>,
    name_values: Vec<Arc<str>>,
    /// The provider of every deployment behind a name, when they share one.
    name_providers: Vec<Option<Arc<str>>>,
    other: Arc<str>,
    none: Arc<str>,

    proxy_total: Family<Labels, Counter>,
    proxy_failed: Family<Labels, Counter>,
    requests: Family<Labels, Counter>,
    spend: Family<Labels, FloatCounter>,
    total_tokens: Family<Labels, Counter>,
    input_tokens: Family<Labels, Counter>,
    output_tokens: Family<Labels, Counter>,
    total_latency: Hist,
    api_latency: Hist,
    ttft: Hist,
    cache_hits: Family<Labels, Counter>,
    cache_misses: Family<Labels, Counter>,
    cached_tokens: Family<Labels, Counter>,
    deployment_total: Family<Labels, Counter>,
    deployment_success: Family<Labels, Counter>,
    deployment_failure: Family<Labels, Counter>,
    deployment_cooled_down: Family<Labels, Counter>,
    latency_per_token: Hist,
    remaining_requests: Family<Labels, Gauge>,
    remaining_tokens: Family<Labels, Gauge>,
    deployment_state: Family<Labels, Gauge>,
    remaining_team_budget: Family<Labels, FloatGauge>,
    team_max_budget: Family<Labels, FloatGauge>,
    remaining_key_budget: Family<Labels, FloatGauge>,
    key_max_budget: Family<Labels, FloatGauge>,
    remaining_user_budget: Family<Labels, FloatGauge>,
    user_max_budget: Family<Labels, FloatGauge>,
    in_flight: Gauge,
    process: process::Gauges,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("deployments", &self.deployments.len())
            .finish()
    }
}

fn hist() -> Hist {
    Family::new_with_constructor(latency_histogram)
}

impl Metrics {
    /// `aliases`: every `model_group_alias` name, hidden ones included.
    pub fn new<'a>(router: &Router, aliases: impl IntoIterator<Item = &'a String>) -> Self {
        let mut deployments = Vec::new();
        let mut by_id = HashMap::new();
        let mut by_slot = Vec::new();
        for d in router.all() {
            let (model, api_base, provider) = match &d.target {
                Some(t) => (t.model.as_str(), t.api_base.as_str(), t.provider.as_str()),
                None => {
                    let (p, m) = d
                        .litellm_model
                        .split_once('/')
                        .unwrap_or(("", &d.litellm_model));
                    (m, NONE, p)
                }
            };
            by_id.insert(d.id.clone(), deployments.len());
            if by_slot.len() <= d.index {
                by_slot.resize(d.index + 1, None);
            }
            by_slot[d.index] = Some(deployments.len());
            deployments.push(DeploymentLabels {
                model_id: d.id.as_str().into(),
                group: d.model_name.as_str().into(),
                model: model.into(),
                api_base: api_base.into(),
                provider: provider.into(),
            });
        }
        let mut names = HashMap::new();
        let mut name_values = Vec::new();
        let mut name_providers = Vec::new();
        let aliases: Vec<&str> = aliases.into_iter().map(String::as_str).collect();
        for n in router.model_names().into_iter().chain(aliases) {
            if !names.contains_key(n) {
                names.insert(n.to_owned(), name_values.len());
                name_values.push(Arc::from(n));
                let providers: Vec<&str> = router
                    .resolve(n)
                    .map(|r| {
                        r.deployments
                            .iter()
                            .filter_map(|d| by_id.get(&d.id).map(|&i| &*deployments[i].provider))
                            .collect()
                    })
                    .unwrap_or_default();
                name_providers.push(match providers.split_first() {
                    Some((p, rest)) if rest.iter().all(|r| r == p) => Some(Arc::from(*p)),
                    _ => None,
                });
            }
        }
        let deployment_state: Family<Labels, Gauge> = Family::default();
        // Every deployment is reported from the start, healthy.
        let state = deployments
            .iter()
            .map(|l| deployment_state.get_or_create_owned(&l.state_labels()))
            .collect();
        let mut m = Self {
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            registry: Registry::default(),
            hasher: Default::default(),
            deployments,
            by_id,
            by_slot,
            state,
            miss_kinds: 0,
            budget_keys: Mutex::new(HashMap::new()),
            names,
            name_values,
            name_providers,
            other: Arc::from(OTHER_MODEL),
            none: Arc::from(NONE),
            proxy_total: Family::default(),
            proxy_failed: Family::default(),
            requests: Family::default(),
            spend: Family::default(),
            total_tokens: Family::default(),
            input_tokens: Family::default(),
            output_tokens: Family::default(),
            total_latency: hist(),
            api_latency: hist(),
            ttft: hist(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            cached_tokens: Family::default(),
            deployment_total: Family::default(),
            deployment_success: Family::default(),
            deployment_failure: Family::default(),
            deployment_cooled_down: Family::default(),
            latency_per_token: Family::new_with_constructor(default_histogram),
            remaining_requests: Family::default(),
            remaining_tokens: Family::default(),
            deployment_state,
            remaining_team_budget: Family::default(),
            team_max_budget: Family::default(),
            remaining_key_budget: Family::default(),
            key_max_budget: Family::default(),
            remaining_user_budget: Family::default(),
            user_max_budget: Family::default(),
            in_flight: Gauge::default(),
            process: process::Gauges::default(),
        };
        m.register();
        m
    }

    /// Count cache misses for the call kinds the response cache answers
    /// (`litellm_settings.cache` in `default_on` mode; with `default_off`
    /// only requests that opt in use it, which a record does not tell).
    pub fn with_cache(mut self, cache: Option<&CacheSettings>) -> Self {
        self.miss_kinds = 0;
        if let Some(c) = cache.filter(|c| c.mode == CacheMode::DefaultOn) {
            for t in [
                CallType::Chat,
                CallType::Completion,
                CallType::Embedding,
                CallType::Messages,
                CallType::Responses,
                CallType::GenerateContent,
            ] {
                if CallKind::of(t).is_some_and(|k| c.call_types.contains(&k)) {
                    self.miss_kinds |= 1 << (t as u8);
                }
            }
        }
        self
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "litellm_proxy_total_requests_metric",
            "Total number of requests made to the proxy server - track number of client side requests",
            self.proxy_total.clone(),
        );
        r.register(
            "litellm_proxy_failed_requests_metric",
            "Total number of failed responses from proxy - the client did not get a success response from litellm proxy",
            self.proxy_failed.clone(),
        );
        r.register(
            "litellm_requests_metric",
            "deprecated - use litellm_proxy_total_requests_metric. Total number of LLM calls to litellm - track total per API Key, team, user",
            self.requests.clone(),
        );
        r.register(
            "litellm_spend_metric",
            "Total spend on LLM requests",
            self.spend.clone(),
        );
        r.register(
            "litellm_total_tokens_metric",
            "Total number of input + output tokens from LLM requests",
            self.total_tokens.clone(),
        );
        r.register(
            "litellm_input_tokens_metric",
            "Total number of input tokens from LLM requests",
            self.input_tokens.clone(),
        );
        r.register(
            "litellm_output_tokens_metric",
            "Total number of output tokens from LLM requests",
            self.output_tokens.clone(),
        );
        r.register(
            "litellm_request_total_latency_metric",
            "Total latency (seconds) for a request to LiteLLM",
            self.total_latency.clone(),
        );
        r.register(
            "litellm_llm_api_latency_metric",
            "Total latency (seconds) for a models LLM API call",
            self.api_latency.clone(),
        );
        r.register(
            "litellm_llm_api_time_to_first_token_metric",
            "Time to first token for a models LLM API call",
            self.ttft.clone(),
        );
        r.register(
            "litellm_cache_hits_metric",
            "Total number of LiteLLM cache hits",
            self.cache_hits.clone(),
        );
        r.register(
            "litellm_cache_misses_metric",
            "Total number of LiteLLM cache misses",
            self.cache_misses.clone(),
        );
        r.register(
            "litellm_cached_tokens_metric",
            "Total tokens served from LiteLLM cache",
            self.cached_tokens.clone(),
        );
        r.register(
            "litellm_deployment_total_requests",
            "LLM Deployment Analytics - Total number of LLM API calls via litellm - success + failure",
            self.deployment_total.clone(),
        );
        r.register(
            "litellm_deployment_success_responses",
            "LLM Deployment Analytics - Total number of successful LLM API calls via litellm",
            self.deployment_success.clone(),
        );
        r.register(
            "litellm_deployment_failure_responses",
            "LLM Deployment Analytics - Total number of failed LLM API calls for a specific LLM deploymeny. exception_status is the status of the exception from the llm api",
            self.deployment_failure.clone(),
        );
        r.register(
            "litellm_deployment_cooled_down",
            "LLM Deployment Analytics - Number of times a deployment has been cooled down by LiteLLM load balancing logic. exception_status is the status of the exception that caused the deployment to be cooled down",
            self.deployment_cooled_down.clone(),
        );
        r.register(
            "litellm_deployment_latency_per_output_token",
            "LLM Deployment Analytics - Latency per output token",
            self.latency_per_token.clone(),
        );
        r.register(
            "litellm_remaining_requests_metric",
            "LLM Deployment Analytics - remaining requests for model, returned from LLM API Provider",
            self.remaining_requests.clone(),
        );
        r.register(
            "litellm_remaining_tokens_metric",
            "remaining tokens for model, returned from LLM API Provider",
            self.remaining_tokens.clone(),
        );
        r.register(
            "litellm_deployment_state",
            "LLM Deployment Analytics - The state of the deployment: 0 = healthy, 1 = partial outage, 2 = complete outage",
            self.deployment_state.clone(),
        );
        r.register(
            "litellm_remaining_team_budget_metric",
            "Remaining budget for team",
            self.remaining_team_budget.clone(),
        );
        r.register(
            "litellm_team_max_budget_metric",
            "Maximum budget set for team",
            self.team_max_budget.clone(),
        );
        r.register(
            "litellm_remaining_api_key_budget_metric",
            "Remaining budget for api key",
            self.remaining_key_budget.clone(),
        );
        r.register(
            "litellm_api_key_max_budget_metric",
            "Maximum budget set for api key",
            self.key_max_budget.clone(),
        );
        r.register(
            "litellm_remaining_user_budget_metric",
            "Remaining budget for user",
            self.remaining_user_budget.clone(),
        );
        r.register(
            "litellm_user_max_budget_metric",
            "Maximum budget set for user",
            self.user_max_budget.clone(),
        );
        r.register(
            "litellm_in_flight_requests",
            "Number of HTTP requests currently in-flight on this uvicorn worker",
            self.in_flight.clone(),
        );
        self.process.register(r);
    }

    fn requested(&self, rec: &CallRecord) -> Option<usize> {
        self.name_index(&rec.requested_model, &rec.meta.model_group)
    }

    /// The configured name a call was asked for, else the group it went to.
    fn name_index(&self, requested: &str, group: &str) -> Option<usize> {
        self.names
            .get(requested)
            .or_else(|| self.names.get(group))
            .copied()
    }

    fn caller_hash(&self, caller: &[Option<&str>; 5]) -> u64 {
        self.hasher.hash_one(caller)
    }

    /// Record one finished call.
    pub fn observe(&self, rec: &CallRecord) {
        let caller = caller_of(rec.principal.as_deref());
        let (status, class) = match &rec.error {
            None => (200, ""),
            Some(e) => (e.status, e.class),
        };
        let key = Key {
            instance: self.instance,
            deployment: self.by_id.get(rec.meta.model_id.as_str()).copied(),
            requested: self.requested(rec),
            status,
            class,
            call_type: rec.call_type as u8,
            flags: u8::from(rec.stream)
                | u8::from(rec.cache_hit) << 1
                | u8::from(rec.meta.remaining_requests.is_some()) << 2
                | u8::from(rec.meta.remaining_tokens.is_some()) << 3,
            caller: self.caller_hash(&caller),
        };
        let handles = CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if let Some((id, h)) = c.get(&key) {
                if id.iter().map(Option::as_deref).eq(caller.iter().copied()) {
                    return Arc::clone(h);
                }
                return Arc::new(self.resolve(&key, rec));
            }
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            let h = Arc::new(self.resolve(&key, rec));
            c.insert(key, (caller.map(|v| v.map(str::to_owned)), Arc::clone(&h)));
            h
        });
        self.record(&handles, rec);
    }

    fn record(&self, h: &Handles, rec: &CallRecord) {
        h.proxy_total.inc();
        if let Some(c) = &h.proxy_failed {
            c.inc();
        }
        if rec.error.is_some() {
            return;
        }
        let inc = |c: &Option<Counter>, n: u64| {
            if let Some(c) = c {
                c.inc_by(n);
            }
        };
        inc(&h.requests, 1);
        if let Some(s) = &h.spend {
            s.inc_by(if rec.cost.is_finite() && rec.cost > 0.0 {
                rec.cost
            } else {
                0.0
            });
        }
        let (input, output, total) = rec.tokens();
        inc(&h.total_tokens, total);
        inc(&h.input_tokens, input);
        inc(&h.output_tokens, output);
        inc(&h.cache_hits, 1);
        inc(&h.cached_tokens, total);
        inc(&h.cache_misses, 1);
        let total_secs = rec.latency.as_secs_f64();
        if let Some(t) = &h.total_latency {
            t.observe(total_secs);
        }
        // A stream's upstream call lasts until its last chunk.
        let api = if rec.stream || rec.meta.upstream_ms <= 0.0 {
            total_secs
        } else {
            rec.meta.upstream_ms / 1000.0
        };
        if let Some(t) = &h.api_latency {
            t.observe(api);
        }
        let ttft = rec.time_to_first_token.filter(|_| rec.stream);
        if let (Some(t), Some(ttft)) = (&h.ttft, ttft) {
            t.observe(ttft.as_secs_f64());
        }
        // LiteLLM: time to first token for streams, else the API call's
        // time, over the output tokens.
        if let (Some(t), true) = (&h.latency_per_token, output > 0) {
            let latency = ttft.map_or(api, |d| d.as_secs_f64());
            t.observe(latency / output as f64);
        }
        let set = |g: &Option<Gauge>, v: Option<u64>| {
            if let (Some(g), Some(v)) = (g, v) {
                g.set(i64::try_from(v).unwrap_or(i64::MAX));
            }
        };
        set(&h.remaining_requests, rec.meta.remaining_requests);
        set(&h.remaining_tokens, rec.meta.remaining_tokens);
    }

    /// The label values of a call or attempt.
    fn values(
        &self,
        deployment: Option<usize>,
        requested: Option<usize>,
        status: u16,
        class: &str,
        p: Option<&Principal>,
        call_type: CallType,
    ) -> Values {
        let s = |v: Option<&String>| {
            v.map_or_else(|| Arc::clone(&self.none), |v| Arc::from(v.as_str()))
        };
        let deployment = deployment.map(|i| self.deployments[i].clone());
        let provider = match &deployment {
            Some(d) => Some(Arc::clone(&d.provider)),
            None => requested.and_then(|i| self.name_providers[i].clone()),
        };
        let status_text: Arc<str> = status.to_string().into();
        Values {
            end_user: Arc::clone(&self.none),
            hashed_api_key: s(p.and_then(|p| p.key_hash.as_ref())),
            api_key_alias: s(p.and_then(|p| p.key_alias.as_ref())),
            team: s(p.and_then(|p| p.team_id.as_ref())),
            team_alias: s(p.and_then(|p| p.team_alias.as_ref())),
            user: s(p.and_then(|p| p.user_id.as_ref())),
            requested_model: requested.map_or_else(
                || Arc::clone(&self.other),
                |i| Arc::clone(&self.name_values[i]),
            ),
            status_code: Arc::clone(&status_text),
            exception_status: status_text,
            exception_class: exception_class(status, class, provider.as_deref()).into(),
            route: route(call_type).into(),
            deployment,
            provider,
            none: Arc::clone(&self.none),
        }
    }

    /// Resolve the handles for a label combination (once per combination
    /// and thread).
    fn resolve(&self, key: &Key, rec: &CallRecord) -> Handles {
        let p = rec.principal.as_deref();
        self.watch_budgets(p);
        let v = self.values(
            key.deployment,
            key.requested,
            key.status,
            key.class,
            p,
            rec.call_type,
        );
        let failed = rec.error.is_some();
        let c = |f: &Family<Labels, Counter>, names| f.get_or_create_owned(&v.labels(names));
        let hi = |f: &Hist, names| f.get_or_create_owned(&v.labels(names));
        let has_d = v.deployment.is_some();
        let ok = !failed;
        let missed = ok && !rec.cache_hit && self.miss_kinds & (1 << key.call_type) != 0;
        Handles {
            proxy_total: c(&self.proxy_total, PROXY_TOTAL),
            proxy_failed: failed.then(|| c(&self.proxy_failed, PROXY_FAILED)),
            requests: ok.then(|| c(&self.requests, REQUESTS)),
            spend: ok.then(|| self.spend.get_or_create_owned(&v.labels(SPEND))),
            total_tokens: ok.then(|| c(&self.total_tokens, TOKENS)),
            input_tokens: ok.then(|| c(&self.input_tokens, TOKENS)),
            output_tokens: ok.then(|| c(&self.output_tokens, TOKENS)),
            total_latency: ok.then(|| hi(&self.total_latency, TOTAL_LATENCY)),
            api_latency: (ok && has_d).then(|| hi(&self.api_latency, API_LATENCY)),
            ttft: (ok && has_d && rec.stream).then(|| hi(&self.ttft, API_LATENCY)),
            cache_hits: (ok && rec.cache_hit).then(|| c(&self.cache_hits, CACHE_LABELS)),
            cached_tokens: (ok && rec.cache_hit).then(|| c(&self.cached_tokens, CACHE_LABELS)),
            cache_misses: missed.then(|| c(&self.cache_misses, CACHE_LABELS)),
            latency_per_token: (ok && has_d)
                .then(|| hi(&self.latency_per_token, LATENCY_PER_TOKEN)),
            remaining_requests: (has_d && ok && rec.meta.remaining_requests.is_some()).then(|| {
                self.remaining_requests
                    .get_or_create_owned(&v.labels(REMAINING))
            }),
            remaining_tokens: (has_d && ok && rec.meta.remaining_tokens.is_some()).then(|| {
                self.remaining_tokens
                    .get_or_create_owned(&v.labels(REMAINING))
            }),
        }
    }

    /// Remember a virtual key, so its budgets are reported at scrape time
    /// (called once per label combination and thread, not per call).
    fn watch_budgets(&self, p: Option<&Principal>) {
        let Some((hash, p)) = p.and_then(|p| p.key_hash.as_ref().map(|h| (h, p))) else {
            return;
        };
        let mut keys = self.budget_keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() < BUDGET_KEYS_LIMIT && !keys.contains_key(hash) {
            let alias = p
                .key_alias
                .as_deref()
                .map_or_else(|| Arc::clone(&self.none), Arc::from);
            keys.insert(hash.clone(), alias);
        }
    }

    /// One upstream attempt on the deployment in router slot `slot` ended:
    /// `failure` is its error and whether it started a cooldown. Counts
    /// `litellm_deployment_total_requests` and `_success_responses` or
    /// `_failure_responses`, sets `litellm_deployment_state` (0 after a
    /// success, 1 after a failure, 2 after a cooldown, as LiteLLM) and
    /// counts `litellm_deployment_cooled_down`. A hash lookup and a few
    /// atomic adds; labels are built once per combination and thread.
    pub fn attempt(
        &self,
        slot: usize,
        requested: &str,
        group: &str,
        principal: Option<&Principal>,
        failure: Option<(&GatewayError, bool)>,
    ) {
        let Some(dep) = self.by_slot.get(slot).copied().flatten() else {
            return;
        };
        let (status, class) = failure.map_or((200, ""), |(e, _)| (e.status(), e.label()));
        let caller = caller_of(principal);
        let key = AttemptKey {
            instance: self.instance,
            deployment: dep,
            requested: self.name_index(requested, group),
            status,
            class,
            caller: self.caller_hash(&caller),
        };
        let resolve = || {
            let v = self.values(
                Some(dep),
                key.requested,
                status,
                class,
                principal,
                CallType::Chat,
            );
            let (family, names) = match failure {
                None => (&self.deployment_success, DEPLOYMENT_REQUESTS),
                Some(_) => (&self.deployment_failure, DEPLOYMENT_FAILURES),
            };
            AttemptHandles {
                total: self
                    .deployment_total
                    .get_or_create_owned(&v.labels(DEPLOYMENT_REQUESTS)),
                outcome: family.get_or_create_owned(&v.labels(names)),
            }
        };
        let count = |h: &AttemptHandles| {
            h.total.inc();
            h.outcome.inc();
        };
        ATTEMPTS.with(|c| {
            let mut c = c.borrow_mut();
            match c.get(&key) {
                Some((id, h)) if id.iter().map(Option::as_deref).eq(caller.iter().copied()) => {
                    count(h)
                }
                Some(_) => count(&resolve()),
                None => {
                    if c.len() >= CACHE_LIMIT {
                        c.clear();
                    }
                    let h = resolve();
                    count(&h);
                    c.insert(key, (caller.map(|v| v.map(str::to_owned)), h));
                }
            }
        });
        let state = match failure {
            None => 0,
            Some((_, false)) => 1,
            Some((_, true)) => 2,
        };
        self.state[dep].set(state);
        if state == 2 {
            let mut labels = self.deployments[dep].cooled_labels();
            labels.push(("exception_status", status.to_string().into()));
            self.deployment_cooled_down.get_or_create(&labels).inc();
        }
    }

    /// The exposition text: read the scrape-time figures (cooldowns other
    /// instances reported, budgets, in-flight requests, process), then
    /// encode everything.
    pub fn render(&self, gw: &Gateway) -> String {
        let now = tokio::time::Instant::now();
        for (slot, i) in self.by_slot.iter().enumerate() {
            if let Some(&i) = i.as_ref() {
                if let DeploymentState::CoolingDown { .. } = gw.health.state(slot, now) {
                    self.state[i].set(2);
                }
            }
        }
        if let Some(keys) = &gw.keys {
            self.set_budgets(keys);
        }
        self.in_flight
            .set(i64::try_from(gw.in_flight.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        self.process.set(&ProcessStats::read());
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::warn!("encoding /metrics failed");
        }
        // The encoder writes an infinite gauge (no budget) as `inf`;
        // OpenMetrics and LiteLLM's client write `+Inf`.
        if out.contains(" inf\n") {
            out = out.replace(" inf\n", " +Inf\n");
        }
        out
    }

    /// The budget gauges of every virtual key seen, and of its user and
    /// team, as the key enforcer knows them now. Without a `max_budget`
    /// the remaining budget is `+Inf` and the max-budget gauge is not set,
    /// as in LiteLLM.
    fn set_budgets(&self, keys: &crate::keys::KeyEnforcer) {
        let watched: Vec<(String, Arc<str>)> = self
            .budget_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(h, a)| (h.clone(), Arc::clone(a)))
            .collect();
        let remaining =
            |f: &crate::keys::BudgetFigures| f.max_budget.map_or(f64::INFINITY, |m| m - f.spend);
        let set = |remaining_family: &Family<Labels, FloatGauge>,
                   max_family: &Family<Labels, FloatGauge>,
                   labels: Labels,
                   f: &crate::keys::BudgetFigures| {
            remaining_family.get_or_create(&labels).set(remaining(f));
            if let Some(m) = f.max_budget {
                max_family.get_or_create(&labels).set(m);
            }
        };
        for (hash, alias) in watched {
            let Some(b) = keys.budgets(&hash) else {
                continue;
            };
            let labels = vec![
                ("hashed_api_key", Arc::from(hash.as_str())),
                ("api_key_alias", alias),
            ];
            set(
                &self.remaining_key_budget,
                &self.key_max_budget,
                labels,
                &b.key,
            );
            if let Some((team, alias, f)) = &b.team {
                let alias = alias
                    .as_deref()
                    .map_or_else(|| Arc::clone(&self.none), Arc::from);
                let labels = vec![("team", Arc::from(team.as_str())), ("team_alias", alias)];
                set(
                    &self.remaining_team_budget,
                    &self.team_max_budget,
                    labels,
                    f,
                );
            }
            if let Some((user, f)) = &b.user {
                let labels = vec![("user", Arc::from(user.as_str()))];
                set(
                    &self.remaining_user_budget,
                    &self.user_max_budget,
                    labels,
                    f,
                );
            }
        }
    }
}

impl CallSink for Metrics {
    fn record(&self, rec: &CallRecord) {
        self.observe(rec);
    }
}

/// The route LiteLLM records for a kind of call.
fn route(t: CallType) -> &'static str {
    match t {
        CallType::Chat => "/chat/completions",
        CallType::Completion => "/completions",
        CallType::Embedding => "/embeddings",
        CallType::Messages => "/v1/messages",
        CallType::Responses => "/v1/responses",
        CallType::GenerateContent => "/v1beta/models:generateContent",
    }
}

/// LiteLLM's exception class for a failure's status and the gateway's
/// error kind (`RateLimitError`, `Timeout`, …), without a provider.
pub(crate) fn exception_class_name(status: u16, class: &str) -> &'static str {
    match (class, status) {
        ("timeout", _) | (_, 408) | (_, 504) => "Timeout",
        ("connect_error", _) => "APIConnectionError",
        ("context_window", _) => "ContextWindowExceededError",
        (_, 400) | (_, 413) => "BadRequestError",
        (_, 401) => "AuthenticationError",
        (_, 403) => "PermissionDeniedError",
        (_, 404) => "NotFoundError",
        (_, 422) => "UnprocessableEntityError",
        (_, 429) => "RateLimitError",
        (_, 503) => "ServiceUnavailableError",
        (_, 500) => "InternalServerError",
        _ => "APIError",
    }
}

/// Whether an error kind came from an upstream (LiteLLM then names the
/// provider with the class).
pub(crate) fn is_upstream_error(class: &str) -> bool {
    matches!(
        class,
        "upstream_error" | "timeout" | "connect_error" | "bad_upstream_response" | "context_window"
    )
}

/// LiteLLM's exception class names (`Openai.RateLimitError`, …): the
/// provider, capitalised, before errors that came from an upstream.
fn exception_class(status: u16, class: &str, provider: Option<&str>) -> String {
    if status == 200 {
        return NONE.to_owned();
    }
    let name = exception_class_name(status, class);
    match provider.filter(|p| is_upstream_error(class) && !p.is_empty()) {
        Some(p) => {
            let mut chars = p.chars();
            let first: String = chars
                .next()
                .map(|c| c.to_uppercase().collect())
                .unwrap_or_default();
            format!("{first}{}.{name}", chars.as_str())
        }
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_classes_are_litellm_names_from_a_bounded_set() {
        assert_eq!(
            exception_class(429, "upstream_error", Some("openai")),
            "Openai.RateLimitError"
        );
        assert_eq!(
            exception_class(504, "timeout", Some("anthropic")),
            "Anthropic.Timeout"
        );
        assert_eq!(
            exception_class(400, "unknown_model", None),
            "BadRequestError"
        );
        assert_eq!(
            exception_class(429, "too_many_requests", Some("openai")),
            "RateLimitError"
        );
        assert_eq!(exception_class(599, "internal", None), "APIError");
    }

    #[test]
    fn buckets_are_litellms() {
        assert_eq!(LATENCY_BUCKETS.len(), 17);
        assert_eq!(LATENCY_BUCKETS.last(), Some(&600.0));
    }
}
