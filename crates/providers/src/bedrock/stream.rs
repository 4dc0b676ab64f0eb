//! ConverseStream events → OpenAI `chat.completion.chunk`s.
//!
//! The event-stream decoder hands over one event per frame, named by its
//! `:event-type`: `messageStart` (role), then per content block an optional
//! `contentBlockStart` (tool calls only), `contentBlockDelta`s (text, tool
//! input fragments, reasoning) and `contentBlockStop`, then `messageStop`
//! (the stop reason) and `metadata` (usage, metrics). Payloads carry a
//! padding member `p`, ignored here. Exceptions arrive as
//! [`EXCEPTION_EVENT`] and become upstream errors.
//!
//! The finish chunk goes out on `messageStop`; `metadata` (the last event)
//! yields the usage-only chunk. The stream then ends when Bedrock closes it,
//! which the relay treats as a clean end because a finish reason was sent.

use ferrolite_types::openai::chunk::Delta;
use ferrolite_types::openai::ChatChunk;
use ferrolite_types::sse::SseEvent;
use ferrolite_types::{JsonMap, Usage};
use serde_json::{json, Value};

use super::eventstream::EXCEPTION_EVENT;
use super::response::{finish_reason, usage};
use super::{error, RESPONSE_FORMAT_TOOL_NAME};
use crate::chunks::ChunkWriter;
use crate::gemini::response::{completion_id, now_secs};
use crate::tool_calls::{Input, ToolBlocks};
use crate::{StreamTranslator, Target, TranslateError};

pub struct BedrockStream {
    out: ChunkWriter,
    tools: ToolBlocks,
    usage: Option<Usage>,
}

impl BedrockStream {
    pub fn new(target: &Target) -> Self {
        Self {
            out: ChunkWriter::new(completion_id(), target.model.clone(), now_secs()),
            tools: ToolBlocks::default(),
            usage: None,
        }
    }

    fn on_block_start(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let index = block_index(ev);
        let Some(tu) = ev.get("start").and_then(|s| s.get("toolUse")) else {
            return Vec::new();
        };
        let field = |k: &str| tu.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let name = field("name");
        if name == RESPONSE_FORMAT_TOOL_NAME {
            self.tools.start_json_tool(index);
            return Vec::new();
        }
        let call = self.tools.start_call(index, field("toolUseId"), name);
        vec![self.out.tool_delta(call)]
    }

    fn on_block_delta(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let index = block_index(ev);
        let Some(delta) = ev.get("delta") else {
            return Vec::new();
        };
        if let Some(text) = delta.get("text").and_then(Value::as_str) {
            return if text.is_empty() {
                Vec::new()
            } else {
                vec![self.out.text(text)]
            };
        }
        if let Some(tu) = delta.get("toolUse") {
            let part = tu.get("input").and_then(Value::as_str).unwrap_or("");
            return match self.tools.input(index, part) {
                Some(Input::Args(call)) => vec![self.out.tool_delta(call)],
                Some(Input::Content(part)) => vec![self.out.text(part)],
                // Empty, or input for a block that never started: nothing to
                // attach it to.
                None => Vec::new(),
            };
        }
        if let Some(rc) = delta.get("reasoningContent") {
            let mut extra = JsonMap::new();
            if let Some(text) = rc.get("text").and_then(Value::as_str) {
                if text.is_empty() {
                    return Vec::new();
                }
                extra.insert("reasoning_content".into(), Value::String(text.to_owned()));
                extra.insert(
                    "thinking_blocks".into(),
                    json!([{"type": "thinking", "thinking": text, "signature": ""}]),
                );
            } else if let Some(sig) = rc.get("signature").and_then(Value::as_str) {
                extra.insert(
                    "thinking_blocks".into(),
                    json!([{"type": "thinking", "thinking": "", "signature": sig}]),
                );
            } else if let Some(data) = rc.get("redactedContent") {
                extra.insert(
                    "thinking_blocks".into(),
                    json!([{"type": "redacted_thinking", "data": data}]),
                );
            } else {
                return Vec::new();
            }
            return vec![self.out.extra_delta(extra)];
        }
        Vec::new()
    }

    fn on_block_stop(&mut self, ev: &Value) -> Vec<ChatChunk> {
        self.tools
            .stop(block_index(ev))
            .map(|call| self.out.tool_delta(call))
            .into_iter()
            .collect()
    }

    fn on_message_stop(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let stop = ev.get("stopReason").and_then(Value::as_str);
        let finish = self.tools.finish_reason(stop, finish_reason);
        vec![self.out.chunk(Delta::default(), Some(finish))]
    }

    fn on_metadata(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let Some(u) = ev.get("usage") else {
            return Vec::new();
        };
        let u = usage(u);
        self.usage = Some(u.clone());
        vec![self.out.usage_chunk(u)]
    }
}

fn block_index(ev: &Value) -> u64 {
    ev.get("contentBlockIndex")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

impl StreamTranslator for BedrockStream {
    fn on_event(&mut self, ev: &SseEvent) -> Result<Option<Vec<ChatChunk>>, TranslateError> {
        let kind = ev.event.as_deref().unwrap_or("");
        if kind == EXCEPTION_EVENT {
            return Err(TranslateError::Upstream(Box::new(error::stream_exception(
                &ev.data,
            ))));
        }
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let payload: Value = serde_json::from_str(data)
            .map_err(|e| TranslateError::InvalidResponse(format!("bad stream event: {e}")))?;
        let chunks = match kind {
            "messageStart" => Vec::new(),
            "contentBlockStart" => self.on_block_start(&payload),
            "contentBlockDelta" => self.on_block_delta(&payload),
            "contentBlockStop" => self.on_block_stop(&payload),
            "messageStop" => self.on_message_stop(&payload),
            "metadata" => self.on_metadata(&payload),
            // Event types added later.
            _ => Vec::new(),
        };
        Ok(Some(chunks))
    }

    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}
