//! A Responses request → the canonical chat request, for upstreams without a
//! Responses API of their own.
//!
//! `instructions` become the system message; `input` (a string or a list of
//! items) becomes the messages: message items with their content parts,
//! `function_call` items as assistant tool calls, `function_call_output` items
//! as tool messages. Function tools, `tool_choice`, `max_output_tokens`,
//! `temperature`, `top_p`, `text.format` and `reasoning.effort` map onto their
//! chat equivalents. Parameters chat has no equivalent for (`store`,
//! `include`, `truncation`, hosted tools such as `web_search`) are left out:
//! the upstream could not honour them.

use ferrolite_types::openai::chat::{ContentPart, FunctionCall, MessageContent, ToolCall};
use ferrolite_types::openai::{ChatMessage, ChatRequest};
use ferrolite_types::JsonMap;
use serde_json::{json, Value};

/// A request that cannot be bridged, with the parameter at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeError {
    pub message: String,
    pub param: Option<String>,
}

fn bad(param: &str, message: impl Into<String>) -> BridgeError {
    BridgeError {
        message: message.into(),
        param: Some(param.to_owned()),
    }
}

/// The input of a request as a list of items (a string input is one user
/// message).
pub fn input_items(body: &JsonMap) -> Result<Vec<Value>, BridgeError> {
    match body.get("input") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": s}]}),
        ]),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(bad("input", "input must be a string or a list of items")),
    }
}

/// Build the chat request for `items` (the whole conversation, previous turns
/// included) and the request's parameters.
pub fn to_chat(body: &JsonMap, items: &[Value]) -> Result<ChatRequest, BridgeError> {
    let mut messages = Vec::with_capacity(items.len() + 1);
    match body.get("instructions") {
        Some(Value::String(s)) if !s.is_empty() => messages.push(text_message("system", s)),
        Some(Value::Array(list)) => {
            for item in list {
                push_item(&mut messages, item)?;
            }
        }
        _ => {}
    }
    for item in items {
        push_item(&mut messages, item)?;
    }
    let mut extra = JsonMap::new();
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let chat_tools: Vec<Value> = tools.iter().filter_map(chat_tool).collect();
        if !chat_tools.is_empty() {
            extra.insert("tools".into(), Value::Array(chat_tools));
            if let Some(c) = body.get("tool_choice").and_then(chat_tool_choice) {
                extra.insert("tool_choice".into(), c);
            }
            if let Some(p) = body.get("parallel_tool_calls").filter(|v| v.is_boolean()) {
                extra.insert("parallel_tool_calls".into(), p.clone());
            }
        }
    }
    if let Some(n) = body.get("max_output_tokens").filter(|v| !v.is_null()) {
        extra.insert("max_tokens".into(), n.clone());
    }
    for key in ["temperature", "top_p", "user", "top_logprobs"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            extra.insert(key.into(), v.clone());
        }
    }
    if let Some(format) = body.pointer_like(&["text", "format"]) {
        if let Some(rf) = response_format(format)? {
            extra.insert("response_format".into(), rf);
        }
    }
    if let Some(effort) = body.pointer_like(&["reasoning", "effort"]) {
        if effort.is_string() {
            extra.insert("reasoning_effort".into(), effort.clone());
        }
    }
    let stream = body.get("stream").and_then(Value::as_bool);
    Ok(ChatRequest {
        model: String::new(),
        messages,
        stream: stream.filter(|s| *s),
        stream_options: None,
        extra,
    })
}

/// `body.a.b` for a JSON map.
trait PointerLike {
    fn pointer_like(&self, path: &[&str]) -> Option<&Value>;
}

impl PointerLike for JsonMap {
    fn pointer_like(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut v = self.get(*first)?;
        for k in rest {
            v = v.get(*k)?;
        }
        (!v.is_null()).then_some(v)
    }
}

fn text_message(role: &str, text: &str) -> ChatMessage {
    ChatMessage {
        role: role.to_owned(),
        content: Some(MessageContent::Text(text.to_owned())),
        tool_calls: None,
        tool_call_id: None,
        name: None,
        extra: JsonMap::new(),
    }
}

fn str_of<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.get(key).and_then(Value::as_str)
}

