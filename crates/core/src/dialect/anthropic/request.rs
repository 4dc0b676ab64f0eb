//! An Anthropic Messages request → the canonical chat request, and the
//! per-upstream fitting of that chat request.
//!
//! The translation keeps everything chat can carry: `system` (string or
//! blocks, `cache_control` kept on the parts), text / image / document blocks,
//! `tool_use` → `tool_calls`, `tool_result` → `tool` messages, thinking blocks
//! (with signatures) → `thinking_blocks` / `reasoning_content`, tools and
//! `tool_choice`, `stop_sequences` → `stop`, `metadata.user_id` → `user`,
//! `thinking` as it is. [`fit`] then removes, per upstream, what that
//! upstream cannot take (see its doc).
//!
//! Anthropic-only top-level fields with no chat equivalent (`container`,
//! `mcp_servers`, `context_management`, `service_tier`, …) are not carried
//! into the chat request; they reach the upstream only on the passthrough
//! path (an Anthropic upstream).

use ferrolite_providers::{ProviderKind, Target};
use ferrolite_types::openai::chat::{ContentPart, FunctionCall, MessageContent, ToolCall};
use ferrolite_types::openai::{ChatMessage, ChatRequest};
use ferrolite_types::JsonMap;
use serde_json::{json, Value};

use crate::GatewayError;

fn bad(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest {
        message: message.into(),
        param: Some(param.to_owned()),
    }
}

/// The request fields copied into the chat request under the same name.
const SAME_NAME: &[&str] = &["max_tokens", "temperature", "top_p", "top_k"];

/// `body` (model already taken out) as a chat request for `model`.
pub fn to_chat(body: &JsonMap, model: &str) -> Result<ChatRequest, GatewayError> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("messages", "messages: Field required (a list of messages)"))?;
    let mut out = Vec::with_capacity(messages.len() + 1);
    if let Some(system) = body.get("system").filter(|s| !s.is_null()) {
        if let Some(m) = system_message(system)? {
            out.push(m);
        }
    }
    for (i, m) in messages.iter().enumerate() {
        convert_message(m, i, &mut out)?;
    }

    let mut extra = JsonMap::new();
    for key in SAME_NAME {
        if let Some(v) = body.get(*key).filter(|v| !v.is_null()) {
            extra.insert((*key).to_owned(), v.clone());
        }
    }
    if let Some(stop) = body.get("stop_sequences").and_then(Value::as_array) {
        if !stop.is_empty() {
            extra.insert("stop".into(), Value::Array(stop.clone()));
        }
    }
    if let Some(user) = body
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        extra.insert("user".into(), Value::String(user.to_owned()));
    }
    if let Some(t) = body.get("thinking").filter(|t| {
        matches!(
            t.get("type").and_then(Value::as_str),
            Some("enabled" | "adaptive")
        )
    }) {
        extra.insert("thinking".into(), t.clone());
    }
    let tools = match body.get("tools") {
        Some(Value::Array(list)) if !list.is_empty() => {
            let tools: Vec<Value> = list.iter().map(convert_tool).collect::<Result<_, _>>()?;
            extra.insert("tools".into(), Value::Array(tools));
            true
        }
        _ => false,
    };
    if let Some(choice) = body.get("tool_choice").filter(|c| !c.is_null()) {
        let (choice, parallel) = convert_tool_choice(choice)?;
        // Without tools, OpenAI refuses a tool_choice; Anthropic ignores `auto`.
        if tools {
            extra.insert("tool_choice".into(), choice);
            if let Some(p) = parallel {
                extra.insert("parallel_tool_calls".into(), Value::Bool(p));
            }
        }
    }
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    Ok(ChatRequest {
        model: model.to_owned(),
        messages: out,
        stream: stream.then_some(true),
        stream_options: None,
        extra,
    })
}

