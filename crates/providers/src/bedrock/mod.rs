//! Amazon Bedrock: the Converse (`POST {api_base}/model/{modelId}/converse`)
//! and ConverseStream (`/converse-stream`, AWS event-stream framing) APIs.
//! The target's `api_base` is `https://bedrock-runtime.{region}.amazonaws.com`;
//! the sender signs every request with SigV4 (`AuthScheme::AwsSigV4`).
//! (Stub: being written.)

use ferrolite_types::openai::{ChatChunk, ChatRequest, ChatResponse};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::Usage;

use crate::{
    BuildOptions, Provider, StreamTranslator, Target, TranslateError, UpstreamError,
    UpstreamRequest,
};

pub struct Bedrock;

struct NoStream;

impl StreamTranslator for NoStream {
    fn on_event(&mut self, _ev: &SseEvent) -> Result<Option<Vec<ChatChunk>>, TranslateError> {
        Err(TranslateError::Unsupported(
            "bedrock streaming is not implemented yet".into(),
        ))
    }

    fn usage(&self) -> Option<&Usage> {
        None
    }
}

impl Provider for Bedrock {
    fn chat_request(
        &self,
        _r: &ChatRequest,
        _t: &Target,
        _o: BuildOptions<'_>,
    ) -> Result<UpstreamRequest, TranslateError> {
        Err(TranslateError::Unsupported(
            "bedrock is not implemented yet".into(),
        ))
    }

    fn parse_chat_response(&self, _b: &[u8], _t: &Target) -> Result<ChatResponse, TranslateError> {
        Err(TranslateError::Unsupported(
            "bedrock is not implemented yet".into(),
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
            provider_label: "BedrockException".into(),
        }
    }
}
