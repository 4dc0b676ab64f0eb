//! `litellm_settings.cache` and `cache_params`, typed.

use std::collections::BTreeSet;
use std::time::Duration;

use ferrolite_types::Secret;
use serde_json::{Map, Value};

use crate::config::{ConfigIssue, Env};
use crate::meter::CallType;

/// Entries kept in memory when `cache_params` sets no TTL (LiteLLM's
/// in-memory default).
pub const DEFAULT_MEMORY_TTL: Duration = Duration::from_secs(600);
/// In-memory cache size when `max_size_mb` is not set.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Largest single answer the in-memory cache keeps (LiteLLM's 1 MB per item).
pub const DEFAULT_MAX_ITEM_BYTES: usize = 1024 * 1024;
/// Longest wait for one Redis read before the request goes on uncached.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest wait for an identical request already in flight.
pub const DEFAULT_COALESCE_WAIT: Duration = Duration::from_secs(60);

/// `mode`: cache every eligible call, or only those that opt in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    #[default]
    DefaultOn,
    /// Only requests with `"cache": {"use-cache": true}`.
    DefaultOff,
}

/// Where answers are kept.
#[derive(Debug, Clone)]
pub enum Backend {
    /// In this process, bounded by total bytes.
    Local {
        max_bytes: usize,
        max_item_bytes: usize,
    },
    /// A Redis server or Redis Cluster (shared by every instance).
    Redis {
        target: RedisTarget,
        /// Bound on every read (`socket_timeout`).
        timeout: Duration,
    },
}

/// Which Redis the cache talks to.
#[derive(Debug, Clone)]
pub enum RedisTarget {
    /// One server: `redis://…`, which may carry the password.
    Single(Secret),
    /// A Redis Cluster, found through its startup nodes
    /// (`redis_startup_nodes`); the other nodes are discovered.
    Cluster {
        /// `redis://host:port` (or `rediss://`) per startup node, without
        /// credentials.
        nodes: Vec<String>,
        username: Option<String>,
        password: Option<Secret>,
    },
}

#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub backend: Backend,
    pub mode: CacheMode,
    /// Key prefix (`namespace`): keys are `<namespace>:<hash>`.
    pub namespace: Option<String>,
    /// Default lifetime of an entry; `None` for Redis means no expiry.
    pub ttl: Option<Duration>,
    /// Call types answered from the cache.
    pub call_types: BTreeSet<CallKind>,
    /// Identical requests in flight share one upstream call.
    pub coalesce: bool,
    pub coalesce_wait: Duration,
}

/// The call types the cache knows (LiteLLM's `supported_call_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallKind {
    Chat,
    Completion,
    Embedding,
    Messages,
    Responses,
}

impl CallKind {
    pub fn of(t: CallType) -> Option<Self> {
        match t {
            CallType::Chat => Some(CallKind::Chat),
            CallType::Completion => Some(CallKind::Completion),
            CallType::Embedding => Some(CallKind::Embedding),
            CallType::Messages => Some(CallKind::Messages),
            CallType::Responses => Some(CallKind::Responses),
            CallType::GenerateContent => None,
        }
    }

    /// A LiteLLM call type name (sync or async spelling).
    fn parse(name: &str) -> Option<Option<Self>> {
        Some(match name {
            "completion" | "acompletion" => Some(CallKind::Chat),
            "text_completion" | "atext_completion" => Some(CallKind::Completion),
            "embedding" | "aembedding" => Some(CallKind::Embedding),
            "anthropic_messages" | "aanthropic_messages" => Some(CallKind::Messages),
            "responses" | "aresponses" => Some(CallKind::Responses),
            // Known to LiteLLM, not served by ferrolite's cache.
            "transcription" | "atranscription" | "rerank" | "arerank" => None,
            _ => return None,
        })
    }

    fn defaults() -> BTreeSet<Self> {
        [
            CallKind::Chat,
            CallKind::Completion,
            CallKind::Embedding,
            CallKind::Messages,
            CallKind::Responses,
        ]
        .into()
    }
}

