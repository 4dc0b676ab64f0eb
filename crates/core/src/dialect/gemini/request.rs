//! Gemini `GenerateContentRequest` → canonical chat request.
//!
//! Google's JSON accepts camelCase and snake_case field names (proto3 JSON);
//! both are read. Thought parts in the history are not replayed (no upstream
//! needs the thought text to continue); thought signatures on `functionCall`
//! parts ride on the tool call as the Gemini adapter expects them
//! (`provider_specific_fields.thought_signature` and a `__thought__<sig>`
//! suffix on the id), so a Gemini upstream gets them back.

use ferrolite_types::openai::chat::{
    ContentPart, FunctionCall, MessageContent, StreamOptions, ToolCall,
};
use ferrolite_types::openai::{ChatMessage, ChatRequest};
use ferrolite_types::JsonMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::GatewayError;

/// Joins a tool-call id and a thought signature (the Gemini adapter's
/// convention).
pub(crate) const THOUGHT_SEPARATOR: &str = "__thought__";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    #[serde(default)]
    pub contents: Vec<Content>,
    #[serde(default, alias = "system_instruction")]
    pub system_instruction: Option<Value>,
    #[serde(default)]
    pub tools: Vec<Tool>,
    #[serde(default, alias = "tool_config")]
    pub tool_config: Option<ToolConfig>,
    #[serde(default, alias = "generation_config")]
    pub generation_config: Option<GenerationConfig>,
    /// `countTokens` wraps a whole request in `generateContentRequest`.
    #[serde(default, alias = "generate_content_request")]
    pub generate_content_request: Option<Box<GenerateContentRequest>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Content {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default, alias = "thought_signature")]
    pub thought_signature: Option<String>,
    #[serde(default, alias = "inline_data")]
    pub inline_data: Option<Blob>,
    #[serde(default, alias = "file_data")]
    pub file_data: Option<FileData>,
    #[serde(default, alias = "function_call")]
    pub function_call: Option<FunctionCallPart>,
    #[serde(default, alias = "function_response")]
    pub function_response: Option<FunctionResponsePart>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    #[serde(default, alias = "mime_type")]
    pub mime_type: String,
    #[serde(default)]
    pub data: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    #[serde(default, alias = "mime_type")]
    pub mime_type: Option<String>,
    #[serde(default, alias = "file_uri")]
    pub file_uri: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct FunctionCallPart {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct FunctionResponsePart {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub response: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    #[serde(default, alias = "function_declarations")]
    pub function_declarations: Vec<FunctionDeclaration>,
    /// Google's own tools (`googleSearch`, `codeExecution`, …), forwarded
    /// as they are (only a Gemini upstream can use them).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeclaration {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default, alias = "parameters_json_schema")]
    pub parameters_json_schema: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    #[serde(default, alias = "function_calling_config")]
    pub function_calling_config: Option<FunctionCallingConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, alias = "allowed_function_names")]
    pub allowed_function_names: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(default)]
    pub temperature: Option<Value>,
    #[serde(default, alias = "top_p")]
    pub top_p: Option<Value>,
    #[serde(default, alias = "top_k")]
    pub top_k: Option<Value>,
    #[serde(default, alias = "max_output_tokens")]
    pub max_output_tokens: Option<Value>,
    #[serde(default, alias = "stop_sequences")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, alias = "candidate_count")]
    pub candidate_count: Option<Value>,
    #[serde(default)]
    pub seed: Option<Value>,
    #[serde(default, alias = "presence_penalty")]
    pub presence_penalty: Option<Value>,
    #[serde(default, alias = "frequency_penalty")]
    pub frequency_penalty: Option<Value>,
    #[serde(default, alias = "response_mime_type")]
    pub response_mime_type: Option<String>,
    #[serde(default, alias = "response_schema")]
    pub response_schema: Option<Value>,
    #[serde(default, alias = "response_json_schema", alias = "_responseJsonSchema")]
    pub response_json_schema: Option<Value>,
    #[serde(default, alias = "thinking_config")]
    pub thinking_config: Option<ThinkingConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    #[serde(default, alias = "thinking_budget")]
    pub thinking_budget: Option<i64>,
    #[serde(default, alias = "include_thoughts")]
    pub include_thoughts: Option<bool>,
    #[serde(default, alias = "thinking_level")]
    pub thinking_level: Option<String>,
}

fn bad(msg: impl Into<String>) -> GatewayError {
    GatewayError::bad_request(msg)
}

