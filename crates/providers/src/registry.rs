//! `ProviderKind` → adapter: the only match on provider kind.

use crate::anthropic::Anthropic;
use crate::bedrock::Bedrock;
use crate::gemini::Gemini;
use crate::openai_compat::{Azure, OpenAiCompat};
use crate::vertex::{VertexAnthropic, VertexGemini};
use crate::{Provider, ProviderKind};

pub fn adapter(kind: ProviderKind) -> &'static dyn Provider {
    match kind {
        ProviderKind::OpenAiCompat => &OpenAiCompat,
        ProviderKind::Azure => &Azure,
        ProviderKind::Anthropic => &Anthropic,
        ProviderKind::Gemini => &Gemini,
        ProviderKind::VertexGemini => &VertexGemini,
        ProviderKind::VertexAnthropic => &VertexAnthropic,
        ProviderKind::Bedrock => &Bedrock,
    }
}
