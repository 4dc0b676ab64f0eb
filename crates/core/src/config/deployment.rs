//! One `model_list` entry → a [`DeploymentConfig`]: the provider resolved from
//! the model prefix, the API base completed as LiteLLM completes it, the key
//! taken from the entry or the provider's environment variable, and every
//! other parameter kept as a request default.

use std::collections::HashMap;
use std::time::Duration;

use ferrolite_providers::catalog::{catalog, ProviderSpec, SpecKind};
use ferrolite_providers::{AuthScheme, ProviderKind, Target};
use ferrolite_types::{JsonMap, Secret};
use http::{HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cloud::{self, CloudAuth};
use super::keys::{is_internal_param, PARAMS_IMPL};
use super::load::Resolved;
use super::values::{as_f64, as_secs, as_string, as_u32, kind};
use super::{ConfigIssue, Env};

/// A deployment whose provider this version cannot call yet. It is kept so a
/// request for it gets a clear error rather than "unknown model".
#[derive(Debug, Clone)]
pub struct Unsupported {
    pub provider: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// `model_info.id`, or a stable hash of the entry.
    pub id: String,
    /// The public group name (`model_name`), possibly a wildcard pattern.
    pub model_name: String,
    /// `litellm_params.model` as written.
    pub litellm_model: String,
    /// How to reach the upstream; `None` when the provider is unsupported.
    pub target: Option<Target>,
    pub unsupported: Option<Unsupported>,
    pub api_key: Option<Secret>,
    /// Vertex AI / Bedrock credentials, applied by the upstream sender.
    pub cloud: Option<CloudAuth>,
    pub timeout: Option<Duration>,
    pub stream_timeout: Option<Duration>,
    pub max_retries: Option<u32>,
    pub rpm: Option<f64>,
    pub tpm: Option<f64>,
    pub weight: Option<f64>,
    pub order: Option<u32>,
    /// Most requests in flight at once to this deployment.
    pub max_parallel_requests: Option<u32>,
    pub mock_response: Option<String>,
    /// `drop_params` for this deployment (`None`: the global setting).
    pub drop_params: Option<bool>,
    /// `additional_drop_params`: parameters always removed for this deployment.
    pub additional_drop_params: Vec<String>,
    /// `tags`: which tagged requests this deployment serves (tag filtering).
    pub tags: Vec<String>,
    /// Request parameters merged into every call that does not set them.
    pub defaults: Option<JsonMap>,
    pub model_info: JsonMap,
    /// `litellm_params` with every secret removed, for `/model/info`.
    pub public_params: JsonMap,
    /// Position in `model_list`.
    pub index: usize,
}

/// Values never shown by `/model/info`, whatever their source.
const SENSITIVE: &[&str] = &[
    "api_key",
    "client_secret",
    "azure_ad_token",
    "azure_password",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_web_identity_token",
    "vertex_credentials",
];

/// OpenAI model names LiteLLM recognises without a provider prefix.
fn looks_like_openai(model: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt-",
        "text-embedding-",
        "davinci",
        "babbage",
        "omni-moderation",
        "text-moderation",
        "dall-e",
        "tts-",
        "whisper",
        "codex-",
        "computer-use-",
    ];
    PREFIXES.iter().any(|p| model.starts_with(p))
}

/// Providers whose names LiteLLM infers from a bare model name and which
/// this version does not call yet.
fn inferred_native(model: &str) -> Option<&'static str> {
    if model.starts_with("claude") {
        Some("anthropic")
    } else if model.starts_with("gemini") {
        Some("vertex_ai")
    } else if model.starts_with("command") {
        Some("cohere")
    } else {
        None
    }
}

enum Resolution<'a> {
    Known(&'a ProviderSpec, String, String),
    Unsupported(String),
}