fn system_message(system: &Value) -> Result<Option<ChatMessage>, GatewayError> {
    let content = match system {
        Value::String(s) if s.is_empty() => return Ok(None),
        Value::String(s) => MessageContent::Text(s.clone()),
        Value::Array(blocks) => {
            let parts: Vec<ContentPart> = blocks
                .iter()
                .filter_map(|b| {
                    let text = b.get("text").and_then(Value::as_str)?;
                    Some(text_part(text, b))
                })
                .collect();
            if parts.is_empty() {
                return Ok(None);
            }
            simplify(parts)
        }
        _ => {
            return Err(bad(
                "system",
                "system must be a string or a list of text blocks",
            ))
        }
    };
    Ok(Some(message("system", Some(content))))
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

/// A text part, keeping the block's `cache_control`.
fn text_part(text: &str, block: &Value) -> ContentPart {
    let mut extra = JsonMap::new();
    if let Some(cc) = block.get("cache_control").filter(|c| !c.is_null()) {
        extra.insert("cache_control".into(), cc.clone());
    }
    ContentPart {
        kind: "text".into(),
        text: Some(text.to_owned()),
        extra,
    }
}

fn part(kind: &str, key: &str, value: Value) -> ContentPart {
    let mut extra = JsonMap::new();
    extra.insert(key.to_owned(), value);
    ContentPart {
        kind: kind.to_owned(),
        text: None,
        extra,
    }
}

/// One text part with nothing else on it is sent as a plain string.
fn simplify(mut parts: Vec<ContentPart>) -> MessageContent {
    if parts.len() == 1 && parts[0].kind == "text" && parts[0].extra.is_empty() {
        if let Some(text) = parts.pop().and_then(|p| p.text) {
            return MessageContent::Text(text);
        }
    }
    MessageContent::Parts(parts)
}

/// An image or document `source` as a URL (`data:` for base64).
fn source_url(source: &Value) -> Option<String> {
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("application/octet-stream");
            let data = source.get("data").and_then(Value::as_str)?;
            Some(format!("data:{media};base64,{data}"))
        }
        Some("url") => source.get("url").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// A user-side content block as a chat part; `None` for blocks chat cannot
/// carry.
fn user_part(block: &Value) -> Option<ContentPart> {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "text" => Some(text_part(
            block.get("text").and_then(Value::as_str).unwrap_or(""),
            block,
        )),
        "image" => {
            let url = source_url(block.get("source")?)?;
            Some(part("image_url", "image_url", json!({ "url": url })))
        }
        "document" => {
            let source = block.get("source")?;
            match source.get("type").and_then(Value::as_str) {
                Some("text") => Some(text_part(
                    source.get("data").and_then(Value::as_str).unwrap_or(""),
                    block,
                )),
                _ => {
                    let url = source_url(source)?;
                    Some(part("file", "file", json!({ "file_data": url })))
                }
            }
        }
        // search_result and other blocks with a text.
        _ => block
            .get("text")
            .and_then(Value::as_str)
            .map(|t| text_part(t, block)),
    }
}

/// A `tool_result`'s content as tool-message text, plus any images (which a
/// tool message cannot hold; they follow in a user message).
fn tool_result_content(block: &Value) -> (String, Vec<ContentPart>) {
    let mut text = String::new();
    let mut images = Vec::new();
    match block.get("content") {
        Some(Value::String(s)) => text.push_str(s),
        Some(Value::Array(items)) => {
            for item in items {
                match user_part(item) {
                    Some(p) if p.kind == "text" => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(p.text.as_deref().unwrap_or(""));
                    }
                    Some(p) => images.push(p),
                    None => {}
                }
            }
        }
        _ => {}
    }
    if block.get("is_error").and_then(Value::as_bool) == Some(true) && text.is_empty() {
        text.push_str("Error");
    }
    (text, images)
}

fn convert_message(m: &Value, i: usize, out: &mut Vec<ChatMessage>) -> Result<(), GatewayError> {
    let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
        bad(
            &format!("messages.{i}.role"),
            format!("messages.{i}.role: Field required"),
        )
    })?;
    let content = m.get("content");
    match role {
        "user" => convert_user(content, i, out),
        "assistant" => {
            out.push(convert_assistant(content, i)?);
            Ok(())
        }
        other => Err(bad(
            &format!("messages.{i}.role"),
            format!("messages.{i}.role: Input should be 'user' or 'assistant', got {other:?}"),
        )),
    }
}

