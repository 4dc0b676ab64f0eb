//! From YAML text to a validated [`Config`]: includes merged, environment
//! exported to the overlay, `os.environ/` references resolved, then every
//! section checked, collecting all problems before failing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::deployment::parse_deployment;
use super::keys::{check_section, TOP_LEVEL};
use super::settings::parse_redis;
use super::settings::{
    merge_fallbacks, parse_fallbacks, parse_general, parse_litellm, parse_router,
};
use super::values::kind;
use super::{Config, ConfigErrors, ConfigIssue, Env};

const ENV_PREFIX: &str = "os.environ/";
const MAX_INCLUDE_DEPTH: usize = 8;

/// Load a config file.
pub fn load_file(path: &Path, env: &Env) -> Result<Config, ConfigErrors> {
    let doc = read_yaml(path)?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let doc = resolve_includes(doc, &dir, &dir, 0)?;
    from_json(doc, &dir, env)
}

/// Load config text; `dir` resolves relative includes.
pub fn load_str(text: &str, dir: &Path, env: &Env) -> Result<Config, ConfigErrors> {
    let doc = parse_yaml(text, "config")?;
    let doc = resolve_includes(doc, dir, dir, 0)?;
    from_json(doc, dir, env)
}

fn read_yaml(path: &Path) -> Result<Value, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )
    })?;
    parse_yaml(&text, &path.display().to_string())
}

fn parse_yaml(text: &str, name: &str) -> Result<Value, ConfigErrors> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ConfigErrors::single("", format!("{name} is not valid YAML: {e}")))?;
    let json: Value = serde_json::to_value(yaml)
        .map_err(|e| ConfigErrors::single("", format!("{name} cannot be read as a config: {e}")))?;
    match json {
        Value::Object(_) => Ok(json),
        Value::Null => Ok(Value::Object(Map::new())),
        other => Err(ConfigErrors::single(
            "",
            format!(
                "{name} must be a mapping at the top level, got {}",
                kind(&other)
            ),
        )),
    }
}

/// Merge `include:` files: paths relative to the including file (then to the
/// root config's directory), lists concatenated, other keys overwritten.
fn resolve_includes(
    mut doc: Value,
    dir: &Path,
    root_dir: &Path,
    depth: usize,
) -> Result<Value, ConfigErrors> {
    let Some(obj) = doc.as_object_mut() else {
        return Ok(doc);
    };
    let Some(includes) = obj.remove("include") else {
        return Ok(doc);
    };
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(ConfigErrors::single(
            "include",
            "includes nest too deeply (a cycle?)",
        ));
    }
    let files = match includes {
        Value::Array(a) => a,
        Value::String(s) => vec![Value::String(s)],
        Value::Null => Vec::new(),
        other => {
            return Err(ConfigErrors::single(
                "include",
                format!("expected a list of file names, got {}", kind(&other)),
            ))
        }
    };
    for (i, f) in files.iter().enumerate() {
        let Some(name) = f.as_str() else {
            return Err(ConfigErrors::single(
                format!("include[{i}]"),
                "expected a file name",
            ));
        };
        let mut path = dir.join(name);
        if !path.exists() && root_dir.join(name).exists() {
            path = root_dir.join(name);
        }
        let included = read_yaml(&path)
            .map_err(|e| prefix(e, &format!("include[{i}] ({})", path.display())))?;
        let inc_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.to_path_buf());
        let included = resolve_includes(included, &inc_dir, root_dir, depth + 1)?;
        if let (Some(target), Value::Object(src)) = (doc.as_object_mut(), included) {
            for (k, v) in src {
                match (target.get_mut(&k), v) {
                    (Some(Value::Array(existing)), Value::Array(more)) => existing.extend(more),
                    (_, v) => {
                        target.insert(k, v);
                    }
                }
            }
        }
    }
    Ok(doc)
}

fn prefix(mut e: ConfigErrors, p: &str) -> ConfigErrors {
    for issue in &mut e.0 {
        issue.path = if issue.path.is_empty() {
            p.to_owned()
        } else {
            format!("{p}: {}", issue.path)
        };
    }
    e
}

/// Values whose `os.environ/` variable must be set: a missing one is a
/// startup error. Any other reference resolves to null with a warning, as
/// LiteLLM resolves it to None.
fn required_path(path: &str) -> bool {
    path == "general_settings.master_key"
        || (path.starts_with("model_list[")
            && [
                ".litellm_params.api_key",
                ".litellm_params.api_base",
                ".litellm_params.model",
            ]
            .iter()
            .any(|s| path.ends_with(s)))
}

pub(crate) struct Resolved {
    /// Paths whose value came from the environment (treated as secrets).
    pub secret_paths: HashSet<String>,
}

