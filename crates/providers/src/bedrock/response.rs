//! Converse answer → OpenAI `chat.completion`.

use ferrolite_types::openai::chat::{MessageContent, ToolCall};
use ferrolite_types::openai::{ChatMessage, ChatResponse, Choice};
use ferrolite_types::{JsonMap, Usage};
use serde_json::{json, Value};

use super::RESPONSE_FORMAT_TOOL_NAME;
use crate::gemini::response::{completion_id, now_secs};
use crate::tool_calls::{self, take_json_tool};
use crate::{Target, TranslateError};

/// Converse `stopReason` → OpenAI `finish_reason` (LiteLLM's mapping).
pub(super) fn finish_reason(stop: Option<&str>) -> String {
    match stop {
        None | Some("end_turn" | "stop_sequence") => "stop",
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("guardrail_intervened" | "content_filtered") => "content_filter",
        Some(other) => other,
    }
    .to_owned()
}

/// Converse `usage` → OpenAI usage. `inputTokens` excludes cached tokens;
/// `prompt_tokens` includes them (input + cache reads + cache writes), as
/// LiteLLM reports it, with the cache counts alongside.
pub(super) fn usage(u: &Value) -> Usage {
    let get = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cache_read = get("cacheReadInputTokens");
    let cache_write = get("cacheWriteInputTokens");
    let prompt = get("inputTokens") + cache_read + cache_write;
    let mut out = Usage::new(prompt, get("outputTokens"));
    if let Some(total) = u.get("totalTokens").and_then(Value::as_u64) {
        out.total_tokens = total.max(out.total_tokens);
    }
    let mut extra = JsonMap::new();
    extra.insert("cache_creation_input_tokens".into(), cache_write.into());
    extra.insert("cache_read_input_tokens".into(), cache_read.into());
    extra.insert(
        "prompt_tokens_details".into(),
        json!({"cached_tokens": cache_read}),
    );
    out.extra = extra;
    out
}

/// A `reasoningContent` block → the `thinking_blocks` entry clients see,
/// and its text.
pub(super) fn thinking_block(rc: &Value) -> (Value, String) {
    if let Some(data) = rc.get("redactedContent") {
        return (
            json!({"type": "redacted_thinking", "data": data}),
            String::new(),
        );
    }
    let rt = rc.get("reasoningText").unwrap_or(&Value::Null);
    let text = rt
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut block = JsonMap::new();
    block.insert("type".into(), Value::String("thinking".into()));
    block.insert("thinking".into(), Value::String(text.clone()));
    if let Some(sig) = rt.get("signature").and_then(Value::as_str) {
        block.insert("signature".into(), Value::String(sig.to_owned()));
    }
    (Value::Object(block), text)
}

/// The `json_tool_call` input as message content. Bedrock sometimes wraps the
/// object in `{"properties": …}`; LiteLLM unwraps it, and so do we.
pub(super) fn json_tool_content(args: &str) -> String {
    match serde_json::from_str::<Value>(args) {
        Ok(Value::Object(o)) if o.len() == 1 && o.contains_key("properties") => o
            .get("properties")
            .map(Value::to_string)
            .unwrap_or_else(|| args.to_owned()),
        _ => args.to_owned(),
    }
}

pub(super) fn parse(body: &[u8], target: &Target) -> Result<ChatResponse, TranslateError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| TranslateError::InvalidResponse(e.to_string()))?;
    let output = v.get("output").ok_or_else(|| {
        TranslateError::InvalidResponse("Converse answer without `output`".into())
    })?;
    let blocks = output
        .get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);

    let mut text = String::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut thinking: Vec<Value> = Vec::new();
    let mut reasoning = String::new();
    for block in blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tu) = block.get("toolUse") {
            calls.push(tool_calls::from_block(tu, "toolUseId")?);
        } else if let Some(rc) = block.get("reasoningContent") {
            let (b, t) = thinking_block(rc);
            reasoning.push_str(&t);
            thinking.push(b);
        }
        // citationsContent, images, …: nothing an OpenAI message can carry.
    }

    let mut stop = v
        .get("stopReason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(args) = take_json_tool(&mut calls, RESPONSE_FORMAT_TOOL_NAME) {
        text = json_tool_content(&args);
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
    Ok(ChatResponse {
        id: completion_id(),
        object: "chat.completion".to_owned(),
        created: now_secs(),
        model: target.model.clone(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish_reason(stop.as_deref())),
            extra: JsonMap::new(),
        }],
        usage: Some(usage(v.get("usage").unwrap_or(&Value::Null))),
        extra: JsonMap::new(),
    })
}
