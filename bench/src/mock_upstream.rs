//! `mock-upstream`: a very fast mock of the OpenAI HTTP API, for load tests.
//!
//! Serves
//! - `POST /v1/chat/completions` and `POST /chat/completions`: a fixed
//!   `chat.completion` (JSON, with `usage`), or, when the request has
//!   `"stream": true`, a `text/event-stream` of five `chat.completion.chunk`
//!   frames, a usage chunk when `stream_options.include_usage` is true, and
//!   `data: [DONE]`;
//! - `POST /v1/embeddings` and `POST /embeddings`: one embedding per input;
//! - `GET /health` (also `/health/readiness`, `/health/liveliness`) and
//!   `GET /v1/models`.
//!
//! Options: `--port N` (default 9000), `--host ADDR` (default 127.0.0.1),
//! `--delay-ms N` (wait before every response, default 0),
//! `--chunk-delay-ms N` (wait between stream frames, default 0),
//! `--threads N` (tokio workers, default: CPUs this process may run on),
//! `--embedding-dims N` (default 1536).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

type Body = Either<Full<Bytes>, BoxBody<Bytes, Infallible>>;

const CHAT_COMPLETION: &str = r#"{"id":"chatcmpl-BenchMock0000000000000000001","object":"chat.completion","created":1735689600,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! I am a mock upstream used for benchmarking. How can I help you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":19,"total_tokens":28,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_bench0001"}"#;

const CHUNK_PREFIX: &str = r#"{"id":"chatcmpl-BenchMock0000000000000000002","object":"chat.completion.chunk","created":1735689600,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_bench0001","choices":["#;

/// The `choices` payloads of the five stream frames.
const CHUNK_CHOICES: [&str; 5] = [
    r#"{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}"#,
    r#"{"index":0,"delta":{"content":"Hello!"},"logprobs":null,"finish_reason":null}"#,
    r#"{"index":0,"delta":{"content":" I am a mock"},"logprobs":null,"finish_reason":null}"#,
    r#"{"index":0,"delta":{"content":" upstream."},"logprobs":null,"finish_reason":null}"#,
    r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}"#,
];

const USAGE_CHUNK: &str = r#"{"id":"chatcmpl-BenchMock0000000000000000002","object":"chat.completion.chunk","created":1735689600,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_bench0001","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#;

const MODELS: &str = r#"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"},{"id":"text-embedding-3-small","object":"model","created":1705948997,"owned_by":"system"}]}"#;

struct Config {
    host: String,
    port: u16,
    delay: Duration,
    chunk_delay: Duration,
    threads: usize,
    embedding_dims: usize,
}

/// Everything a response is built from, prepared once at start.
struct State {
    delay: Duration,
    chunk_delay: Duration,
    chat: Bytes,
    frames: Vec<Bytes>,
    usage_frame: Bytes,
    done_frame: Bytes,
    models: Bytes,
    /// `"embedding":[...]` vector text, shared by every embedding item.
    embedding_vec: String,
}

fn usage_and_exit(msg: &str) -> ! {
    eprintln!("mock-upstream: {msg}");
    eprintln!(
        "usage: mock-upstream [--port N] [--host ADDR] [--delay-ms N] [--chunk-delay-ms N] [--threads N] [--embedding-dims N]"
    );
    std::process::exit(2)
}

fn parse_args() -> Config {
    let mut cfg = Config {
        host: "127.0.0.1".to_owned(),
        port: 9000,
        delay: Duration::ZERO,
        chunk_delay: Duration::ZERO,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        embedding_dims: 1536,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            usage_and_exit("a fast mock OpenAI upstream");
        }
        let Some(value) = args.next() else {
            usage_and_exit(&format!("{flag} needs a value"));
        };
        let num = |v: &str| -> u64 {
            v.parse()
                .unwrap_or_else(|_| usage_and_exit(&format!("{flag}: not a number: {v}")))
        };
        match flag.as_str() {
            "--port" => {
                cfg.port = u16::try_from(num(&value))
                    .unwrap_or_else(|_| usage_and_exit("--port out of range"))
            }
            "--host" => cfg.host = value,
            "--delay-ms" => cfg.delay = Duration::from_millis(num(&value)),
            "--chunk-delay-ms" => cfg.chunk_delay = Duration::from_millis(num(&value)),
            "--threads" => cfg.threads = usize::try_from(num(&value).max(1)).unwrap_or(1),
            "--embedding-dims" => {
                cfg.embedding_dims = usize::try_from(num(&value).max(1)).unwrap_or(1)
            }
            other => usage_and_exit(&format!("unknown option {other}")),
        }
    }
    cfg
}