fn resolve_provider(model: &str, custom: Option<&str>) -> Result<Resolution<'static>, String> {
    let cat = catalog()?;
    let aliases = |p: &str| -> String {
        match p {
            "text-completion-openai" => "openai".to_owned(),
            "azure_text" => "azure".to_owned(),
            other => other.to_owned(),
        }
    };
    let (provider, id) = if let Some(c) = custom {
        let id = model.strip_prefix(&format!("{c}/")).unwrap_or(model);
        (aliases(c), id.to_owned())
    } else if let Some((prefix, rest)) = model.split_once('/') {
        (aliases(prefix), rest.to_owned())
    } else if looks_like_openai(model) {
        ("openai".to_owned(), model.to_owned())
    } else if let Some(native) = inferred_native(model) {
        (native.to_owned(), model.to_owned())
    } else {
        return Err(format!(
            "LLM Provider NOT provided: cannot tell the provider of model \"{model}\"; write it as <provider>/<model>, e.g. openai/{model}"
        ));
    };
    match cat.get(&provider) {
        Some(spec) => Ok(Resolution::Known(spec, provider, id)),
        None => Ok(Resolution::Unsupported(provider)),
    }
}

fn header_pairs(
    v: &Value,
    path: &str,
    issues: &mut Vec<ConfigIssue>,
    out: &mut Vec<(HeaderName, HeaderValue)>,
) {
    let Value::Object(m) = v else {
        if !v.is_null() {
            issues.push(ConfigIssue {
                path: path.into(),
                message: format!(
                    "expected a mapping of header names to values, got {}",
                    kind(v)
                ),
            });
        }
        return;
    };
    for (k, v) in m {
        if v.is_null() {
            // An optional os.environ/ variable that is unset: no header.
            continue;
        }
        let Ok(value) = as_string(v) else {
            issues.push(ConfigIssue {
                path: format!("{path}.{k}"),
                message: "header values must be strings".into(),
            });
            continue;
        };
        match (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(value),
        ) {
            (Ok(n), Ok(v)) => out.push((n, v)),
            _ => issues.push(ConfigIssue {
                path: format!("{path}.{k}"),
                message: "not a valid HTTP header".into(),
            }),
        }
    }
}

