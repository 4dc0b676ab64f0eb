//! A mock Amazon Bedrock runtime: `POST /model/{modelId}/converse` answers
//! Converse JSON, `POST /model/{modelId}/converse-stream` answers AWS
//! event-stream frames (`application/vnd.amazon.eventstream`, with real
//! CRC32s, written out in uneven pieces so clients must reassemble frames).
//! Replies can be scripted per call (errors in Bedrock's shape, tool use,
//! an exception frame in the middle of a stream); every request is recorded.
//!
//! Requests without a SigV4 `authorization` header for the expected access
//! key, or without `x-amz-date`, get Bedrock's 403
//! `UnrecognizedClientException` before the script is consulted. (The
//! signature itself is not recomputed: the gateway's signer is checked
//! against botocore vectors in its unit tests.)

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use futures_util::stream;
use serde_json::{json, Value};

pub use crate::openai::Recorded;
use crate::server::{self, Core, MockServer};

/// The access key id the mock expects in the `Credential=` scope.
pub const ACCESS_KEY_ID: &str = "AKIAMOCKBEDROCK00001";
/// A secret to configure alongside [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "mockSecretKey/0123456789abcdefghijklmnopqrs";
/// The text of the default answer.
pub const DEFAULT_TEXT: &str = "Hello from Bedrock! How can I help?";
/// `usage.inputTokens` of every answer.
pub const INPUT_TOKENS: u64 = 21;
/// `usage.outputTokens` of every answer.
pub const OUTPUT_TOKENS: u64 = 9;
/// The `x-amzn-RequestId` of every answer.
pub const REQUEST_ID: &str = "5f2c6a3e-0000-4000-8000-00000000bedr";

/// A scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A text answer with [`DEFAULT_TEXT`] (JSON or event stream as asked).
    Default,
    /// A text answer with this text.
    Text(String),
    /// A `toolUse` answer (stop reason `tool_use`), `text` first when set;
    /// streamed with the input split over several deltas.
    ToolUse {
        text: Option<String>,
        name: String,
        input: Value,
    },
    /// An HTTP error: `{"message": …}` with `x-amzn-ErrorType: <kind>`.
    Error {
        status: u16,
        kind: String,
        message: String,
    },
    /// A stream that sends `text`, then an exception frame
    /// (`:exception-type: kind`) and closes. On `/converse`, the same error
    /// as an HTTP answer.
    StreamException {
        text: String,
        kind: String,
        message: String,
    },
    /// These `(event type, payload)` events as frames, then close.
    Events(Vec<(String, Value)>),
}

impl Reply {
    /// 429 `ThrottlingException`.
    pub fn throttled() -> Self {
        Reply::Error {
            status: 429,
            kind: "ThrottlingException".into(),
            message: "Too many requests, please wait before trying again.".into(),
        }
    }

    /// 400 `ValidationException` with this message.
    pub fn validation(message: &str) -> Self {
        Reply::Error {
            status: 400,
            kind: "ValidationException".into(),
            message: message.into(),
        }
    }

    /// A tool call with no text before it.
    pub fn tool_use(name: &str, input: Value) -> Self {
        Reply::ToolUse {
            text: None,
            name: name.into(),
            input,
        }
    }

    /// `text` streamed, then a `modelStreamErrorException` frame.
    pub fn exception_mid_stream(text: &str) -> Self {
        Reply::StreamException {
            text: text.into(),
            kind: "modelStreamErrorException".into(),
            message: "The model stream was interrupted.".into(),
        }
    }
}

/// The HTTP status Bedrock pairs with an exception type (either case).
pub fn status_for_exception(kind: &str) -> u16 {
    match kind.to_ascii_lowercase().as_str() {
        "validationexception" => 400,
        "accessdeniedexception" | "unrecognizedclientexception" => 403,
        "resourcenotfoundexception" => 404,
        "modeltimeoutexception" => 408,
        "modelerrorexception" | "modelstreamerrorexception" => 424,
        "throttlingexception" => 429,
        "serviceunavailableexception" => 503,
        _ => 500,
    }
}

// ------------------------------------------------------------- encoding

