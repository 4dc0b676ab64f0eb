//! Chat stream chunks → Anthropic SSE events.
//!
//! Anthropic streams a message as `message_start`, then each content block
//! as `content_block_start` / `content_block_delta`… / `content_block_stop`,
//! then `message_delta` (stop reason and usage) and `message_stop`. Chat
//! chunks carry no block structure, so [`EventWriter`] opens a block when
//! the kind of delta changes (thinking, text, one block per tool call) and
//! closes it when the next starts. Chat reports usage at the end; so
//! `message_start` carries zero counts and `message_delta` the real ones
//! (input tokens included, as Anthropic's own `message_delta` does).

use ferrolite_types::openai::ChatChunk;
use ferrolite_types::Usage;
use serde_json::{json, Value};

use super::response::{stop_reason, usage as anthropic_usage};

/// Append one Anthropic SSE event to `out`.
pub fn write_event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A tool call, by its chat tool-call index.
    Tool(u32),
}

/// Turns chat chunks into Anthropic events. Stateful: the open block, block
/// indexes, the stop reason and the usage.
pub struct EventWriter {
    id: String,
    model: String,
    started: bool,
    open: Option<Block>,
    /// Index of the next content block.
    next: u64,
    tools_seen: Vec<u32>,
    stop: Option<&'static str>,
    usage: Option<Usage>,
    ended: bool,
    /// Characters of answer written (text, thinking, tool input).
    relayed: u64,
}

impl EventWriter {
    pub fn new(model: &str) -> Self {
        Self {
            id: String::new(),
            model: model.to_owned(),
            started: false,
            open: None,
            next: 0,
            tools_seen: Vec::new(),
            stop: None,
            usage: None,
            ended: false,
            relayed: 0,
        }
    }

    /// Whether the chat stream gave its finish reason.
    pub fn finished(&self) -> bool {
        self.stop.is_some()
    }