fn parse_auth(spec: &ProviderSpec) -> Result<AuthScheme, String> {
    match spec.auth.as_str() {
        "bearer" => Ok(AuthScheme::Bearer),
        "none" => Ok(AuthScheme::None),
        other => match other.strip_prefix("header:") {
            Some(h) => HeaderName::try_from(h)
                .map(AuthScheme::Header)
                .map_err(|e| e.to_string()),
            None => Err(format!("bad auth style {other}")),
        },
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn parse_deployment(
    index: usize,
    entry: &Value,
    env: &Env,
    res: &Resolved,
    issues: &mut Vec<ConfigIssue>,
    not_implemented: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<DeploymentConfig> {
    let base = format!("model_list[{index}]");
    let Value::Object(entry) = entry else {
        issues.push(ConfigIssue {
            path: base,
            message: format!("expected a mapping, got {}", kind(entry)),
        });
        return None;
    };
    let before = issues.len();
    let model_name = match entry.get("model_name") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(v) if !v.is_null() => {
            issues.push(ConfigIssue {
                path: format!("{base}.model_name"),
                message: format!("expected a string, got {}", kind(v)),
            });
            None
        }
        _ => {
            issues.push(ConfigIssue {
                path: format!("{base}.model_name"),
                message: "missing".into(),
            });
            None
        }
    };
    let pbase = format!("{base}.litellm_params");
    let params = match entry.get("litellm_params") {
        Some(Value::Object(p)) => p.clone(),
        Some(v) if !v.is_null() => {
            issues.push(ConfigIssue {
                path: pbase.clone(),
                message: format!("expected a mapping, got {}", kind(v)),
            });
            return None;
        }
        _ => {
            issues.push(ConfigIssue {
                path: pbase.clone(),
                message: "missing".into(),
            });
            return None;
        }
    };
    let model_info = match entry.get("model_info") {
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) => JsonMap::new(),
        Some(v) => {
            issues.push(ConfigIssue {
                path: format!("{base}.model_info"),
                message: format!("expected a mapping, got {}", kind(v)),
            });
            JsonMap::new()
        }
    };
    for k in entry.keys() {
        if !["model_name", "litellm_params", "model_info"].contains(&k.as_str()) {
            not_implemented.push(format!("{base}.{k}"));
        }
    }

    let get = |k: &str| params.get(k).filter(|v| !v.is_null());
    let conv = |k: &str,
                issues: &mut Vec<ConfigIssue>,
                f: fn(&Value) -> Result<String, String>|
     -> Option<String> {
        get(k).and_then(|v| match f(v) {
            Ok(s) => Some(s),
            Err(message) => {
                issues.push(ConfigIssue {
                    path: format!("{pbase}.{k}"),
                    message,
                });
                None
            }
        })
    };
    let num = |k: &str, issues: &mut Vec<ConfigIssue>| -> Option<f64> {
        get(k).and_then(|v| match as_f64(v) {
            Ok(f) if f >= 0.0 => Some(f),
            Ok(f) => {
                issues.push(ConfigIssue {
                    path: format!("{pbase}.{k}"),
                    message: format!("must not be negative, got {f}"),
                });
                None
            }
            Err(message) => {
                issues.push(ConfigIssue {
                    path: format!("{pbase}.{k}"),
                    message,
                });
                None
            }
        })
    };
    let secs = |k: &str, issues: &mut Vec<ConfigIssue>| -> Option<Duration> {
        get(k).and_then(|v| {
            as_secs(v)
                .map_err(|message| {
                    issues.push(ConfigIssue {
                        path: format!("{pbase}.{k}"),
                        message,
                    })
                })
                .ok()
        })
    };
    let int = |k: &str, issues: &mut Vec<ConfigIssue>| -> Option<u32> {
        get(k).and_then(|v| {
            as_u32(v)
                .map_err(|message| {
                    issues.push(ConfigIssue {
                        path: format!("{pbase}.{k}"),
                        message,
                    })
                })
                .ok()
        })
    };

    let litellm_model = match get("model") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v) => {
            issues.push(ConfigIssue {
                path: format!("{pbase}.model"),
                message: format!("expected a string such as openai/gpt-4o, got {}", kind(v)),
            });
            return None;
        }
        None => {
            issues.push(ConfigIssue {
                path: format!("{pbase}.model"),
                message: "missing (the upstream model, such as openai/gpt-4o)".into(),
            });
            return None;
        }
    };
    let custom = conv("custom_llm_provider", issues, as_string);
    let user_base = conv("api_base", issues, as_string);
    let api_version = conv("api_version", issues, as_string);
    let organization = conv("organization", issues, as_string);
    let mock_response = conv("mock_response", issues, as_string);
    let drop_params = get("drop_params").and_then(|v| {
        super::values::as_bool(v)
            .map_err(|message| {
                issues.push(ConfigIssue {
                    path: format!("{pbase}.drop_params"),
                    message,
                })
            })
            .ok()
    });
    let tags = match get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => {
            issues.push(ConfigIssue {
                path: format!("{pbase}.tags"),
                message: "expected a list of tags".into(),
            });
            Vec::new()
        }
    };
    let additional_drop_params = match get("additional_drop_params") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => {
            issues.push(ConfigIssue {
                path: format!("{pbase}.additional_drop_params"),
                message: "expected a list of parameter names".into(),
            });
            Vec::new()
        }
    };
    let mut api_key = conv("api_key", issues, as_string).map(Secret::new);
    let timeout = secs("timeout", issues);
    let stream_timeout = secs("stream_timeout", issues);
    let max_retries = int("max_retries", issues);
    let rpm = num("rpm", issues);
    let tpm = num("tpm", issues);
    let weight = num("weight", issues);
    let order = int("order", issues);
    let max_parallel_requests = int("max_parallel_requests", issues);

    let mut headers = Vec::new();
    for k in ["extra_headers", "headers"] {
        if let Some(v) = get(k) {
            header_pairs(v, &format!("{pbase}.{k}"), issues, &mut headers);
        }
    }

    let mut defaults = JsonMap::new();
    for (k, v) in &params {
        if PARAMS_IMPL.contains(&k.as_str()) || v.is_null() {
            continue;
        }
        if is_internal_param(k) {
            not_implemented.push(format!("{pbase}.{k}"));
        } else {
            defaults.insert(k.clone(), v.clone());
        }
    }

    let mut target = None;
    let mut unsupported = None;
    let mut cloud_auth = None;
    match resolve_provider(&litellm_model, custom.as_deref()) {
        Err(message) if mock_response.is_none() => issues.push(ConfigIssue {
            path: format!("{pbase}.model"),
            message,
        }),
        Err(_) => {}
        Ok(Resolution::Unsupported(provider)) => {
            if mock_response.is_none() {
                let reason = format!(
                    "provider \"{provider}\" is not supported by this version of ferrolite"
                );
                warnings.push(format!(
                    "{pbase}.model: {reason}; requests for '{}' will be refused",
                    model_name.as_deref().unwrap_or("?")
                ));
                unsupported = Some(Unsupported { provider, reason });
            }
        }
        Ok(Resolution::Known(spec, provider, model_id)) => {
            let getter = |k: &str| get(k);
            let setup = match spec.kind {
                SpecKind::Vertex => cloud::vertex(
                    &getter,
                    env,
                    &model_id,
                    user_base.as_deref(),
                    &pbase,
                    issues,
                )
                .map(Ok),
                SpecKind::Bedrock => Some(cloud::bedrock(
                    &getter,
                    env,
                    user_base.as_deref(),
                    &pbase,
                    issues,
                )),
                _ => None,
            };
            let setup = match setup {
                Some(Err(reason)) => {
                    if mock_response.is_none() {
                        warnings.push(format!(
                            "{pbase}: {reason}; requests for '{}' will be refused",
                            model_name.as_deref().unwrap_or("?")
                        ));
                        unsupported = Some(Unsupported {
                            provider: provider.clone(),
                            reason,
                        });
                    }
                    None
                }
                Some(Ok(s)) => Some(s),
                None => None,
            };
            let api_base = match (&user_base, env.first(&spec.api_base_env), &spec.api_base) {
                _ if setup.is_some() => setup.as_ref().map(|s| s.api_base.clone()),
                (Some(b), _, _) => Some(spec.complete_user_base(b)),
                (None, Some(b), _) => Some(spec.complete_user_base(&b)),
                (None, None, Some(d)) => Some(d.trim_end_matches('/').to_owned()),
                (None, None, None) => None,
            };
            if api_key.is_none() {
                api_key = env.first(&spec.api_key_env).map(Secret::new);
            }
            let api_version = api_version
                .or_else(|| env.first(&spec.api_version_env))
                .or_else(|| spec.default_api_version.clone());
            for (name, value) in &spec.extra_headers {
                let value = match value.strip_prefix("env:") {
                    Some(var) => env.get(var),
                    None => Some(value.clone()),
                };
                if let (Ok(n), Some(Ok(v))) = (
                    HeaderName::try_from(name.as_str()),
                    value.map(HeaderValue::try_from),
                ) {
                    if !headers.iter().any(|(h, _)| *h == n) {
                        headers.push((n, v));
                    }
                }
            }
            let openai_shaped = matches!(
                spec.provider_kind(),
                ProviderKind::OpenAiCompat | ProviderKind::Azure
            );
            if let (Some(org), true) = (&organization, openai_shaped) {
                if let Ok(v) = HeaderValue::try_from(org.as_str()) {
                    let name = HeaderName::from_static("openai-organization");
                    headers.retain(|(h, _)| *h != name);
                    headers.push((name, v));
                }
            }
            let auth = match parse_auth(spec) {
                Ok(_) if api_key.is_none() => AuthScheme::None,
                Ok(a) => a,
                Err(e) => {
                    issues.push(ConfigIssue {
                        path: format!("{pbase}.model"),
                        message: format!("provider catalog: {e}"),
                    });
                    AuthScheme::None
                }
            };
            let kind = setup
                .as_ref()
                .map(|s| s.kind)
                .unwrap_or_else(|| spec.provider_kind());
            let auth = match &setup {
                Some(s) => s.scheme.clone(),
                None => auth,
            };
            cloud_auth = setup.map(|s| s.auth);
            match api_base {
                _ if unsupported.is_some() => {}
                Some(api_base) => {
                    target = Some(Target {
                        provider,
                        kind,
                        model: model_id,
                        api_base,
                        api_version: if spec.provider_kind() == ProviderKind::Azure {
                            api_version
                        } else {
                            None
                        },
                        auth,
                        stream_usage: spec.stream_usage,
                        headers,
                    })
                }
                None if mock_response.is_none() => issues.push(ConfigIssue {
                    path: format!("{pbase}.api_base"),
                    message: format!(
                        "provider {provider} needs an api_base{}",
                        if spec.api_base_env.is_empty() {
                            String::new()
                        } else {
                            format!(" (or {})", spec.api_base_env.join(" / "))
                        }
                    ),
                }),
                None => {}
            }
        }
    }

    if issues.len() > before {
        return None;
    }
    let model_name = model_name?;

    let secret_prefix = format!("{pbase}.");
    let mut public_params = JsonMap::new();
    for (k, v) in &params {
        let path = format!("{secret_prefix}{k}");
        let from_env = res.secret_paths.iter().any(|p| {
            p == &path || p.starts_with(&format!("{path}.")) || p.starts_with(&format!("{path}["))
        });
        if SENSITIVE.contains(&k.as_str()) || from_env {
            continue;
        }
        if k == "extra_headers" || k == "headers" {
            if let Value::Object(h) = v {
                let redacted: JsonMap = h
                    .keys()
                    .map(|hk| (hk.clone(), Value::String("<redacted>".into())))
                    .collect();
                public_params.insert(k.clone(), Value::Object(redacted));
            }
            continue;
        }
        public_params.insert(k.clone(), v.clone());
    }

    Some(DeploymentConfig {
        id: String::new(),
        model_name,
        litellm_model,
        target,
        unsupported,
        api_key,
        cloud: cloud_auth,
        drop_params,
        additional_drop_params,
        tags,
        timeout,
        stream_timeout,
        max_retries,
        rpm,
        tpm,
        weight,
        order,
        max_parallel_requests,
        mock_response,
        defaults: (!defaults.is_empty()).then_some(defaults),
        model_info,
        public_params,
        index,
    })
}

