//! OpenAI chat request → Anthropic Messages request body.
//!
//! Messages: system/developer turns are lifted to `system`, tool results
//! become `tool_result` blocks in user turns, consecutive turns of the same
//! role are merged (Anthropic requires strict alternation), and assistant
//! `thinking_blocks` are replayed first in their turn so signatures round-trip.
//!
//! Parameters: the OpenAI ones Anthropic understands are mapped, the ones it
//! does not take are dropped (see `capabilities.rs`), and anything else — provider
//! specific keys such as `top_k` or `container` — is forwarded verbatim, as
//! LiteLLM forwards unknown keyword arguments.

use bytes::Bytes;
use ferrolite_types::openai::chat::{ContentPart, ToolCall};
use ferrolite_types::openai::{ChatMessage, ChatRequest};
use ferrolite_types::JsonMap;
use serde_json::{json, Value};

use super::RESPONSE_FORMAT_TOOL_NAME;
use crate::capabilities::unsupported_params;
use crate::params::{merged, param};
use crate::turns::{base64_data, image_url, push_turn, replayed_call, Turn};
use crate::{BuildOptions, ProviderKind, Target, TranslateError};

/// `max_tokens` is mandatory upstream; LiteLLM's default when the client sets
/// none (`DEFAULT_ANTHROPIC_CHAT_MAX_TOKENS`). A per-model table of maximum
/// output tokens was considered and rejected: sending the model maximum
/// changes rate-limit accounting (Anthropic counts `max_tokens` against the
/// output-tokens-per-minute limit) and would diverge from LiteLLM.
pub(super) const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Added to the thinking budget when thinking is on and the client set no
/// `max_tokens` (Anthropic requires `max_tokens > budget_tokens`); LiteLLM's
/// `DEFAULT_MAX_TOKENS`.
const THINKING_HEADROOM: u64 = 4096;

/// Keys never forwarded besides the OpenAI parameters Anthropic cannot take
/// (those are listed in `capabilities.rs`, where the pipeline checks them
/// against `drop_params` before this adapter runs).
const NOT_FORWARDED: &[&str] = &["extra_headers", "stream_options"];

fn dropped(key: &str) -> bool {
    NOT_FORWARDED.contains(&key) || unsupported_params(ProviderKind::Anthropic).contains(&key)
}

/// Keys this module maps itself; never forwarded as they are.
const MAPPED: &[&str] = &[
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "user",
    "metadata",
    "tools",
    "functions",
    "tool_choice",
    "function_call",
    "parallel_tool_calls",
    "response_format",
    "thinking",
    "reasoning_effort",
    "extra_body",
    "stream",
];

fn bad(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadRequest(msg.into())
}

pub(super) fn chat_body(
    req: &ChatRequest,
    target: &Target,
    opts: BuildOptions<'_>,
) -> Result<Bytes, TranslateError> {
    let body = build_body(req, target, opts)?;
    crate::params::encode(&Value::Object(body))
}

