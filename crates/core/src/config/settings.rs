//! `litellm_settings`, `general_settings` and `router_settings`: the keys
//! this version acts on, typed.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolite_types::Secret;
use serde_json::{Map, Value};

use super::keys::{check_section, GENERAL_IMPL, LITELLM_IMPL, ROUTER_IMPL};
use super::values::{as_bool, as_f64, as_secs, as_string, as_u32, kind};
use super::ConfigIssue;
use crate::router::fallbacks::Fallbacks;

#[derive(Debug, Clone, Default)]
pub struct LitellmSettings {
    pub drop_params: bool,
    pub num_retries: Option<u32>,
    pub request_timeout: Option<Duration>,
    pub json_logs: bool,
    pub set_verbose: bool,
    /// `cache: true` + `cache_params`: the response cache (read in `cache::settings`).
    pub cache: Option<crate::cache::CacheSettings>,
    /// `callbacks`, `success_callback` and `failure_callback` merged: the
    /// implemented ones (`prometheus`, `otel`); webhooks are in `webhooks`;
    /// others are reported as not implemented.
    pub callbacks: Vec<String>,
    /// Webhooks (`generic_api` callbacks, read in `observe::webhook::settings`).
    pub webhooks: Vec<crate::observe::webhook::WebhookSettings>,
    /// `require_auth_for_metrics_endpoint` (LiteLLM's default: true).
    pub require_auth_for_metrics: bool,
    /// OTLP trace export (`callbacks: ["otel"]` and the `OTEL_*` variables).
    pub otel: Option<crate::observe::otel::OtelSettings>,
    /// `turn_off_message_logging`: no messages or answers in the spend logs,
    /// even with `store_prompts_in_spend_logs`.
    pub turn_off_message_logging: bool,
    /// `max_budget` / `budget_duration`: the whole proxy's budget (USD) and
    /// the trailing window it counts; `include_cost_in_streaming_usage`.
    pub proxy_budget: ProxyBudget,
}