/// One input item appended to the chat messages.
fn push_item(messages: &mut Vec<ChatMessage>, item: &Value) -> Result<(), BridgeError> {
    let kind = str_of(item, "type").unwrap_or(if item.get("role").is_some() {
        "message"
    } else {
        ""
    });
    match kind {
        "message" => push_message(messages, item),
        "function_call" => {
            let call_id = str_of(item, "call_id")
                .ok_or_else(|| bad("input", "a function_call item needs a call_id"))?;
            let call = ToolCall {
                id: Some(call_id.to_owned()),
                kind: Some("function".into()),
                function: Some(FunctionCall {
                    name: str_of(item, "name").map(str::to_owned),
                    arguments: Some(str_of(item, "arguments").unwrap_or("{}").to_owned()),
                    extra: JsonMap::new(),
                }),
                extra: JsonMap::new(),
            };
            // Calls made in one turn share one assistant message.
            match messages.last_mut() {
                Some(m) if m.role == "assistant" => m.tool_calls.get_or_insert_with(Vec::new).push(call),
                _ => messages.push(ChatMessage {
                    role: "assistant".into(),
                    content: None,
                    tool_calls: Some(vec![call]),
                    tool_call_id: None,
                    name: None,
                    extra: JsonMap::new(),
                }),
            }
            Ok(())
        }
        "function_call_output" => {
            let call_id = str_of(item, "call_id")
                .ok_or_else(|| bad("input", "a function_call_output item needs a call_id"))?;
            let content = match item.get("output") {
                Some(Value::String(s)) => MessageContent::Text(s.clone()),
                Some(Value::Array(parts)) => MessageContent::Text(
                    parts
                        .iter()
                        .filter_map(|p| str_of(p, "text"))
                        .collect::<Vec<_>>()
                        .join(""),
                ),
                Some(other) => MessageContent::Text(other.to_string()),
                None => MessageContent::Text(String::new()),
            };
            messages.push(ChatMessage {
                role: "tool".into(),
                content: Some(content),
                tool_calls: None,
                tool_call_id: Some(call_id.to_owned()),
                name: None,
                extra: JsonMap::new(),
            });
            Ok(())
        }
        // Reasoning the upstream produced earlier: chat has no way to send it
        // back (and other providers could not check it), so it is left out.
        "reasoning" => Ok(()),
        "item_reference" => Err(bad(
            "input",
            "item_reference input items are not supported for this model: send the items themselves, or use previous_response_id",
        )),
        other => Err(bad(
            "input",
            format!("input items of type '{other}' are not supported for this model"),
        )),
    }
}

fn push_message(messages: &mut Vec<ChatMessage>, item: &Value) -> Result<(), BridgeError> {
    let role = match str_of(item, "role").unwrap_or("user") {
        // Chat upstreams other than OpenAI know no developer role.
        "developer" => "system",
        r @ ("user" | "system" | "assistant") => r,
        other => return Err(bad("input", format!("unknown message role '{other}'"))),
    };
    let content = match item.get("content") {
        Some(Value::String(s)) => MessageContent::Text(s.clone()),
        Some(Value::Array(parts)) => {
            let parts: Vec<ContentPart> = parts.iter().filter_map(chat_part).collect();
            // Assistant turns and system prompts read best as plain text.
            if role != "user" && parts.iter().all(|p| p.kind == "text") {
                MessageContent::Text(
                    parts
                        .iter()
                        .filter_map(|p| p.text.as_deref())
                        .collect::<Vec<_>>()
                        .join(""),
                )
            } else {
                MessageContent::Parts(parts)
            }
        }
        _ => MessageContent::Text(String::new()),
    };
    messages.push(ChatMessage {
        role: role.to_owned(),
        content: Some(content),
        tool_calls: None,
        tool_call_id: None,
        name: None,
        extra: JsonMap::new(),
    });
    Ok(())
}

/// A Responses content part → a chat content part.
fn chat_part(part: &Value) -> Option<ContentPart> {
    let text_part = |t: &str| ContentPart {
        kind: "text".into(),
        text: Some(t.to_owned()),
        extra: JsonMap::new(),
    };
    match str_of(part, "type")? {
        "input_text" | "output_text" | "text" => Some(text_part(str_of(part, "text")?)),
        "refusal" => Some(text_part(str_of(part, "refusal")?)),
        "input_image" => {
            let url = str_of(part, "image_url").or_else(|| str_of(part, "file_id"))?;
            let mut image = json!({ "url": url });
            if let Some(d) = part.get("detail").filter(|d| d.is_string()) {
                image["detail"] = d.clone();
            }
            let mut extra = JsonMap::new();
            extra.insert("image_url".into(), image);
            Some(ContentPart {
                kind: "image_url".into(),
                text: None,
                extra,
            })
        }
        "input_file" => {
            let mut file = JsonMap::new();
            for k in ["file_data", "file_id", "filename"] {
                if let Some(v) = part.get(k).filter(|v| v.is_string()) {
                    file.insert(k.into(), v.clone());
                }
            }
            let mut extra = JsonMap::new();
            extra.insert("file".into(), Value::Object(file));
            Some(ContentPart {
                kind: "file".into(),
                text: None,
                extra,
            })
        }
        _ => None,
    }
}

