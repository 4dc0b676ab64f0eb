//! Anthropic SSE events → OpenAI `chat.completion.chunk`s.
//!
//! Anthropic streams typed events: `message_start`, then per content block
//! `content_block_start` / `content_block_delta`… / `content_block_stop`,
//! then `message_delta` (stop reason, output usage) and `message_stop`;
//! `ping` and `error` may come at any point. The translator keeps the message
//! id, the OpenAI tool-call index of every `tool_use` block and the usage.

use std::collections::HashMap;

use ferrolite_types::openai::chat::{FunctionCall, ToolCall};
use ferrolite_types::openai::chunk::{Delta, ToolCallDelta};
use ferrolite_types::openai::{ChatChunk, ChunkChoice};
use ferrolite_types::sse::SseEvent;
use ferrolite_types::{JsonMap, Usage};
use serde_json::{json, Value};

use super::response::{finish_reason, now_secs, thinking_block, TokenCounts};
use super::{error, RESPONSE_FORMAT_TOOL_NAME};
use crate::{StreamTranslator, Target, TranslateError};

/// What an open content block turns into.
#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    /// A tool call: its OpenAI index and whether any argument text was sent.
    ToolUse {
        index: u32,
        has_args: bool,
    },
    /// The `response_format` tool: its input is streamed as content.
    JsonTool,
    Thinking,
    Other,
}

pub struct AnthropicStream {
    id: String,
    model: String,
    created: u64,
    role_sent: bool,
    blocks: HashMap<u64, Block>,
    next_tool_index: u32,
    json_tool_used: bool,
    counts: TokenCounts,
    usage: Option<Usage>,
}

impl AnthropicStream {
    pub fn new(target: &Target) -> Self {
        Self {
            id: String::new(),
            model: target.model.clone(),
            created: now_secs(),
            role_sent: false,
            blocks: HashMap::new(),
            next_tool_index: 0,
            json_tool_used: false,
            counts: TokenCounts::default(),
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

    fn usage_chunk(&self, usage: Usage) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: Vec::new(),
            usage: Some(usage),
            extra: JsonMap::new(),
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
            self.id = id.to_owned();
        }
        if let Some(model) = msg.get("model").and_then(Value::as_str) {
            self.model = model.to_owned();
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
        let kind = match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = str_field("text");
                if !text.is_empty() {
                    out.push(self.text(text));
                }
                Block::Text
            }
            Some("tool_use") if str_field("name") == RESPONSE_FORMAT_TOOL_NAME => {
                self.json_tool_used = true;
                Block::JsonTool
            }
            Some("tool_use") => {
                let tool_index = self.next_tool_index;
                self.next_tool_index += 1;
                out.push(self.tool_delta(ToolCallDelta {
                    index: tool_index,
                    call: ToolCall {
                        id: Some(str_field("id").to_owned()),
                        kind: Some("function".to_owned()),
                        function: Some(FunctionCall {
                            name: Some(str_field("name").to_owned()),
                            arguments: Some(String::new()),
                            extra: JsonMap::new(),
                        }),
                        extra: JsonMap::new(),
                    },
                }));
                Block::ToolUse {
                    index: tool_index,
                    has_args: false,
                }
            }
            Some("thinking") => {
                let thinking = str_field("thinking");
                if !thinking.is_empty() {
                    out.push(self.extra_delta(thinking_extra(thinking, "")));
                }
                Block::Thinking
            }
            Some("redacted_thinking") => {
                let mut extra = JsonMap::new();
                extra.insert(
                    "thinking_blocks".into(),
                    Value::Array(vec![thinking_block(block)]),
                );
                out.push(self.extra_delta(extra));
                Block::Other
            }
            _ => Block::Other,
        };
        self.blocks.insert(index, kind);
        out
    }

    fn on_block_delta(&mut self, ev: &Value) -> Vec<ChatChunk> {
        let index = block_index(ev);
        let Some(delta) = ev.get("delta") else {
            return Vec::new();
        };
        let str_field = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or("");
        let block = self.blocks.get(&index).copied().unwrap_or(Block::Other);
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => {
                let text = str_field("text");
                if text.is_empty() {
                    Vec::new()
                } else {
                    vec![self.text(text)]
                }
            }
            Some("input_json_delta") => {
                let part = str_field("partial_json");
                if part.is_empty() {
                    return Vec::new();
                }
                match block {
                    Block::ToolUse { index: ti, .. } => {
                        self.blocks.insert(
                            index,
                            Block::ToolUse {
                                index: ti,
                                has_args: true,
                            },
                        );
                        vec![self.tool_delta(args_delta(ti, part))]
                    }
                    Block::JsonTool => vec![self.text(part)],
                    _ => Vec::new(),
                }
            }
            Some("thinking_delta") => {
                let thinking = str_field("thinking");
                if thinking.is_empty() {
                    Vec::new()
                } else {
                    vec![self.extra_delta(thinking_extra(thinking, ""))]
                }
            }
            Some("signature_delta") => {
                let mut extra = JsonMap::new();
                extra.insert(
                    "thinking_blocks".into(),
                    json!([{"type": "thinking", "thinking": "", "signature": str_field("signature")}]),
                );
                vec![self.extra_delta(extra)]
            }
            // citations_delta and future delta types carry nothing OpenAI
            // clients can use.
            _ => Vec::new(),
        }
    }

    fn on_block_stop(&mut self, ev: &Value) -> Vec<ChatChunk> {
        match self.blocks.remove(&block_index(ev)) {
            // A tool called without arguments streams no input_json_delta:
            // send `{}` so the arguments still parse (LiteLLM does the same).
            Some(Block::ToolUse {
                index,
                has_args: false,
            }) => vec![self.tool_delta(args_delta(index, "{}"))],
            _ => Vec::new(),
        }
    }

    fn on_message_delta(&mut self, ev: &Value) -> Vec<ChatChunk> {
        if let Some(u) = ev.get("usage") {
            self.set_usage(u);
        }
        let stop = ev
            .get("delta")
            .and_then(|d| d.get("stop_reason"))
            .and_then(Value::as_str);
        // The response_format tool's input went out as content: the client
        // sees an ordinary answer.
        let finish = if self.json_tool_used && stop == Some("tool_use") {
            "stop".to_owned()
        } else {
            finish_reason(stop)
        };
        let mut out = vec![self.chunk(Delta::default(), Some(finish))];
        if let Some(u) = self.usage.clone() {
            out.push(self.usage_chunk(u));
        }
        out
    }
}

fn block_index(ev: &Value) -> u64 {
    ev.get("index").and_then(Value::as_u64).unwrap_or(0)
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