#[derive(Debug, Clone, Default)]
pub struct GeneralSettings {
    pub master_key: Option<Secret>,
    /// Request body limit in MiB (`max_request_size_mb`).
    pub max_request_size_mb: Option<f64>,
    /// `max_parallel_requests`: the per-deployment default when neither the
    /// deployment nor `router_settings.default_max_parallel_requests` sets one.
    pub max_parallel_requests: Option<u32>,
    /// `global_max_parallel_requests`: requests the whole gateway serves at once.
    pub global_max_parallel_requests: Option<u32>,
    /// `database_url`: where keys, users, teams and spend are stored
    /// (`sqlite://…` or `postgres://…`); it may carry a password.
    pub database_url: Option<Secret>,
    /// Spend logging and key checks against the database.
    pub spend: SpendSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAlias {
    pub target: String,
    /// Hidden aliases route but are not listed by `/v1/models`.
    pub hidden: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RouterSettings {
    pub routing_strategy: Option<String>,
    pub model_group_alias: BTreeMap<String, GroupAlias>,
    pub num_retries: Option<u32>,
    pub timeout: Option<Duration>,
    pub stream_timeout: Option<Duration>,
    /// Minimum wait before a retry (`retry_after`, seconds).
    pub retry_after: Option<Duration>,
    pub retry_policy: crate::router::retry_policy::RetryPolicy,
    pub model_group_retry_policy: BTreeMap<String, crate::router::retry_policy::RetryPolicy>,
    /// Redis for shared routing state (`redis_host`/`redis_port`/
    /// `redis_password`, or `redis_url`; `REDIS_*` from the environment).
    pub redis: Option<crate::shared::RedisSettings>,
    /// `routing_strategy_args.lowest_latency_buffer`.
    pub lowest_latency_buffer: f64,
    /// `routing_strategy_args.ttl`: how long a latency sample counts.
    pub latency_ttl: Option<Duration>,
    /// Check deployment `rpm`/`tpm` before calling (`enable_pre_call_checks`,
    /// or `optional_pre_call_checks: [enforce_model_rate_limits]`).
    pub enforce_rate_limits: bool,
    /// Skip deployments whose `model_info.max_input_tokens` the prompt
    /// exceeds (`enable_pre_call_checks`).
    pub context_window_check: bool,
    /// `default_max_parallel_requests`: for deployments without their own.
    pub default_max_parallel_requests: Option<u32>,
    pub cooldown_time: Option<Duration>,
    pub allowed_fails: Option<u32>,
    pub allowed_fails_policy: BTreeMap<String, u32>,
    pub disable_cooldowns: bool,
    /// `enable_mid_stream_fallback_continuation`.
    pub mid_stream_continuation: bool,
    /// `enable_tag_filtering`: route tagged requests to deployments with a
    /// matching tag.
    pub tag_filtering: bool,
    /// `tag_filtering_match_any` (default true): one shared tag is enough;
    /// false: the deployment must carry every tag of the request.
    pub tag_match_any: bool,
}

/// Read one key with a converter, recording a problem under its path.
fn field<T>(
    m: &Map<String, Value>,
    section: &str,
    key: &str,
    conv: fn(&Value) -> Result<T, String>,
    issues: &mut Vec<ConfigIssue>,
) -> Option<T> {
    match m.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => match conv(v) {
            Ok(t) => Some(t),
            Err(message) => {
                issues.push(ConfigIssue {
                    path: format!("{section}.{key}"),
                    message,
                });
                None
            }
        },
    }
}

fn non_negative_secs(v: &Value) -> Result<Duration, String> {
    let f = as_f64(v)?;
    if !(f.is_finite() && f >= 0.0) {
        return Err(format!(
            "expected a non-negative number of seconds, got {f}"
        ));
    }
    Ok(Duration::from_secs_f64(f))
}

/// `webhook_names`: callback names that mean a webhook (read elsewhere).
pub(crate) fn parse_litellm(
    m: &Map<String, Value>,
    issues: &mut Vec<ConfigIssue>,
    ni: &mut Vec<String>,
    webhook_names: &[String],
) -> LitellmSettings {
    const S: &str = "litellm_settings";
    check_section(m, S, LITELLM_IMPL, ni);
    LitellmSettings {
        drop_params: field(m, S, "drop_params", as_bool, issues).unwrap_or(false),
        num_retries: field(m, S, "num_retries", as_u32, issues),
        request_timeout: field(m, S, "request_timeout", as_secs, issues),
        json_logs: field(m, S, "json_logs", as_bool, issues).unwrap_or(false),
        set_verbose: field(m, S, "set_verbose", as_bool, issues).unwrap_or(false),
        cache: None,
        callbacks: callbacks(m, issues, ni, webhook_names),
        webhooks: Vec::new(),
        otel: None,
        require_auth_for_metrics: field(m, S, "require_auth_for_metrics_endpoint", as_bool, issues)
            .unwrap_or(true),
        turn_off_message_logging: field(m, S, "turn_off_message_logging", as_bool, issues)
            .unwrap_or(false),
        proxy_budget: ProxyBudget {
            max_budget: field(m, S, "max_budget", as_f64, issues),
            budget_duration: field(m, S, "budget_duration", as_string, issues),
            include_cost_in_streaming_usage: field(
                m,
                S,
                "include_cost_in_streaming_usage",
                as_bool,
                issues,
            )
            .unwrap_or(false),
        },
    }
}

/// The logging callbacks named in `callbacks`, `success_callback` and
/// `failure_callback` (a list, or one name) that ferrolite implements.
fn callbacks(
    m: &Map<String, Value>,
    issues: &mut Vec<ConfigIssue>,
    ni: &mut Vec<String>,
    webhook_names: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in ["callbacks", "success_callback", "failure_callback"] {
        let names: Vec<&str> = match m.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                a.iter().filter_map(Value::as_str).collect()
            }
            Some(other) => {
                issues.push(ConfigIssue {
                    path: format!("litellm_settings.{key}"),
                    message: format!("expected a list of callback names, got {}", kind(other)),
                });
                continue;
            }
        };
        for n in names {
            if crate::observe::IMPLEMENTED_CALLBACKS.contains(&n) {
                if !out.iter().any(|o| o == n) {
                    out.push(n.to_owned());
                }
            } else if !webhook_names.iter().any(|w| w == n) {
                ni.push(format!("litellm_settings.{key}: {n}"));
            }
        }
    }
    out
}

