//! Anthropic's native API. (Stub: being written.)

use ferrolite_types::openai::{ChatChunk, ChatRequest, ChatResponse};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::Usage;

use crate::{
    BuildOptions, Provider, StreamTranslator, Target, TranslateError, UpstreamError,
    UpstreamRequest,
};

pub struct Anthropic;

struct NoStream;

impl StreamTranslator for NoStream {
    fn on_event(&mut self, _ev: &SseEvent) -> Result<Option<Vec<ChatChunk>>, TranslateError> {
        Err(TranslateError::Unsupported(
            "anthropic streaming is not implemented yet".into(),
        ))
    }

    fn usage(&self) -> Option<&Usage> {
        None
    }
}

impl Provider for Anthropic {
    fn chat_request(
        &self,
        _req: &ChatRequest,
        _t: &Target,
        _o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        Err(TranslateError::Unsupported(
            "anthropic is not implemented yet".into(),
        ))
    }

    fn parse_chat_response(
        &self,
        _body: &[u8],
        _t: &Target,
    ) -> Result<ChatResponse, TranslateError> {
        Err(TranslateError::Unsupported(
            "anthropic is not implemented yet".into(),
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
            provider_label: "AnthropicException".into(),
        }
    }
}
