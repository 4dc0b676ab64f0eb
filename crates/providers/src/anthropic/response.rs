//! Anthropic message → OpenAI `chat.completion`.

use std::time::{SystemTime, UNIX_EPOCH};

use ferrolite_types::openai::chat::{MessageContent, ToolCall};
use ferrolite_types::openai::{ChatMessage, ChatResponse, Choice};
use ferrolite_types::{JsonMap, Usage};
use serde_json::{json, Value};

use super::{error, RESPONSE_FORMAT_TOOL_NAME};
use crate::tool_calls::{self, take_json_tool};
use crate::{Target, TranslateError};

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub(super) fn finish_reason(stop_reason: Option<&str>) -> String {
    match stop_reason {
        None | Some("end_turn" | "stop_sequence" | "pause_turn") => "stop",
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        Some(other) => other,
    }
    .to_owned()
}

/// Anthropic's token counts, kept as they come so that stream events can
/// update them piecemeal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TokenCounts {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
}

impl TokenCounts {
    /// Overwrite every count the `usage` object carries (nulls are skipped).
    pub fn update(&mut self, usage: &Value) {
        let get = |k: &str| usage.get(k).and_then(Value::as_u64);
        if let Some(v) = get("input_tokens") {
            self.input = v;
        }
        if let Some(v) = get("output_tokens") {
            self.output = v;
        }
        if let Some(v) = get("cache_read_input_tokens") {
            self.cache_read = v;
        }
        if let Some(v) = get("cache_creation_input_tokens") {
            self.cache_creation = v;
        }
    }

    /// OpenAI usage. Anthropic's `input_tokens` excludes cached tokens, while
    /// OpenAI's `prompt_tokens` includes them: prompt = input + cache reads +
    /// cache writes, as current LiteLLM reports it. The Anthropic counts and
    /// `prompt_tokens_details` ride along in `extra`.
    pub fn to_usage(self) -> Usage {
        let prompt = self.input + self.cache_read + self.cache_creation;
        let mut u = Usage::new(prompt, self.output);
        let mut extra = JsonMap::new();
        extra.insert(
            "cache_creation_input_tokens".into(),
            self.cache_creation.into(),
        );
        extra.insert("cache_read_input_tokens".into(), self.cache_read.into());
        extra.insert(
            "prompt_tokens_details".into(),
            json!({
                "cached_tokens": self.cache_read,
                "cache_creation_tokens": self.cache_creation,
            }),
        );
        u.extra = extra;
        u
    }
}

/// The `{"type":"thinking",…}` / `{"type":"redacted_thinking",…}` block as
/// clients see it in `thinking_blocks`.
pub(super) fn thinking_block(block: &Value) -> Value {
    match block.get("type").and_then(Value::as_str) {
        Some("redacted_thinking") => json!({
            "type": "redacted_thinking",
            "data": block.get("data").cloned().unwrap_or(Value::Null),
        }),
        _ => json!({
            "type": "thinking",
            "thinking": block.get("thinking").and_then(Value::as_str).unwrap_or(""),
            "signature": block.get("signature").and_then(Value::as_str).unwrap_or(""),
        }),
    }
}

pub(crate) fn parse(body: &[u8], target: &Target) -> Result<ChatResponse, TranslateError> {
    let msg: Value =
        serde_json::from_slice(body).map_err(|e| TranslateError::InvalidResponse(e.to_string()))?;
    if msg.get("type").and_then(Value::as_str) == Some("error") {
        return Err(TranslateError::Upstream(Box::new(error::stream_error(
            &msg,
        ))));
    }
    let blocks = msg
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::InvalidResponse("message without `content`".into()))?;

    let mut text = String::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut thinking: Vec<Value> = Vec::new();
    let mut reasoning = String::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(tool_calls::from_block(block, "id")?),
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""));
                thinking.push(thinking_block(block));
            }
            Some("redacted_thinking") => thinking.push(thinking_block(block)),
            // server_tool_use, web_search_tool_result, …: not expressible in
            // an OpenAI message.
            _ => {}
        }
    }

    let mut stop = msg
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);

    // `response_format` was sent as a forced `json_tool_call` tool: its input
    // is the answer. (LiteLLM knows this from the request; the reserved tool
    // name tells us the same.)
    if let Some(args) = take_json_tool(&mut calls, RESPONSE_FORMAT_TOOL_NAME) {
        text = args;
        stop = Some("end_turn".into());
    }

    let mut extra = JsonMap::new();
    if !thinking.is_empty() {
        extra.insert("reasoning_content".into(), Value::String(reasoning));
        extra.insert("thinking_blocks".into(), Value::Array(thinking));
    }
    let message = ChatMessage {
        role: "assistant".to_owned(),
        content: (!text.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
        name: None,
        extra,
    };

    let mut counts = TokenCounts::default();
    if let Some(u) = msg.get("usage") {
        counts.update(u);
    }

    Ok(ChatResponse {
        id: msg
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        object: "chat.completion".to_owned(),
        created: now_secs(),
        model: msg
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(&target.model)
            .to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish_reason(stop.as_deref())),
            extra: JsonMap::new(),
        }],
        usage: Some(counts.to_usage()),
        extra: JsonMap::new(),
    })
}
