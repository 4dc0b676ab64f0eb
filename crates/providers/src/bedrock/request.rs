//! OpenAI chat request → Converse request body.
//!
//! Messages: system/developer turns become `system` blocks, tool results
//! become `toolResult` blocks in user turns, assistant tool calls become
//! `toolUse` blocks, and consecutive turns of the same role are merged
//! (Converse requires alternation).
//!
//! Parameters follow LiteLLM's `AmazonConverseConfig`: the OpenAI sampling
//! parameters go to `inferenceConfig`, tools to `toolConfig`, thinking and
//! other model-specific keys to `additionalModelRequestFields` (`top_k` only
//! for Anthropic models, `inferenceConfig.topK` for Nova), and Converse's own
//! top-level blocks (`guardrailConfig`, `performanceConfig`, …) pass through.

use bytes::Bytes;
use ferrolite_types::openai::chat::{ContentPart, MessageContent, ToolCall};
use ferrolite_types::openai::{ChatMessage, ChatRequest};
use ferrolite_types::JsonMap;
use serde_json::{json, Value};

use super::{is_anthropic, is_gpt_oss, is_nova, is_nova_2_lite, RESPONSE_FORMAT_TOOL_NAME};
use crate::capabilities::unsupported_params;
use crate::params::{merged, param};
use crate::turns::{base64_data, image_url, push_turn, replayed_call, Turn};
use crate::{BuildOptions, ProviderKind, Target, TranslateError};

/// LiteLLM's `DEFAULT_MAX_TOKENS`, added to the thinking budget when the
/// client sets no `max_tokens` (Anthropic needs `maxTokens > budget`).
const THINKING_HEADROOM: u64 = 4096;

/// Bedrock rejects thinking budgets under this (LiteLLM clamps to it too).
const MIN_THINKING_BUDGET: u64 = 1024;

/// Converse's own top-level request members, forwarded as given.
const TOP_LEVEL: &[&str] = &[
    "guardrailConfig",
    "performanceConfig",
    "serviceTier",
    "requestMetadata",
    "promptVariables",
    "additionalModelResponseFieldPaths",
];

/// Keys this module maps itself, or gateway-only keys, never forwarded as
/// they are. The OpenAI parameters Converse cannot take are listed in
/// `capabilities.rs` (the pipeline checks them against `drop_params` first).
const NOT_FORWARDED: &[&str] = &[
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "tools",
    "functions",
    "tool_choice",
    "function_call",
    "parallel_tool_calls",
    "response_format",
    "thinking",
    "reasoning_effort",
    "extra_body",
    "extra_headers",
    "stream",
    "stream_options",
    "user",
    "metadata",
];

fn not_forwarded(key: &str) -> bool {
    NOT_FORWARDED.contains(&key) || unsupported_params(ProviderKind::Bedrock).contains(&key)
}

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