/// The canonical chat request for a Gemini request to `model`.
pub fn to_chat(
    req: &GenerateContentRequest,
    model: &str,
    stream: bool,
) -> Result<ChatRequest, GatewayError> {
    let mut messages = Vec::new();
    if let Some(system) = &req.system_instruction {
        let text = system_text(system);
        if !text.is_empty() {
            messages.push(message("system", Some(MessageContent::Text(text))));
        }
    }
    convert_contents(&req.contents, &mut messages)?;
    if messages.iter().all(|m| m.role == "system") {
        return Err(bad("contents is not specified"));
    }

    let mut extra = JsonMap::new();
    let tools = tools(&req.tools)?;
    if !tools.is_empty() {
        extra.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = req
        .tool_config
        .as_ref()
        .and_then(|t| t.function_calling_config.as_ref())
        .and_then(tool_choice)
    {
        extra.insert("tool_choice".into(), choice);
    }
    if let Some(config) = &req.generation_config {
        generation_config(config, &mut extra)?;
    }
    Ok(ChatRequest {
        model: model.to_owned(),
        messages,
        stream: stream.then_some(true),
        // The final Gemini chunk carries usageMetadata: ask for usage.
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: JsonMap::new(),
        }),
        extra,
    })
}

fn message(role: &str, content: Option<MessageContent>) -> ChatMessage {
    ChatMessage {
        role: role.to_owned(),
        content,
        tool_calls: None,
        tool_call_id: None,
        name: None,
        extra: JsonMap::new(),
    }
}

/// `systemInstruction`: a Content (`{"parts":[{"text"}]}`) or, leniently, a
/// string.
fn system_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Characters of a `systemInstruction`, for token estimates.
pub(crate) fn system_text_len(v: &Value) -> usize {
    system_text(v).chars().count()
}

/// A function call of a model turn, as sent upstream.
struct IssuedCall {
    /// The id the client knows (without any signature).
    base: String,
    /// The id sent upstream (with the signature suffix, if any).
    id: String,
    name: String,
    answered: bool,
}

fn convert_contents(contents: &[Content], out: &mut Vec<ChatMessage>) -> Result<(), GatewayError> {
    let mut calls: Vec<IssuedCall> = Vec::new();
    for (i, c) in contents.iter().enumerate() {
        match c.role.as_deref().unwrap_or("user") {
            "model" | "assistant" => {
                calls.clear();
                if let Some(m) = model_turn(c, i, &mut calls) {
                    out.push(m);
                }
            }
            "user" | "function" | "tool" => user_turn(c, i, &mut calls, out)?,
            other => {
                return Err(bad(format!(
                    "contents[{i}].role: '{other}' is not a valid role (use 'user' or 'model')"
                )))
            }
        }
    }
    Ok(())
}

fn model_turn(c: &Content, i: usize, calls: &mut Vec<IssuedCall>) -> Option<ChatMessage> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (j, p) in c.parts.iter().enumerate() {
        if p.thought == Some(true) {
            continue;
        }
        if let Some(fc) = &p.function_call {
            let base = fc
                .id
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("call_{i}_{j}"));
            let signature = p.thought_signature.as_deref().filter(|s| !s.is_empty());
            let id = match signature {
                Some(sig) => format!("{base}{THOUGHT_SEPARATOR}{sig}"),
                None => base.clone(),
            };
            let mut extra = JsonMap::new();
            if let Some(sig) = signature {
                extra.insert(
                    "provider_specific_fields".into(),
                    json!({ "thought_signature": sig }),
                );
            }
            let args = match &fc.args {
                Some(a) if !a.is_null() => a.to_string(),
                _ => "{}".to_owned(),
            };
            tool_calls.push(ToolCall {
                id: Some(id.clone()),
                kind: Some("function".into()),
                function: Some(FunctionCall {
                    name: Some(fc.name.clone()),
                    arguments: Some(args),
                    extra: JsonMap::new(),
                }),
                extra,
            });
            calls.push(IssuedCall {
                base,
                id,
                name: fc.name.clone(),
                answered: false,
            });
        } else if let Some(t) = &p.text {
            text.push_str(t);
        }
    }
    if text.is_empty() && tool_calls.is_empty() {
        return None;
    }
    let mut m = message(
        "assistant",
        (!text.is_empty()).then_some(MessageContent::Text(text)),
    );
    m.tool_calls = (!tool_calls.is_empty()).then_some(tool_calls);
    Some(m)
}

