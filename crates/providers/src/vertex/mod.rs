//! Vertex AI: Gemini models (`generateContent` on Vertex URLs) and Claude
//! models (Anthropic bodies on `rawPredict` / `streamRawPredict`). The
//! target's `api_base` is `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}`
//! (or the `global` endpoint); authentication is a Google OAuth token added by
//! the sender (`AuthScheme::GcpOAuth`). (Stub: being written.)

use ferrolite_types::openai::{ChatChunk, ChatRequest, ChatResponse};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::Usage;

use crate::{
    BuildOptions, Provider, StreamTranslator, Target, TranslateError, UpstreamError,
    UpstreamRequest,
};

/// Gemini on Vertex AI.
pub struct VertexGemini;

/// Claude on Vertex AI.
pub struct VertexAnthropic;

struct NoStream;

impl StreamTranslator for NoStream {
    fn on_event(&mut self, _ev: &SseEvent) -> Result<Option<Vec<ChatChunk>>, TranslateError> {
        Err(TranslateError::Unsupported(
            "vertex_ai streaming is not implemented yet".into(),
        ))
    }

    fn usage(&self) -> Option<&Usage> {
        None
    }
}

macro_rules! stub {
    ($ty:ty) => {
        impl Provider for $ty {
            fn chat_request(
                &self,
                _r: &ChatRequest,
                _t: &Target,
                _o: BuildOptions<'_>,
            ) -> Result<UpstreamRequest, TranslateError> {
                Err(TranslateError::Unsupported(
                    "vertex_ai is not implemented yet".into(),
                ))
            }

            fn parse_chat_response(
                &self,
                _b: &[u8],
                _t: &Target,
            ) -> Result<ChatResponse, TranslateError> {
                Err(TranslateError::Unsupported(
                    "vertex_ai is not implemented yet".into(),
                ))
            }

            fn chat_stream(&self, _t: &Target) -> Box<dyn StreamTranslator> {
                Box::new(NoStream)
            }

            fn parse_error(&self, status: u16, body: &[u8], _t: &Target) -> UpstreamError {
                UpstreamError {
                    status,
                    message: String::from_utf8_lossy(body).into_owned(),
                    kind: None,
                    param: None,
                    code: None,
                    provider_label: "VertexAIException".into(),
                }
            }
        }
    };
}

stub!(VertexGemini);
stub!(VertexAnthropic);
