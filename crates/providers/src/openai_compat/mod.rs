//! OpenAI and every OpenAI-compatible API, plus Azure OpenAI, which speaks the
//! same bodies on different URLs.

mod error;
mod request;
mod stream;
#[cfg(test)]
mod tests;

use ferrolite_types::openai::completions::CompletionResponse;
use ferrolite_types::openai::embeddings::EmbeddingResponse;
use ferrolite_types::openai::{ChatRequest, ChatResponse, CompletionRequest, EmbeddingRequest};

use crate::{
    BuildOptions, Provider, StreamTranslator, Target, TranslateError, UpstreamError,
    UpstreamRequest,
};

pub use error::provider_label;
pub use stream::OpenAiStream;

/// OpenAI's own API and every server that speaks it.
pub struct OpenAiCompat;

/// Azure OpenAI.
pub struct Azure;

#[derive(Clone, Copy)]
enum Endpoint {
    Chat,
    Completions,
    Embeddings,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat/completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

fn openai_url(target: &Target, endpoint: Endpoint) -> String {
    format!("{}/{}", target.api_base, endpoint.path())
}

fn azure_url(target: &Target, endpoint: Endpoint) -> String {
    let mut url = format!(
        "{}/openai/deployments/{}/{}",
        target.api_base,
        target.model,
        endpoint.path()
    );
    if let Some(v) = &target.api_version {
        url.push_str("?api-version=");
        url.push_str(v);
    }
    url
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, TranslateError> {
    serde_json::from_slice(body).map_err(|e| TranslateError::InvalidResponse(e.to_string()))
}

macro_rules! openai_shaped {
    ($ty:ty, $url:path) => {
        impl Provider for $ty {
            fn chat_request(
                &self,
                req: &ChatRequest,
                target: &Target,
                opts: BuildOptions<'_>,
            ) -> Result<UpstreamRequest, TranslateError> {
                let body = request::chat_body(req, target, opts)?;
                Ok(request::upstream(
                    target,
                    $url(target, Endpoint::Chat),
                    body,
                ))
            }

            fn parse_chat_response(
                &self,
                body: &[u8],
                _target: &Target,
            ) -> Result<ChatResponse, TranslateError> {
                parse(body)
            }

            fn chat_stream(&self, _target: &Target) -> Box<dyn StreamTranslator> {
                Box::new(OpenAiStream::default())
            }

            fn completion_request(
                &self,
                req: &CompletionRequest,
                target: &Target,
                opts: BuildOptions<'_>,
            ) -> Result<UpstreamRequest, TranslateError> {
                let body = request::completion_body(req, target, opts)?;
                Ok(request::upstream(
                    target,
                    $url(target, Endpoint::Completions),
                    body,
                ))
            }

            fn parse_completion_response(
                &self,
                body: &[u8],
                _target: &Target,
            ) -> Result<CompletionResponse, TranslateError> {
                parse(body)
            }

            fn embedding_request(
                &self,
                req: &EmbeddingRequest,
                target: &Target,
                opts: BuildOptions<'_>,
            ) -> Result<UpstreamRequest, TranslateError> {
                let body = request::embedding_body(req, target, opts)?;
                Ok(request::upstream(
                    target,
                    $url(target, Endpoint::Embeddings),
                    body,
                ))
            }

            fn parse_embedding_response(
                &self,
                body: &[u8],
                _target: &Target,
            ) -> Result<EmbeddingResponse, TranslateError> {
                parse(body)
            }

            fn passthrough(&self) -> bool {
                true
            }

            fn parse_error(&self, status: u16, body: &[u8], target: &Target) -> UpstreamError {
                error::parse_error(status, body, target)
            }
        }
    };
}

openai_shaped!(OpenAiCompat, openai_url);
openai_shaped!(Azure, azure_url);
