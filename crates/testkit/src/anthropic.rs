//! A mock Anthropic Messages API (`POST /v1/messages`, and
//! `POST /v1/messages/count_tokens` answering [`COUNTED_TOKENS`]). By default it answers
//! a text message, as JSON or as Anthropic's typed SSE events when the
//! request says `"stream": true`; replies can be scripted per call (errors in
//! Anthropic's shape, tool use, errors inside a stream, hanging streams).
//! Every request is recorded.
//!
//! Requests Anthropic itself would refuse (no `x-api-key`, no
//! `anthropic-version`, no `max_tokens`, a `system` role inside `messages`, a
//! `tool_result` without its `tool_use`) get Anthropic's error answer before
//! the script is consulted, so adapter bugs show up as they would in
//! production.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

pub use crate::openai::Recorded;
use crate::server::{self, Core, MockServer};

/// The text of the default answer.
pub const DEFAULT_TEXT: &str = "Hello! How can I help you today?";
/// `usage.input_tokens` of every answer.
pub const INPUT_TOKENS: u64 = 25;
/// `usage.output_tokens` of every answer.
pub const OUTPUT_TOKENS: u64 = 12;
/// `input_tokens` of every `POST /v1/messages/count_tokens` answer.
pub const COUNTED_TOKENS: u64 = 4321;
/// The `request-id` header of every answer (and `request_id` of errors).
pub const REQUEST_ID: &str = "req_011CMockAnthropic0001";

/// A scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A text message with [`DEFAULT_TEXT`] (JSON or SSE as asked).
    Default,
    /// A text message with this text.
    Text(String),
    /// A `tool_use` answer (stop reason `tool_use`): JSON, or streamed with
    /// the input split over several `input_json_delta`s. `text`, when set,
    /// comes first in its own text block, as Claude often does.
    ToolUse {
        text: Option<String>,
        name: String,
        input: Value,
    },
    /// An Anthropic error answer:
    /// `{"type":"error","error":{"type":kind,"message":…},"request_id":…}`.
    Error {
        status: u16,
        kind: String,
        message: String,
        headers: Vec<(String, String)>,
    },
    /// A stream that starts a text message, sends `text`, then an
    /// `event: error` with this type and message, and closes. On a
    /// non-stream request, the same error as an HTTP answer.
    StreamError {
        text: String,
        kind: String,
        message: String,
    },
    /// Any status, content type and body.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Wait, then reply.
    Delay(Duration, Box<Reply>),
    /// These SSE events (`event:` name, `data:` payload), then close.
    Events(Vec<(String, Value)>),
    /// These SSE events, then `ping` events until the client goes away
    /// (counted by [`MockAnthropic::dropped_streams`]).
    Hang(Vec<(String, Value)>),
}

impl Reply {
    /// An error with the type Anthropic uses for `status`.
    pub fn error(status: u16, message: &str) -> Self {
        Reply::Error {
            status,
            kind: kind_for_status(status).to_owned(),
            message: message.to_owned(),
            headers: Vec::new(),
        }
    }

    /// A tool call with no text before it.
    pub fn tool_use(name: &str, input: Value) -> Self {
        Reply::ToolUse {
            text: None,
            name: name.to_owned(),
            input,
        }
    }

    /// `text` streamed, then an `overloaded_error` event.
    pub fn overloaded_mid_stream(text: &str) -> Self {
        Reply::StreamError {
            text: text.to_owned(),
            kind: "overloaded_error".to_owned(),
            message: "Overloaded".to_owned(),
        }
    }
}

