//! The conversation of block-based upstreams (Anthropic Messages, Bedrock
//! Converse) built from OpenAI messages: strictly alternating user/assistant
//! turns of content blocks, the input of replayed assistant tool calls, and
//! the media URLs of content parts. Each adapter shapes the blocks itself.

use ferrolite_types::openai::chat::{ContentPart, ToolCall};
use serde_json::{json, Value};

use crate::TranslateError;

fn bad(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadRequest(msg.into())
}

/// One upstream turn being assembled.
pub(crate) struct Turn {
    pub(crate) role: &'static str,
    pub(crate) blocks: Vec<Value>,
}

/// Append `blocks` to the last turn when it has the same role (the upstream
/// requires alternation); turns without content are dropped (the upstream
/// rejects empty content).
pub(crate) fn push_turn(turns: &mut Vec<Turn>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.blocks.extend(blocks),
        _ => turns.push(Turn { role, blocks }),
    }
}

/// A tool call of an assistant message being replayed upstream.
pub(crate) struct ReplayedCall<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    /// The parsed `arguments`: `{}` when they are blank or `null`.
    pub(crate) input: Value,
}

/// An assistant message's tool call → its id, name and parsed arguments.
pub(crate) fn replayed_call(call: &ToolCall) -> Result<ReplayedCall<'_>, TranslateError> {
    let id = call
        .id
        .as_deref()
        .ok_or_else(|| bad("assistant tool_calls need an `id`"))?;
    let function = call
        .function
        .as_ref()
        .ok_or_else(|| bad("assistant tool_calls need a `function`"))?;
    let name = function
        .name
        .as_deref()
        .ok_or_else(|| bad("assistant tool_calls need a function name"))?;
    let args = function.arguments.as_deref().unwrap_or("");
    let input = if args.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str::<Value>(args) {
            Ok(Value::Null) => json!({}),
            Ok(v) => v,
            Err(e) => {
                return Err(bad(format!(
                    "arguments of tool call {id} are not valid JSON: {e}"
                )))
            }
        }
    };
    Ok(ReplayedCall { id, name, input })
}

/// The URL of an `image_url` content part (a string, or `{url, …}`).
pub(crate) fn image_url(part: &ContentPart) -> Result<&str, TranslateError> {
    match part.extra.get("image_url") {
        Some(Value::String(u)) => Ok(u.as_str()),
        Some(v) => v
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("image_url part without a url")),
        None => Err(bad("image_url part without a url")),
    }
}

/// What follows `data:` in a base64 data URL → (media type, data); `what`
/// names the part in errors.
pub(crate) fn base64_data<'a>(
    rest: &'a str,
    what: &str,
) -> Result<(&'a str, &'a str), TranslateError> {
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| bad(format!("malformed data URL in {what} part")))?;
    let media_type = meta
        .strip_suffix(";base64")
        .ok_or_else(|| bad(format!("{what} data URLs must be base64-encoded")))?;
    if media_type.is_empty() {
        return Err(bad(format!("{what} data URL without a media type")));
    }
    Ok((media_type, data))
}