pub(crate) fn build_body(
    req: &ChatRequest,
    target: &Target,
    opts: BuildOptions<'_>,
) -> Result<JsonMap, TranslateError> {
    let params = merged(&req.extra, opts.defaults);
    let mut body = JsonMap::new();
    body.insert("model".into(), Value::String(target.model.clone()));

    let (system, messages) = convert_messages(&req.messages)?;
    body.insert("messages".into(), Value::Array(messages));
    if let Some(system) = system {
        body.insert("system".into(), system);
    }

    // Thinking: an explicit `thinking` object wins over `reasoning_effort`.
    let thinking = match param(&params, "thinking") {
        Some(t) => Some(t.clone()),
        None => match param(&params, "reasoning_effort") {
            Some(effort) => thinking_for_effort(effort)?,
            None => None,
        },
    };
    let thinking_enabled = thinking
        .as_ref()
        .is_some_and(|t| t.get("type").and_then(Value::as_str) == Some("enabled"));
    let budget = thinking
        .as_ref()
        .filter(|_| thinking_enabled)
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64);

    let max_tokens =
        match param(&params, "max_completion_tokens").or_else(|| param(&params, "max_tokens")) {
            Some(v) => v.clone(),
            None => Value::from(budget.map_or(DEFAULT_MAX_TOKENS, |b| b + THINKING_HEADROOM)),
        };
    body.insert("max_tokens".into(), max_tokens);
    if let Some(t) = thinking {
        body.insert("thinking".into(), t);
    }

    for key in ["temperature", "top_p"] {
        if let Some(v) = param(&params, key) {
            body.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = param(&params, "stop").and_then(stop_sequences) {
        body.insert("stop_sequences".into(), stop);
    }
    if let Some(m) = metadata(&params) {
        body.insert("metadata".into(), m);
    }

    // Tools, then the response_format tool, then tool_choice (which needs to
    // know whether any tool is present).
    let mut tools = Vec::new();
    if let Some(list) = param(&params, "tools") {
        let list = list
            .as_array()
            .ok_or_else(|| bad("`tools` must be an array"))?;
        for t in list {
            tools.push(convert_tool(t)?);
        }
    } else if let Some(list) = param(&params, "functions") {
        let list = list
            .as_array()
            .ok_or_else(|| bad("`functions` must be an array"))?;
        for f in list {
            tools.push(convert_function(f, None)?);
        }
    }
    let mut choice = tool_choice(
        param(&params, "tool_choice").or_else(|| param(&params, "function_call")),
        param(&params, "parallel_tool_calls").and_then(Value::as_bool),
    )?;
    if let Some(tool) = param(&params, "response_format").and_then(response_format_tool) {
        tools.push(tool);
        // Anthropic refuses a forced tool while thinking is on; LiteLLM then
        // leaves the choice to the model, and so do we.
        if !thinking_enabled {
            choice = Some(json!({"type": "tool", "name": RESPONSE_FORMAT_TOOL_NAME}));
        }
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(c) = choice {
            body.insert("tool_choice".into(), c);
        }
    }

    if req.is_stream() {
        body.insert("stream".into(), Value::Bool(true));
    }

    // Provider-specific keys pass through, never overriding what was built.
    for (k, v) in params.iter() {
        if dropped(k) || MAPPED.contains(&k.as_str()) || v.is_null() {
            continue;
        }
        if !body.contains_key(k) {
            body.insert(k.clone(), v.clone());
        }
    }
    // `extra_body` is the client's explicit override of the upstream body.
    if let Some(Value::Object(extra)) = param(&params, "extra_body") {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
    Ok(body)
}

/// `reasoning_effort` → a thinking budget, as LiteLLM maps it (1024 / 2048 /
/// 4096). `minimal` gets Anthropic's minimum budget (1024) rather than
/// LiteLLM's 128, which Anthropic rejects; `none` turns thinking off.
fn thinking_for_effort(effort: &Value) -> Result<Option<Value>, TranslateError> {
    let budget = match effort.as_str() {
        Some("none") => return Ok(None),
        Some("minimal" | "low") => 1024,
        Some("medium") => 2048,
        Some("high") => 4096,
        _ => {
            return Err(bad(format!(
                "unsupported reasoning_effort for anthropic: {effort}"
            )))
        }
    };
    Ok(Some(json!({"type": "enabled", "budget_tokens": budget})))
}

/// `stop` (a string or a list) → `stop_sequences`. Whitespace-only sequences
/// are dropped: Anthropic rejects them (LiteLLM drops them under
/// `drop_params`).
fn stop_sequences(stop: &Value) -> Option<Value> {
    let keep = |s: &str| !s.trim().is_empty();
    let list: Vec<Value> = match stop {
        Value::String(s) if keep(s) => vec![Value::String(s.clone())],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| keep(s))
            .map(|s| Value::String(s.to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    (!list.is_empty()).then_some(Value::Array(list))
}

/// `user` → `metadata.user_id`; a client `metadata.user_id` wins. Anthropic's
/// `metadata` takes nothing else, so other metadata keys are not forwarded.
/// Like LiteLLM, ids that look like an e-mail address or a phone number are
/// not sent (Anthropic rejects them).
fn metadata(params: &JsonMap) -> Option<Value> {
    let from_metadata = param(params, "metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str);
    let user = from_metadata.or_else(|| param(params, "user").and_then(Value::as_str))?;
    valid_user_id(user).then(|| json!({ "user_id": user }))
}

fn valid_user_id(id: &str) -> bool {
    !looks_like_email(id) && !looks_like_phone(id)
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c));
    let Some((host, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let tld_ok = tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic());
    local_ok && host_ok && tld_ok
}

fn looks_like_phone(s: &str) -> bool {
    let rest = s.strip_prefix('+').unwrap_or(s);
    rest.chars().count() >= 7
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_whitespace() || "()-".contains(c))
}

/// An OpenAI tool → an Anthropic tool. Tools already in Anthropic's shape
/// (with `input_schema`) and Anthropic-hosted tools (`web_search_…`,
/// `bash_…`, …) pass through unchanged.
fn convert_tool(tool: &Value) -> Result<Value, TranslateError> {
    if tool.get("input_schema").is_some() {
        return Ok(tool.clone());
    }
    let kind = tool.get("type").and_then(Value::as_str);
    match (kind, tool.get("function")) {
        (Some("function") | None, Some(f)) => convert_function(f, tool.get("cache_control")),
        _ => Ok(tool.clone()),
    }
}

/// An OpenAI function definition (`tools[].function` or a legacy
/// `functions[]` item) → an Anthropic tool.
fn convert_function(f: &Value, cache_control: Option<&Value>) -> Result<Value, TranslateError> {
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("every function tool needs a `name`"))?;
    let schema = f
        .get("parameters")
        .filter(|p| !p.is_null())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    let mut out = JsonMap::new();
    out.insert("name".into(), Value::String(name.to_owned()));
    if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
        out.insert("description".into(), d.clone());
    }
    out.insert("input_schema".into(), schema);
    if let Some(cc) = cache_control.or_else(|| f.get("cache_control")) {
        if !cc.is_null() {
            out.insert("cache_control".into(), cc.clone());
        }
    }
    Ok(Value::Object(out))
}

/// `tool_choice` (or legacy `function_call`) and `parallel_tool_calls` →
/// Anthropic's `tool_choice`.
fn tool_choice(
    choice: Option<&Value>,
    parallel: Option<bool>,
) -> Result<Option<Value>, TranslateError> {
    let mut mapped = match choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" | "any" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            other => return Err(bad(format!("unsupported tool_choice: {other:?}"))),
        },
        Some(Value::Object(o)) => {
            let kind = o.get("type").and_then(Value::as_str);
            let fn_name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            match (kind, fn_name) {
                // OpenAI's `{type: function, function: {name}}`.
                (Some("function"), Some(name)) => Some(json!({"type": "tool", "name": name})),
                // Already Anthropic's shape.
                (Some("auto" | "any" | "tool" | "none"), _) => Some(Value::Object(o.clone())),
                // Legacy `function_call: {name}`.
                (None, _) => match o.get("name").and_then(Value::as_str) {
                    Some(name) => Some(json!({"type": "tool", "name": name})),
                    None => return Err(bad("tool_choice object needs a function name")),
                },
                _ => return Err(bad("unsupported tool_choice object")),
            }
        }
        Some(_) => return Err(bad("tool_choice must be a string or an object")),
    };
    if let Some(p) = parallel {
        let is_none = mapped
            .as_ref()
            .and_then(|c| c.get("type"))
            .and_then(Value::as_str)
            == Some("none");
        if !is_none {
            let c = mapped.get_or_insert_with(|| json!({"type": "auto"}));
            if let Some(obj) = c.as_object_mut() {
                obj.insert("disable_parallel_tool_use".into(), Value::Bool(!p));
            }
        }
    }
    Ok(mapped)
}