/// Anthropic's error type for an HTTP status.
pub fn kind_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The HTTP status Anthropic pairs with an error type.
pub fn status_for_kind(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

type Shared = Core<Reply>;

/// A running mock; it stops when dropped.
pub struct MockAnthropic {
    pub addr: SocketAddr,
    server: MockServer<Reply>,
}

impl MockAnthropic {
    pub async fn start() -> Self {
        let server = MockServer::start((), Router::new().fallback(handle)).await;
        Self {
            addr: server.addr,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`, the value for `api_base` (Anthropic's
    /// base has no `/v1`).
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    server::recording_methods!(Reply);

    server::dropped_stream_methods!();
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = shared.record_json(&method, &uri, &headers, &body);
    if method == Method::POST && uri.path() == "/v1/messages/count_tokens" {
        if !headers.contains_key("x-api-key") && !headers.contains_key("authorization") {
            return error_response(
                401,
                "authentication_error",
                "x-api-key header is required",
                &[],
            );
        }
        return json_response(200, &json!({ "input_tokens": COUNTED_TOKENS }));
    }
    if method != Method::POST || uri.path() != "/v1/messages" {
        return error_response(404, "not_found_error", "Not Found", &[]);
    }
    if let Some(refusal) = refuse(&headers, parsed.as_ref()) {
        return refusal;
    }
    let req = parsed.unwrap_or(Value::Null);
    let reply = shared.next_reply().unwrap_or(Reply::Default);
    let n = shared.next_serial();
    respond(reply, req, n, shared).await
}

/// Anthropic's answer to a request it would not accept, if any.
fn refuse(headers: &HeaderMap, body: Option<&Value>) -> Option<Response> {
    let bad = |m: &str| Some(error_response(400, "invalid_request_error", m, &[]));
    if !headers.contains_key("x-api-key") && !headers.contains_key("authorization") {
        return Some(error_response(
            401,
            "authentication_error",
            "x-api-key header is required",
            &[],
        ));
    }
    if !headers.contains_key("anthropic-version") {
        return bad("anthropic-version: header is required");
    }
    let Some(body) = body.filter(|b| b.is_object()) else {
        return bad("There was an error parsing the body of your request.");
    };
    for field in ["model", "max_tokens", "messages"] {
        if body.get(field).is_none() {
            return bad(&format!("{field}: Field required"));
        }
    }
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut open_tool_uses: HashSet<String> = HashSet::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role == "system" {
            return bad("messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.");
        }
        if role != "user" && role != "assistant" {
            return bad(&format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        let blocks = m
            .get("content")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let ids = |kind: &str, field: &str| -> Vec<String> {
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some(kind))
                .filter_map(|b| b.get(field).and_then(Value::as_str).map(str::to_owned))
                .collect()
        };
        for id in ids("tool_result", "tool_use_id") {
            if !open_tool_uses.contains(&id) {
                return bad(&format!(
                    "messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                ));
            }
        }
        open_tool_uses = ids("tool_use", "id").into_iter().collect();
    }
    None
}

fn with_headers(b: axum::http::response::Builder) -> axum::http::response::Builder {
    b.header("request-id", REQUEST_ID).header(
        "anthropic-organization-id",
        "00000000-0000-4000-8000-000000000000",
    )
}

fn json_response(status: u16, v: &Value) -> Response {
    with_headers(Response::builder())
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": REQUEST_ID})
}

fn error_response(status: u16, kind: &str, message: &str, extra: &[(String, String)]) -> Response {
    let mut b = with_headers(Response::builder())
        .status(status)
        .header("content-type", "application/json");
    if status == 429 || status == 529 {
        b = b.header("x-should-retry", "true");
    }
    for (k, v) in extra {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Body::from(error_body(kind, message).to_string()))
        .unwrap_or_default()
}

fn sse_response(body: Body) -> Response {
    with_headers(Response::builder())
        .status(200)
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(body)
        .unwrap_or_default()
}

/// One SSE event as Anthropic frames it.
pub fn frame(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn sse_text(events: &[(String, Value)]) -> String {
    events.iter().map(|(e, d)| frame(e, d)).collect()
}

/// The dated model id Anthropic reports for an alias.
pub fn resolved_model(model: &str) -> String {
    match model {
        "claude-sonnet-4-5" => "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5" => "claude-haiku-4-5-20251001",
        "claude-opus-4-1" => "claude-opus-4-1-20250805",
        "claude-sonnet-4-0" => "claude-sonnet-4-20250514",
        other => other,
    }
    .to_owned()
}

/// Content of an answer, before it is framed as JSON or events.
#[derive(Debug, Clone)]
enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

impl Block {
    fn json(&self) -> Value {
        match self {
            Block::Text(t) => json!({"type": "text", "text": t}),
            Block::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        }
    }
}

fn usage() -> Value {
    json!({
        "input_tokens": INPUT_TOKENS,
        "output_tokens": OUTPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard"
    })
}

/// A complete message as Anthropic answers it.
fn message_json(id: &str, model: &str, blocks: &[Block], stop_reason: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks.iter().map(Block::json).collect::<Vec<_>>(),
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage()
    })
}

/// The opening events: `message_start` (empty content, output tokens 1).
fn start_events(id: &str, model: &str) -> Vec<(String, Value)> {
    vec![(
        "message_start".to_owned(),
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": INPUT_TOKENS, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1, "service_tier": "standard"}
        }}),
    )]
}

/// Pieces of `s` of about `n` characters (on char boundaries).
fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// The events of one content block at `index`.
fn block_events(index: usize, block: &Block) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    match block {
        Block::Text(text) => {
            out.push((
                "content_block_start".to_owned(),
                json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
            ));
            if index == 0 {
                out.push(("ping".to_owned(), json!({"type": "ping"})));
            }
            for piece in text.split_inclusive(' ') {
                out.push((
                    "content_block_delta".to_owned(),
                    json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
                ));
            }
        }
        Block::ToolUse { id, name, input } => {
            out.push((
                "content_block_start".to_owned(),
                json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
            ));
            if index == 0 {
                out.push(("ping".to_owned(), json!({"type": "ping"})));
            }
            // Anthropic opens with an empty fragment, then splits the JSON
            // anywhere, even inside strings.
            let mut parts = vec![String::new()];
            parts.extend(pieces(&input.to_string(), 7));
            for p in parts {
                out.push((
                    "content_block_delta".to_owned(),
                    json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}),
                ));
            }
        }
    }
    out.push((
        "content_block_stop".to_owned(),
        json!({"type": "content_block_stop", "index": index}),
    ));
    out
}

/// The whole event sequence for a message.
pub fn message_events(id: &str, model: &str, text: &str) -> Vec<(String, Value)> {
    stream_events(id, model, &[Block::Text(text.to_owned())], "end_turn")
}

fn stream_events(
    id: &str,
    model: &str,
    blocks: &[Block],
    stop_reason: &str,
) -> Vec<(String, Value)> {
    let mut out = start_events(id, model);
    for (i, b) in blocks.iter().enumerate() {
        out.extend(block_events(i, b));
    }
    out.push((
        "message_delta".to_owned(),
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": OUTPUT_TOKENS}}),
    ));
    out.push(("message_stop".to_owned(), json!({"type": "message_stop"})));
    out
}

fn respond(
    reply: Reply,
    req: Value,
    n: usize,
    shared: Arc<Shared>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>> {
    Box::pin(async move {
        let model = resolved_model(req.get("model").and_then(Value::as_str).unwrap_or(""));
        let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let id = format!("msg_01MockAnthropic{n:06}");
        let answer = |blocks: Vec<Block>, stop: &str| {
            if stream {
                sse_response(Body::from(sse_text(&stream_events(
                    &id, &model, &blocks, stop,
                ))))
            } else {
                json_response(200, &message_json(&id, &model, &blocks, stop))
            }
        };
        match reply {
            Reply::Default => answer(vec![Block::Text(DEFAULT_TEXT.to_owned())], "end_turn"),
            Reply::Text(t) => answer(vec![Block::Text(t)], "end_turn"),
            Reply::ToolUse { text, name, input } => {
                let mut blocks: Vec<Block> = text.into_iter().map(Block::Text).collect();
                blocks.push(Block::ToolUse {
                    id: format!("toolu_01MockTool{n:06}"),
                    name,
                    input,
                });
                answer(blocks, "tool_use")
            }
            Reply::Error {
                status,
                kind,
                message,
                headers,
            } => error_response(status, &kind, &message, &headers),
            Reply::StreamError {
                text,
                kind,
                message,
            } => {
                if !stream {
                    return error_response(status_for_kind(&kind), &kind, &message, &[]);
                }
                let mut events = start_events(&id, &model);
                let mut block = block_events(0, &Block::Text(text));
                block.pop(); // the block never finishes
                events.extend(block);
                events.push(("error".to_owned(), error_body(&kind, &message)));
                sse_response(Body::from(sse_text(&events)))
            }
            Reply::Raw {
                status,
                content_type,
                body,
            } => with_headers(Response::builder())
                .status(status)
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap_or_default(),
            Reply::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                respond(*inner, req, n, shared).await
            }
            Reply::Events(events) => sse_response(Body::from(sse_text(&events))),
            Reply::Hang(events) => {
                let first = events
                    .into_iter()
                    .map(|(e, d)| Bytes::from(frame(&e, &d)))
                    .collect();
                let ping = Bytes::from(frame("ping", &json!({"type": "ping"})));
                sse_response(shared.hanging_body(first, ping))
            }
        }
    })
}

/// The events of a message whose text is `text`, for [`Reply::Events`] and
/// [`Reply::Hang`]: everything up to and including the last text delta when
/// `finish` is false, the whole message when it is true.
pub fn text_events(model: &str, text: &str, finish: bool) -> Vec<(String, Value)> {
    let id = "msg_01MockAnthropicEvents";
    if finish {
        return message_events(id, model, text);
    }
    let mut out = start_events(id, model);
    let mut block = block_events(0, &Block::Text(text.to_owned()));
    block.pop();
    out.extend(block);
    out
}
