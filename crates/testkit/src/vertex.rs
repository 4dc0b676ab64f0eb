//! A mock Vertex AI (and Google OAuth token endpoint) on one port.
//!
//! - `POST /token`: Google's token endpoint. Accepts the `jwt-bearer` grant
//!   (checking only its shape: a three-part assertion) and the
//!   `refresh_token` grant, and answers
//!   `{"access_token":"ya29.mock-N","expires_in":3600,"token_type":"Bearer"}`
//!   with N counting from 1. Point a service account's `token_uri` here
//!   ([`MockVertex::service_account_json`]).
//! - `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`,
//!   `:streamGenerateContent` (`?alt=sse`) and `:predict` (text embeddings).
//! - `POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict`
//!   and `:streamRawPredict` (Anthropic messages and events). Bodies that
//!   carry `model` or lack `anthropic_version: vertex-2023-10-16` are refused
//!   as Vertex refuses them.
//! - `GET /computeMetadata/v1/instance/service-accounts/default/token`: the
//!   GCE metadata server (needs `Metadata-Flavor: Google`), same tokens.
//! - `POST /v1beta/models/{m}:batchEmbedContents`: AI Studio embeddings
//!   (needs `x-goog-api-key`), which [`crate::MockGemini`] does not serve.
//!
//! Vertex paths need `Authorization: Bearer <a token this mock issued>` (or
//! one added with [`MockVertex::allow_token`]); anything else gets Google's
//! 401. Replies can be scripted; every request is recorded.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use crate::gemini::{
    error_body, frame as gemini_frame, response_json, status_for_code, text_chunks,
};
pub use crate::openai::Recorded;
use crate::server::{self, lock, Core, MockServer};

/// The text of the default chat answer (Gemini and Claude).
pub const DEFAULT_TEXT: &str = "Hello from Vertex AI!";
/// Claude answers' `usage.input_tokens`.
pub const CLAUDE_INPUT_TOKENS: u64 = 14;
/// Claude answers' `usage.output_tokens`.
pub const CLAUDE_OUTPUT_TOKENS: u64 = 6;
/// Embedding length when the request sets no `outputDimensionality`.
pub const DEFAULT_DIMENSIONS: usize = 4;

/// The metadata server's token path (`GET`, with `Metadata-Flavor: Google`),
/// also served here: set `GCE_METADATA_HOST` to [`MockVertex::root_url`].
pub const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// The message of Vertex's 401.
pub const UNAUTHENTICATED_MESSAGE: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// A throwaway 2048-bit RSA key (PKCS#8) for test service accounts, made
/// with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`.
pub const TEST_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDfngaAD2hr1oZM
W0h7FcDzcFpI+9VVCw+YKC5QccJjnHoWWqo7TK8XO24xx39IpPmbF8zUNivDCVbg
n/IlgFG/TXvf2w0Q9ecWvdjZ4ni0s8hZb0D5MlSTcUaFHA0GiUDKjE4Q5vlQ+z+k
HuhIqZl8RtTuMhgJaDS3yfZ6rzytw+2sJ2KeaCAvtssPvCcp+kUVx0+swCIS14yJ
9y/XnIg0H7LeDmEbCOYylLFv1SqLV/JjREGHIc5C6ILKkPVjJ1HgJlKEcpJ0hD7E
65CDJ4U/bmorNogo4PrDg3dCiF77cSQ3NRkQgv20edlJkxo/zrf4cKvZ+A9gRGMS
AoUVfCmnAgMBAAECggEAaNkW8ieHTfzVlmq8lt2xzVLyOkM+GTRo+O5qHNTiEMOX
KPEU3V4MwKdgeR2xrBWSZWpo412M8lNoNUU5i+TZL4n8mY8DVt79ndehHDRIZW3g
dDKqc81qA4H6z0HCR7zGMNJNbjZmUtajVegaAKvo5/DsOM0rIQoHod8j3w1YNZ6G
KzggMa8tywOiIMilCv5r//v+oq/gGOHsgX4SBPsSqnRTnAu2Sue/HOxwOFxk5j8/
nRMKLRJw0HyACwRohi20q4apzW0BMz6OVptP6fvv9sFBuk9Z573rgNvnoNXG6C59
X3RH04rfJMAv2gOQg5gDGYMlZ4pKwXFuZlCERSco7QKBgQD6+9CFUVtM5VTix8/A
rzwGg053jM2535PpBOIkqKpRL7FvzM0LNY7W0rDJHiP5hb5JIjV2Ix4iy7eyMURO
Efud2bEg2wx2MzoGU8X/RuRv37/9EbdAo01UcswwfkgPJ0Bb2R1e7/uSazjQaYMg
757cwB5T9SjZvd74Ro2Wp37ZYwKBgQDkFjAWoe179X1pOrMntDo/ZuFG3y5wJEjr
6sycBaTxguVR9t9Rc2h02Wf9lwOBCTs4xjP4OSIxAzhbvDTzkwzyQp8nlrjpUjus
fvqqoUw+b5AH0ql2NUVxu0/r+zyegefl8oRaXhbnIDiRyjPVpZNaKODHlQi1MnV7
Dx0eEbhD7QKBgGl38ERVz9wccvNpq+/4s2y5OPwb+0ekoG9HUhC9n/TF6fZlRbT0
KLY1i3y4Yb21aiUpbvXaBAvzN5p2AZIdFHNcy4ZXBoGVPUjzYzzG+a/ZgsBB9ZQA
C7r1EsE+D+HuSKlQL3t5tWnuDM3nyObKSyPQx+3YE/aMR2plm5I3iKKpAoGBAKj0
DpcVR7eE92sVglQs2uDQMpuvAtUq66FmAj6op7AGyBvZBT9uf7feu3tLe9r/nZDG
sQR0PfGUcxDw70BmczaZRw+qRDsBIRb70G7IoJO3TDefQsw/VbuThvZE2niHveHF
rWjLPafjZEQKRi9CQU6N7UOqEBM413FalrUJZzdZAoGAGE6fqEe1HJ90R6Eo+zf4
pGgUXEIZ+rCS3Jgr9VB+J5LQn+2BXdxy9i1LGctR+ELx+EuZBV+7+QVQPLKpR/ZJ
8nkj18AVd3LoNbiJwX6ojmJRBl1q15Zc20no+XM9S1AstNpYyt1lj4dhCf5ZSi54
Gx7kucqt/qnkVyLND5PNisA=
-----END PRIVATE KEY-----
";