pub(super) fn build_body(
    req: &ChatRequest,
    target: &Target,
    opts: BuildOptions<'_>,
) -> Result<JsonMap, TranslateError> {
    let model = super::model_id(&target.model);
    let params = merged(&req.extra, opts.defaults);
    let mut body = JsonMap::new();
    let mut additional = JsonMap::new();
    let mut inference = JsonMap::new();

    let (system, messages) = convert_messages(&req.messages)?;
    let history_has_tools = messages.iter().any(|m| {
        m.get("content")
            .and_then(Value::as_array)
            .is_some_and(|blocks| {
                blocks
                    .iter()
                    .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some())
            })
    });
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }

    // Reasoning: an explicit `thinking` object wins over `reasoning_effort`.
    let mut thinking = param(&params, "thinking").cloned();
    if thinking.is_none() {
        if let Some(effort) = param(&params, "reasoning_effort") {
            let effort = effort
                .as_str()
                .ok_or_else(|| bad("reasoning_effort must be a string"))?;
            if is_gpt_oss(model) {
                additional.insert("reasoning_effort".into(), Value::String(effort.to_owned()));
            } else if is_nova_2_lite(model) {
                if !matches!(effort, "low" | "medium" | "high") {
                    return Err(bad(format!(
                        "unsupported reasoning_effort {effort:?} for Nova 2: expected low, medium or high"
                    )));
                }
                additional.insert(
                    "reasoningConfig".into(),
                    json!({"type": "enabled", "maxReasoningEffort": effort}),
                );
            } else {
                thinking = thinking_for_effort(effort)?;
            }
        }
    }
    if let Some(Value::Object(t)) = thinking.as_mut() {
        if let Some(b) = t.get("budget_tokens").and_then(Value::as_u64) {
            if b < MIN_THINKING_BUDGET {
                t.insert("budget_tokens".into(), MIN_THINKING_BUDGET.into());
            }
        }
    }
    let thinking_enabled = thinking
        .as_ref()
        .is_some_and(|t| t.get("type").and_then(Value::as_str) == Some("enabled"));
    let budget = thinking
        .as_ref()
        .filter(|_| thinking_enabled)
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64);

    match param(&params, "max_completion_tokens").or_else(|| param(&params, "max_tokens")) {
        Some(v) => {
            inference.insert("maxTokens".into(), v.clone());
        }
        None => {
            if let Some(b) = budget {
                inference.insert("maxTokens".into(), (b + THINKING_HEADROOM).into());
            }
        }
    }
    if let Some(t) = thinking {
        additional.insert("thinking".into(), t);
    }
    if let Some(v) = param(&params, "temperature") {
        inference.insert("temperature".into(), v.clone());
    }
    if let Some(v) = param(&params, "top_p") {
        inference.insert("topP".into(), v.clone());
    }
    if let Some(stop) = param(&params, "stop").and_then(stop_sequences) {
        inference.insert("stopSequences".into(), stop);
    }
    if let Some(k) = param(&params, "top_k") {
        if is_anthropic(model) {
            additional.insert("top_k".into(), k.clone());
        } else if is_nova(model) {
            additional.insert("inferenceConfig".into(), json!({ "topK": k }));
        }
    }

    // Tools, then the response_format tool, then the tool choice.
    let mut tools = Vec::new();
    if let Some(list) = param(&params, "tools") {
        let list = list
            .as_array()
            .ok_or_else(|| bad("`tools` must be an array"))?;
        for t in list {
            if let Some(spec) = convert_tool(t)? {
                tools.push(spec);
            }
        }
    } else if let Some(list) = param(&params, "functions") {
        let list = list
            .as_array()
            .ok_or_else(|| bad("`functions` must be an array"))?;
        for f in list {
            tools.push(tool_spec(f)?);
        }
    }
    let mut choice = match param(&params, "tool_choice").or_else(|| param(&params, "function_call"))
    {
        Some(c) => tool_choice(c)?,
        None => None,
    };
    if let Some(tool) = param(&params, "response_format").and_then(response_format_tool) {
        tools.push(tool);
        if !thinking_enabled {
            choice = Some(json!({"tool": {"name": RESPONSE_FORMAT_TOOL_NAME}}));
        }
    }
    // A forced tool is refused while thinking is on: leave it to the model.
    if thinking_enabled
        && choice
            .as_ref()
            .is_some_and(|c| c.get("any").is_some() || c.get("tool").is_some())
    {
        choice = Some(json!({"auto": {}}));
    }
    if !tools.is_empty() {
        let mut config = JsonMap::new();
        config.insert("tools".into(), Value::Array(tools));
        if let Some(c) = choice {
            config.insert("toolChoice".into(), c);
        }
        body.insert("toolConfig".into(), Value::Object(config));
    } else if history_has_tools {
        return Err(bad(
            "Bedrock needs `tools` whenever the conversation contains tool calls or tool results: pass the tool definitions with the request",
        ));
    }

    // Converse's own blocks, then everything else LiteLLM would hand to the
    // model as additional fields.
    for (k, v) in params.iter() {
        if v.is_null() || not_forwarded(k) {
            continue;
        }
        if TOP_LEVEL.contains(&k.as_str()) {
            body.insert(k.clone(), v.clone());
        } else if k == "additionalModelRequestFields" {
            if let Value::Object(o) = v {
                for (ak, av) in o {
                    additional.entry(ak.clone()).or_insert_with(|| av.clone());
                }
            }
        } else if k == "inferenceConfig" {
            if let Value::Object(o) = v {
                for (ik, iv) in o {
                    inference.entry(ik.clone()).or_insert_with(|| iv.clone());
                }
            }
        } else {
            additional.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if !additional.is_empty() {
        body.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    // `extra_body` is the client's explicit override of the upstream body.
    if let Some(Value::Object(extra)) = param(&params, "extra_body") {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
    Ok(body)
}

/// `reasoning_effort` → an Anthropic thinking budget, as LiteLLM maps it;
/// `minimal` gets Bedrock's minimum budget, `none` turns thinking off.
fn thinking_for_effort(effort: &str) -> Result<Option<Value>, TranslateError> {
    let budget = match effort {
        "none" => return Ok(None),
        "minimal" | "low" => 1024,
        "medium" => 2048,
        "high" => 4096,
        other => {
            return Err(bad(format!(
                "unsupported reasoning_effort for bedrock: {other:?}"
            )))
        }
    };
    Ok(Some(json!({"type": "enabled", "budget_tokens": budget})))
}

/// `stop` (a string or a list) → `stopSequences`; empty strings are dropped
/// (Converse rejects them).
fn stop_sequences(stop: &Value) -> Option<Value> {
    let list: Vec<Value> = match stop {
        Value::String(s) if !s.is_empty() => vec![Value::String(s.clone())],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    (!list.is_empty()).then_some(Value::Array(list))
}

/// An OpenAI tool → a Converse tool. Tools already in Converse's shape
/// (`toolSpec`, `systemTool`, `cachePoint`) pass through.
fn convert_tool(tool: &Value) -> Result<Option<Value>, TranslateError> {
    if tool.get("toolSpec").is_some()
        || tool.get("systemTool").is_some()
        || tool.get("cachePoint").is_some()
    {
        return Ok(Some(tool.clone()));
    }
    match (
        tool.get("type").and_then(Value::as_str),
        tool.get("function"),
    ) {
        (Some("function") | None, Some(f)) => tool_spec(f).map(Some),
        (Some(other), _) => Err(bad(format!(
            "bedrock does not support tools of type {other:?}"
        ))),
        (None, None) => Err(bad("every tool needs a `function`")),
    }
}

/// An OpenAI function definition → `{toolSpec: {name, description,
/// inputSchema: {json}}}`.
fn tool_spec(f: &Value) -> Result<Value, TranslateError> {
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("every function tool needs a `name`"))?;
    let schema = f
        .get("parameters")
        .filter(|p| !p.is_null())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    let mut spec = JsonMap::new();
    spec.insert("name".into(), Value::String(name.to_owned()));
    if let Some(d) = f
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        spec.insert("description".into(), Value::String(d.to_owned()));
    }
    spec.insert("inputSchema".into(), json!({ "json": schema }));
    Ok(json!({ "toolSpec": spec }))
}

/// `tool_choice` → Converse's `toolChoice`. Converse has no "none": like
/// LiteLLM with `drop_params`, it is dropped (the model may still call a
/// tool).
fn tool_choice(choice: &Value) -> Result<Option<Value>, TranslateError> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(Some(json!({"auto": {}}))),
            "required" | "any" => Ok(Some(json!({"any": {}}))),
            "none" => Ok(None),
            other => Err(bad(format!("unsupported tool_choice: {other:?}"))),
        },
        Value::Object(o) => {
            if o.contains_key("auto") || o.contains_key("any") || o.contains_key("tool") {
                return Ok(Some(choice.clone()));
            }
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice object needs a function name"))?;
            Ok(Some(json!({"tool": {"name": name}})))
        }
        _ => Err(bad("tool_choice must be a string or an object")),
    }
}