/// A Responses function tool (flat) → a chat tool (nested); other tool types
/// (hosted tools) have no chat equivalent and are left out.
fn chat_tool(tool: &Value) -> Option<Value> {
    if str_of(tool, "type")? != "function" {
        return None;
    }
    let mut function = JsonMap::new();
    function.insert("name".into(), tool.get("name")?.clone());
    for k in ["description", "parameters", "strict"] {
        if let Some(v) = tool.get(k).filter(|v| !v.is_null()) {
            function.insert(k.into(), v.clone());
        }
    }
    Some(json!({"type": "function", "function": function}))
}

fn chat_tool_choice(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(s) => Some(Value::String(s.clone())),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = o.get("name")?;
                Some(json!({"type": "function", "function": {"name": name}}))
            }
            Some("allowed_tools") => o.get("mode").cloned(),
            _ => None,
        },
        _ => None,
    }
}

/// `text.format` → chat `response_format`.
fn response_format(format: &Value) -> Result<Option<Value>, BridgeError> {
    match str_of(format, "type") {
        Some("text") | None => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = JsonMap::new();
            for k in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(k).filter(|v| !v.is_null()) {
                    schema.insert(k.into(), v.clone());
                }
            }
            if !schema.contains_key("schema") {
                return Err(bad(
                    "text.format.schema",
                    "json_schema format needs a schema",
                ));
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        Some(other) => Err(bad(
            "text.format.type",
            format!("unknown text format '{other}'"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> JsonMap {
        v.as_object().unwrap().clone()
    }

    fn chat_of(v: Value) -> Value {
        let body = map(v);
        let items = input_items(&body).unwrap();
        serde_json::to_value(to_chat(&body, &items).unwrap()).unwrap()
    }

    #[test]
    fn string_input_and_instructions() {
        let c = chat_of(
            json!({"model": "m", "instructions": "Be brief.", "input": "Hi", "max_output_tokens": 50, "temperature": 0.2, "store": false}),
        );
        assert_eq!(
            c,
            json!({"model": "", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
            ], "max_tokens": 50, "temperature": 0.2})
        );
    }

    #[test]
    fn items_tools_and_formats() {
        let c = chat_of(json!({
            "input": [
                {"role": "developer", "content": "sys"},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
                {"type": "function_call", "call_id": "call_1", "name": "get", "arguments": "{\"a\":1}"},
                {"type": "function_call", "call_id": "call_2", "name": "get", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "one"},
                {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "two"}]}
            ],
            "tools": [
                {"type": "function", "name": "get", "description": "d", "parameters": {"type": "object"}, "strict": true},
                {"type": "web_search"}
            ],
            "tool_choice": {"type": "function", "name": "get"},
            "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
            "reasoning": {"effort": "high", "summary": "auto"},
            "stream": true
        }));
        assert_eq!(
            c["messages"],
            json!([
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
                {"role": "assistant", "content": "calling", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\":1}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get", "arguments": "{}"}}]},
                {"role": "tool", "content": "one", "tool_call_id": "call_1"},
                {"role": "tool", "content": "two", "tool_call_id": "call_2"}
            ])
        );
        assert_eq!(
            c["tools"],
            json!([{"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object"}, "strict": true}}])
        );
        assert_eq!(
            c["tool_choice"],
            json!({"type": "function", "function": {"name": "get"}})
        );
        assert_eq!(
            c["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}})
        );
        assert_eq!(c["reasoning_effort"], "high");
        assert_eq!(c["stream"], true);
    }

    #[test]
    fn unsupported_items_are_errors_naming_input() {
        let body = map(json!({"input": [{"type": "item_reference", "id": "msg_1"}]}));
        let items = input_items(&body).unwrap();
        let e = to_chat(&body, &items).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let body = map(json!({"input": 5}));
        assert!(input_items(&body).is_err());
    }
}
