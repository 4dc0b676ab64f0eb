//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`. The pieces
//! (parts, finish reasons, usage) are shared with the stream translator.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ferrolite_types::openai::chat::{FunctionCall, MessageContent, ToolCall};
use ferrolite_types::openai::{ChatMessage, ChatResponse, Choice};
use ferrolite_types::{JsonMap, Usage};
use serde::Deserialize;
use serde_json::{json, Value};

use super::thought;
use crate::TranslateError;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub response_id: Option<String>,
}

impl GenerateContentResponse {
    /// The prompt itself was blocked: no candidates, a block reason.
    pub fn prompt_blocked(&self) -> bool {
        self.candidates.is_empty()
            && self
                .prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Content {
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Part {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default)]
    pub thought_signature: Option<String>,
    #[serde(default)]
    pub function_call: Option<FunctionCallData>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FunctionCallData {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: u64,
    #[serde(default)]
    pub candidates_token_count: u64,
    #[serde(default)]
    pub total_token_count: u64,
    #[serde(default)]
    pub thoughts_token_count: Option<u64>,
    #[serde(default)]
    pub cached_content_token_count: Option<u64>,
}

// --------------------------------------------------------------- ids, time

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `len` random lowercase hex digits (std's randomly keyed hasher over a
/// counter and the clock; ids need uniqueness, not secrecy).
pub(crate) fn random_hex(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(nanos);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(len);
    out
}

pub(crate) fn completion_id() -> String {
    format!("chatcmpl-{}", random_hex(32))
}

// ------------------------------------------------------------------ pieces

/// What one candidate's parts say, in OpenAI terms.
#[derive(Debug, Default)]
pub(crate) struct Pieces {
    pub content: Option<String>,
    pub reasoning: Option<String>,
    pub tool_calls: Vec<ToolCall>,
}

fn append(slot: &mut Option<String>, text: &str) {
    slot.get_or_insert_with(String::new).push_str(text);
}

/// Text parts joined (thoughts apart), function calls as tool calls whose
/// ids carry their thought signatures.
pub(crate) fn pieces(parts: &[Part]) -> Pieces {
    let mut p = Pieces::default();
    for part in parts {
        if let Some(fc) = &part.function_call {
            p.tool_calls
                .push(tool_call(fc, part.thought_signature.as_deref()));
        } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
            if part.thought == Some(true) {
                append(&mut p.reasoning, text);
            } else {
                append(&mut p.content, text);
            }
        }
    }
    p
}

fn tool_call(fc: &FunctionCallData, signature: Option<&str>) -> ToolCall {
    let arguments = match &fc.args {
        Some(args) if !args.is_null() => args.to_string(),
        _ => "{}".to_owned(),
    };
    let base = format!("call_{}", random_hex(24));
    let mut extra = JsonMap::new();
    if let Some(sig) = signature.filter(|s| !s.is_empty()) {
        extra.insert(
            "provider_specific_fields".into(),
            thought::provider_fields(sig),
        );
    }
    ToolCall {
        id: Some(thought::encode_id(&base, signature)),
        kind: Some("function".to_owned()),
        function: Some(FunctionCall {
            name: Some(fc.name.clone()),
            arguments: Some(arguments),
            extra: JsonMap::new(),
        }),
        extra,
    }
}

/// Gemini's `finishReason` in OpenAI's words; a normal stop after function
/// calls is `tool_calls`.
pub(crate) fn finish_reason(reason: &str, has_tool_calls: bool) -> &'static str {
    let mapped = match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "LANGUAGE"
        | "OTHER"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "IMAGE_OTHER" => "content_filter",
        _ => "stop",
    };
    if mapped == "stop" && has_tool_calls {
        "tool_calls"
    } else {
        mapped
    }
}

/// `usageMetadata` → OpenAI usage. Thinking tokens count as completion
/// tokens; when `candidatesTokenCount` already includes them (prompt +
/// candidates = total) they are not added twice.
pub(crate) fn usage(u: &UsageMetadata) -> Usage {
    let thoughts = u.thoughts_token_count.unwrap_or(0);
    let inclusive = u.prompt_token_count + u.candidates_token_count == u.total_token_count;
    let completion = if inclusive {
        u.candidates_token_count
    } else {
        u.candidates_token_count + thoughts
    };
    let total = if u.total_token_count > 0 {
        u.total_token_count
    } else {
        u.prompt_token_count + completion
    };
    let mut extra = JsonMap::new();
    if let Some(t) = u.thoughts_token_count {
        extra.insert(
            "completion_tokens_details".into(),
            json!({ "reasoning_tokens": t }),
        );
    }
    if let Some(c) = u.cached_content_token_count {
        extra.insert(
            "prompt_tokens_details".into(),
            json!({ "cached_tokens": c }),
        );
    }
    Usage {
        prompt_tokens: u.prompt_token_count,
        completion_tokens: completion,
        total_tokens: total,
        extra,
    }
}

// ---------------------------------------------------------------- response

pub(crate) fn parse(body: &[u8]) -> Result<GenerateContentResponse, TranslateError> {
    serde_json::from_slice(body).map_err(|e| TranslateError::InvalidResponse(e.to_string()))
}

fn message(p: Pieces) -> ChatMessage {
    let mut extra = JsonMap::new();
    if let Some(r) = p.reasoning {
        extra.insert("reasoning_content".into(), Value::String(r));
    }
    ChatMessage {
        role: "assistant".to_owned(),
        content: p.content.map(MessageContent::Text),
        tool_calls: (!p.tool_calls.is_empty()).then_some(p.tool_calls),
        tool_call_id: None,
        name: None,
        extra,
    }
}

pub(crate) fn chat_response(
    body: &[u8],
    fallback_model: &str,
) -> Result<ChatResponse, TranslateError> {
    let r = parse(body)?;
    let choices = if r.prompt_blocked() {
        vec![Choice {
            index: 0,
            message: message(Pieces::default()),
            finish_reason: Some("content_filter".to_owned()),
            extra: JsonMap::new(),
        }]
    } else {
        r.candidates
            .iter()
            .enumerate()
            .map(|(pos, c)| {
                let p = c
                    .content
                    .as_ref()
                    .map(|c| pieces(&c.parts))
                    .unwrap_or_default();
                let finish = finish_reason(
                    c.finish_reason.as_deref().unwrap_or("STOP"),
                    !p.tool_calls.is_empty(),
                );
                Choice {
                    index: c.index.unwrap_or(u32::try_from(pos).unwrap_or(u32::MAX)),
                    message: message(p),
                    finish_reason: Some(finish.to_owned()),
                    extra: JsonMap::new(),
                }
            })
            .collect()
    };
    Ok(ChatResponse {
        id: r
            .response_id
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(completion_id),
        object: "chat.completion".to_owned(),
        created: now_secs(),
        model: r
            .model_version
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| fallback_model.to_owned()),
        choices,
        usage: r.usage_metadata.as_ref().map(usage),
        extra: JsonMap::new(),
    })
}