    /// Whether `message_stop` was written.
    pub fn ended(&self) -> bool {
        self.ended
    }

    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    pub fn relayed_bytes(&self) -> u64 {
        self.relayed
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = super::response::message_id(&self.id);
        write_event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            }}),
        );
        write_event(out, "ping", &json!({"type": "ping"}));
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            write_event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.next - 1}),
            );
        }
    }

    fn open_block(&mut self, kind: Block, block: Value, out: &mut Vec<u8>) -> u64 {
        self.close(out);
        let index = self.next;
        self.next += 1;
        self.open = Some(kind);
        write_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    /// The index of the open block of this kind, opening one if needed.
    fn ensure(&mut self, kind: Block, out: &mut Vec<u8>) -> u64 {
        if self.open == Some(kind) {
            return self.next - 1;
        }
        let block = match kind {
            Block::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            _ => json!({"type": "text", "text": ""}),
        };
        self.open_block(kind, block, out)
    }

    fn delta(out: &mut Vec<u8>, index: u64, delta: Value) {
        write_event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn thinking(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.relayed += text.len() as u64;
        let i = self.ensure(Block::Thinking, out);
        Self::delta(out, i, json!({"type": "thinking_delta", "thinking": text}));
    }

    /// `thinking_blocks` in a delta: signatures, redacted blocks, and the
    /// thinking text when `reasoning_content` did not carry it.
    fn thinking_blocks(&mut self, blocks: &[Value], text_given: bool, out: &mut Vec<u8>) {
        for b in blocks {
            match b.get("type").and_then(Value::as_str) {
                Some("redacted_thinking") => {
                    let data = b.get("data").cloned().unwrap_or(Value::Null);
                    self.open_block(
                        Block::Text,
                        json!({"type": "redacted_thinking", "data": data}),
                        out,
                    );
                    // A redacted block has no deltas: close it at once.
                    self.close(out);
                }
                _ => {
                    if !text_given {
                        let t = b.get("thinking").and_then(Value::as_str).unwrap_or("");
                        self.thinking(t, out);
                    }
                    let sig = b.get("signature").and_then(Value::as_str).unwrap_or("");
                    if !sig.is_empty() {
                        let i = self.ensure(Block::Thinking, out);
                        Self::delta(out, i, json!({"type": "signature_delta", "signature": sig}));
                    }
                }
            }
        }
    }

    /// One chat chunk in; events appended to `out`.
    pub fn on_chunk(&mut self, chunk: &ChatChunk, out: &mut Vec<u8>) {
        if self.id.is_empty() && !chunk.id.is_empty() {
            self.id.clone_from(&chunk.id);
        }
        self.start(out);
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else {
            return;
        };
        let d = &choice.delta;
        let reasoning = d
            .extra
            .get("reasoning_content")
            .or_else(|| d.extra.get("reasoning"))
            .and_then(Value::as_str)
            .unwrap_or("");
        self.thinking(reasoning, out);
        if let Some(Value::Array(blocks)) = d.extra.get("thinking_blocks") {
            self.thinking_blocks(blocks, !reasoning.is_empty(), out);
        }
        if let Some(text) = d.content.as_deref().filter(|t| !t.is_empty()) {
            self.relayed += text.len() as u64;
            let i = self.ensure(Block::Text, out);
            Self::delta(out, i, json!({"type": "text_delta", "text": text}));
        }
        for call in d.tool_calls.iter().flatten() {
            let f = call.call.function.as_ref();
            if !self.tools_seen.contains(&call.index) {
                self.tools_seen.push(call.index);
                let id = call
                    .call
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("toolu_{:02}", call.index));
                let name = f.and_then(|f| f.name.clone()).unwrap_or_default();
                self.open_block(
                    Block::Tool(call.index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                );
            }
            let args = f.and_then(|f| f.arguments.as_deref()).unwrap_or("");
            if !args.is_empty() {
                self.relayed += args.len() as u64;
                // Arguments of an earlier call arriving late go to the open
                // block only if it is that call's; otherwise they cannot be
                // placed and are dropped (chat upstreams stream calls in order).
                if self.open == Some(Block::Tool(call.index)) {
                    let i = self.next - 1;
                    Self::delta(
                        out,
                        i,
                        json!({"type": "input_json_delta", "partial_json": args}),
                    );
                }
            }
        }
        if let Some(f) = choice.finish_reason.as_deref() {
            let mut stop = stop_reason(Some(f));
            if stop == "end_turn" && !self.tools_seen.is_empty() {
                stop = "tool_use";
            }
            self.stop = Some(stop);
            self.close(out);
        }
    }

    /// Close the message: the open block, `message_delta` with the stop
    /// reason and usage, and `message_stop`.
    pub fn end(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.start(out);
        self.close(out);
        self.ended = true;
        let stop = self.stop.unwrap_or(if self.tools_seen.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        });
        write_event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": null},
                    "usage": anthropic_usage(self.usage.as_ref())}),
        );
        write_event(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

/// The events that stream a complete Anthropic message (for answers the
/// gateway makes itself, such as `mock_response`).
pub fn events_for_message(msg: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = msg.clone();
    if let Some(o) = start.as_object_mut() {
        o.insert("content".into(), json!([]));
        o.insert("stop_reason".into(), Value::Null);
        let input = msg["usage"]["input_tokens"].as_u64().unwrap_or(0);
        o.insert(
            "usage".into(),
            json!({"input_tokens": input, "output_tokens": 0}),
        );
    }
    write_event(
        &mut out,
        "message_start",
        &json!({"type": "message_start", "message": start}),
    );
    write_event(&mut out, "ping", &json!({"type": "ping"}));
    let empty = Vec::new();
    let blocks = msg["content"].as_array().unwrap_or(&empty);
    for (i, b) in blocks.iter().enumerate() {
        let (start_block, delta) = match b["type"].as_str() {
            Some("text") => (
                json!({"type": "text", "text": ""}),
                Some(json!({"type": "text_delta", "text": b["text"]})),
            ),
            Some("thinking") => (
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                Some(json!({"type": "thinking_delta", "thinking": b["thinking"]})),
            ),
            Some("tool_use") => (
                json!({"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}),
                Some(json!({"type": "input_json_delta", "partial_json": b["input"].to_string()})),
            ),
            _ => (b.clone(), None),
        };
        write_event(
            &mut out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": i, "content_block": start_block}),
        );
        if let Some(d) = delta {
            write_event(
                &mut out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": i, "delta": d}),
            );
        }
        if b["type"] == "thinking" {
            let sig = b["signature"].as_str().unwrap_or("");
            if !sig.is_empty() {
                write_event(
                    &mut out,
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": i,
                            "delta": {"type": "signature_delta", "signature": sig}}),
                );
            }
        }
        write_event(
            &mut out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": i}),
        );
    }
    write_event(
        &mut out,
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": msg["stop_sequence"]},
                "usage": msg["usage"]}),
    );
    write_event(&mut out, "message_stop", &json!({"type": "message_stop"}));
    out
}

/// An `event: error` frame.
pub fn error_event(out: &mut Vec<u8>, body: &Value) {
    write_event(out, "error", body);
}
