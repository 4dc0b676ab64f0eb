//! Which webhooks a config asks for, read once when it is loaded.
//!
//! A webhook comes from any of:
//! - a name in `callbacks` / `success_callback` / `failure_callback` whose
//!   `callback_settings` entry has `callback_type: generic_api`;
//! - such an entry that no list names (LiteLLM enables those on its own);
//! - `generic_api` (LiteLLM's name; also its older `generic`, and `webhook`),
//!   configured by `GENERIC_LOGGER_ENDPOINT` / `GENERIC_LOGGER_HEADERS`;
//! - an `http://` or `https://` URL given as the name itself.
//!
//! `callback_settings` is a top-level key in LiteLLM's config; one under
//! `litellm_settings` is read too (LiteLLM copies any `litellm_settings` key
//! onto its module, where the callback manager finds it). The top-level
//! entry wins when both name the same callback.

use std::time::Duration;

use ferrolite_types::Secret;
use serde_json::{Map, Value};

use crate::config::values::{as_f64, as_string, as_u32, kind};
use crate::config::{ConfigIssue, Env};

/// LiteLLM's `CustomBatchLogger` defaults (`DEFAULT_BATCH_SIZE`,
/// `DEFAULT_FLUSH_INTERVAL_SECONDS`, both read from the environment).
pub const DEFAULT_BATCH_SIZE: usize = 512;
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Events kept while the receiver is slow or down; the oldest go first.
pub const DEFAULT_MAX_QUEUE: usize = 10_000;
/// Retries of one POST after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// One POST's time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait before the first retry; doubled for each further one.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);

/// The names that mean "the webhook configured by the environment".
const ENV_NAMES: &[&str] = &["generic_api", "generic", "webhook"];

/// Keys of a `callback_settings` entry this version reads.
const ENTRY_KEYS: &[&str] = &[
    "callback_type",
    "endpoint",
    "headers",
    "event_types",
    "log_format",
    "batch_size",
    "flush_interval",
    "max_queue_size",
    "max_retries",
    "timeout",
];

/// How a batch goes over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One POST, a JSON array of events (LiteLLM's default).
    #[default]
    JsonArray,
    /// One POST, one JSON event per line.
    Ndjson,
    /// One POST per event.
    Single,
}

impl LogFormat {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "json_array" => Some(Self::JsonArray),
            "ndjson" => Some(Self::Ndjson),
            "single" => Some(Self::Single),
            _ => None,
        }
    }
}

/// One webhook, validated.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The callback's name: its `callback_settings` key, `generic_api`, or
    /// for a URL given as a name, the URL's origin.
    pub name: String,
    /// The full URL; it may carry a token (a path, a query, a password).
    pub endpoint: Secret,
    /// `scheme://host:port` of the endpoint, for log lines.
    pub origin: String,
    /// Sent with every POST; values are often credentials.
    pub headers: Vec<(http::HeaderName, Secret)>,
    /// Send an event for successful calls (`llm_api_success`).
    pub success: bool,
    /// Send an event for failed calls (`llm_api_failure`).
    pub failure: bool,
    pub log_format: LogFormat,
    /// Events sent as soon as this many are waiting.
    pub batch_size: usize,
    /// The longest an event waits before it is sent.
    pub flush_interval: Duration,
    /// Events kept in memory at most; beyond, the oldest are dropped.
    pub max_queue: usize,
    /// Retries of a POST that failed in a way worth retrying.
    pub max_retries: u32,
    /// One POST's time limit.
    pub timeout: Duration,
    /// The first retry's delay (doubled for each further one, at most 30 s).
    pub backoff: Duration,
}

impl WebhookSettings {
    /// A webhook to `url` with every default (tests, and URLs in `callbacks`).
    pub fn to_url(url: &str) -> Result<Self, String> {
        let origin = origin(url)?;
        Ok(Self {
            // Not the URL: it may carry a token.
            name: origin.clone(),
            endpoint: Secret::new(url),
            origin,
            headers: Vec::new(),
            success: true,
            failure: true,
            log_format: LogFormat::JsonArray,
            batch_size: DEFAULT_BATCH_SIZE,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            max_queue: DEFAULT_MAX_QUEUE,
            max_retries: DEFAULT_MAX_RETRIES,
            timeout: DEFAULT_TIMEOUT,
            backoff: DEFAULT_BACKOFF,
        })
    }
}

