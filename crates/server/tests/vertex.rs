//! Vertex AI through the gateway against the mock Vertex AI and Google
//! token endpoint: Gemini and Claude chat (JSON and streams), Vertex and AI
//! Studio embeddings, the service-account OAuth flow (one token, reused) and
//! the metadata server, and a rejected token surfacing as a 401.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestGateway;
use ferrolite_testkit::vertex::{self, MockVertex, Reply};
use serde_json::{json, Value};

const PROJECT: &str = "test-proj";
const LOCATION: &str = "us-central1";
const STUDIO_KEY: &str = "AIza-deployment-key";

/// One deployment per Vertex model, all on the same service account, plus
/// an AI Studio embedding deployment; everything on `mock`.
fn config(mock: &MockVertex) -> String {
    let creds = mock.service_account_json(PROJECT).to_string();
    let root = mock.root_url();
    let vertex = |name: &str, model: &str| {
        format!("  - model_name: {name}\n    litellm_params:\n      model: vertex_ai/{model}\n      vertex_project: {PROJECT}\n      vertex_location: {LOCATION}\n      vertex_credentials: {creds}\n      api_base: {root}\n")
    };
    format!(
        "model_list:\n{}{}{}  - model_name: studio-embed\n    litellm_params:\n      model: gemini/text-embedding-004\n      api_key: {STUDIO_KEY}\n      api_base: {root}\n",
        vertex("vgem", "gemini-2.5-flash"),
        vertex("vclaude", "claude-sonnet-4-5@20250929"),
        vertex("vembed", "text-embedding-005"),
    )
}

fn vertex_path(publisher: &str, model: &str, method: &str) -> String {
    format!("/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/{publisher}/models/{model}:{method}")
}

fn bearer(r: &ferrolite_testkit::Recorded) -> String {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn chunks_of(frames: &[String]) -> Vec<Value> {
    assert_eq!(
        frames.last().map(String::as_str),
        Some("[DONE]"),
        "{frames:?}"
    );
    frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap_or_else(|e| panic!("{e}: {f}")))
        .collect()
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            c["choices"]
                .get(0)
                .and_then(|x| x["delta"]["content"].as_str())
        })
        .collect()
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hello"}]})
}

fn hello_stream(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Hello"}]})
}

#[tokio::test]
async fn vertex_gemini_chat_and_stream() {
    let mock = MockVertex::start().await;
    let gw = TestGateway::start(&config(&mock)).await;

    let (status, _, body) = gw.call("/v1/chat/completions", hello("vgem")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        vertex::DEFAULT_TEXT
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let (status, _, frames) = gw
        .stream("/v1/chat/completions", hello_stream("vgem"))
        .await;
    assert_eq!(status, 200);
    let chunks = chunks_of(&frames);
    assert_eq!(text_of(&chunks), vertex::DEFAULT_TEXT);

    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].path,
        vertex_path("google", "gemini-2.5-flash", "generateContent")
    );
    assert_eq!(calls[0].body["contents"][0]["parts"][0]["text"], "Hello");
    assert_eq!(
        calls[1].path,
        vertex_path("google", "gemini-2.5-flash", "streamGenerateContent")
    );
    assert_eq!(calls[1].query.as_deref(), Some("alt=sse"));
    for c in &calls {
        assert_eq!(bearer(c), "Bearer ya29.mock-1");
        assert!(c.headers.get("x-goog-api-key").is_none());
    }
}

#[tokio::test]
async fn vertex_claude_chat_and_stream() {
    let mock = MockVertex::start().await;
    let gw = TestGateway::start(&config(&mock)).await;

    let (status, _, body) = gw.call("/v1/chat/completions", hello("vclaude")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        vertex::DEFAULT_TEXT
    );
    assert_eq!(body["usage"]["prompt_tokens"], vertex::CLAUDE_INPUT_TOKENS);
    assert_eq!(
        body["usage"]["completion_tokens"],
        vertex::CLAUDE_OUTPUT_TOKENS
    );

    let (status, _, frames) = gw
        .stream("/v1/chat/completions", hello_stream("vclaude"))
        .await;
    assert_eq!(status, 200);
    let chunks = chunks_of(&frames);
    assert_eq!(text_of(&chunks), vertex::DEFAULT_TEXT);
    assert!(chunks.iter().any(|c| c["choices"]
        .get(0)
        .is_some_and(|x| x["finish_reason"] == "stop")));

    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    let model = "claude-sonnet-4-5@20250929";
    assert_eq!(calls[0].path, vertex_path("anthropic", model, "rawPredict"));
    assert_eq!(
        calls[1].path,
        vertex_path("anthropic", model, "streamRawPredict")
    );
    for c in &calls {
        assert_eq!(bearer(c), "Bearer ya29.mock-1");
        assert!(c.body.get("model").is_none());
        assert_eq!(c.body["anthropic_version"], "vertex-2023-10-16");
        assert!(c.headers.get("x-api-key").is_none());
    }
    assert_eq!(calls[1].body["stream"], true);
}

