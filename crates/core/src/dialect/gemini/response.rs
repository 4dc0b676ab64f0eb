//! Canonical chat answer → Gemini `GenerateContentResponse`.

use ferrolite_types::openai::chat::ToolCall;
use ferrolite_types::openai::ChatResponse;
use ferrolite_types::Usage;
use serde_json::{json, Map, Value};

use super::request::THOUGHT_SEPARATOR;

/// OpenAI's finish reason in Gemini's words.
pub(crate) fn finish_reason(reason: Option<&str>) -> &'static str {
    match reason {
        Some("length") => "MAX_TOKENS",
        Some("content_filter") => "SAFETY",
        Some("stop" | "tool_calls" | "function_call") | None => "STOP",
        Some(_) => "OTHER",
    }
}

fn detail(u: &Usage, group: &str, key: &str) -> Option<u64> {
    u.extra.get(group)?.get(key)?.as_u64()
}

/// OpenAI usage → `usageMetadata`. Reasoning tokens are reported apart
/// (`thoughtsTokenCount`), as Gemini does: `candidatesTokenCount` excludes
/// them.
pub(crate) fn usage_metadata(u: &Usage) -> Value {
    let thoughts = detail(u, "completion_tokens_details", "reasoning_tokens").unwrap_or(0);
    let total = if u.total_tokens > 0 {
        u.total_tokens
    } else {
        u.prompt_tokens + u.completion_tokens
    };
    let mut m = Map::new();
    m.insert("promptTokenCount".into(), json!(u.prompt_tokens));
    m.insert(
        "candidatesTokenCount".into(),
        json!(u.completion_tokens.saturating_sub(thoughts)),
    );
    m.insert("totalTokenCount".into(), json!(total));
    if thoughts > 0 {
        m.insert("thoughtsTokenCount".into(), json!(thoughts));
    }
    if let Some(c) = detail(u, "prompt_tokens_details", "cached_tokens").filter(|c| *c > 0) {
        m.insert("cachedContentTokenCount".into(), json!(c));
    }
    Value::Object(m)
}

/// A `functionCall` part: the id loses the signature suffix the Gemini
/// adapter adds, and the signature goes back on the part.
pub(crate) fn function_call_part(
    id: &str,
    name: &str,
    arguments: &str,
    sig: Option<&str>,
) -> Value {
    let (base, from_id) = match id.split_once(THOUGHT_SEPARATOR) {
        Some((b, s)) => (b, Some(s).filter(|s| !s.is_empty())),
        None => (id, None),
    };
    let args: Value = match serde_json::from_str(arguments) {
        Ok(v @ Value::Object(_)) => v,
        Ok(Value::Null) | Err(_) if arguments.trim().is_empty() => json!({}),
        Ok(other) => json!({ "value": other }),
        // Not JSON (a model may stream broken arguments): keep the text.
        Err(_) => json!({ "arguments": arguments }),
    };
    let mut call = Map::new();
    if !base.is_empty() {
        call.insert("id".into(), Value::from(base));
    }
    call.insert("name".into(), Value::from(name));
    call.insert("args".into(), args);
    let mut part = Map::new();
    part.insert("functionCall".into(), Value::Object(call));
    if let Some(s) = sig.or(from_id) {
        part.insert("thoughtSignature".into(), Value::from(s));
    }
    Value::Object(part)
}

/// The signature a tool call carries in `provider_specific_fields`.
pub(crate) fn signature_field(extra: &ferrolite_types::JsonMap) -> Option<&str> {
    extra
        .get("provider_specific_fields")?
        .get("thought_signature")?
        .as_str()
        .filter(|s| !s.is_empty())
}

fn tool_call_part(c: &ToolCall) -> Value {
    let f = c.function.as_ref();
    function_call_part(
        c.id.as_deref().unwrap_or(""),
        f.and_then(|f| f.name.as_deref()).unwrap_or(""),
        f.and_then(|f| f.arguments.as_deref()).unwrap_or("{}"),
        signature_field(&c.extra),
    )
}

/// The whole answer. `model` is the name the client asked for.
pub fn to_gemini(resp: &ChatResponse, model: &str) -> Value {
    let candidates: Vec<Value> = resp
        .choices
        .iter()
        .map(|c| {
            let m = &c.message;
            let mut parts = Vec::new();
            if let Some(r) = m
                .extra
                .get("reasoning_content")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                parts.push(json!({ "text": r, "thought": true }));
            }
            if let Some(text) = m
                .content
                .as_ref()
                .map(|c| c.text())
                .filter(|t| !t.is_empty())
            {
                parts.push(json!({ "text": text }));
            }
            for call in m.tool_calls.iter().flatten() {
                parts.push(tool_call_part(call));
            }
            json!({
                "content": { "role": "model", "parts": parts },
                "finishReason": finish_reason(c.finish_reason.as_deref()),
                "index": c.index,
            })
        })
        .collect();
    let mut out = Map::new();
    out.insert("candidates".into(), Value::Array(candidates));
    if let Some(u) = &resp.usage {
        out.insert("usageMetadata".into(), usage_metadata(u));
    }
    out.insert("modelVersion".into(), Value::from(model));
    if !resp.id.is_empty() {
        out.insert("responseId".into(), Value::from(resp.id.clone()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_response_with_thoughts_tools_and_usage() {
        let resp: ChatResponse = serde_json::from_value(json!({
            "id": "chatcmpl-1", "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Checking.", "reasoning_content": "think",
                "tool_calls": [{"id": "call_a__thought__SIG", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}},
                {"index": 1, "finish_reason": "length", "message": {"role": "assistant", "content": "cut"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                "completion_tokens_details": {"reasoning_tokens": 3},
                "prompt_tokens_details": {"cached_tokens": 4}}
        }))
        .unwrap();
        assert_eq!(
            to_gemini(&resp, "my-model"),
            json!({
                "candidates": [
                    {"content": {"role": "model", "parts": [
                        {"text": "think", "thought": true},
                        {"text": "Checking."},
                        {"functionCall": {"id": "call_a", "name": "get_weather", "args": {"city": "Paris"}},
                         "thoughtSignature": "SIG"}]},
                     "finishReason": "STOP", "index": 0},
                    {"content": {"role": "model", "parts": [{"text": "cut"}]}, "finishReason": "MAX_TOKENS", "index": 1}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4, "totalTokenCount": 17,
                    "thoughtsTokenCount": 3, "cachedContentTokenCount": 4},
                "modelVersion": "my-model",
                "responseId": "chatcmpl-1"
            })
        );
    }

    #[test]
    fn finish_reasons_and_odd_arguments() {
        assert_eq!(finish_reason(Some("content_filter")), "SAFETY");
        assert_eq!(finish_reason(Some("weird")), "OTHER");
        assert_eq!(finish_reason(None), "STOP");
        assert_eq!(
            function_call_part("", "f", "", None),
            json!({"functionCall": {"name": "f", "args": {}}})
        );
        assert_eq!(
            function_call_part("c", "f", "{broken", Some("S"))["functionCall"]["args"],
            json!({"arguments": "{broken"})
        );
    }
}