/// `response_format` → the forced `json_tool_call` tool, as LiteLLM does.
/// Anthropic's native `output_format` (structured outputs) needs a beta header
/// and is limited to some models, so the tool is the portable choice; the
/// response side turns the tool call back into message content.
fn response_format_tool(rf: &Value) -> Option<Value> {
    let kind = rf.get("type").and_then(Value::as_str)?;
    if kind == "text" {
        return None;
    }
    let schema = rf
        .get("response_schema")
        .or_else(|| rf.get("json_schema").and_then(|j| j.get("schema")))
        .and_then(Value::as_object);
    let mut input_schema = JsonMap::new();
    input_schema.insert("type".into(), Value::String("object".into()));
    match schema {
        Some(s) => {
            for (k, v) in s {
                input_schema.insert(k.clone(), v.clone());
            }
        }
        None => {
            input_schema.insert("additionalProperties".into(), Value::Bool(true));
            input_schema.insert("properties".into(), json!({}));
        }
    }
    let mut tool = JsonMap::new();
    tool.insert(
        "name".into(),
        Value::String(RESPONSE_FORMAT_TOOL_NAME.to_owned()),
    );
    if let Some(d) = rf
        .get("json_schema")
        .and_then(|j| j.get("description"))
        .filter(|d| d.is_string())
    {
        tool.insert("description".into(), d.clone());
    }
    tool.insert("input_schema".into(), Value::Object(input_schema));
    Some(Value::Object(tool))
}