/// `response_format` (json_object / json_schema) → the `json_tool_call`
/// tool, as LiteLLM does; the answer's tool input becomes the content.
fn response_format_tool(rf: &Value) -> Option<Value> {
    let kind = rf.get("type").and_then(Value::as_str)?;
    if kind == "text" {
        return None;
    }
    let schema = rf
        .get("response_schema")
        .or_else(|| rf.get("json_schema").and_then(|j| j.get("schema")))
        .filter(|s| s.is_object())
        .cloned()
        .unwrap_or_else(
            || json!({"type": "object", "additionalProperties": true, "properties": {}}),
        );
    let mut spec = JsonMap::new();
    spec.insert(
        "name".into(),
        Value::String(RESPONSE_FORMAT_TOOL_NAME.to_owned()),
    );
    if let Some(d) = rf
        .get("json_schema")
        .and_then(|j| j.get("description"))
        .and_then(Value::as_str)
    {
        spec.insert("description".into(), Value::String(d.to_owned()));
    }
    spec.insert("inputSchema".into(), json!({ "json": schema }));
    Some(json!({ "toolSpec": spec }))
}

/// Messages → (`system` blocks, `messages`).
fn convert_messages(msgs: &[ChatMessage]) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for msg in msgs {
        match msg.role.as_str() {
            "system" | "developer" => {
                for text in text_pieces(msg.content.as_ref()) {
                    system.push(json!({ "text": text.0 }));
                    if text.1 {
                        system.push(cache_point());
                    }
                }
                if msg.extra.get("cache_control").is_some_and(|c| !c.is_null())
                    && system.last().is_some_and(|b| b.get("cachePoint").is_none())
                {
                    system.push(cache_point());
                }
            }
            "user" => {
                let mut blocks = content_blocks(msg.content.as_ref())?;
                message_cache_point(msg, &mut blocks);
                push_turn(&mut turns, "user", blocks);
            }
            "assistant" => {
                let mut blocks = reasoning_blocks(msg);
                blocks.extend(content_blocks(msg.content.as_ref())?);
                for call in msg.tool_calls.iter().flatten() {
                    blocks.push(tool_use_block(call)?);
                }
                message_cache_point(msg, &mut blocks);
                push_turn(&mut turns, "assistant", blocks);
            }
            "tool" => {
                let mut blocks = vec![tool_result_block(msg)?];
                message_cache_point(msg, &mut blocks);
                push_turn(&mut turns, "user", blocks);
            }
            other => {
                return Err(bad(format!(
                    "bedrock does not support messages with role {other:?}"
                )))
            }
        }
    }
    let messages = turns
        .into_iter()
        .map(|t| json!({"role": t.role, "content": t.blocks}))
        .collect();
    Ok((system, messages))
}

fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

/// A message-level `cache_control` adds a cache point after its content.
fn message_cache_point(msg: &ChatMessage, blocks: &mut Vec<Value>) {
    if msg.extra.get("cache_control").is_some_and(|c| !c.is_null())
        && blocks.last().is_some_and(|b| b.get("cachePoint").is_none())
    {
        blocks.push(cache_point());
    }
}

/// The non-empty texts of a system message, each with whether its part asked
/// for a cache point.
fn text_pieces(content: Option<&MessageContent>) -> Vec<(String, bool)> {
    match content {
        None => Vec::new(),
        Some(MessageContent::Text(s)) if s.is_empty() => Vec::new(),
        Some(MessageContent::Text(s)) => vec![(s.clone(), false)],
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|p| {
                let t = p.text.as_deref().filter(|t| !t.is_empty())?;
                Some((t.to_owned(), has_cache_control(p)))
            })
            .collect(),
    }
}

fn has_cache_control(p: &ContentPart) -> bool {
    p.extra.get("cache_control").is_some_and(|c| !c.is_null())
}

/// User or assistant content → Converse content blocks.
fn content_blocks(content: Option<&MessageContent>) -> Result<Vec<Value>, TranslateError> {
    match content {
        None => Ok(Vec::new()),
        // Converse rejects blank text blocks.
        Some(MessageContent::Text(s)) if s.trim().is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(s)) => Ok(vec![json!({ "text": s })]),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                if let Some(b) = part_block(p)? {
                    out.push(b);
                    if has_cache_control(p) {
                        out.push(cache_point());
                    }
                }
            }
            Ok(out)
        }
    }
}

/// One content part → one block (`None`: nothing to send).
fn part_block(part: &ContentPart) -> Result<Option<Value>, TranslateError> {
    match part.kind.as_str() {
        "text" => Ok(part
            .text
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| json!({ "text": t }))),
        "image_url" => {
            let url = image_url(part)?;
            let format_override = part
                .extra
                .get("image_url")
                .and_then(|v| v.get("format"))
                .and_then(Value::as_str);
            let (mime, data) = data_url(url, "image")?;
            let mime = format_override.unwrap_or(mime);
            let format = image_format(mime)?;
            Ok(Some(
                json!({"image": {"format": format, "source": {"bytes": data}}}),
            ))
        }
        "file" => {
            let file = part
                .extra
                .get("file")
                .ok_or_else(|| bad("file part without a `file` object"))?;
            let data = file
                .get("file_data")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad("bedrock needs file parts as base64 `file_data` data URLs; `file_id` is not supported")
                })?;
            let (mime, data) = data_url(data, "file")?;
            if let Some(img) = mime.strip_prefix("image/") {
                let format = image_format(&format!("image/{img}"))?;
                return Ok(Some(
                    json!({"image": {"format": format, "source": {"bytes": data}}}),
                ));
            }
            let format = document_format(mime)?;
            let name = file
                .get("filename")
                .and_then(Value::as_str)
                .map(document_name)
                .unwrap_or_else(|| format!("document-{format}"));
            Ok(Some(
                json!({"document": {"format": format, "name": name, "source": {"bytes": data}}}),
            ))
        }
        "input_audio" => Err(bad("bedrock converse does not accept audio input")),
        other => Err(bad(format!(
            "bedrock does not support content parts of type {other:?}"
        ))),
    }
}

