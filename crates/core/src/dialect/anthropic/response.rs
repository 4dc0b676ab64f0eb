//! Chat answers → Anthropic Messages answers, and gateway errors in
//! Anthropic's error shape.

use ferrolite_types::openai::chat::{MessageContent, ToolCall};
use ferrolite_types::openai::{ChatMessage, ChatResponse};
use ferrolite_types::Usage;
use serde_json::{json, Value};

use crate::GatewayError;

/// A chat `finish_reason` as an Anthropic `stop_reason`.
pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Canonical usage → Anthropic usage. `prompt_tokens` counts cached tokens
/// too; Anthropic's `input_tokens` does not, so the cache reads and writes
/// are taken out of it.
pub fn usage(u: Option<&Usage>) -> Value {
    let Some(u) = u else {
        return json!({"input_tokens": 0, "output_tokens": 0});
    };
    let extra = |k: &str| u.extra.get(k).and_then(Value::as_u64);
    let details = |k: &str| {
        u.extra
            .get("prompt_tokens_details")
            .and_then(|d| d.get(k))
            .and_then(Value::as_u64)
    };
    let read = extra("cache_read_input_tokens")
        .or_else(|| details("cached_tokens"))
        .unwrap_or(0);
    let creation = extra("cache_creation_input_tokens")
        .or_else(|| details("cache_creation_tokens"))
        .unwrap_or(0);
    let input = u.prompt_tokens.saturating_sub(read + creation);
    json!({
        "input_tokens": input,
        "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
    })
}

/// Anthropic usage → canonical usage (for spend and `tpm` accounting).
pub fn canonical_usage(u: &Value) -> Usage {
    let get = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (read, creation) = (
        get("cache_read_input_tokens"),
        get("cache_creation_input_tokens"),
    );
    let mut out = Usage::new(get("input_tokens") + read + creation, get("output_tokens"));
    out.extra
        .insert("cache_read_input_tokens".into(), read.into());
    out.extra
        .insert("cache_creation_input_tokens".into(), creation.into());
    out.extra.insert(
        "prompt_tokens_details".into(),
        json!({"cached_tokens": read, "cache_creation_tokens": creation}),
    );
    out
}

/// A tool call's arguments as the `input` object (`{}` when they do not
/// parse: Anthropic clients expect an object).
pub fn tool_input(arguments: Option<&str>) -> Value {
    match arguments.map(str::trim).filter(|a| !a.is_empty()) {
        None => json!({}),
        Some(a) => match serde_json::from_str::<Value>(a) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!({}),
        },
    }
}

fn tool_use_block(call: &ToolCall, n: usize) -> Value {
    let f = call.function.as_ref();
    json!({
        "type": "tool_use",
        "id": call.id.clone().unwrap_or_else(|| format!("toolu_{n:02}")),
        "name": f.and_then(|f| f.name.clone()).unwrap_or_default(),
        "input": tool_input(f.and_then(|f| f.arguments.as_deref())),
    })
}

/// The thinking blocks of an assistant message: `thinking_blocks` (with
/// signatures) when the upstream gave them, else one block holding
/// `reasoning_content` (or `reasoning`) with an empty signature.
pub fn thinking_blocks(m: &ChatMessage) -> Vec<Value> {
    if let Some(Value::Array(blocks)) = m.extra.get("thinking_blocks") {
        let out: Vec<Value> = blocks
            .iter()
            .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                Some("redacted_thinking") => Some(json!({
                    "type": "redacted_thinking",
                    "data": b.get("data").cloned().unwrap_or(Value::Null),
                })),
                Some("thinking") => Some(json!({
                    "type": "thinking",
                    "thinking": b.get("thinking").and_then(Value::as_str).unwrap_or(""),
                    "signature": b.get("signature").and_then(Value::as_str).unwrap_or(""),
                })),
                _ => None,
            })
            .collect();
        if !out.is_empty() {
            return out;
        }
    }
    let reasoning = m
        .extra
        .get("reasoning_content")
        .or_else(|| m.extra.get("reasoning"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    match reasoning {
        Some(r) => vec![json!({"type": "thinking", "thinking": r, "signature": ""})],
        None => Vec::new(),
    }
}

fn content_text(c: Option<&MessageContent>) -> String {
    c.map(MessageContent::text).unwrap_or_default()
}

/// A chat answer as an Anthropic message, reported as `model`.
pub fn from_chat(resp: &ChatResponse, model: &str) -> Value {
    let choice = resp.choices.first();
    let mut content = Vec::new();
    if let Some(c) = choice {
        content.extend(thinking_blocks(&c.message));
        let text = content_text(c.message.content.as_ref());
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        for (n, call) in c.message.tool_calls.iter().flatten().enumerate() {
            content.push(tool_use_block(call, n));
        }
    }
    let mut stop = stop_reason(choice.and_then(|c| c.finish_reason.as_deref()));
    let has_tool_use = content.iter().any(|b| b["type"] == "tool_use");
    if has_tool_use && stop == "end_turn" {
        stop = "tool_use";
    }
    json!({
        "id": message_id(&resp.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage(resp.usage.as_ref()),
    })
}

/// A message id: the upstream's, with Anthropic's `msg_` prefix.
pub fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else if id.is_empty() {
        format!("msg_{}", uuid::Uuid::new_v4().simple())
    } else {
        format!("msg_{id}")
    }
}

/// Anthropic's error type for an HTTP status.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

const ANTHROPIC_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
];

/// The HTTP status and Anthropic error body for a gateway error. Unlike the
/// OpenAI routes, a model the gateway does not serve is `404 not_found_error`
/// (what Anthropic answers for an unknown model).
pub fn error(e: &GatewayError) -> (u16, Value) {
    let status = match e {
        GatewayError::UnknownModel(_) => 404,
        other => other.status(),
    };
    let kind = match e {
        GatewayError::Upstream { error, .. } => error
            .kind
            .as_deref()
            .filter(|k| ANTHROPIC_TYPES.contains(k))
            .unwrap_or_else(|| error_type_for_status(status)),
        GatewayError::Timeout { .. } => "timeout_error",
        _ => error_type_for_status(status),
    };
    let body = json!({
        "type": "error",
        "error": {"type": kind, "message": e.client_message()},
    });
    (status, body)
}
