//! A mock Google AI Studio Gemini API: `POST
//! /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent` (`?alt=sse` for SSE `data:` frames with no end
//! marker; without it, one JSON array, as Google does). By default it answers
//! a text candidate; replies can be scripted per call (errors in Google's
//! shape, a `functionCall` carrying a `thoughtSignature`, errors inside a
//! stream, hanging streams). Every request is recorded.
//!
//! Requests Google would refuse (no API key, no `contents`, a role other than
//! `user`/`model`, function responses that do not match the preceding
//! function calls, and — for Gemini 3 models — a replayed function call
//! without its thought signature) get Google's error answer before the script
//! is consulted.

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
/// `usageMetadata.promptTokenCount` of every answer.
pub const PROMPT_TOKENS: u64 = 8;
/// `usageMetadata.candidatesTokenCount` of every finished answer.
pub const CANDIDATES_TOKENS: u64 = 9;
/// `usageMetadata.thoughtsTokenCount` of every finished answer (2.5 models
/// think by default; the total counts thoughts too).
pub const THOUGHTS_TOKENS: u64 = 5;
/// `usageMetadata.totalTokenCount` of every finished answer.
pub const TOTAL_TOKENS: u64 = PROMPT_TOKENS + CANDIDATES_TOKENS + THOUGHTS_TOKENS;
/// The signature [`Reply::function_call`] attaches.
pub const SIGNATURE: &str = "CiQBcsjafEoVMOCKjZ7nUqBnS7sDBgLFe3PMTZEFhxZfI0lUikcKXQFyyNp8";

/// A scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A candidate with [`DEFAULT_TEXT`] (JSON or stream as the method asks).
    Default,
    /// A candidate with this text.
    Text(String),
    /// A candidate whose only part is a `functionCall`, with this
    /// `thoughtSignature` on the part when set (finish reason `STOP`, as
    /// Gemini reports it for function calls).
    FunctionCall {
        name: String,
        args: Value,
        signature: Option<String>,
    },
    /// A Google error: `{"error":{"code","message","status"[,"details"]}}`.
    Error {
        code: u16,
        message: String,
        status: String,
        details: Vec<Value>,
    },
    /// A stream that sends `text` in one or more chunks, then a
    /// `{"error":{…}}` data frame, and closes. On a non-stream request, the
    /// same error as an HTTP answer.
    StreamError {
        text: String,
        code: u16,
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
    /// These `data:` payloads, then close.
    Sse(Vec<Value>),
    /// These `data:` payloads, then keep the connection open (sending
    /// keep-alive comments) until the client goes away.
    SseHang(Vec<Value>),
}

impl Reply {
    /// A Google error with the canonical status name for `code`.
    pub fn error(code: u16, message: &str) -> Self {
        Reply::Error {
            code,
            message: message.to_owned(),
            status: status_for_code(code).to_owned(),
            details: Vec::new(),
        }
    }

    /// A `functionCall` part signed with [`SIGNATURE`].
    pub fn function_call(name: &str, args: Value) -> Self {
        Reply::FunctionCall {
            name: name.to_owned(),
            args,
            signature: Some(SIGNATURE.to_owned()),
        }
    }
}