fn issue(issues: &mut Vec<ConfigIssue>, key: &str, message: impl Into<String>) {
    issues.push(ConfigIssue {
        path: format!("litellm_settings.cache_params.{key}"),
        message: message.into(),
    });
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(p: &Map<String, Value>, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<f64> {
    let v = p.get(key).filter(|v| !v.is_null())?;
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match f {
        Some(f) if f.is_finite() && f > 0.0 => Some(f),
        _ => {
            issue(issues, key, "expected a positive number");
            None
        }
    }
}

fn flag(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Read `cache` / `cache_params` from `litellm_settings`; `None` when the
/// cache is off. Redis settings fall back to `REDIS_URL` / `REDIS_HOST` /
/// `REDIS_PORT` / `REDIS_PASSWORD`, as LiteLLM's do.
pub fn parse(
    m: &Map<String, Value>,
    env: &Env,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<String>,
) -> Option<CacheSettings> {
    match m.get("cache") {
        None | Some(Value::Null) => return None,
        Some(v) => match flag(Some(v)) {
            Some(true) => {}
            Some(false) => return None,
            None => {
                issues.push(ConfigIssue {
                    path: "litellm_settings.cache".into(),
                    message: "expected true or false".into(),
                });
                return None;
            }
        },
    }
    let empty = Map::new();
    let p = match m.get("cache_params") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => {
            issues.push(ConfigIssue {
                path: "litellm_settings.cache_params".into(),
                message: "expected a mapping".into(),
            });
            &empty
        }
    };
    // LiteLLM's proxy defaults to Redis when `type` is not given.
    let kind = p
        .get("type")
        .and_then(text)
        .unwrap_or_else(|| "redis".to_owned());
    let mode = match p.get("mode").and_then(text).as_deref() {
        None | Some("default_on") => CacheMode::DefaultOn,
        Some("default_off") => CacheMode::DefaultOff,
        Some(other) => {
            issue(
                issues,
                "mode",
                format!("unknown mode \"{other}\"; expected default_on or default_off"),
            );
            CacheMode::DefaultOn
        }
    };
    let call_types = match p.get("supported_call_types") {
        None | Some(Value::Null) => CallKind::defaults(),
        Some(Value::Array(list)) => {
            let mut set = BTreeSet::new();
            for v in list {
                match v.as_str().and_then(CallKind::parse) {
                    Some(Some(k)) => {
                        set.insert(k);
                    }
                    Some(None) => {}
                    None => issue(
                        issues,
                        "supported_call_types",
                        format!("unknown call type {v}"),
                    ),
                }
            }
            set
        }
        Some(_) => {
            issue(issues, "supported_call_types", "expected a list");
            CallKind::defaults()
        }
    };
    let timeout = number(p, "socket_timeout", issues)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_REDIS_TIMEOUT);
    let mut backend = match kind.as_str() {
        "local" => None,
        "redis" => {
            redis_target(p, env, issues, warnings).map(|target| Backend::Redis { target, timeout })
        }
        other => {
            warnings.push(format!(
                "litellm_settings.cache_params.type={other} is not supported; using the in-process cache"
            ));
            None
        }
    };
    if let Some(Backend::Redis {
        target: RedisTarget::Single(url),
        ..
    }) = &backend
    {
        if !(url.expose().starts_with("redis://")
            || url.expose().starts_with("rediss://")
            || url.expose().starts_with("unix://"))
        {
            issue(issues, "redis_url", "expected a redis:// URL");
            backend = None;
        }
    }
    let ttl_key = match backend {
        Some(Backend::Redis { .. }) => "default_in_redis_ttl",
        _ => "default_in_memory_ttl",
    };
    let ttl = number(p, ttl_key, issues)
        .or_else(|| number(p, "ttl", issues))
        .map(Duration::from_secs_f64);
    let backend = backend.unwrap_or_else(|| Backend::Local {
        max_bytes: number(p, "max_size_mb", issues)
            .map_or(DEFAULT_MAX_BYTES, |mb| (mb * 1024.0 * 1024.0) as usize),
        max_item_bytes: number(p, "max_item_size_kb", issues)
            .map_or(DEFAULT_MAX_ITEM_BYTES, |kb| (kb * 1024.0) as usize),
    });
    let ttl = match backend {
        Backend::Local { .. } => Some(ttl.unwrap_or(DEFAULT_MEMORY_TTL)),
        Backend::Redis { .. } => ttl,
    };
    Some(CacheSettings {
        backend,
        mode,
        namespace: p.get("namespace").and_then(text),
        ttl,
        call_types,
        coalesce: flag(p.get("coalesce_requests")).unwrap_or(true),
        coalesce_wait: number(p, "coalesce_timeout", issues)
            .map_or(DEFAULT_COALESCE_WAIT, Duration::from_secs_f64),
    })
}

/// The Redis to use. `redis_url`/`url` in `cache_params` wins; then
/// `redis_startup_nodes` (a Redis Cluster); then `REDIS_URL`; then `host` +
/// `port`. `username`/`password` fall back to `REDIS_USERNAME` /
/// `REDIS_PASSWORD`, `host`/`port` to `REDIS_HOST`/`REDIS_PORT`.
/// `REDIS_CLUSTER_NODES` (JSON, LiteLLM's form) selects a cluster only when
/// neither a host nor a URL is set anywhere.
fn redis_target(
    p: &Map<String, Value>,
    env: &Env,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<String>,
) -> Option<RedisTarget> {
    let get = |k: &str, var: &str| p.get(k).and_then(text).or_else(|| env.get(var));
    let tls = flag(p.get("ssl")).unwrap_or(false)
        || env
            .get("REDIS_SSL")
            .is_some_and(|s| s.eq_ignore_ascii_case("true"));
    let scheme = if tls { "rediss" } else { "redis" };
    let user = get("username", "REDIS_USERNAME");
    let password = get("password", "REDIS_PASSWORD");
    let params_url = p.get("redis_url").or_else(|| p.get("url")).and_then(text);
    let params_nodes = p
        .get("redis_startup_nodes")
        .filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()));
    if let Some(u) = params_url {
        if params_nodes.is_some() {
            warnings.push(
                "litellm_settings.cache_params: redis_url is set, so redis_startup_nodes is ignored"
                    .to_owned(),
            );
        }
        return Some(RedisTarget::Single(Secret::new(u)));
    }
    let host = p.get("host").and_then(text);
    let env_nodes = || {
        env.get("REDIS_CLUSTER_NODES")
            .filter(|_| host.is_none() && env.get("REDIS_URL").is_none())
            .filter(|_| env.get("REDIS_HOST").is_none())
    };
    let nodes = match (params_nodes, env_nodes()) {
        (Some(v), _) => Some(("redis_startup_nodes", v.clone())),
        (None, Some(raw)) => match serde_json::from_str::<Value>(&raw) {
            Ok(v) => Some(("REDIS_CLUSTER_NODES", v)),
            Err(_) => {
                issue(
                    issues,
                    "redis_startup_nodes",
                    "REDIS_CLUSTER_NODES is not JSON; expected [{\"host\": ..., \"port\": ...}, ...]",
                );
                return None;
            }
        },
        (None, None) => None,
    };
    if let Some((from, v)) = nodes {
        let nodes = startup_nodes(&v, scheme).map_err(|m| {
            let m = if from == "REDIS_CLUSTER_NODES" {
                format!("REDIS_CLUSTER_NODES: {m}")
            } else {
                m
            };
            issue(issues, "redis_startup_nodes", m);
        });
        return nodes.ok().map(|nodes| RedisTarget::Cluster {
            nodes,
            username: user,
            password: password.map(Secret::new),
        });
    }
    if let Some(u) = env.get("REDIS_URL") {
        return Some(RedisTarget::Single(Secret::new(u)));
    }
    let host = host
        .or_else(|| env.get("REDIS_HOST"))
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = get("port", "REDIS_PORT").unwrap_or_else(|| "6379".to_owned());
    let user = user.unwrap_or_default();
    Some(RedisTarget::Single(Secret::new(match password {
        Some(pw) => format!("{scheme}://{user}:{pw}@{host}:{port}"),
        None => format!("{scheme}://{host}:{port}"),
    })))
}