pub(crate) fn parse_general(
    m: &Map<String, Value>,
    issues: &mut Vec<ConfigIssue>,
    ni: &mut Vec<String>,
) -> GeneralSettings {
    const S: &str = "general_settings";
    check_section(m, S, GENERAL_IMPL, ni);
    let max_request_size_mb = field(m, S, "max_request_size_mb", as_f64, issues);
    if let Some(mb) = max_request_size_mb {
        if !(mb.is_finite() && mb > 0.0) {
            issues.push(ConfigIssue {
                path: format!("{S}.max_request_size_mb"),
                message: format!("must be positive, got {mb}"),
            });
        }
    }
    GeneralSettings {
        master_key: field(m, S, "master_key", as_string, issues).map(Secret::new),
        max_request_size_mb,
        max_parallel_requests: field(m, S, "max_parallel_requests", as_u32, issues),
        global_max_parallel_requests: field(m, S, "global_max_parallel_requests", as_u32, issues),
        database_url: field(m, S, "database_url", as_string, issues).map(Secret::new),
        spend: SpendSettings {
            disable_spend_logs: field(m, S, "disable_spend_logs", as_bool, issues).unwrap_or(false),
            allow_requests_on_db_unavailable: field(
                m,
                S,
                "allow_requests_on_db_unavailable",
                as_bool,
                issues,
            )
            .unwrap_or(false),
            batch_write_at: field(m, S, "proxy_batch_write_at", as_secs, issues),
            key_cache_ttl: field(m, S, "user_api_key_cache_ttl", non_negative_secs, issues),
            spill_path: field(m, S, "spend_spill_path", as_string, issues),
            logs: Default::default(),
        },
    }
}

/// `general_settings` keys about spend logs and key checks.
#[derive(Debug, Clone, Default)]
pub struct SpendSettings {
    /// `disable_spend_logs`: no spend-log rows; key/user/team spend still counted.
    pub disable_spend_logs: bool,
    /// `allow_requests_on_db_unavailable`: a key that cannot be checked
    /// because the database is down is let through.
    pub allow_requests_on_db_unavailable: bool,
    /// `proxy_batch_write_at`: longest a spend row waits before its batch is written.
    pub batch_write_at: Option<Duration>,
    /// `user_api_key_cache_ttl`: how long a key read from the database is trusted.
    pub key_cache_ttl: Option<Duration>,
    /// `spend_spill_path` (ferrolite): where spend rows wait while the
    /// database is down and the queue is full.
    pub spill_path: Option<String>,
    /// Stored prompts and retention (`crate::spend::log_settings`).
    pub logs: crate::spend::SpendLogSettings,
}

/// The proxy-wide budget (`litellm_settings.max_budget`).
#[derive(Debug, Clone, Default)]
pub struct ProxyBudget {
    pub max_budget: Option<f64>,
    /// LiteLLM duration (`30d`, `1h`): the budget counts spend in this
    /// trailing window.
    pub budget_duration: Option<String>,
    pub include_cost_in_streaming_usage: bool,
}