/// Which issued call a `functionResponse` answers: by id, else the first
/// unanswered call of that name, else the first unanswered call.
fn answered_id(calls: &mut [IssuedCall], fr: &FunctionResponsePart, fallback: String) -> String {
    let by_id = fr.id.as_deref().filter(|s| !s.is_empty()).and_then(|id| {
        let base = id.split(THOUGHT_SEPARATOR).next().unwrap_or(id);
        calls.iter().position(|c| c.base == base || c.id == id)
    });
    let pos = by_id
        .or_else(|| calls.iter().position(|c| !c.answered && c.name == fr.name))
        .or_else(|| calls.iter().position(|c| !c.answered));
    match pos {
        Some(p) => {
            calls[p].answered = true;
            calls[p].id.clone()
        }
        None => fr.id.clone().filter(|s| !s.is_empty()).unwrap_or(fallback),
    }
}

fn user_turn(
    c: &Content,
    i: usize,
    calls: &mut [IssuedCall],
    out: &mut Vec<ChatMessage>,
) -> Result<(), GatewayError> {
    let mut parts = Vec::new();
    for (j, p) in c.parts.iter().enumerate() {
        if let Some(fr) = &p.function_response {
            let id = answered_id(calls, fr, format!("call_{i}_{j}"));
            let content = match &fr.response {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => "{}".to_owned(),
            };
            let mut m = message("tool", Some(MessageContent::Text(content)));
            m.tool_call_id = Some(id);
            m.name = (!fr.name.is_empty()).then(|| fr.name.clone());
            out.push(m);
        } else if p.thought == Some(true) {
            continue;
        } else if let Some(part) = content_part(p, i, j)? {
            parts.push(part);
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let content = if parts.len() == 1 && parts[0].kind == "text" {
        MessageContent::Text(parts[0].text.clone().unwrap_or_default())
    } else {
        MessageContent::Parts(parts)
    };
    out.push(message("user", Some(content)));
    Ok(())
}

fn part(kind: &str, text: Option<String>, extra: JsonMap) -> ContentPart {
    ContentPart {
        kind: kind.to_owned(),
        text,
        extra,
    }
}

fn one(key: &str, v: Value) -> JsonMap {
    let mut m = JsonMap::new();
    m.insert(key.into(), v);
    m
}

/// A user part as an OpenAI content part: images as `image_url`, audio as
/// `input_audio`, anything else as `file`.
fn content_part(p: &Part, i: usize, j: usize) -> Result<Option<ContentPart>, GatewayError> {
    if let Some(b) = &p.inline_data {
        if b.data.is_empty() {
            return Err(bad(format!(
                "contents[{i}].parts[{j}].inlineData.data is empty"
            )));
        }
        let mime = if b.mime_type.is_empty() {
            "application/octet-stream"
        } else {
            b.mime_type.as_str()
        };
        let url = format!("data:{mime};base64,{}", b.data);
        return Ok(Some(if mime.starts_with("image/") {
            part("image_url", None, one("image_url", json!({ "url": url })))
        } else if let Some(format) = mime.strip_prefix("audio/") {
            let format = format.trim_start_matches("x-");
            part(
                "input_audio",
                None,
                one("input_audio", json!({ "data": b.data, "format": format })),
            )
        } else {
            part("file", None, one("file", json!({ "file_data": url })))
        }));
    }
    if let Some(f) = &p.file_data {
        if f.file_uri.is_empty() {
            return Err(bad(format!(
                "contents[{i}].parts[{j}].fileData.fileUri is empty"
            )));
        }
        let mime = f.mime_type.as_deref().filter(|m| !m.is_empty());
        return Ok(Some(match mime {
            Some(m) if m.starts_with("image/") => part(
                "image_url",
                None,
                one("image_url", json!({ "url": f.file_uri, "format": m })),
            ),
            _ => {
                let mut file = Map::new();
                file.insert("file_id".into(), Value::from(f.file_uri.clone()));
                if let Some(m) = mime {
                    file.insert("format".into(), Value::from(m));
                }
                part("file", None, one("file", Value::Object(file)))
            }
        }));
    }
    Ok(p.text
        .as_ref()
        .map(|t| part("text", Some(t.clone()), JsonMap::new())))
}

fn tools(list: &[Tool]) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::new();
    for (i, t) in list.iter().enumerate() {
        for (j, f) in t.function_declarations.iter().enumerate() {
            if f.name.is_empty() {
                return Err(bad(format!(
                    "tools[{i}].functionDeclarations[{j}].name is empty"
                )));
            }
            let mut function = Map::new();
            function.insert("name".into(), Value::from(f.name.clone()));
            if let Some(d) = &f.description {
                function.insert("description".into(), Value::from(d.clone()));
            }
            let params = match (&f.parameters_json_schema, &f.parameters) {
                (Some(s), _) => s.clone(),
                (None, Some(s)) => json_schema(s),
                (None, None) => json!({ "type": "object", "properties": {} }),
            };
            function.insert("parameters".into(), params);
            out.push(json!({ "type": "function", "function": function }));
        }
        for (k, v) in &t.other {
            let mut native = Map::new();
            native.insert(k.clone(), v.clone());
            out.push(Value::Object(native));
        }
    }
    Ok(out)
}

/// Gemini's OpenAPI-subset `Schema` (upper-case types, `nullable`) as JSON
/// Schema.
pub(crate) fn json_schema(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
    for (k, v) in obj {
        match k.as_str() {
            "type" => {
                let t = v
                    .as_str()
                    .map(|s| Value::from(s.to_ascii_lowercase()))
                    .unwrap_or_else(|| v.clone());
                let t = match (nullable, t) {
                    (true, Value::String(s)) => json!([s, "null"]),
                    (_, t) => t,
                };
                out.insert("type".into(), t);
            }
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, s)| (name.clone(), json_schema(s)))
                    .collect();
                out.insert("properties".into(), Value::Object(props));
            }
            "items" => {
                out.insert("items".into(), json_schema(v));
            }
            "anyOf" => {
                let variants: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(json_schema)
                    .collect();
                out.insert("anyOf".into(), Value::Array(variants));
            }
            "nullable" | "propertyOrdering" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn tool_choice(c: &FunctionCallingConfig) -> Option<Value> {
    match c.mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("NONE") => Some(json!("none")),
        Some("ANY" | "VALIDATED") => match c.allowed_function_names.as_slice() {
            [only] => Some(json!({ "type": "function", "function": { "name": only } })),
            _ => Some(json!("required")),
        },
        Some("AUTO") => Some(json!("auto")),
        _ => None,
    }
}

