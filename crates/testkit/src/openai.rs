//! A mock OpenAI API. By default it answers chat, legacy completions and
//! embeddings like OpenAI does; replies can be scripted per call (errors,
//! delays, broken or hanging streams). Every request is recorded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use crate::server::{self, Core, MockServer};

/// A scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The default answer for the endpoint (JSON or SSE as the request asks).
    Default,
    /// A chat answer with this content.
    Content(String),
    /// An OpenAI-style error: `{"error":{"message","type","param","code"}}`.
    Error {
        status: u16,
        message: String,
        kind: String,
        headers: Vec<(String, String)>,
    },
    /// Any status, content type and body.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Wait, then reply.
    Delay(Duration, Box<Reply>),
    /// These SSE data payloads, then `[DONE]` if `done`, then close.
    Sse { data: Vec<String>, done: bool },
    /// These SSE data payloads, then keep the connection open (sending
    /// keep-alive comments) until the client goes away.
    SseHang { data: Vec<String> },
}

impl Reply {
    pub fn error(status: u16, message: &str) -> Self {
        let kind = match status {
            401 => "invalid_request_error",
            429 => "requests",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        };
        Reply::Error {
            status,
            message: message.to_owned(),
            kind: kind.to_owned(),
            headers: Vec::new(),
        }
    }
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
}

type Shared = Core<Reply>;

/// A running mock; it stops when dropped.
pub struct MockOpenAi {
    pub addr: SocketAddr,
    server: MockServer<Reply>,
}

impl MockOpenAi {
    pub async fn start() -> Self {
        let server = MockServer::start((), Router::new().fallback(handle)).await;
        Self {
            addr: server.addr,
            server,
        }
    }

    /// `http://127.0.0.1:<port>/v1`, the value for `api_base`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:<port>`, without a path.
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
    let parsed = shared
        .record_json(&method, &uri, &headers, &body)
        .unwrap_or(Value::Null);
    let reply = shared.next_reply().unwrap_or(Reply::Default);
    respond(reply, uri.path(), &parsed, shared).await
}

fn openai_headers(b: axum::http::response::Builder) -> axum::http::response::Builder {
    b.header("x-request-id", "req_mock123")
        .header("openai-processing-ms", "12")
        .header("openai-version", "2020-10-01")
}

fn json_response(status: u16, v: &Value) -> Response {
    openai_headers(Response::builder())
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

fn sse_response(body: Body) -> Response {
    openai_headers(Response::builder())
        .status(200)
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(body)
        .unwrap_or_default()
}

const DEFAULT_CONTENT: &str = "Hello! How can I help you today?";

fn respond(
    reply: Reply,
    path: &str,
    req: &Value,
    shared: Arc<Shared>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>> {
    let path = path.to_owned();
    let req = req.clone();
    Box::pin(async move {
        match reply {
            Reply::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                respond(*inner, &path, &req, shared).await
            }
            Reply::Error {
                status,
                message,
                kind,
                headers,
            } => {
                let mut b = openai_headers(Response::builder())
                    .status(status)
                    .header("content-type", "application/json");
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
                b.body(Body::from(body.to_string())).unwrap_or_default()
            }
            Reply::Raw {
                status,
                content_type,
                body,
            } => Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap_or_default(),
            Reply::Sse { data, done } => {
                let mut text = String::new();
                for d in data {
                    text.push_str(&format!("data: {d}\n\n"));
                }
                if done {
                    text.push_str("data: [DONE]\n\n");
                }
                sse_response(Body::from(text))
            }
            Reply::SseHang { data } => {
                let first = data
                    .into_iter()
                    .map(|d| Bytes::from(format!("data: {d}\n\n")))
                    .collect();
                let keepalive = Bytes::from_static(b": keep-alive\n\n");
                sse_response(shared.hanging_body(first, keepalive))
            }
            Reply::Default => default_reply(&path, &req, DEFAULT_CONTENT),
            Reply::Content(c) => default_reply(&path, &req, &c),
        }
    })
}

fn default_reply(path: &str, req: &Value, content: &str) -> Response {
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("gpt-4o-mini-2024-07-18")
        .to_owned();
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if path.ends_with("/embeddings") {
        let n = match req.get("input") {
            Some(Value::Array(a)) => a.len(),
            _ => 1,
        };
        let data: Vec<Value> = (0..n)
            .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, -0.2, 0.3]}))
            .collect();
        return json_response(
            200,
            &json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 4, "total_tokens": 4}}),
        );
    }
    if path.ends_with("/responses") {
        return crate::openai_responses::default_reply(&model, req, content);
    }
    if path.ends_with("/chat/completions") {
        return if stream {
            chat_stream(&model, content, include_usage)
        } else {
            json_response(200, &chat_json(&model, content))
        };
    }
    if path.ends_with("/completions") {
        if stream {
            let mut frames: Vec<String> = content
                .split_inclusive(' ')
                .map(|p| json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000, "model": model, "choices": [{"text": p, "index": 0, "logprobs": null, "finish_reason": null}]}).to_string())
                .collect();
            frames.push(json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000, "model": model, "choices": [{"text": "", "index": 0, "logprobs": null, "finish_reason": "stop"}]}).to_string());
            if include_usage {
                frames.push(json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000, "model": model, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}).to_string());
            }
            let text: String = frames
                .iter()
                .map(|f| format!("data: {f}\n\n"))
                .collect::<String>()
                + "data: [DONE]\n\n";
            return sse_response(Body::from(text));
        }
        return json_response(
            200,
            &json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000, "model": model,
            "choices": [{"text": content, "index": 0, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}),
        );
    }
    json_response(
        404,
        &json!({"error": {"message": format!("Invalid URL (POST {path})"), "type": "invalid_request_error", "param": null, "code": null}}),
    )
}

/// A `chat.completion` as OpenAI sends it.
pub fn chat_json(model: &str, content: &str) -> Value {
    json!({
        "id": "chatcmpl-mock123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default",
        "system_fingerprint": "fp_mock"
    })
}

/// The chunk payloads OpenAI streams for `content`: role first, content
/// pieces, a finish chunk, and the usage chunk when asked (with
/// `"usage": null` on every other chunk, as OpenAI does).
pub fn chat_chunks(model: &str, content: &str, include_usage: bool) -> Vec<String> {
    let base = |delta: Value, finish: Value| {
        let mut c = json!({"id": "chatcmpl-mock123", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            c["usage"] = Value::Null;
        }
        c.to_string()
    };
    let mut out = vec![base(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    for piece in content.split_inclusive(' ') {
        out.push(base(json!({"content": piece}), Value::Null));
    }
    out.push(base(json!({}), json!("stop")));
    if include_usage {
        out.push(json!({"id": "chatcmpl-mock123", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_mock", "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}}).to_string());
    }
    out
}

fn chat_stream(model: &str, content: &str, include_usage: bool) -> Response {
    let text: String = chat_chunks(model, content, include_usage)
        .iter()
        .map(|c| format!("data: {c}\n\n"))
        .collect::<String>()
        + "data: [DONE]\n\n";
    sse_response(Body::from(text))
}