impl DeploymentConfig {
    /// `model_info.max_input_tokens`, the context window for pre-call checks.
    pub fn max_input_tokens(&self) -> Option<u64> {
        self.model_info
            .get("max_input_tokens")
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
    }
}

/// Give every deployment its id: `model_info.id` when set (must be unique),
/// else a hash of what identifies the entry, stable across restarts.
pub(crate) fn assign_ids(deployments: &mut [DeploymentConfig], issues: &mut Vec<ConfigIssue>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut ordinal: HashMap<String, usize> = HashMap::new();
    for d in deployments.iter_mut() {
        let explicit = d.model_info.get("id").and_then(|v| as_string(v).ok());
        let id = match explicit {
            Some(id) => id,
            None => {
                let base = d.target.as_ref().map(|t| t.api_base.as_str()).unwrap_or("");
                let key = format!("{}\u{0}{}\u{0}{}", d.model_name, d.litellm_model, base);
                let n = ordinal.entry(key.clone()).or_insert(0);
                *n += 1;
                let digest = Sha256::digest(format!("{key}\u{0}{n}").as_bytes());
                hex::encode(&digest[..16])
            }
        };
        if let Some(prev) = seen.insert(id.clone(), d.index) {
            issues.push(ConfigIssue {
                path: format!("model_list[{}].model_info.id", d.index),
                message: format!(
                    "duplicate deployment id \"{id}\" (also used by model_list[{prev}])"
                ),
            });
        }
        d.id = id;
    }
}