pub(crate) fn parse_router(
    m: &Map<String, Value>,
    issues: &mut Vec<ConfigIssue>,
    ni: &mut Vec<String>,
) -> RouterSettings {
    const S: &str = "router_settings";
    check_section(m, S, ROUTER_IMPL, ni);
    let routing_strategy = field(m, S, "routing_strategy", as_string, issues);
    if let Some(s) = &routing_strategy {
        const KNOWN: &[&str] = &[
            "simple-shuffle",
            "least-busy",
            "usage-based-routing",
            "usage-based-routing-v2",
            "latency-based-routing",
            "cost-based-routing",
            "lar1",
            "provider-budget-routing",
        ];
        if !KNOWN.contains(&s.as_str()) {
            issues.push(ConfigIssue {
                path: format!("{S}.routing_strategy"),
                message: format!(
                    "unknown strategy \"{s}\"; expected one of {}",
                    KNOWN.join(", ")
                ),
            });
        } else if s == "lar1" || s == "provider-budget-routing" {
            ni.push(format!("{S}.routing_strategy={s} (simple-shuffle is used)"));
        }
    }
    let mut model_group_alias = BTreeMap::new();
    match m.get("model_group_alias") {
        None | Some(Value::Null) => {}
        Some(Value::Object(aliases)) => {
            for (name, v) in aliases {
                let path = format!("{S}.model_group_alias.{name}");
                match v {
                    Value::String(t) => {
                        model_group_alias.insert(
                            name.clone(),
                            GroupAlias {
                                target: t.clone(),
                                hidden: false,
                            },
                        );
                    }
                    Value::Object(o) => match o.get("model").and_then(Value::as_str) {
                        Some(t) => {
                            let hidden = o.get("hidden").map(as_bool).transpose().unwrap_or_else(
                                |message| {
                                    issues.push(ConfigIssue {
                                        path: format!("{path}.hidden"),
                                        message,
                                    });
                                    None
                                },
                            );
                            model_group_alias.insert(
                                name.clone(),
                                GroupAlias {
                                    target: t.to_owned(),
                                    hidden: hidden.unwrap_or(false),
                                },
                            );
                        }
                        None => issues.push(ConfigIssue {
                            path,
                            message: "expected {model: <group>, hidden: <bool>}".into(),
                        }),
                    },
                    other => issues.push(ConfigIssue {
                        path,
                        message: format!("expected a model group name, got {}", kind(other)),
                    }),
                }
            }
        }
        Some(other) => issues.push(ConfigIssue {
            path: format!("{S}.model_group_alias"),
            message: format!("expected a mapping, got {}", kind(other)),
        }),
    }
    RouterSettings {
        routing_strategy,
        model_group_alias,
        num_retries: field(m, S, "num_retries", as_u32, issues),
        timeout: field(m, S, "timeout", as_secs, issues),
        stream_timeout: field(m, S, "stream_timeout", as_secs, issues),
        retry_after: field(m, S, "retry_after", non_negative_secs, issues),
        retry_policy: m
            .get("retry_policy")
            .map(|v| retry_policy(v, &format!("{S}.retry_policy"), issues))
            .unwrap_or_default(),
        model_group_retry_policy: match m.get("model_group_retry_policy") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(groups)) => groups
                .iter()
                .map(|(g, v)| {
                    (
                        g.clone(),
                        retry_policy(v, &format!("{S}.model_group_retry_policy.{g}"), issues),
                    )
                })
                .collect(),
            Some(other) => {
                issues.push(ConfigIssue {
                    path: format!("{S}.model_group_retry_policy"),
                    message: format!("expected a mapping, got {}", kind(other)),
                });
                BTreeMap::new()
            }
        },
        redis: None,
        lowest_latency_buffer: match m.get("routing_strategy_args") {
            Some(Value::Object(a)) => a
                .get("lowest_latency_buffer")
                .and_then(|v| as_f64(v).ok())
                .unwrap_or(0.0),
            _ => 0.0,
        },
        latency_ttl: match m.get("routing_strategy_args") {
            Some(Value::Object(a)) => a.get("ttl").and_then(|v| non_negative_secs(v).ok()),
            _ => None,
        },
        enforce_rate_limits: field(m, S, "enable_pre_call_checks", as_bool, issues)
            .unwrap_or(false)
            || matches!(m.get("optional_pre_call_checks"), Some(Value::Array(a)) if a.iter().any(|c| c.as_str() == Some("enforce_model_rate_limits"))),
        context_window_check: matches!(
            m.get("enable_pre_call_checks").map(as_bool),
            Some(Ok(true))
        ),
        default_max_parallel_requests: field(m, S, "default_max_parallel_requests", as_u32, issues),
        cooldown_time: field(m, S, "cooldown_time", non_negative_secs, issues),
        allowed_fails_policy: match m.get("allowed_fails_policy") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(p)) => p
                .iter()
                .filter_map(|(k, v)| {
                    const KEYS: &[&str] = &[
                        "BadRequestErrorAllowedFails",
                        "AuthenticationErrorAllowedFails",
                        "TimeoutErrorAllowedFails",
                        "RateLimitErrorAllowedFails",
                        "ContentPolicyViolationErrorAllowedFails",
                        "InternalServerErrorAllowedFails",
                        "NotFoundErrorAllowedFails",
                    ];
                    let path = format!("{S}.allowed_fails_policy.{k}");
                    if !KEYS.contains(&k.as_str()) {
                        issues.push(ConfigIssue {
                            path,
                            message: format!("unknown key; expected one of {}", KEYS.join(", ")),
                        });
                        return None;
                    }
                    as_u32(v)
                        .map(|n| (k.clone(), n))
                        .map_err(|message| issues.push(ConfigIssue { path, message }))
                        .ok()
                })
                .collect(),
            Some(other) => {
                issues.push(ConfigIssue {
                    path: format!("{S}.allowed_fails_policy"),
                    message: format!("expected a mapping, got {}", kind(other)),
                });
                BTreeMap::new()
            }
        },
        allowed_fails: field(m, S, "allowed_fails", as_u32, issues),
        disable_cooldowns: field(m, S, "disable_cooldowns", as_bool, issues).unwrap_or(false),
        mid_stream_continuation: field(
            m,
            S,
            "enable_mid_stream_fallback_continuation",
            as_bool,
            issues,
        )
        .unwrap_or(false),
        tag_filtering: field(m, S, "enable_tag_filtering", as_bool, issues).unwrap_or(false),
        tag_match_any: field(m, S, "tag_filtering_match_any", as_bool, issues).unwrap_or(true),
    }
}