/// Messages → (`system`, `messages`).
fn convert_messages(msgs: &[ChatMessage]) -> Result<(Option<Value>, Vec<Value>), TranslateError> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for msg in msgs {
        match msg.role.as_str() {
            "system" | "developer" => {
                let mut blocks = system_blocks(msg);
                apply_cache_control(msg, &mut blocks);
                system.extend(blocks);
            }
            "user" => {
                let mut blocks = content_blocks(msg)?;
                apply_cache_control(msg, &mut blocks);
                push_turn(&mut turns, "user", blocks);
            }
            "assistant" => {
                let mut blocks = thinking_blocks(msg);
                blocks.extend(content_blocks(msg)?);
                for call in msg.tool_calls.iter().flatten() {
                    blocks.push(tool_use_block(call)?);
                }
                apply_cache_control(msg, &mut blocks);
                push_turn(&mut turns, "assistant", blocks);
            }
            "tool" => {
                let mut blocks = vec![tool_result_block(msg)?];
                apply_cache_control(msg, &mut blocks);
                push_turn(&mut turns, "user", blocks);
            }
            other => {
                return Err(bad(format!(
                    "anthropic does not support messages with role {other:?}"
                )))
            }
        }
    }
    let system = match system.as_slice() {
        [] => None,
        [only] if is_plain_text(only) => only.get("text").cloned(),
        _ => Some(Value::Array(system)),
    };
    let messages = turns
        .into_iter()
        .map(|t| {
            let content = match t.blocks.as_slice() {
                [only] if is_plain_text(only) => only.get("text").cloned().unwrap_or_default(),
                _ => Value::Array(t.blocks),
            };
            json!({"role": t.role, "content": content})
        })
        .collect();
    Ok((system, messages))
}

/// `{"type":"text","text":…}` and nothing else: can be sent as a string.
fn is_plain_text(block: &Value) -> bool {
    block.as_object().is_some_and(|o| {
        o.len() == 2
            && o.get("type").and_then(Value::as_str) == Some("text")
            && o.get("text").is_some_and(Value::is_string)
    })
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// A message-level `cache_control` (LiteLLM accepts it there) marks the last
/// block of that message.
fn apply_cache_control(msg: &ChatMessage, blocks: &mut [Value]) {
    let Some(cc) = msg.extra.get("cache_control").filter(|c| !c.is_null()) else {
        return;
    };
    if let Some(Value::Object(last)) = blocks.last_mut() {
        last.entry("cache_control").or_insert_with(|| cc.clone());
    }
}

fn system_blocks(msg: &ChatMessage) -> Vec<Value> {
    use ferrolite_types::openai::chat::MessageContent;
    match &msg.content {
        None => Vec::new(),
        Some(MessageContent::Text(s)) if s.is_empty() => Vec::new(),
        Some(MessageContent::Text(s)) => vec![text_block(s)],
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|p| {
                let text = p.text.as_deref().filter(|t| !t.is_empty())?;
                let mut b = text_block(text);
                copy_cache_control(p, &mut b);
                Some(b)
            })
            .collect(),
    }
}

