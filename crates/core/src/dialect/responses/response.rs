//! Building Responses API objects: the response envelope (echoing the
//! request's settings as OpenAI does), output items from a chat answer, and
//! usage in the Responses vocabulary.

use ferrolite_types::openai::ChatResponse;
use ferrolite_types::{JsonMap, Usage};
use serde_json::{json, Value};

/// A new id with OpenAI's prefix for its kind (`resp`, `msg`, `fc`, `rs`).
pub fn new_id(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 49);
    s.push_str(prefix);
    s.push('_');
    for _ in 0..48 {
        let n = fastrand::u8(0..16);
        s.push(char::from_digit(u32::from(n), 16).unwrap_or('0'));
    }
    s
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a response object repeats from its request.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub created_at: u64,
    pub model: String,
    /// The request's settings, as OpenAI echoes them.
    pub echo: JsonMap,
}

/// The settings a response echoes, with OpenAI's defaults.
pub fn echo_of(body: &JsonMap) -> JsonMap {
    let defaults = [
        ("instructions", Value::Null),
        ("max_output_tokens", Value::Null),
        ("metadata", json!({})),
        ("parallel_tool_calls", Value::Bool(true)),
        ("previous_response_id", Value::Null),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("store", Value::Bool(true)),
        ("temperature", json!(1.0)),
        ("text", json!({"format": {"type": "text"}})),
        ("tool_choice", json!("auto")),
        ("tools", json!([])),
        ("top_p", json!(1.0)),
        ("truncation", json!("disabled")),
        ("user", Value::Null),
    ];
    let mut echo = JsonMap::new();
    for (k, default) in defaults {
        let v = body.get(k).filter(|v| !v.is_null()).cloned();
        echo.insert(k.into(), v.unwrap_or(default));
    }
    echo
}

impl Envelope {
    /// The response object with this status and output.
    pub fn response(&self, status: &str, output: Vec<Value>, usage: Option<Value>) -> Value {
        let mut o = JsonMap::new();
        o.insert("id".into(), Value::String(self.id.clone()));
        o.insert("object".into(), Value::String("response".into()));
        o.insert("created_at".into(), json!(self.created_at));
        o.insert("status".into(), Value::String(status.into()));
        o.insert("error".into(), Value::Null);
        o.insert("incomplete_details".into(), Value::Null);
        o.insert("model".into(), Value::String(self.model.clone()));
        o.insert("output".into(), Value::Array(output));
        for (k, v) in &self.echo {
            o.insert(k.clone(), v.clone());
        }
        o.insert("usage".into(), usage.unwrap_or(Value::Null));
        Value::Object(o)
    }
}

/// Mark a response unfinished because of `finish_reason` (`length`,
/// `content_filter`), as OpenAI reports it; `true` if it was.
pub fn mark_incomplete(resp: &mut Value, finish_reason: Option<&str>) -> bool {
    let reason = match finish_reason {
        Some("length") => "max_output_tokens",
        Some("content_filter") => "content_filter",
        _ => return false,
    };
    resp["status"] = json!("incomplete");
    resp["incomplete_details"] = json!({ "reason": reason });
    true
}

fn detail(extra: &JsonMap, group: &str, key: &str) -> u64 {
    extra
        .get(group)
        .and_then(|g| g.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Chat usage → Responses usage.
pub fn usage_of(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": detail(&u.extra, "prompt_tokens_details", "cached_tokens")},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": detail(&u.extra, "completion_tokens_details", "reasoning_tokens")},
        "total_tokens": u.total_tokens,
    })
}

/// Responses usage → the gateway's usage (for accounting).
pub fn usage_from(v: &Value) -> Option<Usage> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    let mut u = Usage::new(n("input_tokens")?, n("output_tokens").unwrap_or(0));
    if let Some(t) = n("total_tokens") {
        u.total_tokens = t;
    }
    Some(u)
}

pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "content": [text_part(text)],
        "role": "assistant",
    })
}

pub fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

pub fn function_call_item(id: &str, call_id: &str, name: &str, args: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "arguments": args,
        "call_id": call_id,
        "name": name,
    })
}

pub fn reasoning_item(id: &str, summary: &str) -> Value {
    let summary: Vec<Value> = if summary.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "summary_text", "text": summary})]
    };
    json!({"id": id, "type": "reasoning", "summary": summary})
}

/// A chat answer → a response object.
pub fn from_chat(env: &Envelope, chat: &ChatResponse) -> Value {
    let mut output = Vec::new();
    let choice = chat.choices.first();
    if let Some(c) = choice {
        let m = &c.message;
        if let Some(r) = m
            .extra
            .get("reasoning_content")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            output.push(reasoning_item(&new_id("rs"), r));
        }
        let text = m.content.as_ref().map(|c| c.text()).unwrap_or_default();
        let calls = m.tool_calls.as_deref().unwrap_or(&[]);
        if !text.is_empty() || calls.is_empty() {
            output.push(message_item(&new_id("msg"), &text, "completed"));
        }
        for call in calls {
            let f = call.function.as_ref();
            output.push(function_call_item(
                &new_id("fc"),
                call.id.as_deref().unwrap_or_default(),
                f.and_then(|f| f.name.as_deref()).unwrap_or_default(),
                f.and_then(|f| f.arguments.as_deref()).unwrap_or("{}"),
                "completed",
            ));
        }
    }
    let mut resp = env.response("completed", output, chat.usage.as_ref().map(usage_of));
    mark_incomplete(&mut resp, choice.and_then(|c| c.finish_reason.as_deref()));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Envelope {
        Envelope {
            id: "resp_1".into(),
            created_at: 7,
            model: "g".into(),
            echo: echo_of(&JsonMap::new()),
        }
    }

    #[test]
    fn ids_have_their_prefix() {
        let id = new_id("resp");
        assert!(id.starts_with("resp_") && id.len() == 53, "{id}");
        assert_ne!(id, new_id("resp"));
    }

    #[test]
    fn chat_answers_become_output_items() {
        let chat: ChatResponse = serde_json::from_value(json!({
            "id": "c", "model": "x", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me check.", "reasoning_content": "think",
                "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get", "arguments": "{\"q\":1}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}
        }))
        .unwrap();
        let r = from_chat(&env(), &chat);
        assert_eq!(r["status"], "completed");
        assert_eq!(r["object"], "response");
        let out = r["output"].as_array().unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["type"], "reasoning");
        assert_eq!(out[0]["summary"][0]["text"], "think");
        assert_eq!(out[1]["content"][0]["text"], "Let me check.");
        assert_eq!(out[2]["call_id"], "call_9");
        assert_eq!(out[2]["arguments"], "{\"q\":1}");
        assert!(out[2]["id"].as_str().unwrap().starts_with("fc_"));
        assert_eq!(
            r["usage"],
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 5,
                   "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 15})
        );
        assert_eq!(usage_from(&r["usage"]).unwrap().total_tokens, 15);
    }

    #[test]
    fn length_is_incomplete() {
        let chat: ChatResponse = serde_json::from_value(json!({
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "abc"}}]
        }))
        .unwrap();
        let r = from_chat(&env(), &chat);
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    }
}