/// `fallbacks: [{"group": ["a", "b"]}]` (or a mapping), and the same shape for
/// `context_window_fallbacks` / `content_policy_fallbacks`.
fn group_lists(
    m: &Map<String, Value>,
    section: &str,
    key: &str,
    issues: &mut Vec<ConfigIssue>,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let path = format!("{section}.{key}");
    let mut add = |group: &str, v: &Value, issues: &mut Vec<ConfigIssue>| match v {
        Value::Array(items) if items.iter().all(Value::is_string) => {
            out.insert(
                group.to_owned(),
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
            );
        }
        Value::String(s) => {
            out.insert(group.to_owned(), vec![s.clone()]);
        }
        _ => issues.push(ConfigIssue {
            path: format!("{path}.{group}"),
            message: "expected a list of model group names".into(),
        }),
    };
    match m.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for (i, e) in entries.iter().enumerate() {
                match e {
                    Value::Object(o) => {
                        for (g, v) in o {
                            add(g, v, issues);
                        }
                    }
                    _ => issues.push(ConfigIssue {
                        path: format!("{path}[{i}]"),
                        message: "expected {\"<model group>\": [\"<fallback>\", ...]}".into(),
                    }),
                }
            }
        }
        Some(Value::Object(o)) => {
            for (g, v) in o {
                add(g, v, issues);
            }
        }
        Some(other) => issues.push(ConfigIssue {
            path,
            message: format!("expected a list of mappings, got {}", kind(other)),
        }),
    }
    out
}