fn content_blocks(msg: &ChatMessage) -> Result<Vec<Value>, TranslateError> {
    use ferrolite_types::openai::chat::MessageContent;
    match &msg.content {
        None => Ok(Vec::new()),
        // Anthropic rejects empty text blocks.
        Some(MessageContent::Text(s)) if s.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(s)) => Ok(vec![text_block(s)]),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                if let Some(b) = part_block(p)? {
                    out.push(b);
                }
            }
            Ok(out)
        }
    }
}

fn copy_cache_control(part: &ContentPart, block: &mut Value) {
    if let (Some(cc), Value::Object(b)) = (part.extra.get("cache_control"), block) {
        if !cc.is_null() {
            b.insert("cache_control".into(), cc.clone());
        }
    }
}

/// One OpenAI content part → one Anthropic block (`None`: nothing to send).
fn part_block(part: &ContentPart) -> Result<Option<Value>, TranslateError> {
    let mut block = match part.kind.as_str() {
        "text" => match part.text.as_deref() {
            Some(t) if !t.is_empty() => text_block(t),
            _ => return Ok(None),
        },
        "image_url" => {
            json!({"type": "image", "source": media_source(image_url(part)?, "image")?})
        }
        "file" => {
            let file = part
                .extra
                .get("file")
                .ok_or_else(|| bad("file part without a `file` object"))?;
            match file.get("file_data").and_then(Value::as_str) {
                Some(data) => {
                    let mut doc = json!({"type": "document", "source": media_source(data, "file")?});
                    if let (Some(name), Some(obj)) = (
                        file.get("filename").and_then(Value::as_str),
                        doc.as_object_mut(),
                    ) {
                        obj.insert("title".into(), Value::String(name.to_owned()));
                    }
                    doc
                }
                None => {
                    return Err(bad(
                        "anthropic needs file parts as `file_data` (data: or https: URL); `file_id` is not supported",
                    ))
                }
            }
        }
        "input_audio" => return Err(bad("anthropic does not accept audio input")),
        // Anything else (`document`, `search_result`, …) is taken to be an
        // Anthropic block already and forwarded unchanged.
        _ => serde_json::to_value(part).map_err(|e| bad(e.to_string()))?,
    };
    copy_cache_control(part, &mut block);
    Ok(Some(block))
}

/// A data URL → a base64 source; an http(s) URL → a URL source.
fn media_source(url: &str, what: &str) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (media_type, data) = base64_data(rest, what)?;
        return Ok(json!({"type": "base64", "media_type": media_type, "data": data}));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "url", "url": url}));
    }
    Err(bad(format!(
        "unsupported {what} URL: expected a data: or http(s): URL"
    )))
}

/// An assistant message's `thinking_blocks` (as returned by this adapter),
/// replayed so Anthropic can check their signatures.
fn thinking_blocks(msg: &ChatMessage) -> Vec<Value> {
    let Some(Value::Array(list)) = msg.extra.get("thinking_blocks") else {
        return Vec::new();
    };
    list.iter()
        .filter(|b| {
            matches!(
                b.get("type").and_then(Value::as_str),
                Some("thinking" | "redacted_thinking")
            )
        })
        .cloned()
        .collect()
}

/// Anthropic takes only JSON objects as tool input.
fn tool_use_block(call: &ToolCall) -> Result<Value, TranslateError> {
    let call = replayed_call(call)?;
    if !call.input.is_object() {
        return Err(bad(format!(
            "arguments of tool call {} must be a JSON object",
            call.id
        )));
    }
    Ok(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}))
}

fn tool_result_block(msg: &ChatMessage) -> Result<Value, TranslateError> {
    use ferrolite_types::openai::chat::MessageContent;
    let id = msg
        .tool_call_id
        .as_deref()
        .ok_or_else(|| bad("tool messages need a `tool_call_id`"))?;
    let mut block = JsonMap::new();
    block.insert("type".into(), Value::String("tool_result".into()));
    block.insert("tool_use_id".into(), Value::String(id.to_owned()));
    match &msg.content {
        None => {}
        Some(MessageContent::Text(s)) => {
            block.insert("content".into(), Value::String(s.clone()));
        }
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                if let Some(b) = part_block(p)? {
                    out.push(b);
                }
            }
            block.insert("content".into(), Value::Array(out));
        }
    }
    Ok(Value::Object(block))
}