fn convert_user(
    content: Option<&Value>,
    i: usize,
    out: &mut Vec<ChatMessage>,
) -> Result<(), GatewayError> {
    let blocks = match content {
        Some(Value::String(s)) => {
            out.push(message("user", Some(MessageContent::Text(s.clone()))));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(bad(
                &format!("messages.{i}.content"),
                format!("messages.{i}.content must be a string or a list of blocks"),
            ))
        }
    };
    let mut parts = Vec::new();
    for block in blocks {
        if block.get("type").and_then(Value::as_str) == Some("tool_result") {
            let id = block
                .get("tool_use_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (text, images) = tool_result_content(block);
            let mut tool = message("tool", Some(MessageContent::Text(text)));
            tool.tool_call_id = Some(id.to_owned());
            out.push(tool);
            parts.extend(images);
        } else if let Some(p) = user_part(block) {
            parts.push(p);
        }
    }
    if !parts.is_empty() {
        out.push(message("user", Some(simplify(parts))));
    }
    Ok(())
}

fn convert_assistant(content: Option<&Value>, i: usize) -> Result<ChatMessage, GatewayError> {
    let blocks = match content {
        Some(Value::String(s)) => return Ok(ChatMessage::assistant_text(s.clone())),
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(bad(
                &format!("messages.{i}.content"),
                format!("messages.{i}.content must be a string or a list of blocks"),
            ))
        }
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    let mut reasoning = String::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(ToolCall {
                    id: block.get("id").and_then(Value::as_str).map(str::to_owned),
                    kind: Some("function".into()),
                    function: Some(FunctionCall {
                        name: block.get("name").and_then(Value::as_str).map(str::to_owned),
                        arguments: Some(input.to_string()),
                        extra: JsonMap::new(),
                    }),
                    extra: JsonMap::new(),
                });
            }
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""));
                thinking.push(json!({
                    "type": "thinking",
                    "thinking": block.get("thinking").cloned().unwrap_or(Value::Null),
                    "signature": block.get("signature").cloned().unwrap_or(Value::Null),
                }));
            }
            Some("redacted_thinking") => thinking.push(json!({
                "type": "redacted_thinking",
                "data": block.get("data").cloned().unwrap_or(Value::Null),
            })),
            // server_tool_use, web_search_tool_result, …: no chat equivalent.
            _ => {}
        }
    }
    let mut msg = message(
        "assistant",
        (!text.is_empty()).then_some(MessageContent::Text(text)),
    );
    if !calls.is_empty() {
        msg.tool_calls = Some(calls);
    }
    if !thinking.is_empty() {
        msg.extra
            .insert("reasoning_content".into(), Value::String(reasoning));
        msg.extra
            .insert("thinking_blocks".into(), Value::Array(thinking));
    }
    Ok(msg)
}

/// A custom tool → an OpenAI function tool (keeping `cache_control`). Tools
/// Anthropic hosts (`web_search_…`, `bash_…`, `text_editor_…`) keep their
/// Anthropic shape: Claude upstreams take them as they are, [`fit`] removes
/// them for others.
fn convert_tool(tool: &Value) -> Result<Value, GatewayError> {
    let kind = tool.get("type").and_then(Value::as_str);
    if !matches!(kind, None | Some("custom")) {
        return Ok(tool.clone());
    }
    let name = tool
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("tools", "tools: every tool needs a `name`"))?;
    let mut function = JsonMap::new();
    function.insert("name".into(), Value::String(name.to_owned()));
    if let Some(d) = tool.get("description").filter(|d| !d.is_null()) {
        function.insert("description".into(), d.clone());
    }
    function.insert(
        "parameters".into(),
        tool.get("input_schema")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    );
    let mut out = JsonMap::new();
    out.insert("type".into(), Value::String("function".into()));
    out.insert("function".into(), Value::Object(function));
    if let Some(cc) = tool.get("cache_control").filter(|c| !c.is_null()) {
        out.insert("cache_control".into(), cc.clone());
    }
    Ok(Value::Object(out))
}

/// Anthropic's `tool_choice` → OpenAI's, and `parallel_tool_calls` from
/// `disable_parallel_tool_use`.
fn convert_tool_choice(choice: &Value) -> Result<(Value, Option<bool>), GatewayError> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|d| !d);
    let mapped = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice.name", "tool_choice.name: Field required"))?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return Err(bad(
                "tool_choice",
                "tool_choice.type must be one of auto, any, tool, none",
            ))
        }
    };
    Ok((mapped, parallel))
}

/// Whether this chat model takes OpenAI's `reasoning_effort`.
fn takes_reasoning_effort(model: &str) -> bool {
    let m = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    ["o1", "o3", "o4", "gpt-5", "gpt-oss"]
        .iter()
        .any(|p| m.starts_with(p))
}

/// A thinking budget as a `reasoning_effort` level.
pub fn effort_for_budget(budget: Option<u64>) -> &'static str {
    match budget {
        Some(b) if b < 4096 => "low",
        Some(b) if b < 16384 => "medium",
        Some(_) => "high",
        None => "medium",
    }
}

