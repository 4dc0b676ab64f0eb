//! OpenAI-shaped error bodies.

use ferrolite_types::openai::ErrorBody;

use crate::{Target, UpstreamError};

/// LiteLLM names the provider in its messages: `OpenAIException`,
/// `AzureException`, `GroqException`, …
pub fn provider_label(provider: &str) -> String {
    match provider {
        "openai" | "custom_openai" | "openai_like" | "text-completion-openai" => {
            "OpenAIException".to_owned()
        }
        "azure" | "azure_text" => "AzureException".to_owned(),
        other => {
            let mut chars = other.chars();
            match chars.next() {
                Some(first) => format!("{}{}Exception", first.to_uppercase(), chars.as_str()),
                None => "Exception".to_owned(),
            }
        }
    }
}

const MAX_RAW_MESSAGE: usize = 2048;

pub(super) fn parse_error(status: u16, body: &[u8], target: &Target) -> UpstreamError {
    let label = provider_label(&target.provider);
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => UpstreamError {
            status,
            message: b.error.message,
            kind: b.error.kind,
            param: b.error.param,
            code: b.error.code,
            provider_label: label,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let mut message: String = text.chars().take(MAX_RAW_MESSAGE).collect();
            if message.trim().is_empty() {
                message = format!("upstream returned HTTP {status} with an empty body");
            }
            UpstreamError {
                status,
                message,
                kind: None,
                param: None,
                code: None,
                provider_label: label,
            }
        }
    }
}