fn generation_config(c: &GenerationConfig, extra: &mut JsonMap) -> Result<(), GatewayError> {
    let mut put = |key: &str, v: &Option<Value>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_null()) {
            extra.insert(key.into(), v.clone());
        }
    };
    put("temperature", &c.temperature);
    put("top_p", &c.top_p);
    put("top_k", &c.top_k);
    put("max_tokens", &c.max_output_tokens);
    put("seed", &c.seed);
    put("presence_penalty", &c.presence_penalty);
    put("frequency_penalty", &c.frequency_penalty);
    if let Some(n) = c.candidate_count.as_ref().filter(|n| n.as_u64() != Some(1)) {
        put("n", &Some(n.clone()));
    }
    if let Some(stop) = c.stop_sequences.as_ref().filter(|s| !s.is_empty()) {
        extra.insert("stop".into(), json!(stop));
    }
    let schema = match (&c.response_json_schema, &c.response_schema) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(s)) => Some(json_schema(s)),
        (None, None) => None,
    };
    match (c.response_mime_type.as_deref(), schema) {
        (_, Some(schema)) => {
            extra.insert(
                "response_format".into(),
                json!({ "type": "json_schema", "json_schema": { "name": "response", "schema": schema } }),
            );
        }
        (Some("application/json"), None) => {
            extra.insert("response_format".into(), json!({ "type": "json_object" }));
        }
        (Some("text/plain") | None, None) => {}
        (Some(other), None) => {
            return Err(bad(format!(
                "generationConfig.responseMimeType '{other}' is not supported"
            )))
        }
    }
    if let Some(effort) = c.thinking_config.as_ref().and_then(reasoning_effort) {
        extra.insert("reasoning_effort".into(), Value::from(effort));
    }
    Ok(())
}

