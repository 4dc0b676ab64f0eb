//! OpenAI SSE chunks: already in the canonical shape, so translation is a
//! parse plus bookkeeping (usage, the `[DONE]` marker, in-stream errors).

use ferrolite_types::openai::ChatChunk;
use ferrolite_types::sse::SseEvent;
use ferrolite_types::Usage;

use crate::{StreamTranslator, TranslateError, UpstreamError};

#[derive(Default)]
pub struct OpenAiStream {
    usage: Option<Usage>,
}

impl StreamTranslator for OpenAiStream {
    fn on_event(&mut self, ev: &SseEvent) -> Result<Option<Vec<ChatChunk>>, TranslateError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            return Ok(None);
        }
        if data.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let chunk: ChatChunk = serde_json::from_str(data)
            .map_err(|e| TranslateError::InvalidResponse(format!("bad stream chunk: {e}")))?;
        if chunk.choices.is_empty() && chunk.usage.is_none() {
            if let Some(err) = chunk.extra.get("error") {
                return Err(TranslateError::Upstream(Box::new(in_stream_error(err))));
            }
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        Ok(Some(vec![chunk]))
    }

    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

fn in_stream_error(err: &serde_json::Value) -> UpstreamError {
    let field = |k: &str| err.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    UpstreamError {
        status: 500,
        message: field("message").unwrap_or_else(|| err.to_string()),
        kind: field("type"),
        param: field("param"),
        code: err.get("code").cloned(),
        provider_label: "OpenAIException".to_owned(),
    }
}