/// A scripted reply for the next model call (the token endpoint is not
/// scripted).
#[derive(Debug, Clone)]
pub enum Reply {
    /// [`DEFAULT_TEXT`] (or the embeddings), in the format the path asks for.
    Default,
    /// A chat answer with this text.
    Text(String),
    /// A Google error: `{"error":{"code","message","status"}}`.
    Error { code: u16, message: String },
    /// Any status, content type and body.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
}

impl Reply {
    pub fn error(code: u16, message: &str) -> Self {
        Reply::Error {
            code,
            message: message.to_owned(),
        }
    }
}

/// The token side of the mock (model calls are the [`Core`]'s).
#[derive(Default)]
struct Tokens {
    /// Requests to the token endpoint and the metadata server.
    calls: Mutex<Vec<Recorded>>,
    issued: Mutex<HashSet<String>>,
    serial: AtomicUsize,
}

type Shared = Core<Reply, Tokens>;

/// A running mock; it stops when dropped.
pub struct MockVertex {
    pub addr: SocketAddr,
    server: MockServer<Reply, Tokens>,
}

impl MockVertex {
    pub async fn start() -> Self {
        let server = MockServer::start(Tokens::default(), Router::new().fallback(handle)).await;
        Self {
            addr: server.addr,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`, the value for `api_base`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The mock token endpoint's URL.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.root_url())
    }

    /// A service-account JSON whose `token_uri` is this mock.
    pub fn service_account_json(&self, project: &str) -> Value {
        json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": TEST_PRIVATE_KEY,
            "client_email": format!("ferrolite-test@{project}.iam.gserviceaccount.com"),
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
        })
    }

    /// Accept this bearer token on model paths too.
    pub fn allow_token(&self, token: &str) {
        lock(&self.server.core.ext.issued).insert(token.to_owned());
    }

    /// Forget every issued token: model calls get 401 until a new one is
    /// fetched.
    pub fn revoke_tokens(&self) {
        lock(&self.server.core.ext.issued).clear();
    }

    /// Queue replies for the next model calls, in order; then defaults.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.server.core.script(replies);
    }

    /// Model calls (everything but the token endpoint).
    pub fn calls(&self) -> Vec<Recorded> {
        self.server.core.calls()
    }

    pub fn call_count(&self) -> usize {
        self.server.core.call_count()
    }

    /// Requests to the token endpoint and the metadata server.
    pub fn token_calls(&self) -> Vec<Recorded> {
        lock(&self.server.core.ext.calls).clone()
    }

    pub fn token_call_count(&self) -> usize {
        lock(&self.server.core.ext.calls).len()
    }
}

fn json_response(status: u16, v: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

fn google_error(code: u16, message: &str) -> Response {
    json_response(code, &error_body(code, message, status_for_code(code), &[]))
}

fn sse(body: String) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// What a path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Token,
    Generate { model: String, stream: bool },
    Predict { model: String },
    Claude { model: String, stream: bool },
    StudioEmbed { model: String },
}

fn route(path: &str, query: Option<&str>) -> Option<Call> {
    if path == "/token" {
        return Some(Call::Token);
    }
    if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        let (model, method) = rest.rsplit_once(':')?;
        return (method == "batchEmbedContents").then(|| Call::StudioEmbed {
            model: model.to_owned(),
        });
    }
    // /v1/projects/{p}/locations/{l}/publishers/{pub}/models/{m}:{method}
    let rest = path.strip_prefix("/v1/projects/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    let [_project, "locations", _location, "publishers", publisher, "models", last] =
        segs.as_slice()
    else {
        return None;
    };
    let (model, method) = last.rsplit_once(':')?;
    let model = model.to_owned();
    let sse = query.unwrap_or("").split('&').any(|kv| kv == "alt=sse");
    match (*publisher, method) {
        ("google", "generateContent") => Some(Call::Generate {
            model,
            stream: false,
        }),
        ("google", "streamGenerateContent") if sse => Some(Call::Generate {
            model,
            stream: true,
        }),
        ("google", "predict") => Some(Call::Predict { model }),
        ("anthropic", "rawPredict") => Some(Call::Claude {
            model,
            stream: false,
        }),
        ("anthropic", "streamRawPredict") => Some(Call::Claude {
            model,
            stream: true,
        }),
        _ => None,
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let recorded_body = parsed
        .clone()
        .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let record = server::recorded(&method, &uri, &headers, recorded_body);
    if method == Method::GET && uri.path() == METADATA_TOKEN_PATH {
        lock(&shared.ext.calls).push(record);
        if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
            return Response::builder()
                .status(403)
                .header("content-type", "text/html; charset=UTF-8")
                .body(Body::from("Missing required header: Metadata-Flavor"))
                .unwrap_or_default();
        }
        return issue_token(&shared);
    }
    let call = route(uri.path(), uri.query()).filter(|_| method == Method::POST);
    if call == Some(Call::Token) {
        lock(&shared.ext.calls).push(record);
        return token(&shared, &body);
    }
    shared.record(record);
    let Some(call) = call else {
        return google_error(
            404,
            &format!("The requested URL {} was not found.", uri.path()),
        );
    };
    if let Call::StudioEmbed { model } = &call {
        if !headers.contains_key("x-goog-api-key") {
            return google_error(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.");
        }
        return studio_embed(model, parsed.as_ref());
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| lock(&shared.ext.issued).contains(t)) {
        return google_error(401, UNAUTHENTICATED_MESSAGE);
    }
    let Some(body) = parsed.filter(Value::is_object) else {
        return google_error(400, "Invalid JSON payload received.");
    };
    let reply = shared.next_reply().unwrap_or(Reply::Default);
    let n = shared.next_serial();
    let text = match reply {
        Reply::Default => DEFAULT_TEXT.to_owned(),
        Reply::Text(t) => t,
        Reply::Error { code, message } => return google_error(code, &message),
        Reply::Raw {
            status,
            content_type,
            body,
        } => {
            return Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap_or_default()
        }
    };
    match call {
        Call::Generate { model, stream } => {
            if body
                .get("contents")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                return google_error(
                    400,
                    "* GenerateContentRequest.contents: contents is not specified\n",
                );
            }
            let id = format!("vtxResp{n:04}");
            if stream {
                sse(text_chunks(&model, &id, &text)
                    .iter()
                    .map(gemini_frame)
                    .collect())
            } else {
                json_response(
                    200,
                    &response_json(&model, &id, vec![json!({"text": text})], true),
                )
            }
        }
        Call::Claude { model, stream } => claude(&model, stream, &body, &text, n),
        Call::Predict { .. } => predict(&body),
        Call::Token | Call::StudioEmbed { .. } => google_error(404, "not found"),
    }
}

/// The form fields of a `application/x-www-form-urlencoded` body (values
/// left encoded: only their shape is checked).
fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn token(shared: &Shared, body: &[u8]) -> Response {
    let fields = form(body);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let ok = match get("grant_type") {
        Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") => get("assertion")
            .is_some_and(|a| a.split('.').count() == 3 && a.split('.').all(|p| !p.is_empty())),
        Some("refresh_token") => get("refresh_token").is_some() && get("client_id").is_some(),
        _ => false,
    };
    if !ok {
        return json_response(
            400,
            &json!({"error": "invalid_request", "error_description": "Invalid grant_type or assertion."}),
        );
    }
    issue_token(shared)
}

fn issue_token(shared: &Shared) -> Response {
    let n = shared.ext.serial.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("ya29.mock-{n}");
    lock(&shared.ext.issued).insert(token.clone());
    json_response(
        200,
        &json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}),
    )
}

fn claude(model: &str, stream: bool, body: &Value, text: &str, n: usize) -> Response {
    let bad = |m: &str| {
        json_response(
            400,
            &json!({"type": "error", "error": {"type": "invalid_request_error", "message": m}}),
        )
    };
    if body.get("model").is_some() {
        return bad("model: Extra inputs are not permitted");
    }
    if body.get("anthropic_version").and_then(Value::as_str) != Some("vertex-2023-10-16") {
        return bad("anthropic_version: Input should be 'vertex-2023-10-16'");
    }
    if body.get("max_tokens").is_none() || body.get("messages").is_none() {
        return bad("max_tokens: Field required");
    }
    let id = format!("msg_vrtx_{n:04}");
    if stream {
        let events = crate::anthropic::message_events(&id, model, text);
        sse(events
            .iter()
            .map(|(e, d)| crate::anthropic::frame(e, d))
            .collect())
    } else {
        json_response(
            200,
            &json!({
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": CLAUDE_INPUT_TOKENS, "output_tokens": CLAUDE_OUTPUT_TOKENS}
            }),
        )
    }
}

/// A deterministic vector for `text`.
fn vector(text: &str, dims: usize) -> Vec<f64> {
    let len = text.chars().count();
    (0..dims)
        .map(|i| {
            let x = u32::try_from((len + i) % 97).unwrap_or(0);
            f64::from(x) / 100.0 - 0.25
        })
        .collect()
}

fn words(text: &str) -> u64 {
    u64::try_from(text.split_whitespace().count()).unwrap_or(0)
}

fn predict(body: &Value) -> Response {
    let Some(instances) = body.get("instances").and_then(Value::as_array) else {
        return google_error(
            400,
            "Invalid JSON payload received. Unknown name \"instances\"",
        );
    };
    let dims = body
        .pointer("/parameters/outputDimensionality")
        .and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(DEFAULT_DIMENSIONS);
    let mut predictions = Vec::new();
    for inst in instances {
        let Some(text) = inst.get("content").and_then(Value::as_str) else {
            return google_error(400, "Instance is missing `content`.");
        };
        predictions.push(json!({"embeddings": {
            "values": vector(text, dims),
            "statistics": {"token_count": words(text), "truncated": false}
        }}));
    }
    json_response(
        200,
        &json!({"predictions": predictions, "metadata": {"billableCharacterCount": 1}}),
    )
}

fn studio_embed(model: &str, body: Option<&Value>) -> Response {
    let Some(requests) = body
        .and_then(|b| b.get("requests"))
        .and_then(Value::as_array)
    else {
        return google_error(
            400,
            "Invalid JSON payload received. Unknown name \"requests\"",
        );
    };
    let mut embeddings = Vec::new();
    for r in requests {
        if r.get("model").and_then(Value::as_str) != Some(&format!("models/{model}")) {
            return google_error(
                400,
                &format!(
                    "Model {} is not the model of the batch request.",
                    r["model"]
                ),
            );
        }
        let text: String = r
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let dims = r
            .get("outputDimensionality")
            .and_then(Value::as_u64)
            .and_then(|d| usize::try_from(d).ok())
            .unwrap_or(DEFAULT_DIMENSIONS);
        embeddings.push(json!({"values": vector(&text, dims)}));
    }
    json_response(200, &json!({ "embeddings": embeddings }))
}