/// The fallback settings of one section.
pub(crate) fn parse_fallbacks(
    m: &Map<String, Value>,
    section: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Fallbacks {
    let default = match m.get("default_fallbacks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(_) => {
            issues.push(ConfigIssue {
                path: format!("{section}.default_fallbacks"),
                message: "expected a list of model group names".into(),
            });
            Vec::new()
        }
    };
    Fallbacks {
        general: group_lists(m, section, "fallbacks", issues),
        context_window: group_lists(m, section, "context_window_fallbacks", issues),
        content_policy: group_lists(m, section, "content_policy_fallbacks", issues),
        default,
        max: field(m, section, "max_fallbacks", as_u32, issues).map(|n| n as usize),
    }
}

/// `router_settings` wins over `litellm_settings`, list by list.
pub(crate) fn merge_fallbacks(litellm: Fallbacks, router: Fallbacks) -> Fallbacks {
    let pick = |a: BTreeMap<String, Vec<String>>, b: BTreeMap<String, Vec<String>>| {
        if b.is_empty() {
            a
        } else {
            b
        }
    };
    Fallbacks {
        general: pick(litellm.general, router.general),
        context_window: pick(litellm.context_window, router.context_window),
        content_policy: pick(litellm.content_policy, router.content_policy),
        default: if router.default.is_empty() {
            litellm.default
        } else {
            router.default
        },
        max: router.max.or(litellm.max),
    }
}

/// A `retry_policy` mapping: LiteLLM's keys to retry counts.
fn retry_policy(
    v: &Value,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> crate::router::retry_policy::RetryPolicy {
    use crate::router::retry_policy::KEYS;
    let mut out = BTreeMap::new();
    let Value::Object(m) = v else {
        if !v.is_null() {
            issues.push(ConfigIssue {
                path: path.into(),
                message: format!("expected a mapping, got {}", kind(v)),
            });
        }
        return out;
    };
    for (k, n) in m {
        if !KEYS.contains(&k.as_str()) {
            issues.push(ConfigIssue {
                path: format!("{path}.{k}"),
                message: format!(
                    "unknown retry policy key; expected one of {}",
                    KEYS.join(", ")
                ),
            });
            continue;
        }
        match as_u32(n) {
            Ok(n) => {
                out.insert(k.clone(), n);
            }
            Err(message) => issues.push(ConfigIssue {
                path: format!("{path}.{k}"),
                message,
            }),
        }
    }
    out
}

/// Redis for shared state: `redis_url`, else `redis_host` (+ `redis_port`,
/// `redis_password`), each falling back to `REDIS_URL` / `REDIS_HOST` /
/// `REDIS_PORT` / `REDIS_PASSWORD`.
pub(crate) fn parse_redis(
    m: &Map<String, Value>,
    env: &super::Env,
    issues: &mut Vec<ConfigIssue>,
) -> Option<crate::shared::RedisSettings> {
    const S: &str = "router_settings";
    let text = |k: &str, var: &str, issues: &mut Vec<ConfigIssue>| {
        field(m, S, k, as_string, issues)
            .filter(|s| !s.is_empty())
            .or_else(|| env.get(var))
    };
    let url = match text("redis_url", "REDIS_URL", issues) {
        Some(u) => u,
        None => {
            let host = text("redis_host", "REDIS_HOST", issues)?;
            let port =
                text("redis_port", "REDIS_PORT", issues).unwrap_or_else(|| "6379".to_owned());
            match text("redis_password", "REDIS_PASSWORD", issues) {
                Some(p) => format!("redis://:{p}@{host}:{port}"),
                None => format!("redis://{host}:{port}"),
            }
        }
    };
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
    {
        issues.push(ConfigIssue {
            path: format!("{S}.redis_url"),
            message: "expected a redis:// URL".into(),
        });
        return None;
    }
    Some(crate::shared::RedisSettings {
        url: Secret::new(url),
        prefix: "ferrolite".to_owned(),
    })
}
