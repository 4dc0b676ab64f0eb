//! OpenAI-compatible providers as data (`catalog.yaml`): default API base,
//! the environment variables LiteLLM consults, auth style and how a user's
//! `api_base` is completed. Adding such a provider is one entry there.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::ProviderKind;

const CATALOG_YAML: &str = include_str!("catalog.yaml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SpecKind {
    #[default]
    OpenaiCompat,
    Azure,
    Anthropic,
    Gemini,
    /// Vertex AI: Gemini or Claude by model name.
    Vertex,
    Bedrock,
}

/// How a user-given `api_base` is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserBase {
    /// Used exactly as written.
    #[default]
    AsIs,
    /// `/v1` appended unless it already ends in `/v1`.
    EnsureV1,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    #[serde(default)]
    pub kind: SpecKind,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default)]
    pub api_base_env: Vec<String>,
    #[serde(default)]
    pub api_key_env: Vec<String>,
    #[serde(default = "default_auth")]
    pub auth: String,
    #[serde(default)]
    pub user_base: UserBase,
    #[serde(default = "yes")]
    pub stream_usage: bool,
    #[serde(default = "yes")]
    pub key_required: bool,
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub api_version_env: Vec<String>,
    #[serde(default)]
    pub default_api_version: Option<String>,
}

fn default_auth() -> String {
    "bearer".to_owned()
}

fn yes() -> bool {
    true
}

impl ProviderSpec {
    pub fn provider_kind(&self) -> ProviderKind {
        match self.kind {
            SpecKind::OpenaiCompat => ProviderKind::OpenAiCompat,
            SpecKind::Azure => ProviderKind::Azure,
            SpecKind::Anthropic => ProviderKind::Anthropic,
            SpecKind::Gemini => ProviderKind::Gemini,
            SpecKind::Vertex => ProviderKind::VertexGemini,
            SpecKind::Bedrock => ProviderKind::Bedrock,
        }
    }

    /// Complete a user-given `api_base` the way LiteLLM does for this provider.
    pub fn complete_user_base(&self, base: &str) -> String {
        let trimmed = base.trim_end_matches('/');
        match self.user_base {
            UserBase::AsIs => trimmed.to_owned(),
            UserBase::EnsureV1 if trimmed.ends_with("/v1") => trimmed.to_owned(),
            UserBase::EnsureV1 => format!("{trimmed}/v1"),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Catalog {
    pub providers: BTreeMap<String, ProviderSpec>,
}

impl Catalog {
    pub fn get(&self, provider: &str) -> Option<&ProviderSpec> {
        self.providers.get(provider)
    }
}

/// The catalog shipped in the binary, parsed on first use.
pub fn catalog() -> Result<&'static Catalog, String> {
    static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            serde_yaml_ng::from_str(CATALOG_YAML)
                .map_err(|e| format!("built-in provider catalog: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalog_parses_and_has_the_required_providers() {
        let c = catalog().unwrap();
        for p in [
            "openai",
            "openrouter",
            "deepseek",
            "groq",
            "mistral",
            "together_ai",
            "xai",
            "fireworks_ai",
            "deepinfra",
            "perplexity",
            "cerebras",
            "hosted_vllm",
            "vllm",
            "lm_studio",
            "ollama_chat",
            "ollama",
            "azure",
        ] {
            let spec = c.get(p).unwrap_or_else(|| panic!("catalog lacks {p}"));
            assert!(
                spec.auth == "bearer" || spec.auth == "none" || spec.auth.starts_with("header:"),
                "{p}: bad auth {}",
                spec.auth
            );
        }
        assert_eq!(c.get("azure").unwrap().provider_kind(), ProviderKind::Azure);
        assert!(c
            .get("openai")
            .unwrap()
            .api_base
            .as_deref()
            .unwrap()
            .starts_with("https://api.openai.com"));
    }

    #[test]
    fn user_base_completion() {
        let mut spec: ProviderSpec = serde_yaml_ng::from_str("user_base: ensure_v1").unwrap();
        assert_eq!(spec.complete_user_base("http://h:8000"), "http://h:8000/v1");
        assert_eq!(
            spec.complete_user_base("http://h:8000/v1/"),
            "http://h:8000/v1"
        );
        spec.user_base = UserBase::AsIs;
        assert_eq!(spec.complete_user_base("http://h:8000/"), "http://h:8000");
    }
}