fn sse(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

impl State {
    fn new(cfg: &Config) -> Self {
        let frames = CHUNK_CHOICES
            .iter()
            .map(|choice| sse(&format!("{CHUNK_PREFIX}{choice}]}}")))
            .collect();
        // Deterministic, plausible-looking floats.
        let mut vec = String::with_capacity(cfg.embedding_dims * 12);
        vec.push('[');
        let mut x: u32 = 0x9E37_79B9;
        for i in 0..cfg.embedding_dims {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v = (f64::from(x % 20_000) - 10_000.0) / 250_000.0;
            if i > 0 {
                vec.push(',');
            }
            vec.push_str(&format!("{v:.7}"));
        }
        vec.push(']');
        State {
            delay: cfg.delay,
            chunk_delay: cfg.chunk_delay,
            chat: Bytes::from_static(CHAT_COMPLETION.as_bytes()),
            frames,
            usage_frame: sse(USAGE_CHUNK),
            done_frame: Bytes::from_static(b"data: [DONE]\n\n"),
            models: Bytes::from_static(MODELS.as_bytes()),
            embedding_vec: vec,
        }
    }
}

fn full(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Either::Left(Full::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({
        "error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}
    });
    full(status, "application/json", Bytes::from(body.to_string()))
}

fn chat(state: &Arc<State>, req_body: &[u8]) -> Response<Body> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(req_body) else {
        return error(StatusCode::BAD_REQUEST, "request body is not valid JSON");
    };
    let stream = v
        .get("stream")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if !stream {
        return full(StatusCode::OK, "application/json", state.chat.clone());
    }
    let include_usage = v
        .pointer("/stream_options/include_usage")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let mut frames: Vec<Bytes> = state.frames.clone();
    if include_usage {
        frames.push(state.usage_frame.clone());
    }
    frames.push(state.done_frame.clone());

    let body: BoxBody<Bytes, Infallible> = if state.chunk_delay.is_zero() {
        let s = stream::iter(
            frames
                .into_iter()
                .map(|b| Ok::<_, Infallible>(Frame::data(b))),
        );
        BodyExt::boxed(StreamBody::new(s))
    } else {
        let delay = state.chunk_delay;
        let s = stream::iter(frames.into_iter().enumerate()).then(move |(i, b)| async move {
            if i > 0 {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, Infallible>(Frame::data(b))
        });
        BodyExt::boxed(StreamBody::new(s))
    };
    let mut resp = Response::new(Either::Right(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    resp
}

fn embeddings(state: &Arc<State>, req_body: &[u8]) -> Response<Body> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(req_body) else {
        return error(StatusCode::BAD_REQUEST, "request body is not valid JSON");
    };
    let n = match v.get("input") {
        Some(serde_json::Value::String(_)) => 1,
        // A list of strings or of token lists is one input each; a list of
        // token ids is a single input.
        Some(serde_json::Value::Array(items)) => {
            if items.iter().all(serde_json::Value::is_number) {
                1
            } else {
                items.len()
            }
        }
        _ => return error(StatusCode::BAD_REQUEST, "'input' is required"),
    };
    let mut out = String::with_capacity(n * (state.embedding_vec.len() + 64) + 160);
    out.push_str(r#"{"object":"list","data":["#);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"object":"embedding","index":{i},"embedding":"#
        ));
        out.push_str(&state.embedding_vec);
        out.push('}');
    }
    let tokens = 2 * n;
    out.push_str(&format!(
        r#"],"model":"text-embedding-3-small","usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}}}"#
    ));
    full(StatusCode::OK, "application/json", Bytes::from(out))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "could not read request body",
            ))
        }
    };
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let resp = match (&method, path.as_str()) {
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => chat(&state, &body),
        (&Method::POST, "/v1/embeddings" | "/embeddings") => embeddings(&state, &body),
        (&Method::GET, "/v1/models" | "/models") => {
            full(StatusCode::OK, "application/json", state.models.clone())
        }
        (&Method::GET, "/health" | "/health/readiness" | "/health/liveliness" | "/") => full(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"{\"status\":\"ok\"}"),
        ),
        _ => error(StatusCode::NOT_FOUND, "unknown path"),
    };
    Ok(resp)
}

async fn serve(cfg: Config) -> std::io::Result<()> {
    let state = Arc::new(State::new(&cfg));
    let addr: SocketAddr = format!("{}:{}", cfg.host, cfg.port).parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad address: {e}"),
        )
    })?;
    let listener = TcpListener::bind(addr).await?;
    eprintln!(
        "mock-upstream listening on http://{} (threads={}, delay={}ms, chunk-delay={}ms)",
        listener.local_addr()?,
        cfg.threads,
        cfg.delay.as_millis(),
        cfg.chunk_delay.as_millis()
    );
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("mock-upstream: accept: {e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .keep_alive(true)
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

fn main() {
    let cfg = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => usage_and_exit(&format!("cannot start runtime: {e}")),
    };
    let result = rt.block_on(async {
        tokio::select! {
            r = serve(cfg) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    if let Err(e) = result {
        eprintln!("mock-upstream: {e}");
        std::process::exit(1);
    }
}
