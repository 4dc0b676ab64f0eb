//! What each upstream can take: the OpenAI request parameters it has no
//! equivalent for. The pipeline checks requests against this list before
//! translating: with `drop_params` the parameters are removed, otherwise the
//! request fails with LiteLLM's `UnsupportedParamsError`. Parameters not in
//! OpenAI's API are provider-specific and always passed on.

use crate::ProviderKind;

/// OpenAI parameters with no equivalent in Anthropic's Messages API.
const ANTHROPIC: &[&str] = &[
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "modalities",
    "audio",
    "prediction",
    "service_tier",
    "store",
    "verbosity",
    "web_search_options",
];

/// … in Gemini's generateContent (AI Studio and Vertex).
const GEMINI: &[&str] = &[
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "modalities",
    "audio",
    "prediction",
    "service_tier",
    "store",
    "verbosity",
    "web_search_options",
    "parallel_tool_calls",
];

/// … in Bedrock's Converse API.
const BEDROCK: &[&str] = &[
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "modalities",
    "audio",
    "prediction",
    "service_tier",
    "store",
    "verbosity",
    "web_search_options",
    "parallel_tool_calls",
];

/// The OpenAI parameters `kind` cannot take.
pub fn unsupported_params(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::OpenAiCompat | ProviderKind::Azure => &[],
        ProviderKind::Anthropic | ProviderKind::VertexAnthropic => ANTHROPIC,
        ProviderKind::Gemini | ProviderKind::VertexGemini => GEMINI,
        ProviderKind::Bedrock => BEDROCK,
    }
}