/// `data:<mime>;base64,<data>` → (mime, data). Remote URLs cannot be
/// fetched here (providers do no I/O) and Converse takes only bytes (or S3).
fn data_url<'a>(url: &'a str, what: &str) -> Result<(&'a str, &'a str), TranslateError> {
    let Some(rest) = url.strip_prefix("data:") else {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Err(bad(format!(
                "bedrock needs {what}s inline: send the {what} as a base64 data: URL (data:<type>;base64,…); the gateway does not download {what} URLs"
            )));
        }
        return Err(bad(format!(
            "unsupported {what} URL: expected a base64 data: URL"
        )));
    };
    base64_data(rest, what)
}

fn image_format(mime: &str) -> Result<&'static str, TranslateError> {
    Ok(match mime.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(bad(format!(
                "bedrock accepts png, jpeg, gif and webp images, not {other}"
            )))
        }
    })
}

fn document_format(mime: &str) -> Result<&'static str, TranslateError> {
    Ok(match mime.to_ascii_lowercase().as_str() {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        other => {
            return Err(bad(format!(
                "bedrock does not accept documents of type {other}"
            )))
        }
    })
}

/// Converse document names allow letters, digits, whitespace, hyphens,
/// parentheses and square brackets only.
fn document_name(filename: &str) -> String {
    let stem = filename.rsplit_once('.').map_or(filename, |(s, _)| s);
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ' ' || "-()[]".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.trim().is_empty() {
        "document".to_owned()
    } else {
        cleaned
    }
}

/// An assistant message's `thinking_blocks` → `reasoningContent` blocks, so
/// signatures round-trip.
fn reasoning_blocks(msg: &ChatMessage) -> Vec<Value> {
    let Some(Value::Array(list)) = msg.extra.get("thinking_blocks") else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|b| match b.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                let mut text = JsonMap::new();
                text.insert(
                    "text".into(),
                    b.get("thinking").cloned().unwrap_or(Value::from("")),
                );
                if let Some(sig) = b
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    text.insert("signature".into(), Value::String(sig.to_owned()));
                }
                Some(json!({"reasoningContent": {"reasoningText": text}}))
            }
            Some("redacted_thinking") => b
                .get("data")
                .map(|d| json!({"reasoningContent": {"redactedContent": d}})),
            _ => None,
        })
        .collect()
}

fn tool_use_block(call: &ToolCall) -> Result<Value, TranslateError> {
    let call = replayed_call(call)?;
    Ok(json!({"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.input}}))
}

fn tool_result_block(msg: &ChatMessage) -> Result<Value, TranslateError> {
    let id = msg
        .tool_call_id
        .as_deref()
        .ok_or_else(|| bad("tool messages need a `tool_call_id`"))?;
    let mut content = Vec::new();
    match &msg.content {
        None => {}
        Some(MessageContent::Text(s)) => content.push(json!({ "text": s })),
        Some(MessageContent::Parts(parts)) => {
            let mut text = String::new();
            for p in parts {
                match p.kind.as_str() {
                    "text" => text.push_str(p.text.as_deref().unwrap_or("")),
                    "image_url" => {
                        if let Some(b) = part_block(p)? {
                            content.push(b);
                        }
                    }
                    _ => {}
                }
            }
            content.insert(0, json!({ "text": text }));
        }
    }
    if content.is_empty() {
        // Converse requires at least one content block.
        content.push(json!({"text": ""}));
    }
    Ok(json!({"toolResult": {"toolUseId": id, "content": content}}))
}