#[tokio::test]
async fn vertex_and_ai_studio_embeddings() {
    let mock = MockVertex::start().await;
    let gw = TestGateway::start(&config(&mock)).await;

    let (status, _, body) = gw
        .call(
            "/v1/embeddings",
            json!({"model": "vembed", "input": ["hello world", "three more words"], "dimensions": 3}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["data"][1]["object"], "embedding");
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 3);
    // The mock counts words as tokens: 2 + 3.
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(body["usage"]["total_tokens"], 5);

    let (status, _, body) = gw
        .call(
            "/v1/embeddings",
            json!({"model": "studio-embed", "input": "hi there"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["data"][0]["embedding"].as_array().unwrap().len(),
        vertex::DEFAULT_DIMENSIONS
    );

    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].path,
        vertex_path("google", "text-embedding-005", "predict")
    );
    assert_eq!(
        calls[0].body,
        json!({"instances": [{"content": "hello world"}, {"content": "three more words"}],
               "parameters": {"outputDimensionality": 3}})
    );
    assert_eq!(bearer(&calls[0]), "Bearer ya29.mock-1");
    assert_eq!(
        calls[1].path,
        "/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    assert_eq!(
        calls[1].body,
        json!({"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "hi there"}]}}]})
    );
    assert_eq!(
        calls[1]
            .headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok()),
        Some(STUDIO_KEY)
    );
    assert!(calls[1].headers.get("authorization").is_none());
    // AI Studio needs no OAuth: only the Vertex call fetched a token.
    assert_eq!(mock.token_call_count(), 1);
}

#[tokio::test]
async fn service_account_token_is_fetched_once_and_reused() {
    let mock = MockVertex::start().await;
    let gw = TestGateway::start(&config(&mock)).await;

    // Concurrent first requests share one token fetch.
    let (a, b, c) = tokio::join!(
        gw.call("/v1/chat/completions", hello("vgem")),
        gw.call("/v1/chat/completions", hello("vclaude")),
        gw.call("/v1/embeddings", json!({"model": "vembed", "input": "x"})),
    );
    assert_eq!((a.0, b.0, c.0), (200, 200, 200));
    let (status, _, _) = gw
        .stream("/v1/chat/completions", hello_stream("vgem"))
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = gw.call("/v1/chat/completions", hello("vgem")).await;
    assert_eq!(status, 200);

    assert_eq!(mock.token_call_count(), 1);
    let calls = mock.calls();
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|c| bearer(c) == "Bearer ya29.mock-1"));

    // The grant: a jwt-bearer assertion, form-encoded.
    let token_call = &mock.token_calls()[0];
    assert_eq!(token_call.path, "/token");
    assert_eq!(
        token_call
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded")
    );
    let form = token_call.body.as_str().unwrap();
    assert!(
        form.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
        ),
        "{form}"
    );
    let jwt = form.split("assertion=").nth(1).unwrap();
    assert_eq!(jwt.split('.').count(), 3);
    // The signing key never leaves the gateway.
    assert!(!form.contains("PRIVATE"));
}

#[tokio::test]
async fn metadata_server_token_when_no_credentials() {
    let mock = MockVertex::start().await;
    // The only test in this binary that uses the metadata server; the
    // others carry service-account credentials and never read this.
    std::env::set_var("GCE_METADATA_HOST", mock.root_url());
    let yaml = format!(
        "model_list:\n  - model_name: vgem\n    litellm_params:\n      model: vertex_ai/gemini-2.5-flash\n      vertex_project: {PROJECT}\n      vertex_location: {LOCATION}\n      api_base: {}\n",
        mock.root_url()
    );
    let gw = TestGateway::start(&yaml).await;
    for _ in 0..2 {
        let (status, _, body) = gw.call("/v1/chat/completions", hello("vgem")).await;
        assert_eq!(status, 200, "{body}");
    }
    let token_calls = mock.token_calls();
    assert_eq!(token_calls.len(), 1);
    assert_eq!(token_calls[0].path, vertex::METADATA_TOKEN_PATH);
    assert_eq!(
        token_calls[0]
            .headers
            .get("metadata-flavor")
            .and_then(|v| v.to_str().ok()),
        Some("Google")
    );
    assert!(mock
        .calls()
        .iter()
        .all(|c| bearer(c) == "Bearer ya29.mock-1"));
}

#[tokio::test]
async fn rejected_token_is_a_401_about_the_gateway_credentials() {
    let mock = MockVertex::start().await;
    let gw = TestGateway::start(&config(&mock)).await;
    let (status, _, _) = gw.call("/v1/chat/completions", hello("vgem")).await;
    assert_eq!(status, 200);

    // Vertex stops accepting the cached token.
    mock.revoke_tokens();
    let (status, _, body) = gw.call("/v1/chat/completions", hello("vgem")).await;
    assert_eq!(status, 401, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("VertexAIException"), "{message}");
    assert!(
        message.contains("invalid authentication credentials"),
        "{message}"
    );
    assert!(
        message.contains("the provider rejected the gateway's credentials"),
        "{message}"
    );
    assert!(mock
        .calls()
        .iter()
        .skip(1)
        .all(|c| bearer(c) == "Bearer ya29.mock-1"));

    // A scripted 401 for Claude (with the token valid again) reads the same.
    mock.allow_token("ya29.mock-1");
    mock.script([Reply::error(401, vertex::UNAUTHENTICATED_MESSAGE)]);
    let (status, _, body) = gw.call("/v1/chat/completions", hello("vclaude")).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("the provider rejected the gateway's credentials"));
}
