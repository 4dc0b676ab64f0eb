#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferrolite_types::openai::{ChatRequest, EmbeddingRequest};
use ferrolite_types::sse::SseEvent;
use serde_json::{json, Value};

use super::*;
use crate::{AuthScheme, ProviderKind};

const BASE: &str =
    "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1";

fn target(kind: ProviderKind, model: &str) -> Target {
    Target {
        provider: "vertex_ai".to_owned(),
        kind,
        model: model.to_owned(),
        api_base: BASE.to_owned(),
        api_version: None,
        auth: AuthScheme::GcpOAuth,
        stream_usage: false,
        headers: Vec::new(),
    }
}

fn chat(v: Value) -> ChatRequest {
    serde_json::from_value(v).unwrap()
}

fn body(up: &UpstreamRequest) -> Value {
    serde_json::from_slice(&up.body).unwrap()
}

fn ev(event: Option<&str>, data: Value) -> SseEvent {
    SseEvent {
        event: event.map(str::to_owned),
        data: data.to_string(),
    }
}

#[test]
fn gemini_urls_and_auth() {
    let t = target(ProviderKind::VertexGemini, "gemini-2.5-flash");
    let req = chat(json!({"model": "g", "messages": [{"role": "user", "content": "hi"}]}));
    let up = VertexGemini
        .chat_request(&req, &t, BuildOptions::default())
        .unwrap();
    assert_eq!(
        up.url,
        format!("{BASE}/publishers/google/models/gemini-2.5-flash:generateContent")
    );
    assert_eq!(up.auth, AuthScheme::GcpOAuth);
    assert_eq!(body(&up)["contents"][0]["parts"][0]["text"], "hi");

    let req = chat(
        json!({"model": "g", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let up = VertexGemini
        .chat_request(&req, &t, BuildOptions::default())
        .unwrap();
    assert_eq!(
        up.url,
        format!("{BASE}/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    );

    let tuned = target(ProviderKind::VertexGemini, "1234567890");
    let up = VertexGemini
        .chat_request(&req, &tuned, BuildOptions::default())
        .unwrap();
    assert_eq!(
        up.url,
        format!("{BASE}/endpoints/1234567890:streamGenerateContent?alt=sse")
    );
}

#[test]
fn gemini_response_stream_and_errors() {
    let t = target(ProviderKind::VertexGemini, "gemini-2.5-flash");
    let answer = json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
        "modelVersion": "gemini-2.5-flash"
    });
    let r = VertexGemini
        .parse_chat_response(answer.to_string().as_bytes(), &t)
        .unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello");
    assert_eq!(v["usage"]["total_tokens"], 4);

    let mut s = VertexGemini.chat_stream(&t);
    let chunks = s.on_event(&ev(None, answer)).unwrap().unwrap();
    assert!(!chunks.is_empty());
    let err = s
        .on_event(&ev(
            None,
            json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}),
        ))
        .err()
        .unwrap();
    match err {
        TranslateError::Upstream(u) => {
            assert_eq!(u.provider_label, "VertexAIException");
            assert_eq!(u.status, 429);
        }
        other => panic!("{other:?}"),
    }

    let e = VertexGemini.parse_error(
        401,
        br#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
        &t,
    );
    assert_eq!(e.status, 401);
    assert_eq!(e.provider_label, "VertexAIException");
    assert_eq!(e.kind.as_deref(), Some("UNAUTHENTICATED"));
    assert_eq!(e.class(), crate::ErrorClass::Credentials);
}

#[test]
fn claude_body_url_and_headers() {
    let mut t = target(ProviderKind::VertexAnthropic, "claude-sonnet-4-5@20250929");
    t.headers.push((
        http::HeaderName::from_static("anthropic-beta"),
        http::HeaderValue::from_static("context-1m-2025-08-07, interleaved-thinking-2025-05-14"),
    ));
    let req = chat(json!({
        "model": "c", "max_tokens": 100,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    }));
    let up = VertexAnthropic
        .chat_request(&req, &t, BuildOptions::default())
        .unwrap();
    assert_eq!(
        up.url,
        format!("{BASE}/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict")
    );
    assert_eq!(up.auth, AuthScheme::GcpOAuth);
    assert!(up.headers.iter().all(|(k, _)| k != "anthropic-version"));
    assert!(up.headers.iter().any(|(k, _)| k == "anthropic-beta"));
    let b = body(&up);
    assert!(b.get("model").is_none());
    assert_eq!(b["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(b["max_tokens"], 100);
    assert!(b["system"].to_string().contains("be brief"), "{b}");
    assert_eq!(
        b["anthropic_beta"],
        json!(["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"])
    );
    assert!(b.get("stream").is_none());

    let req = chat(
        json!({"model": "c", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let up = VertexAnthropic
        .chat_request(&req, &t, BuildOptions::default())
        .unwrap();
    assert!(up.url.ends_with(":streamRawPredict"), "{}", up.url);
    assert_eq!(body(&up)["stream"], true);
}

#[test]
fn claude_response_stream_and_errors() {
    let t = target(ProviderKind::VertexAnthropic, "claude-sonnet-4-5");
    let msg = json!({
        "id": "msg_vrtx_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hi there"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "output_tokens": 3}
    });
    let r = VertexAnthropic
        .parse_chat_response(msg.to_string().as_bytes(), &t)
        .unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hi there");
    assert_eq!(v["usage"]["prompt_tokens"], 5);

    let mut s = VertexAnthropic.chat_stream(&t);
    let start = json!({"type": "message_start", "message": {"id": "msg_vrtx_01", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}});
    s.on_event(&ev(Some("message_start"), start)).unwrap();
    let err = s
        .on_event(&ev(
            Some("error"),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ))
        .err()
        .unwrap();
    match err {
        TranslateError::Upstream(u) => {
            assert_eq!(u.provider_label, "VertexAIException");
            assert_eq!(u.status, 529);
        }
        other => panic!("{other:?}"),
    }

    // Claude's own error, Anthropic-shaped.
    let e = VertexAnthropic.parse_error(
        400,
        br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#,
        &t,
    );
    assert_eq!(e.kind.as_deref(), Some("invalid_request_error"));
    assert_eq!(e.message, "max_tokens: Field required");
    assert_eq!(e.provider_label, "VertexAIException");
    // Vertex's own error, Google-shaped (sometimes inside an array).
    let e = VertexAnthropic.parse_error(
        404,
        br#"[{"error":{"code":404,"message":"Publisher Model `x` not found.","status":"NOT_FOUND"}}]"#,
        &t,
    );
    assert_eq!(e.status, 404);
    assert_eq!(e.kind.as_deref(), Some("NOT_FOUND"));
    assert_eq!(e.message, "Publisher Model `x` not found.");
    assert_eq!(e.provider_label, "VertexAIException");
}

fn embed_req(v: Value) -> EmbeddingRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn vertex_embeddings_predict() {
    let t = target(ProviderKind::VertexGemini, "text-embedding-005");
    let req = embed_req(json!({
        "model": "e", "input": ["hello", "world"], "dimensions": 256, "input_type": "RETRIEVAL_QUERY"
    }));
    let up = VertexGemini
        .embedding_request(&req, &t, BuildOptions::default())
        .unwrap();
    assert_eq!(
        up.url,
        format!("{BASE}/publishers/google/models/text-embedding-005:predict")
    );
    assert_eq!(
        body(&up),
        json!({
            "instances": [
                {"content": "hello", "task_type": "RETRIEVAL_QUERY"},
                {"content": "world", "task_type": "RETRIEVAL_QUERY"}
            ],
            "parameters": {"outputDimensionality": 256}
        })
    );

    let single = embed_req(json!({"model": "e", "input": "hi"}));
    let up = VertexGemini
        .embedding_request(&single, &t, BuildOptions::default())
        .unwrap();
    assert_eq!(body(&up), json!({"instances": [{"content": "hi"}]}));

    for bad in [json!([1, 2, 3]), json!([["a", "b"]]), json!([])] {
        let r = embed_req(json!({"model": "e", "input": bad}));
        assert!(matches!(
            VertexGemini.embedding_request(&r, &t, BuildOptions::default()),
            Err(TranslateError::BadRequest(_))
        ));
    }

    let answer = json!({
        "predictions": [
            {"embeddings": {"values": [0.1, -0.2], "statistics": {"token_count": 2, "truncated": false}}},
            {"embeddings": {"values": [0.3, 0.4], "statistics": {"token_count": 3.0, "truncated": false}}}
        ],
        "metadata": {"billableCharacterCount": 10}
    });
    let r = VertexGemini
        .parse_embedding_response(answer.to_string().as_bytes(), &t)
        .unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        v,
        json!({
            "object": "list",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, -0.2]},
                {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]}
            ],
            "model": "text-embedding-005",
            "usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}
        })
    );
    assert!(VertexGemini.parse_embedding_response(b"{}x", &t).is_err());
}

#[test]
fn claude_on_vertex_has_no_embeddings() {
    let t = target(ProviderKind::VertexAnthropic, "claude-sonnet-4-5");
    let req = embed_req(json!({"model": "e", "input": "hi"}));
    assert!(matches!(
        VertexAnthropic.embedding_request(&req, &t, BuildOptions::default()),
        Err(TranslateError::Unsupported(_))
    ));
}