/// Google's canonical status name for an HTTP code.
pub fn status_for_code(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

type Shared = Core<Reply>;

/// A running mock; it stops when dropped.
pub struct MockGemini {
    pub addr: SocketAddr,
    server: MockServer<Reply>,
}

impl MockGemini {
    pub async fn start() -> Self {
        let server = MockServer::start((), Router::new().fallback(handle)).await;
        Self {
            addr: server.addr,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`, the value for `api_base`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    server::recording_methods!(Reply);

    server::dropped_stream_methods!();
}

/// What the path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Generate,
    /// `streamGenerateContent`; `sse` when `alt=sse`.
    Stream {
        sse: bool,
    },
}

/// `/v1beta/models/{model}:{method}` → (model, call).
fn route(path: &str, query: Option<&str>) -> Option<(String, Call)> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let (model, method) = rest.rsplit_once(':')?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    let sse = query.unwrap_or("").split('&').any(|kv| kv == "alt=sse");
    let call = match method {
        "generateContent" => Call::Generate,
        "streamGenerateContent" => Call::Stream { sse },
        _ => return None,
    };
    Some((model.to_owned(), call))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = shared.record_json(&method, &uri, &headers, &body);
    let Some((model, call)) = route(uri.path(), uri.query()).filter(|_| method == Method::POST)
    else {
        return error_response(
            404,
            &format!(
                "models/{} is not found for API version v1beta, or is not supported for generateContent.",
                uri.path().rsplit('/').next().unwrap_or("")
            ),
            "NOT_FOUND",
            &[],
        );
    };
    let has_key = headers.contains_key("x-goog-api-key")
        || uri
            .query()
            .unwrap_or("")
            .split('&')
            .any(|kv| kv.starts_with("key="));
    if !has_key {
        return error_response(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            "PERMISSION_DENIED",
            &[],
        );
    }
    if let Some(message) = refuse(&model, parsed.as_ref()) {
        return error_response(400, &message, "INVALID_ARGUMENT", &[]);
    }
    let reply = shared.next_reply().unwrap_or(Reply::Default);
    let n = shared.next_serial();
    respond(reply, model, call, n, shared).await
}

fn parts_of(content: &Value) -> &[Value] {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Google's message for a request it would refuse, if any.
fn refuse(model: &str, body: Option<&Value>) -> Option<String> {
    let Some(body) = body.filter(|b| b.is_object()) else {
        return Some("Invalid JSON payload received.".to_owned());
    };
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if contents.is_empty() {
        return Some("* GenerateContentRequest.contents: contents is not specified\n".to_owned());
    }
    let gemini_3 = model.contains("gemini-3");
    let mut pending_calls = 0usize;
    for (i, c) in contents.iter().enumerate() {
        let role = c.get("role").and_then(Value::as_str).unwrap_or("user");
        if role != "user" && role != "model" {
            return Some("Please use a valid role: user, model.".to_owned());
        }
        let parts = parts_of(c);
        if parts.is_empty() {
            return Some(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            ));
        }
        let calls: Vec<&Value> = parts
            .iter()
            .filter(|p| p.get("functionCall").is_some())
            .collect();
        let responses = parts
            .iter()
            .filter(|p| p.get("functionResponse").is_some())
            .count();
        if responses > 0 && responses != pending_calls {
            return Some("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.".to_owned());
        }
        if gemini_3 {
            if let Some(first) = calls.first() {
                if first.get("thoughtSignature").is_none() {
                    let name = first["functionCall"]["name"].as_str().unwrap_or("");
                    return Some(format!(
                        "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                        i + 1
                    ));
                }
            }
        }
        pending_calls = calls.len();
    }
    None
}

fn with_headers(b: axum::http::response::Builder) -> axum::http::response::Builder {
    b.header("vary", "Origin")
        .header("vary", "X-Origin")
        .header("vary", "Referer")
        .header("server", "scaffolding on HTTPServer2")
        .header("server-timing", "gfet4t7; dur=412")
        .header("x-content-type-options", "nosniff")
}

fn json_response(status: u16, v: &Value) -> Response {
    with_headers(Response::builder())
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

/// `{"error":{"code","message","status"[,"details"]}}`.
pub fn error_body(code: u16, message: &str, status: &str, details: &[Value]) -> Value {
    let mut err = json!({"code": code, "message": message, "status": status});
    if !details.is_empty() {
        err["details"] = Value::Array(details.to_vec());
    }
    json!({ "error": err })
}

fn error_response(code: u16, message: &str, status: &str, details: &[Value]) -> Response {
    json_response(code, &error_body(code, message, status, details))
}

/// One SSE frame as Google writes it (CRLF line endings).
pub fn frame(data: &Value) -> String {
    format!("data: {data}\r\n\r\n")
}

fn sse_response(body: Body) -> Response {
    with_headers(Response::builder())
        .status(200)
        .header("content-type", "text/event-stream")
        .header("content-disposition", "attachment")
        .body(body)
        .unwrap_or_default()
}

fn usage(finished: bool) -> Value {
    let mut u = json!({
        "promptTokenCount": PROMPT_TOKENS,
        "totalTokenCount": PROMPT_TOKENS,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}]
    });
    if finished {
        u["candidatesTokenCount"] = json!(CANDIDATES_TOKENS);
        u["thoughtsTokenCount"] = json!(THOUGHTS_TOKENS);
        u["totalTokenCount"] = json!(TOTAL_TOKENS);
    }
    u
}

/// One `GenerateContentResponse` with these parts; `finish` adds
/// `finishReason: STOP` and the final token counts.
pub fn response_json(model: &str, response_id: &str, parts: Vec<Value>, finish: bool) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if finish {
        candidate["finishReason"] = json!("STOP");
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage(finish),
        "modelVersion": model,
        "responseId": response_id
    })
}

/// The chunks Gemini streams for `text`: a few words each, the last one
/// finished.
pub fn text_chunks(model: &str, response_id: &str, text: &str) -> Vec<Value> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let groups: Vec<String> = words.chunks(2).map(|g| g.concat()).collect();
    let last = groups.len().saturating_sub(1);
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| response_json(model, response_id, vec![json!({"text": g})], i == last))
        .collect()
}

fn function_part(name: &str, args: &Value, signature: Option<&str>) -> Value {
    let mut part = json!({"functionCall": {"name": name, "args": args}});
    if let Some(sig) = signature {
        part["thoughtSignature"] = json!(sig);
    }
    part
}

fn stream_body(chunks: &[Value], sse: bool) -> Response {
    if sse {
        sse_response(Body::from(chunks.iter().map(frame).collect::<String>()))
    } else {
        // Without `alt=sse`, Google streams one pretty-printed JSON array.
        let items: Vec<String> = chunks.iter().map(Value::to_string).collect();
        json_response_text(&format!("[{}]", items.join(",\r\n")))
    }
}

fn json_response_text(text: &str) -> Response {
    with_headers(Response::builder())
        .status(200)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Body::from(text.to_owned()))
        .unwrap_or_default()
}

fn respond(
    reply: Reply,
    model: String,
    call: Call,
    n: usize,
    shared: Arc<Shared>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>> {
    Box::pin(async move {
        let response_id = format!("mockResp{n:04}Gx7aZ");
        let text_answer = |text: &str| match call {
            Call::Generate => json_response(
                200,
                &response_json(&model, &response_id, vec![json!({"text": text})], true),
            ),
            Call::Stream { sse } => stream_body(&text_chunks(&model, &response_id, text), sse),
        };
        match reply {
            Reply::Default => text_answer(DEFAULT_TEXT),
            Reply::Text(t) => text_answer(&t),
            Reply::FunctionCall {
                name,
                args,
                signature,
            } => {
                let part = function_part(&name, &args, signature.as_deref());
                let r = response_json(&model, &response_id, vec![part], true);
                match call {
                    Call::Generate => json_response(200, &r),
                    Call::Stream { sse } => stream_body(&[r], sse),
                }
            }
            Reply::Error {
                code,
                message,
                status,
                details,
            } => error_response(code, &message, &status, &details),
            Reply::StreamError {
                text,
                code,
                message,
            } => {
                let status = status_for_code(code);
                let Call::Stream { sse } = call else {
                    return error_response(code, &message, status, &[]);
                };
                let mut chunks: Vec<Value> = text
                    .split_inclusive(' ')
                    .map(|w| response_json(&model, &response_id, vec![json!({"text": w})], false))
                    .collect();
                chunks.push(error_body(code, &message, status, &[]));
                stream_body(&chunks, sse)
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
                respond(*inner, model, call, n, shared).await
            }
            Reply::Sse(data) => {
                sse_response(Body::from(data.iter().map(frame).collect::<String>()))
            }
            Reply::SseHang(data) => {
                let first = data.iter().map(|d| Bytes::from(frame(d))).collect();
                let keepalive = Bytes::from_static(b": keep-alive\r\n\r\n");
                sse_response(shared.hanging_body(first, keepalive))
            }
        }
    })
}