/// `thinkingConfig` as an OpenAI `reasoning_effort`: a level is used as it
/// is, a budget is bucketed (0 → none, ≤1024 → low, ≤8192 → medium, more
/// → high); a dynamic budget (-1) or no setting leaves the model's default.
fn reasoning_effort(t: &ThinkingConfig) -> Option<&'static str> {
    if let Some(level) = t.thinking_level.as_deref() {
        return match level.to_ascii_lowercase().as_str() {
            "minimal" => Some("minimal"),
            "low" => Some("low"),
            "medium" => Some("medium"),
            "high" => Some("high"),
            _ => None,
        };
    }
    match t.thinking_budget? {
        0 => Some("none"),
        b if b < 0 => None,
        b if b <= 1024 => Some("low"),
        b if b <= 8192 => Some("medium"),
        _ => Some("high"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> GenerateContentRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn golden_request_with_tools_media_and_config() {
        let req = parse(json!({
            "systemInstruction": {"parts": [{"text": "Be terse."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "weather?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0"}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/y.pdf"}}]},
                {"role": "model", "parts": [
                    {"text": "hmm", "thought": true, "thoughtSignature": "T1"},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG"}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]}
            ],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "d",
                "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING", "nullable": true}}, "required": ["city"]}}]},
                {"googleSearch": {}}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
            "generationConfig": {"temperature": 0.3, "topP": 0.9, "topK": 40, "maxOutputTokens": 100,
                "stopSequences": ["END"], "candidateCount": 2, "responseMimeType": "application/json",
                "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}}
        }));
        let chat = to_chat(&req, "my-model", false).unwrap();
        let got = serde_json::to_value(&chat).unwrap();
        let want = json!({
            "model": "my-model",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": [
                    {"type": "text", "text": "weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0"}},
                    {"type": "file", "file": {"file_id": "https://x/y.pdf", "format": "application/pdf"}}]},
                {"role": "assistant", "tool_calls": [{"id": "call_1_1__thought__SIG", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                    "provider_specific_fields": {"thought_signature": "SIG"}}]},
                {"role": "tool", "content": "{\"temp\":21}", "tool_call_id": "call_1_1__thought__SIG", "name": "get_weather"}
            ],
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "d",
                    "parameters": {"type": "object", "properties": {"city": {"type": ["string", "null"]}}, "required": ["city"]}}},
                {"googleSearch": {}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "stop": ["END"], "n": 2,
            "response_format": {"type": "json_object"},
            "reasoning_effort": "medium"
        });
        assert_eq!(got, want);
    }

    #[test]
    fn snake_case_fields_ids_and_streaming() {
        let req = parse(json!({
            "system_instruction": "sys",
            "contents": [
                {"role": "user", "parts": [{"text": "a"}]},
                {"role": "model", "parts": [
                    {"function_call": {"id": "c1", "name": "f", "args": {}}},
                    {"function_call": {"id": "c2", "name": "f"}}]},
                {"role": "user", "parts": [
                    {"function_response": {"id": "c2", "name": "f", "response": {"r": 2}}},
                    {"function_response": {"name": "f", "response": {"r": 1}}},
                    {"text": "and?"}]}
            ],
            "generation_config": {"max_output_tokens": 5, "response_mime_type": "application/json",
                "response_schema": {"type": "ARRAY", "items": {"type": "INTEGER"}}}
        }));
        let chat = to_chat(&req, "m", true).unwrap();
        assert!(chat.is_stream() && chat.wants_stream_usage());
        let tools: Vec<_> = chat.messages.iter().filter(|m| m.role == "tool").collect();
        assert_eq!(tools[0].tool_call_id.as_deref(), Some("c2"));
        assert_eq!(tools[1].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(
            chat.messages.last().unwrap().content,
            Some(MessageContent::Text("and?".into()))
        );
        assert_eq!(
            chat.messages[0].content,
            Some(MessageContent::Text("sys".into()))
        );
        assert_eq!(chat.extra["max_tokens"], 5);
        assert_eq!(
            chat.extra["response_format"]["json_schema"]["schema"],
            json!({"type": "array", "items": {"type": "integer"}})
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(to_chat(&parse(json!({"contents": []})), "m", false).is_err());
        let bad_role = parse(json!({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}));
        assert_eq!(to_chat(&bad_role, "m", false).unwrap_err().status(), 400);
        let mime = parse(json!({"contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"responseMimeType": "text/x-enum"}}));
        assert!(to_chat(&mime, "m", false).is_err());
    }

    #[test]
    fn thinking_config_maps_to_reasoning_effort() {
        let t = |v: Value| reasoning_effort(&serde_json::from_value(v).unwrap());
        assert_eq!(t(json!({"thinkingBudget": 0})), Some("none"));
        assert_eq!(t(json!({"thinkingBudget": -1})), None);
        assert_eq!(t(json!({"thinkingBudget": 512})), Some("low"));
        assert_eq!(t(json!({"thinkingBudget": 24576})), Some("high"));
        assert_eq!(t(json!({"thinkingLevel": "HIGH"})), Some("high"));
        assert_eq!(t(json!({"includeThoughts": true})), None);
    }
}