/// `scheme://host[:port]` of an http(s) URL, or why it is not one.
fn origin(url: &str) -> Result<String, String> {
    let u = reqwest::Url::parse(url.trim()).map_err(|e| format!("not a valid URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "expected an http:// or https:// URL, got scheme {}",
            u.scheme()
        ));
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| "the URL has no host".to_owned())?;
    Ok(match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    })
}

fn is_url(name: &str) -> bool {
    let n = name.trim_start().to_ascii_lowercase();
    n.starts_with("http://") || n.starts_with("https://")
}

/// `GENERIC_LOGGER_HEADERS`: `k=v,k2=v2`, split at the first `=` and
/// trimmed, as LiteLLM reads it (no percent-decoding; pairs without `=`
/// are skipped).
pub fn env_headers(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|item| {
            let (k, v) = item.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// A `callback_settings` entry that asks for a webhook, with where it is.
struct Entry<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

/// What one callback list contributes to a name.
#[derive(Clone, Copy)]
struct Wants {
    success: bool,
    failure: bool,
}

const LISTS: [(&str, Wants); 3] = [
    (
        "callbacks",
        Wants {
            success: true,
            failure: true,
        },
    ),
    (
        "success_callback",
        Wants {
            success: true,
            failure: false,
        },
    ),
    (
        "failure_callback",
        Wants {
            success: false,
            failure: true,
        },
    ),
];

/// Names in a callback list (a list of strings, or one string); other
/// shapes are reported by the callbacks parser.
fn list_names(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// What the config asks for.
#[derive(Debug, Default)]
pub struct Parsed {
    pub webhooks: Vec<WebhookSettings>,
    /// The names in the callback lists that mean a webhook (so they are not
    /// reported as not implemented), including those with a problem.
    pub claimed: Vec<String>,
}

/// Every webhook the config asks for.
pub fn parse(
    litellm: &Map<String, Value>,
    top_level: Option<&Value>,
    env: &Env,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<String>,
    not_implemented: &mut Vec<String>,
) -> Parsed {
    let mut claimed: Vec<String> = Vec::new();
    // callback_settings entries, litellm_settings' first so the top level wins.
    let mut entries: Vec<(String, Entry<'_>)> = Vec::new();
    for (prefix, v) in [
        (
            "litellm_settings.callback_settings",
            litellm.get("callback_settings"),
        ),
        ("callback_settings", top_level),
    ] {
        let m = match v {
            None | Some(Value::Null) => continue,
            Some(Value::Object(m)) => m,
            Some(other) => {
                issues.push(ConfigIssue {
                    path: prefix.to_owned(),
                    message: format!(
                        "expected a mapping of callback names to settings, got {}",
                        kind(other)
                    ),
                });
                continue;
            }
        };
        for (name, e) in m {
            let path = format!("{prefix}.{name}");
            let Value::Object(map) = e else {
                if !e.is_null() {
                    issues.push(ConfigIssue {
                        path,
                        message: format!("expected a mapping, got {}", kind(e)),
                    });
                }
                continue;
            };
            let generic = map.get("callback_type").and_then(Value::as_str) == Some("generic_api");
            if !generic {
                // Settings of another callback: `otel: {message_logging: false}`
                // is what ferrolite always does; anything else is not acted on.
                let only_no_messages = !map.is_empty()
                    && map.iter().all(|(k, v)| {
                        k == "message_logging" && crate::config::values::as_bool(v) == Ok(false)
                    });
                if !only_no_messages {
                    not_implemented.push(path);
                }
                continue;
            }
            entries.retain(|(n, _)| n != name);
            entries.push((name.clone(), Entry { path, map }));
        }
    }

    // Which names the lists enable, and for which events.
    let mut wanted: Vec<(String, Wants, Option<&'static str>)> = Vec::new();
    let mut want = |name: String, w: Wants, list: Option<&'static str>| match wanted
        .iter_mut()
        .find(|(n, _, _)| *n == name)
    {
        Some((_, have, _)) => {
            have.success |= w.success;
            have.failure |= w.failure;
        }
        None => wanted.push((name, w, list)),
    };
    for (list, w) in LISTS {
        for n in list_names(litellm.get(list)) {
            if entries.iter().any(|(e, _)| e == n) {
                want(n.to_owned(), w, Some(list));
            } else if ENV_NAMES.contains(&n) {
                want("generic_api".to_owned(), w, Some(list));
            } else if is_url(n) {
                want(n.trim().to_owned(), w, Some(list));
            } else {
                continue;
            }
            claimed.push(n.to_owned());
        }
    }
    // Entries no list names are enabled for every event (LiteLLM).
    for (name, _) in &entries {
        if !wanted.iter().any(|(n, _, _)| n == name) {
            wanted.push((
                name.clone(),
                Wants {
                    success: true,
                    failure: true,
                },
                None,
            ));
        }
    }

    let base_headers = base_headers(litellm, env, issues);
    let batch_size = env_number(env, "DEFAULT_BATCH_SIZE", warnings)
        .filter(|n| *n >= 1.0)
        .map_or(DEFAULT_BATCH_SIZE, |n| n as usize);
    let flush_interval = env_number(env, "DEFAULT_FLUSH_INTERVAL_SECONDS", warnings)
        .filter(|n| *n > 0.0)
        .map_or(DEFAULT_FLUSH_INTERVAL, Duration::from_secs_f64);

    let mut out = Vec::new();
    for (name, wants, list) in wanted {
        let entry = entries.iter().find(|(n, _)| *n == name).map(|(_, e)| e);
        let list_path = list.map_or_else(String::new, |l| format!("litellm_settings.{l}"));
        let mut s = match entry {
            Some(e) => match from_entry(&name, e, env, issues, not_implemented) {
                Some(s) => s,
                None => continue,
            },
            None if is_url(&name) => match WebhookSettings::to_url(&name) {
                Ok(s) => s,
                Err(message) => {
                    issues.push(ConfigIssue {
                        path: list_path,
                        message: format!("{name}: {message}"),
                    });
                    continue;
                }
            },
            None => {
                let Some(url) = env.get("GENERIC_LOGGER_ENDPOINT") else {
                    issues.push(ConfigIssue {
                        path: list_path,
                        message: "the generic_api webhook needs an endpoint: set GENERIC_LOGGER_ENDPOINT (or use callback_settings with callback_type: generic_api)".into(),
                    });
                    continue;
                };
                match WebhookSettings::to_url(&url) {
                    Ok(mut s) => {
                        s.name = "generic_api".to_owned();
                        s
                    }
                    Err(message) => {
                        issues.push(ConfigIssue {
                            path: list_path,
                            message: format!("GENERIC_LOGGER_ENDPOINT: {message}"),
                        });
                        continue;
                    }
                }
            }
        };
        s.success &= wants.success;
        s.failure &= wants.failure;
        // Environment and litellm_settings headers first; the entry's own win.
        let mut headers = base_headers.clone();
        for (k, v) in std::mem::take(&mut s.headers) {
            headers.retain(|(h, _)| *h != k);
            headers.push((k, v));
        }
        s.headers = headers;
        if entry.is_none() || !has_key(entry, "batch_size") {
            s.batch_size = batch_size;
        }
        if entry.is_none() || !has_key(entry, "flush_interval") {
            s.flush_interval = flush_interval;
        }
        s.max_queue = s.max_queue.max(s.batch_size);
        if !s.success && !s.failure {
            warnings.push(format!(
                "webhook {}: no event type is enabled (event_types and the callback lists exclude both llm_api_success and llm_api_failure); it sends nothing",
                s.name
            ));
            continue;
        }
        out.push(s);
    }
    Parsed {
        webhooks: out,
        claimed,
    }
}

fn has_key(entry: Option<&Entry<'_>>, key: &str) -> bool {
    entry.is_some_and(|e| e.map.get(key).is_some_and(|v| !v.is_null()))
}

fn env_number(env: &Env, name: &str, warnings: &mut Vec<String>) -> Option<f64> {
    let v = env.get(name)?;
    match v.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Some(n),
        _ => {
            warnings.push(format!("{name}={v}: not a number, using the default"));
            None
        }
    }
}

/// A header name and value as config text, checked.
fn header(k: &str, v: &str) -> Result<(http::HeaderName, Secret), String> {
    let name = http::HeaderName::from_bytes(k.trim().as_bytes())
        .map_err(|_| format!("\"{k}\" is not a valid header name"))?;
    http::HeaderValue::from_str(v).map_err(|_| {
        format!("the value of header {name} is not valid in an HTTP header (control characters?)")
    })?;
    Ok((name, Secret::new(v)))
}

/// `GENERIC_LOGGER_HEADERS`, then `litellm_settings.generic_logger_headers`.
fn base_headers(
    litellm: &Map<String, Value>,
    env: &Env,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<(http::HeaderName, Secret)> {
    let mut out: Vec<(http::HeaderName, Secret)> = Vec::new();
    let mut add = |h: (http::HeaderName, Secret)| {
        out.retain(|(k, _)| *k != h.0);
        out.push(h);
    };
    if let Some(s) = env.get("GENERIC_LOGGER_HEADERS") {
        for (k, v) in env_headers(&s) {
            match header(&k, &v) {
                Ok(h) => add(h),
                Err(message) => issues.push(ConfigIssue {
                    path: "GENERIC_LOGGER_HEADERS".into(),
                    message,
                }),
            }
        }
    }
    let path = "litellm_settings.generic_logger_headers";
    for h in headers_map(litellm.get("generic_logger_headers"), path, issues) {
        add(h);
    }
    out
}

/// A `headers:` mapping of names to strings (numbers allowed).
fn headers_map(
    v: Option<&Value>,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<(http::HeaderName, Secret)> {
    let m = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            issues.push(ConfigIssue {
                path: path.to_owned(),
                message: format!(
                    "expected a mapping of header names to values, got {}",
                    kind(other)
                ),
            });
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let p = format!("{path}.{k}");
        let text = match v {
            // An unset os.environ/ variable: LiteLLM sends no such header.
            Value::Null => continue,
            other => match as_string(other) {
                Ok(t) => t,
                Err(message) => {
                    issues.push(ConfigIssue { path: p, message });
                    continue;
                }
            },
        };
        match header(k, &text) {
            Ok(h) => out.push(h),
            Err(message) => issues.push(ConfigIssue { path: p, message }),
        }
    }
    out
}

/// A webhook from its `callback_settings` entry.
fn from_entry(
    name: &str,
    e: &Entry<'_>,
    env: &Env,
    issues: &mut Vec<ConfigIssue>,
    not_implemented: &mut Vec<String>,
) -> Option<WebhookSettings> {
    let before = issues.len();
    let at = |k: &str| format!("{}.{k}", e.path);
    for k in e.map.keys() {
        if !ENTRY_KEYS.contains(&k.as_str()) {
            not_implemented.push(at(k));
        }
    }
    // LiteLLM falls back to GENERIC_LOGGER_ENDPOINT when an entry has none.
    let endpoint = match e.map.get("endpoint") {
        None | Some(Value::Null) => env.get("GENERIC_LOGGER_ENDPOINT"),
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(other) => {
            issues.push(ConfigIssue {
                path: at("endpoint"),
                message: format!("expected a URL, got {}", kind(other)),
            });
            return None;
        }
    };
    let Some(endpoint) = endpoint else {
        issues.push(ConfigIssue {
            path: at("endpoint"),
            message: "required: the URL events are POSTed to (or set GENERIC_LOGGER_ENDPOINT)"
                .into(),
        });
        return None;
    };
    let mut s = match WebhookSettings::to_url(&endpoint) {
        Ok(s) => s,
        Err(message) => {
            issues.push(ConfigIssue {
                path: at("endpoint"),
                message,
            });
            return None;
        }
    };
    s.name = name.to_owned();
    s.headers = headers_map(e.map.get("headers"), &at("headers"), issues);
    match e.map.get("event_types") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            s.success = false;
            s.failure = false;
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some("llm_api_success") => s.success = true,
                    Some("llm_api_failure") => s.failure = true,
                    _ => issues.push(ConfigIssue {
                        path: format!("{}[{i}]", at("event_types")),
                        message: format!(
                            "unknown event type {item}; expected llm_api_success or llm_api_failure"
                        ),
                    }),
                }
            }
        }
        Some(other) => issues.push(ConfigIssue {
            path: at("event_types"),
            message: format!(
                "expected a list of event types (llm_api_success, llm_api_failure), got {}",
                kind(other)
            ),
        }),
    }
    match e.map.get("log_format") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_str().and_then(LogFormat::parse) {
            Some(f) => s.log_format = f,
            None => issues.push(ConfigIssue {
                path: at("log_format"),
                message: format!("unknown log format {v}; expected json_array, ndjson or single"),
            }),
        },
    }
    let positive_int = |k: &str, issues: &mut Vec<ConfigIssue>| -> Option<usize> {
        let v = e.map.get(k).filter(|v| !v.is_null())?;
        match as_u32(v) {
            Ok(n) if n >= 1 => Some(n as usize),
            Ok(_) => {
                issues.push(ConfigIssue {
                    path: at(k),
                    message: "must be at least 1".into(),
                });
                None
            }
            Err(message) => {
                issues.push(ConfigIssue {
                    path: at(k),
                    message,
                });
                None
            }
        }
    };
    let seconds = |k: &str, issues: &mut Vec<ConfigIssue>| -> Option<Duration> {
        let v = e.map.get(k).filter(|v| !v.is_null())?;
        match as_f64(v) {
            Ok(f) if f.is_finite() && f > 0.0 && f <= 86_400.0 => Some(Duration::from_secs_f64(f)),
            Ok(f) => {
                issues.push(ConfigIssue {
                    path: at(k),
                    message: format!(
                        "expected a positive number of seconds (at most a day), got {f}"
                    ),
                });
                None
            }
            Err(message) => {
                issues.push(ConfigIssue {
                    path: at(k),
                    message,
                });
                None
            }
        }
    };
    if let Some(n) = positive_int("batch_size", issues) {
        s.batch_size = n;
    }
    if let Some(d) = seconds("flush_interval", issues) {
        s.flush_interval = d;
    }
    if let Some(n) = positive_int("max_queue_size", issues) {
        s.max_queue = n;
    }
    if let Some(d) = seconds("timeout", issues) {
        s.timeout = d;
    }
    match e
        .map
        .get("max_retries")
        .filter(|v| !v.is_null())
        .map(as_u32)
    {
        None => {}
        Some(Ok(n)) if n <= 20 => s.max_retries = n,
        Some(Ok(n)) => issues.push(ConfigIssue {
            path: at("max_retries"),
            message: format!("at most 20, got {n}"),
        }),
        Some(Err(message)) => issues.push(ConfigIssue {
            path: at("max_retries"),
            message,
        }),
    }
    (issues.len() == before).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_headers_split_as_litellm_does() {
        assert_eq!(
            env_headers("Authorization=Bearer a=b, X-Team = t1,junk,=v"),
            vec![
                ("Authorization".to_owned(), "Bearer a=b".to_owned()),
                ("X-Team".to_owned(), "t1".to_owned()),
            ]
        );
    }

    #[test]
    fn origins_hide_paths_queries_and_passwords() {
        assert_eq!(
            origin("https://u:pw@collectors.example.com/receiver/v1/http/SECRET?x=1").unwrap(),
            "https://collectors.example.com"
        );
        assert_eq!(
            origin("http://127.0.0.1:9000/hook").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert!(origin("ftp://x/y").is_err());
        assert!(origin("not a url").is_err());
        assert!(origin("http://").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_url_or_header_values() {
        let mut s = WebhookSettings::to_url("https://hooks.example.com/t/SECRET-PATH").unwrap();
        s.headers = vec![header("Authorization", "Bearer sk-hook-secret").unwrap()];
        let d = format!("{s:?}");
        assert!(!d.contains("SECRET-PATH"), "{d}");
        assert!(!d.contains("sk-hook-secret"), "{d}");
        assert!(d.contains("https://hooks.example.com"), "{d}");
        assert!(d.contains("authorization"), "{d}");
    }
}
