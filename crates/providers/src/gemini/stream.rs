//! `streamGenerateContent?alt=sse`: every `data:` is a whole
//! `GenerateContentResponse` holding the next slice of each candidate. There
//! is no end marker; the chunk carrying the finish reason is the end, and the
//! usage-only chunk goes out with it.

use ferrolite_types::openai::chunk::{ChunkChoice, Delta, ToolCallDelta};
use ferrolite_types::openai::ChatChunk;
use ferrolite_types::sse::SseEvent;
use ferrolite_types::{JsonMap, Usage};
use serde_json::Value;

use super::error;
use super::response::{self, GenerateContentResponse};
use crate::{StreamTranslator, TranslateError};

/// Per-candidate bookkeeping.
#[derive(Debug, Clone, Copy)]
struct CandidateState {
    index: u32,
    role_sent: bool,
    has_tool_calls: bool,
    finished: bool,
}

pub struct GeminiStream {
    label: String,
    model: String,
    /// Fixed by the first event: the upstream's `responseId`, else generated.
    id: Option<String>,
    created: u64,
    /// Tool calls are numbered across the whole stream.
    next_tool_index: u32,
    candidates: Vec<CandidateState>,
    usage: Option<Usage>,
    usage_sent: bool,
}

impl GeminiStream {
    /// `model` names the chunks until the upstream reports `modelVersion`;
    /// `label` names in-stream errors ("GeminiException").
    pub fn new(model: &str, label: &str) -> Self {
        Self {
            label: label.to_owned(),
            model: model.to_owned(),
            id: None,
            created: response::now_secs(),
            next_tool_index: 0,
            candidates: Vec::new(),
            usage: None,
            usage_sent: false,
        }
    }

    fn state(&mut self, index: u32) -> &mut CandidateState {
        let pos = match self.candidates.iter().position(|c| c.index == index) {
            Some(p) => p,
            None => {
                self.candidates.push(CandidateState {
                    index,
                    role_sent: false,
                    has_tool_calls: false,
                    finished: false,
                });
                self.candidates.len() - 1
            }
        };
        &mut self.candidates[pos]
    }

    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone().unwrap_or_default(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
            extra: JsonMap::new(),
        }
    }

    fn translate(&mut self, r: &GenerateContentResponse) -> Vec<ChatChunk> {
        if self.id.is_none() {
            self.id = Some(
                r.response_id
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(response::completion_id),
            );
            if let Some(v) = r.model_version.as_ref().filter(|s| !s.is_empty()) {
                self.model = v.clone();
            }
        }
        if let Some(u) = &r.usage_metadata {
            self.usage = Some(response::usage(u));
        }

        let mut out = Vec::new();
        if r.prompt_blocked() {
            let state = self.state(0);
            let role = (!state.role_sent).then(|| "assistant".to_owned());
            state.role_sent = true;
            state.finished = true;
            let choice = ChunkChoice {
                index: 0,
                delta: Delta {
                    role,
                    ..Delta::default()
                },
                finish_reason: Some("content_filter".to_owned()),
                extra: JsonMap::new(),
            };
            out.push(self.chunk(vec![choice], None));
        }

        for (pos, c) in r.candidates.iter().enumerate() {
            let index = c.index.unwrap_or(u32::try_from(pos).unwrap_or(u32::MAX));
            let p = c
                .content
                .as_ref()
                .map(|c| response::pieces(&c.parts))
                .unwrap_or_default();
            let mut tool_calls = Vec::with_capacity(p.tool_calls.len());
            for call in p.tool_calls {
                tool_calls.push(ToolCallDelta {
                    index: self.next_tool_index,
                    call,
                });
                self.next_tool_index += 1;
            }
            let state = self.state(index);
            state.has_tool_calls |= !tool_calls.is_empty();
            let finish = c
                .finish_reason
                .as_deref()
                .map(|f| response::finish_reason(f, state.has_tool_calls).to_owned());
            let empty = p.content.is_none() && p.reasoning.is_none() && tool_calls.is_empty();
            if empty && finish.is_none() && state.role_sent {
                continue;
            }
            let role = (!state.role_sent).then(|| "assistant".to_owned());
            state.role_sent = true;
            state.finished |= finish.is_some();
            let mut extra = JsonMap::new();
            if let Some(r) = p.reasoning {
                extra.insert("reasoning_content".into(), Value::String(r));
            }
            let choice = ChunkChoice {
                index,
                delta: Delta {
                    role,
                    content: p.content,
                    tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                    extra,
                },
                finish_reason: finish,
                extra: JsonMap::new(),
            };
            out.push(self.chunk(vec![choice], None));
        }

        let all_finished =
            !self.candidates.is_empty() && self.candidates.iter().all(|c| c.finished);
        if all_finished && !self.usage_sent {
            if let Some(u) = self.usage.clone() {
                self.usage_sent = true;
                out.push(self.chunk(Vec::new(), Some(u)));
            }
        }
        out
    }
}

impl StreamTranslator for GeminiStream {
    fn on_event(&mut self, ev: &SseEvent) -> Result<Option<Vec<ChatChunk>>, TranslateError> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(Some(Vec::new()));
        }
        if data == "[DONE]" {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| TranslateError::InvalidResponse(format!("bad stream chunk: {e}")))?;
        if let Some(err) = error::error_object(&v) {
            return Err(TranslateError::Upstream(Box::new(error::in_stream(
                err,
                &self.label,
            ))));
        }
        let r: GenerateContentResponse = serde_json::from_value(v)
            .map_err(|e| TranslateError::InvalidResponse(format!("bad stream chunk: {e}")))?;
        Ok(Some(self.translate(&r)))
    }

    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}
