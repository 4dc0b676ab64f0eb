//! Anthropic SSE events → OpenAI `chat.completion.chunk`s.
//!
//! Anthropic streams typed events: `message_start`, then per content block
//! `content_block_start` / `content_block_delta`… / `content_block_stop`,
//! then `message_delta` (stop reason, output usage) and `message_stop`;
//! `ping` and `error` may come at any point. The translator keeps the message
//! id, the OpenAI tool-call index of every `tool_use` block and the usage.

use ferrolite_types::openai::chunk::Delta;
use ferrolite_types::openai::ChatChunk;
use ferrolite_types::sse::SseEvent;
use ferrolite_types::{JsonMap, Usage};
use serde_json::{json, Value};

use super::response::{finish_reason, now_secs, thinking_block, TokenCounts};
use super::{error, RESPONSE_FORMAT_TOOL_NAME};
use crate::chunks::ChunkWriter;
use crate::tool_calls::{Input, ToolBlocks};
use crate::{StreamTranslator, Target, TranslateError};

pub struct AnthropicStream {
    out: ChunkWriter,
    tools: ToolBlocks,
    counts: TokenCounts,
    usage: Option<Usage>,
}

impl AnthropicStream {
    pub fn new(target: &Target) -> Self {
        Self {
            out: ChunkWriter::new(String::new(), target.model.clone(), now_secs()),
            tools: ToolBlocks::default(),
            counts: TokenCounts::default(),
            usage: None,
        }
    }

    fn set_usage(&mut self, usage: &Value) {
        self.counts.update(usage);
        self.usage = Some(self.counts.to_usage());
    }

    fn on_message_start(&mut self, ev: &Value) {
        let Some(msg) = ev.get("message") else {
            return;
        };
        if let Some(id) = msg.get("id").and_then(Value::as_str) {
            self.out.id = id.to_owned();
        }
        if let Some(model) = msg.get("model").and_then(Value::as_str) {
            self.out.model = model.to_owned();
        }
        if let Some(u) = msg.get("usage") {
            self.set_usage(u);
        }
    }

    fn on_block_start(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let index = block_index(ev);
        let Some(block) = ev.get("content_block") else {
            return Vec::new();
        };
        let str_field = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or("");
        let mut out = Vec::new();
        match block.get("type").and_then(Value::as_str) {
            Some("tool_use") if str_field("name") == RESPONSE_FORMAT_TOOL_NAME => {
                self.tools.start_json_tool(index);
            }
            Some("tool_use") => {
                let call = self.tools.start_call(
                    index,
                    str_field("id").to_owned(),
                    str_field("name").to_owned(),
                );
                out.push(self.out.tool_delta(call));
            }
            kind => {
                self.tools.start_other(index);
                match kind {
                    Some("text") => {
                        let text = str_field("text");
                        if !text.is_empty() {
                            out.push(self.out.text(text));
                        }
                    }
                    Some("thinking") => {
                        let thinking = str_field("thinking");
                        if !thinking.is_empty() {
                            out.push(self.out.extra_delta(thinking_extra(thinking, "")));
                        }
                    }
                    Some("redacted_thinking") => {
                        let mut extra = JsonMap::new();
                        extra.insert(
                            "thinking_blocks".into(),
                            Value::Array(vec![thinking_block(block)]),
                        );
                        out.push(self.out.extra_delta(extra));
                    }
                    _ => {}
                }
            }
        }
        out
    }

    fn on_block_delta(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let index = block_index(ev);
        let Some(delta) = ev.get("delta") else {
            return Vec::new();
        };
        let str_field = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or("");
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => {
                let text = str_field("text");
                if text.is_empty() {
                    Vec::new()
                } else {
                    vec![self.out.text(text)]
                }
            }
            Some("input_json_delta") => match self.tools.input(index, str_field("partial_json")) {
                Some(Input::Args(call)) => vec![self.out.tool_delta(call)],
                Some(Input::Content(part)) => vec![self.out.text(part)],
                None => Vec::new(),
            },
            Some("thinking_delta") => {
                let thinking = str_field("thinking");
                if thinking.is_empty() {
                    Vec::new()
                } else {
                    vec![self.out.extra_delta(thinking_extra(thinking, ""))]
                }
            }
            Some("signature_delta") => {
                let mut extra = JsonMap::new();
                extra.insert(
                    "thinking_blocks".into(),
                    json!([{"type": "thinking", "thinking": "", "signature": str_field("signature")}]),
                );
                vec![self.out.extra_delta(extra)]
            }
            // citations_delta and future delta types carry nothing OpenAI
            // clients can use.
            _ => Vec::new(),
        }
    }

    fn on_block_stop(&mut self, ev: &Value) -> Vec<ChatChunk> {
        self.tools
            .stop(block_index(ev))
            .map(|call| self.out.tool_delta(call))
            .into_iter()
            .collect()
    }

    fn on_message_delta(&mut self, ev: &Value) -> Vec<ChatChunk> {
        if let Some(u) = ev.get("usage") {
            self.set_usage(u);
        }
        let stop = ev
            .get("delta")
            .and_then(|d| d.get("stop_reason"))
            .and_then(Value::as_str);
        let finish = self.tools.finish_reason(stop, finish_reason);
        let mut out = vec![self.out.chunk(Delta::default(), Some(finish))];
        if let Some(u) = self.usage.clone() {
            out.push(self.out.usage_chunk(u));
        }
        out
    }
}

fn block_index(ev: &Value) -> u64 {
    ev.get("index").and_then(Value::as_u64).unwrap_or(0)
}

/// Delta fields for thinking text, shaped as LiteLLM streams them:
/// `reasoning_content` plus a partial `thinking_blocks` entry.
fn thinking_extra(thinking: &str, signature: &str) -> JsonMap {
    let mut extra = JsonMap::new();
    extra.insert(
        "reasoning_content".into(),
        Value::String(thinking.to_owned()),
    );
    extra.insert(
        "thinking_blocks".into(),
        json!([{"type": "thinking", "thinking": thinking, "signature": signature}]),
    );
    extra
}

impl StreamTranslator for AnthropicStream {
    fn on_event(&mut self, ev: &SseEvent) -> Result<Option<Vec<ChatChunk>>, TranslateError> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let payload: Value = serde_json::from_str(data)
            .map_err(|e| TranslateError::InvalidResponse(format!("bad stream event: {e}")))?;
        let kind = payload
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or("");
        let chunks = match kind {
            "message_start" => {
                self.on_message_start(&payload);
                Vec::new()
            }
            "content_block_start" => self.on_block_start(&payload),
            "content_block_delta" => self.on_block_delta(&payload),
            "content_block_stop" => self.on_block_stop(&payload),
            "message_delta" => self.on_message_delta(&payload),
            "message_stop" => return Ok(None),
            "error" => {
                return Err(TranslateError::Upstream(Box::new(error::stream_error(
                    &payload,
                ))))
            }
            // `ping` and event types added later.
            _ => Vec::new(),
        };
        Ok(Some(chunks))
    }

    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}