/// One AWS event-stream message with string headers (type 7).
pub fn encode_frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 16 + h.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An event frame as ConverseStream sends it (with the `p` padding member
/// Bedrock adds to payloads).
pub fn event_frame(event_type: &str, payload: &Value) -> Vec<u8> {
    let mut payload = payload.clone();
    if let Some(o) = payload.as_object_mut() {
        o.insert(
            "p".into(),
            Value::String("abcdefghijklmnopqrstuvwxyzABCDEF".into()),
        );
    }
    encode_frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// An exception frame (`:exception-type` in camel case, as in streams).
pub fn exception_frame(kind: &str, message: &str) -> Vec<u8> {
    encode_frame(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
}

// ------------------------------------------------------------------ mock

/// What requests must carry to be let in.
struct Expected {
    /// The access key id of the `Credential=` scope.
    key_id: String,
}

type Shared = Core<Reply, Expected>;

/// A running mock; it stops when dropped.
pub struct MockBedrock {
    pub addr: SocketAddr,
    server: MockServer<Reply, Expected>,
}

impl MockBedrock {
    /// A mock expecting requests signed with [`ACCESS_KEY_ID`].
    pub async fn start() -> Self {
        Self::start_for_key(ACCESS_KEY_ID).await
    }

    /// A mock expecting requests signed with `key_id`.
    pub async fn start_for_key(key_id: &str) -> Self {
        let server = MockServer::start(
            Expected {
                key_id: key_id.to_owned(),
            },
            Router::new().fallback(handle),
        )
        .await;
        Self {
            addr: server.addr,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`, the value for `aws_bedrock_runtime_endpoint`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    server::recording_methods!(Reply);
}

/// `%XX` escapes decoded (the model id in the path).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/model/{id}/converse[-stream]` → (decoded model id, streaming).
fn route(path: &str) -> Option<(String, bool)> {
    let rest = path.strip_prefix("/model/")?;
    let (id, op) = rest.rsplit_once('/')?;
    let stream = match op {
        "converse" => false,
        "converse-stream" => true,
        _ => return None,
    };
    Some((percent_decode(id), stream))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = shared.record_json(&method, &uri, &headers, &body);
    if let Some(refusal) = refuse_auth(&headers, &shared.ext.key_id) {
        return refusal;
    }
    let Some((_model, stream)) = route(uri.path()).filter(|_| method == Method::POST) else {
        return error_response(
            404,
            "UnknownOperationException",
            "The requested operation is not recognized by the service.",
        );
    };
    let Some(req) = parsed.filter(|b| b.get("messages").is_some_and(Value::is_array)) else {
        return error_response(
            400,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        );
    };
    if let Some(refusal) = refuse_body(&req) {
        return refusal;
    }
    let reply = shared.next_reply().unwrap_or(Reply::Default);
    let n = shared.next_serial();
    respond(reply, stream, n)
}

/// Bedrock's answer to a request it cannot authenticate.
fn refuse_auth(headers: &HeaderMap, key_id: &str) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let want = format!("AWS4-HMAC-SHA256 Credential={key_id}/");
    if !auth.starts_with(&want) || !auth.contains("SignedHeaders=") || !auth.contains("Signature=")
    {
        return Some(error_response(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if !headers.contains_key("x-amz-date") {
        return Some(error_response(
            403,
            "UnrecognizedClientException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    }
    None
}

/// Checks Converse itself makes on every request.
fn refuse_body(req: &Value) -> Option<Response> {
    let bad = |m: &str| Some(error_response(400, "ValidationException", m));
    let messages = req["messages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if messages.is_empty() {
        return bad("A conversation must start with a user message. Try again with a conversation that starts with a user message.");
    }
    let mut last_role = "";
    let mut uses_tools = false;
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return bad("1 validation error detected: Value at 'messages.role' failed to satisfy constraint");
        }
        if role == last_role {
            return bad("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.");
        }
        last_role = role;
        let blocks = m.get("content").and_then(Value::as_array);
        if blocks.is_none_or(Vec::is_empty) {
            return bad("The content field in the Message object is empty. Add a ContentBlock object to the content field and try again.");
        }
        uses_tools |= blocks
            .into_iter()
            .flatten()
            .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some());
    }
    if messages[0].get("role").and_then(Value::as_str) != Some("user") {
        return bad("A conversation must start with a user message. Try again with a conversation that starts with a user message.");
    }
    if uses_tools && req.get("toolConfig").is_none() {
        return bad("The toolConfig field must be defined when using toolUse and toolResult content blocks.");
    }
    None
}

fn base(status: u16, content_type: &str) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", REQUEST_ID)
}

fn error_response(status: u16, kind: &str, message: &str) -> Response {
    base(status, "application/json")
        .header(
            "x-amzn-errortype",
            format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )
        .body(Body::from(json!({ "message": message }).to_string()))
        .unwrap_or_default()
}

fn usage() -> Value {
    json!({
        "inputTokens": INPUT_TOKENS,
        "outputTokens": OUTPUT_TOKENS,
        "totalTokens": INPUT_TOKENS + OUTPUT_TOKENS
    })
}

#[derive(Debug, Clone)]
enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

fn converse_json(blocks: &[Block], stop: &str) -> Value {
    let content: Vec<Value> = blocks
        .iter()
        .map(|b| match b {
            Block::Text(t) => json!({ "text": t }),
            Block::ToolUse { id, name, input } => {
                json!({"toolUse": {"toolUseId": id, "name": name, "input": input}})
            }
        })
        .collect();
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": usage(),
        "metrics": {"latencyMs": 412}
    })
}

/// Pieces of `s` of about `n` characters (on char boundaries).
fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

fn block_events(index: usize, block: &Block) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    match block {
        Block::Text(text) => {
            for piece in text.split_inclusive(' ') {
                out.push((
                    "contentBlockDelta".to_owned(),
                    json!({"contentBlockIndex": index, "delta": {"text": piece}}),
                ));
            }
        }
        Block::ToolUse { id, name, input } => {
            out.push((
                "contentBlockStart".to_owned(),
                json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
            ));
            for p in pieces(&input.to_string(), 6) {
                out.push((
                    "contentBlockDelta".to_owned(),
                    json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": p}}}),
                ));
            }
        }
    }
    out.push((
        "contentBlockStop".to_owned(),
        json!({ "contentBlockIndex": index }),
    ));
    out
}

/// The whole event sequence of an answer.
fn stream_events(blocks: &[Block], stop: &str) -> Vec<(String, Value)> {
    let mut out = vec![("messageStart".to_owned(), json!({"role": "assistant"}))];
    for (i, b) in blocks.iter().enumerate() {
        out.extend(block_events(i, b));
    }
    out.push(("messageStop".to_owned(), json!({ "stopReason": stop })));
    out.push((
        "metadata".to_owned(),
        json!({"usage": usage(), "metrics": {"latencyMs": 412}}),
    ));
    out
}

/// The events of a text answer, for [`Reply::Events`].
pub fn text_events(text: &str) -> Vec<(String, Value)> {
    stream_events(&[Block::Text(text.to_owned())], "end_turn")
}

fn stream_response(frames: Vec<u8>) -> Response {
    // Uneven pieces, so frames straddle network reads.
    let parts: Vec<Result<Bytes, Infallible>> = frames
        .chunks(37)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    base(200, "application/vnd.amazon.eventstream")
        .body(Body::from_stream(stream::iter(parts)))
        .unwrap_or_default()
}

fn frames_of(events: &[(String, Value)]) -> Vec<u8> {
    events.iter().flat_map(|(e, p)| event_frame(e, p)).collect()
}

fn respond(reply: Reply, stream: bool, n: usize) -> Response {
    let answer = |blocks: Vec<Block>, stop: &str| {
        if stream {
            stream_response(frames_of(&stream_events(&blocks, stop)))
        } else {
            base(200, "application/json")
                .body(Body::from(converse_json(&blocks, stop).to_string()))
                .unwrap_or_default()
        }
    };
    match reply {
        Reply::Default => answer(vec![Block::Text(DEFAULT_TEXT.to_owned())], "end_turn"),
        Reply::Text(t) => answer(vec![Block::Text(t)], "end_turn"),
        Reply::ToolUse { text, name, input } => {
            let mut blocks: Vec<Block> = text.into_iter().map(Block::Text).collect();
            blocks.push(Block::ToolUse {
                id: format!("tooluse_Mock{n:06}"),
                name,
                input,
            });
            answer(blocks, "tool_use")
        }
        Reply::Error {
            status,
            kind,
            message,
        } => error_response(status, &kind, &message),
        Reply::StreamException {
            text,
            kind,
            message,
        } => {
            if !stream {
                let mut k = kind.clone();
                if let Some(first) = k.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                return error_response(status_for_exception(&kind), &k, &message);
            }
            let mut events = vec![("messageStart".to_owned(), json!({"role": "assistant"}))];
            let mut block = block_events(0, &Block::Text(text));
            block.pop(); // the block never finishes
            events.extend(block);
            let mut frames = frames_of(&events);
            frames.extend(exception_frame(&kind, &message));
            stream_response(frames)
        }
        Reply::Events(events) => stream_response(frames_of(&events)),
    }
}