fn resolve_env(
    v: &mut Value,
    path: &mut String,
    env: &Env,
    res: &mut Resolved,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<String>,
) {
    match v {
        Value::String(s) => {
            if let Some(var) = s.strip_prefix(ENV_PREFIX) {
                let var = var.trim().to_owned();
                match env.get(&var) {
                    Some(val) => {
                        *v = Value::String(val);
                        res.secret_paths.insert(path.clone());
                    }
                    None if required_path(path) => issues.push(ConfigIssue {
                        path: path.clone(),
                        message: format!("environment variable {var} is not set (referenced as os.environ/{var})"),
                    }),
                    None => {
                        warnings.push(format!("{path}: environment variable {var} is not set; using no value"));
                        *v = Value::Null;
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                resolve_env(item, path, env, res, issues, warnings);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                resolve_env(item, path, env, res, issues, warnings);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Build a [`Config`] from a document whose includes are already merged.
pub(crate) fn from_json(
    mut doc: Value,
    _dir: &Path,
    base_env: &Env,
) -> Result<Config, ConfigErrors> {
    let mut issues = Vec::new();
    let mut config = Config::default();
    let mut env = base_env.clone();

    // environment_variables first: later os.environ/ lookups see them.
    if let Some(vars) = doc
        .as_object_mut()
        .and_then(|o| o.remove("environment_variables"))
    {
        match vars {
            Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        Value::String(s) => env.set(k, s),
                        Value::Number(n) => env.set(k, n.to_string()),
                        Value::Bool(b) => env.set(k, b.to_string()),
                        Value::Null => {}
                        other => issues.push(ConfigIssue {
                            path: format!("environment_variables.{k}"),
                            message: format!("expected a string, got {}", kind(&other)),
                        }),
                    }
                }
            }
            Value::Null => {}
            other => issues.push(ConfigIssue {
                path: "environment_variables".into(),
                message: format!("expected a mapping, got {}", kind(&other)),
            }),
        }
    }

    let mut res = Resolved {
        secret_paths: HashSet::new(),
    };
    resolve_env(
        &mut doc,
        &mut String::new(),
        &env,
        &mut res,
        &mut issues,
        &mut config.warnings,
    );

    let Value::Object(mut top) = doc else {
        return Err(ConfigErrors::single("", "the config must be a mapping"));
    };
    check_section(&top, "", TOP_LEVEL, &mut config.not_implemented);

    let section = |top: &mut Map<String, Value>,
                   name: &str,
                   issues: &mut Vec<ConfigIssue>|
     -> Map<String, Value> {
        match top.remove(name) {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                issues.push(ConfigIssue {
                    path: name.into(),
                    message: format!("expected a mapping, got {}", kind(&other)),
                });
                Map::new()
            }
        }
    };
    let litellm = section(&mut top, "litellm_settings", &mut issues);
    let general = section(&mut top, "general_settings", &mut issues);
    let router = section(&mut top, "router_settings", &mut issues);
    let webhooks = crate::observe::webhook::settings::parse(
        &litellm,
        top.get("callback_settings"),
        &env,
        &mut issues,
        &mut config.warnings,
        &mut config.not_implemented,
    );
    config.litellm = parse_litellm(
        &litellm,
        &mut issues,
        &mut config.not_implemented,
        &webhooks.claimed,
    );
    config.litellm.webhooks = webhooks.webhooks;
    config.general = parse_general(&general, &mut issues, &mut config.not_implemented);
    config.general.spend.logs = crate::spend::log_settings::parse(
        &general,
        &config.litellm,
        &env,
        &mut issues,
        &mut config.warnings,
    );
    config.router = parse_router(&router, &mut issues, &mut config.not_implemented);
    config.router.redis = parse_redis(&router, &env, &mut issues);
    config.litellm.cache =
        crate::cache::settings::parse(&litellm, &env, &mut issues, &mut config.warnings);
    config.litellm.otel = crate::observe::otel::settings::parse(
        &config.litellm.callbacks,
        &env,
        &mut config.warnings,
    );
    config.fallbacks = merge_fallbacks(
        parse_fallbacks(&litellm, "litellm_settings", &mut issues),
        parse_fallbacks(&router, "router_settings", &mut issues),
    );

    match top.remove("model_list") {
        Some(Value::Array(entries)) => {
            for (i, entry) in entries.iter().enumerate() {
                if let Some(d) = parse_deployment(
                    i,
                    entry,
                    &env,
                    &res,
                    &mut issues,
                    &mut config.not_implemented,
                    &mut config.warnings,
                ) {
                    config.deployments.push(d);
                }
            }
        }
        None | Some(Value::Null) => {}
        Some(other) => issues.push(ConfigIssue {
            path: "model_list".into(),
            message: format!("expected a list of models, got {}", kind(&other)),
        }),
    }
    deployment::assign_ids(&mut config.deployments, &mut issues);

    for (alias, a) in &config.router.model_group_alias {
        let known = config.deployments.iter().any(|d| d.model_name == a.target);
        if !known {
            config.warnings.push(format!(
                "router_settings.model_group_alias.{alias}: points to model group '{}', which is not in model_list",
                a.target
            ));
        }
    }

    config.not_implemented.sort();
    config.not_implemented.dedup();
    if issues.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(issues))
    }
}

use super::deployment;