/// Fit the translated request to one upstream, removing what it cannot
/// take:
/// - `thinking`: Gemini and Claude models take it as it is; OpenAI reasoning
///   models (o-series, gpt-5, gpt-oss) get `reasoning_effort` from the
///   budget (< 4096 low, < 16384 medium, else high); every other model gets
///   neither.
/// - hosted Anthropic tools (`web_search_…`, `bash_…`, …): only Claude
///   upstreams take them; removed for the others.
/// - `cache_control` on message parts and tools, and `top_k`: removed for
///   OpenAI-format upstreams (OpenAI refuses unknown fields there).
pub fn fit(req: &mut ChatRequest, target: &Target) {
    let claude = {
        let m = target.model.to_ascii_lowercase();
        m.contains("claude") || m.contains("anthropic")
    };
    let openai = matches!(
        target.kind,
        ProviderKind::OpenAiCompat | ProviderKind::Azure
    );
    let keeps_thinking = match target.kind {
        ProviderKind::Anthropic | ProviderKind::VertexAnthropic => true,
        ProviderKind::Gemini | ProviderKind::VertexGemini => true,
        ProviderKind::Bedrock => claude,
        ProviderKind::OpenAiCompat | ProviderKind::Azure => false,
    };
    if !keeps_thinking {
        if let Some(t) = req.extra.remove("thinking") {
            if openai && takes_reasoning_effort(&target.model) {
                let budget = t.get("budget_tokens").and_then(Value::as_u64);
                req.extra.insert(
                    "reasoning_effort".into(),
                    Value::String(effort_for_budget(budget).to_owned()),
                );
            }
        }
    }
    let hosted_tools_ok = matches!(
        target.kind,
        ProviderKind::Anthropic | ProviderKind::VertexAnthropic
    );
    if !hosted_tools_ok {
        if let Some(Value::Array(tools)) = req.extra.get_mut("tools") {
            tools.retain(|t| t.get("type").and_then(Value::as_str) == Some("function"));
            if tools.is_empty() {
                req.extra.remove("tools");
                req.extra.remove("tool_choice");
                req.extra.remove("parallel_tool_calls");
            }
        }
    }
    if openai {
        req.extra.remove("top_k");
        strip_cache_control(req);
    }
}

fn strip_cache_control(req: &mut ChatRequest) {
    for m in &mut req.messages {
        if let Some(MessageContent::Parts(parts)) = &mut m.content {
            for p in parts.iter_mut() {
                p.extra.remove("cache_control");
            }
            if parts.iter().all(|p| p.kind == "text" && p.extra.is_empty()) {
                let text: String = parts
                    .iter()
                    .filter_map(|p| p.text.as_deref())
                    .collect::<Vec<_>>()
                    .join("\n");
                m.content = Some(MessageContent::Text(text));
            }
        }
    }
    if let Some(Value::Array(tools)) = req.extra.get_mut("tools") {
        for t in tools {
            if let Some(o) = t.as_object_mut() {
                o.remove("cache_control");
            }
        }
    }
}

/// A rough count of the prompt's tokens (about four characters a token):
/// the text of `system`, every message block (text, tool inputs, tool
/// results, thinking), and the tool definitions as JSON; each image or
/// document counts as 1,600 tokens (Anthropic's figure for a ~1.2 MP image).
pub fn estimate_input_tokens(body: &JsonMap) -> u64 {
    const PER_IMAGE: u64 = 1600;
    fn walk(v: &Value, chars: &mut usize, images: &mut u64) {
        match v {
            Value::String(s) => *chars += s.chars().count(),
            Value::Array(items) => items.iter().for_each(|i| walk(i, chars, images)),
            Value::Object(o) => {
                let kind = o.get("type").and_then(Value::as_str);
                if matches!(kind, Some("image" | "document")) {
                    *images += 1;
                    return;
                }
                for (k, v) in o {
                    match k.as_str() {
                        "text" | "thinking" | "content" => walk(v, chars, images),
                        "input" => *chars += v.to_string().len(),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let mut chars = 0usize;
    let mut images = 0u64;
    if let Some(s) = body.get("system") {
        match s {
            Value::String(t) => chars += t.chars().count(),
            other => walk(other, &mut chars, &mut images),
        }
    }
    if let Some(Value::Array(messages)) = body.get("messages") {
        for m in messages {
            match m.get("content") {
                Some(Value::String(t)) => chars += t.chars().count(),
                Some(other) => walk(other, &mut chars, &mut images),
                None => {}
            }
            // Role and turn framing.
            chars += 12;
        }
    }
    if let Some(tools) = body.get("tools") {
        chars += tools.to_string().len();
    }
    crate::mock::estimate_tokens_of_len(chars) + images * PER_IMAGE
}