/// LiteLLM's `redis_startup_nodes`: a list of `{"host": ..., "port": ...}`
/// (the port a number or a string; 6379 when absent). `host:port` strings
/// are accepted too.
fn startup_nodes(v: &Value, scheme: &str) -> Result<Vec<String>, String> {
    let expected = "expected a list of {host, port}";
    let list = v.as_array().ok_or_else(|| expected.to_owned())?;
    let mut out = Vec::with_capacity(list.len());
    for n in list {
        let (host, port) = match n {
            Value::Object(o) => (
                o.get("host").and_then(text),
                o.get("port")
                    .and_then(text)
                    .unwrap_or_else(|| "6379".into()),
            ),
            Value::String(s) => match s.trim().rsplit_once(':') {
                Some((h, p)) => (Some(h.to_owned()), p.to_owned()),
                None => (Some(s.trim().to_owned()), "6379".into()),
            },
            _ => (None, String::new()),
        };
        let host = host
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{expected}; a node has no host"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{expected}; node {host} has an invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        out.push(if host.contains(':') {
            format!("{scheme}://[{host}]:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        });
    }
    if out.is_empty() {
        return Err(format!("{expected}; the list is empty"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(
        v: Value,
        env: &[(&str, &str)],
    ) -> (Option<CacheSettings>, Vec<ConfigIssue>, Vec<String>) {
        let env = Env::isolated(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (mut i, mut w) = (Vec::new(), Vec::new());
        let s = parse(v.as_object().unwrap(), &env, &mut i, &mut w);
        (s, i, w)
    }

    #[test]
    fn off_unless_cache_is_true() {
        assert!(run(json!({}), &[]).0.is_none());
        assert!(run(
            json!({"cache": false, "cache_params": {"type": "local"}}),
            &[]
        )
        .0
        .is_none());
        assert!(run(
            json!({"cache": "True", "cache_params": {"type": "local"}}),
            &[]
        )
        .0
        .is_some());
    }

    #[test]
    fn local_has_a_default_ttl_and_size() {
        let s = run(
            json!({"cache": true, "cache_params": {"type": "local", "max_size_mb": 1}}),
            &[],
        )
        .0
        .unwrap();
        assert_eq!(s.ttl, Some(DEFAULT_MEMORY_TTL));
        assert!(matches!(
            s.backend,
            Backend::Local {
                max_bytes: 1048576,
                ..
            }
        ));
        assert_eq!(s.mode, CacheMode::DefaultOn);
        assert!(s.call_types.contains(&CallKind::Embedding));
    }

    #[test]
    fn redis_from_params_or_env() {
        let s = run(
            json!({"cache": true, "cache_params": {"type": "redis", "host": "h", "port": 7000, "password": "pw", "namespace": "ns", "ttl": 60, "socket_timeout": 0.05, "mode": "default_off", "supported_call_types": ["acompletion"]}}),
            &[],
        )
        .0
        .unwrap();
        match &s.backend {
            Backend::Redis {
                target: RedisTarget::Single(url),
                timeout,
            } => {
                assert_eq!(url.expose(), "redis://:pw@h:7000");
                assert_eq!(*timeout, Duration::from_millis(50));
            }
            b => panic!("{b:?}"),
        }
        assert_eq!(s.namespace.as_deref(), Some("ns"));
        assert_eq!(s.ttl, Some(Duration::from_secs(60)));
        assert_eq!(s.mode, CacheMode::DefaultOff);
        assert_eq!(s.call_types, [CallKind::Chat].into());
        // No type: Redis, as LiteLLM's proxy; REDIS_URL from the environment.
        let s = run(json!({"cache": true}), &[("REDIS_URL", "redis://e:1")])
            .0
            .unwrap();
        assert!(
            matches!(&s.backend, Backend::Redis { target: RedisTarget::Single(url), .. } if url.expose() == "redis://e:1")
        );
        assert_eq!(s.ttl, None);
    }

    fn cluster(s: &CacheSettings) -> (&[String], Option<&str>, Option<&str>) {
        match &s.backend {
            Backend::Redis {
                target:
                    RedisTarget::Cluster {
                        nodes,
                        username,
                        password,
                    },
                ..
            } => (
                nodes,
                username.as_deref(),
                password.as_ref().map(Secret::expose),
            ),
            b => panic!("{b:?}"),
        }
    }

    #[test]
    fn startup_nodes_select_a_cluster() {
        // LiteLLM's form: a list of {host, port}, the port a string or a number.
        let (s, i, w) = run(
            json!({"cache": true, "cache_params": {"type": "redis", "password": "pw", "redis_startup_nodes": [{"host": "127.0.0.1", "port": "7001"}, {"host": "b", "port": 7002}, {"host": "::1", "port": 7003}]}}),
            &[("REDIS_URL", "redis://env:1")],
        );
        assert!(i.is_empty() && w.is_empty(), "{i:?} {w:?}");
        let s = s.unwrap();
        let (nodes, user, pw) = cluster(&s);
        assert_eq!(
            nodes,
            [
                "redis://127.0.0.1:7001",
                "redis://b:7002",
                "redis://[::1]:7003"
            ]
        );
        assert_eq!((user, pw), (None, Some("pw")));
        assert_eq!(s.ttl, None, "no expiry by default, as a single Redis");
        // From the environment (JSON, as LiteLLM), with the password there too.
        let s = run(
            json!({"cache": true, "cache_params": {"type": "redis", "ssl": true}}),
            &[
                ("REDIS_CLUSTER_NODES", r#"[{"host": "n1", "port": "7000"}]"#),
                ("REDIS_PASSWORD", "envpw"),
                ("REDIS_USERNAME", "u"),
            ],
        )
        .0
        .unwrap();
        assert_eq!(
            cluster(&s),
            (
                &["rediss://n1:7000".to_owned()][..],
                Some("u"),
                Some("envpw")
            )
        );
        // A host set anywhere wins over REDIS_CLUSTER_NODES.
        let s = run(
            json!({"cache": true, "cache_params": {"host": "h"}}),
            &[("REDIS_CLUSTER_NODES", r#"[{"host": "n1", "port": 1}]"#)],
        )
        .0
        .unwrap();
        assert!(
            matches!(&s.backend, Backend::Redis { target: RedisTarget::Single(u), .. } if u.expose() == "redis://h:6379")
        );
    }

    #[test]
    fn a_redis_url_wins_over_startup_nodes_with_a_warning() {
        let (s, _, w) = run(
            json!({"cache": true, "cache_params": {"redis_url": "redis://u:1", "redis_startup_nodes": [{"host": "a", "port": 1}]}}),
            &[],
        );
        assert!(
            matches!(&s.unwrap().backend, Backend::Redis { target: RedisTarget::Single(u), .. } if u.expose() == "redis://u:1")
        );
        assert!(w[0].contains("redis_startup_nodes is ignored"), "{w:?}");
    }

    #[test]
    fn bad_startup_nodes_are_issues() {
        for nodes in [
            json!([{"port": 1}]),
            json!([{"host": "a", "port": "x"}]),
            json!([{"host": "a", "port": 0}]),
            json!({"host": "a"}),
            json!([1]),
        ] {
            let (s, i, _) = run(
                json!({"cache": true, "cache_params": {"type": "redis", "redis_startup_nodes": nodes}}),
                &[],
            );
            assert_eq!(
                i[0].path, "litellm_settings.cache_params.redis_startup_nodes",
                "{nodes}"
            );
            assert!(matches!(s.unwrap().backend, Backend::Local { .. }));
        }
        let (_, i, _) = run(
            json!({"cache": true}),
            &[("REDIS_CLUSTER_NODES", "127.0.0.1:7000")],
        );
        assert!(i[0].message.contains("REDIS_CLUSTER_NODES"), "{i:?}");
    }

    #[test]
    fn unknown_types_fall_back_to_memory_with_a_warning() {
        let (s, _, w) = run(json!({"cache": true, "cache_params": {"type": "s3"}}), &[]);
        assert!(matches!(s.unwrap().backend, Backend::Local { .. }));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn bad_values_are_issues() {
        let (_, i, _) = run(
            json!({"cache": true, "cache_params": {"type": "local", "mode": "sometimes", "ttl": -1, "supported_call_types": ["nope"]}}),
            &[],
        );
        let paths: Vec<_> = i.iter().map(|i| i.path.as_str()).collect();
        assert!(
            paths.contains(&"litellm_settings.cache_params.mode"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"litellm_settings.cache_params.ttl"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"litellm_settings.cache_params.supported_call_types"),
            "{paths:?}"
        );
    }
}
