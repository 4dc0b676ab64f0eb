//! LiteLLM's `config.yaml`, unchanged: loading (includes, `os.environ/`
//! secrets, `environment_variables`), validation with every problem reported
//! with its path, and the typed [`Config`] the gateway runs on.

mod cloud;
mod deployment;
pub mod env;
mod keys;
mod load;
mod settings;
pub(crate) mod values;

use std::fmt;
use std::path::Path;

pub use cloud::{AwsAuth, CloudAuth, GcpAuth};
pub use deployment::{DeploymentConfig, Unsupported};
pub use env::Env;
pub use keys::{implemented_keys, KeyStatus};
pub use load::{load_file, load_str};
pub use settings::{GeneralSettings, GroupAlias, LitellmSettings, RouterSettings};

/// A validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub deployments: Vec<DeploymentConfig>,
    pub litellm: LitellmSettings,
    pub general: GeneralSettings,
    pub router: RouterSettings,
    /// Fallback lists from litellm_settings and router_settings (router wins).
    pub fallbacks: crate::router::fallbacks::Fallbacks,
    /// Paths of keys present in the file that this version does not act on.
    pub not_implemented: Vec<String>,
    /// Non-fatal findings (optional `os.environ/` variables that are unset, …).
    pub warnings: Vec<String>,
}

/// One problem in a config file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// A path such as `model_list[2].litellm_params.api_key`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config, reported together.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the config:", self.0.len())?;
        for issue in &self.0 {
            write!(f, "\n  - {issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigIssue {
            path: path.into(),
            message: message.into(),
        }])
    }
}

/// The configuration used by single-model mode (`--model X [--alias A] [--api_base URL]`):
/// one deployment answering under its alias and, as in LiteLLM, any other model name.
pub fn single_model(
    model: &str,
    alias: Option<&str>,
    api_base: Option<&str>,
    env: &Env,
) -> Result<Config, ConfigErrors> {
    let name = alias.unwrap_or(model);
    let mut params = serde_json::Map::new();
    params.insert("model".into(), model.into());
    if let Some(b) = api_base {
        params.insert("api_base".into(), b.into());
    }
    let entry = |model_name: &str| serde_json::json!({"model_name": model_name, "litellm_params": params.clone()});
    let doc = serde_json::json!({ "model_list": [entry(name), entry("*")] });
    load::from_json(doc, Path::new("."), env)
}

#[cfg(test)]
mod tests;
