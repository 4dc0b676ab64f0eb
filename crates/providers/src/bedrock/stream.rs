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

use std::collections::HashMap;

use ferrolite_types::openai::chat::{FunctionCall, ToolCall};
use ferrolite_types::openai::chunk::{Delta, ToolCallDelta};
use ferrolite_types::openai::{ChatChunk, ChunkChoice};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::{JsonMap, Usage};
use serde_json::{json, Value};

use super::eventstream::EXCEPTION_EVENT;
use super::response::{finish_reason, usage};
use super::{error, RESPONSE_FORMAT_TOOL_NAME};
use crate::gemini::response::{completion_id, now_secs};
use crate::{StreamTranslator, Target, TranslateError};

#[derive(Debug, Clone, Copy)]
enum Block {
    /// A tool call: its OpenAI index and whether argument text was sent.
    ToolUse { index: u32, has_args: bool },
    /// The `response_format` tool: its input is streamed as content.
    JsonTool,
}

pub struct BedrockStream {
    id: String,
    model: String,
    created: u64,
    role_sent: bool,
    blocks: HashMap<u64, Block>,
    next_tool_index: u32,
    json_tool_used: bool,
    usage: Option<Usage>,
}

impl BedrockStream {
    pub fn new(target: &Target) -> Self {
        Self {
            id: completion_id(),
            model: target.model.clone(),
            created: now_secs(),
            role_sent: false,
            blocks: HashMap::new(),
            next_tool_index: 0,
            json_tool_used: false,
            usage: None,
        }
    }

    fn chunk(&mut self, mut delta: Delta, finish: Option<String>) -> ChatChunk {
        if !self.role_sent {
            delta.role = Some("assistant".to_owned());
            self.role_sent = true;
        }
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                extra: JsonMap::new(),
            }],
            usage: None,
            extra: JsonMap::new(),
        }
    }

    fn text(&mut self, text: &str) -> ChatChunk {
        self.chunk(
            Delta {
                content: Some(text.to_owned()),
                ..Delta::default()
            },
            None,
        )
    }

    fn tool_delta(&mut self, call: ToolCallDelta) -> ChatChunk {
        self.chunk(
            Delta {
                tool_calls: Some(vec![call]),
                ..Delta::default()
            },
            None,
        )
    }

    fn extra_delta(&mut self, extra: JsonMap) -> ChatChunk {
        self.chunk(
            Delta {
                extra,
                ..Delta::default()
            },
            None,
        )
    }

    fn on_block_start(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let index = block_index(ev);
        let Some(tu) = ev.get("start").and_then(|s| s.get("toolUse")) else {
            return Vec::new();
        };
        let field = |k: &str| tu.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let name = field("name");
        if name == RESPONSE_FORMAT_TOOL_NAME {
            self.json_tool_used = true;
            self.blocks.insert(index, Block::JsonTool);
            return Vec::new();
        }
        let tool_index = self.next_tool_index;
        self.next_tool_index += 1;
        self.blocks.insert(
            index,
            Block::ToolUse {
                index: tool_index,
                has_args: false,
            },
        );
        vec![self.tool_delta(ToolCallDelta {
            index: tool_index,
            call: ToolCall {
                id: Some(field("toolUseId")),
                kind: Some("function".to_owned()),
                function: Some(FunctionCall {
                    name: Some(name),
                    arguments: Some(String::new()),
                    extra: JsonMap::new(),
                }),
                extra: JsonMap::new(),
            },
        })]
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
                vec![self.text(text)]
            };
        }
        if let Some(tu) = delta.get("toolUse") {
            let part = tu.get("input").and_then(Value::as_str).unwrap_or("");
            if part.is_empty() {
                return Vec::new();
            }
            return match self.blocks.get(&index).copied() {
                Some(Block::ToolUse { index: ti, .. }) => {
                    self.blocks.insert(
                        index,
                        Block::ToolUse {
                            index: ti,
                            has_args: true,
                        },
                    );
                    vec![self.tool_delta(args_delta(ti, part))]
                }
                Some(Block::JsonTool) => vec![self.text(part)],
                // Input for a block that never started: nothing to attach it to.
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
            return vec![self.extra_delta(extra)];
        }
        Vec::new()
    }

    fn on_block_stop(&mut self, ev: &Value) -> Vec<ChatChunk> {
        match self.blocks.remove(&block_index(ev)) {
            // A tool called without arguments streams no input: send `{}` so
            // the arguments still parse.
            Some(Block::ToolUse {
                index,
                has_args: false,
            }) => vec![self.tool_delta(args_delta(index, "{}"))],
            _ => Vec::new(),
        }
    }

    fn on_message_stop(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let stop = ev.get("stopReason").and_then(Value::as_str);
        let finish = if self.json_tool_used && stop == Some("tool_use") {
            "stop".to_owned()
        } else {
            finish_reason(stop)
        };
        vec![self.chunk(Delta::default(), Some(finish))]
    }

    fn on_metadata(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let Some(u) = ev.get("usage") else {
            return Vec::new();
        };
        let u = usage(u);
        self.usage = Some(u.clone());
        vec![ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: Vec::new(),
            usage: Some(u),
            extra: JsonMap::new(),
        }]
    }
}

fn block_index(ev: &Value) -> u64 {
    ev.get("contentBlockIndex")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn args_delta(index: u32, args: &str) -> ToolCallDelta {
    ToolCallDelta {
        index,
        call: ToolCall {
            id: None,
            kind: None,
            function: Some(FunctionCall {
                name: None,
                arguments: Some(args.to_owned()),
                extra: JsonMap::new(),
            }),
            extra: JsonMap::new(),
        },
    }
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
