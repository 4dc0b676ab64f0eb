use ferrolite_types::openai::ChatRequest;
use ferrolite_types::sse::SseEvent;
use serde_json::{json, Value};

use super::*;
use crate::{AuthScheme, ProviderKind};

fn target(kind: ProviderKind) -> Target {
    Target {
        provider: if kind == ProviderKind::Azure {
            "azure"
        } else {
            "openai"
        }
        .to_owned(),
        kind,
        model: "gpt-4o-2024".to_owned(),
        api_base: "https://up.example/v1".to_owned(),
        api_version: Some("2024-10-21".to_owned()),
        auth: AuthScheme::Bearer,
        stream_usage: true,
        headers: vec![(
            http::HeaderName::from_static("x-team"),
            http::HeaderValue::from_static("ml"),
        )],
    }
}

fn chat(body: Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

#[test]
fn chat_body_swaps_model_keeps_unknown_fields_and_fills_defaults() {
    let req = chat(
        json!({"model":"group","messages":[{"role":"user","content":"hi"}],"temperature":0.9,"foo_unknown":1}),
    );
    let defaults: ferrolite_types::JsonMap =
        serde_json::from_value(json!({"temperature": 0.1, "max_tokens": 5})).unwrap();
    let t = target(ProviderKind::OpenAiCompat);
    let up = OpenAiCompat
        .chat_request(
            &req,
            &t,
            BuildOptions {
                defaults: Some(&defaults),
                stream_usage: true,
            },
        )
        .unwrap();
    assert_eq!(up.url, "https://up.example/v1/chat/completions");
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        body,
        json!({"model":"gpt-4o-2024","messages":[{"role":"user","content":"hi"}],"temperature":0.9,"max_tokens":5,"foo_unknown":1})
    );
    assert!(up.headers.iter().any(|(k, v)| k == "x-team" && v == "ml"));
}

#[test]
fn streams_ask_for_usage_but_non_streams_never_send_stream_options() {
    let t = target(ProviderKind::OpenAiCompat);
    let opts = BuildOptions {
        defaults: None,
        stream_usage: true,
    };
    let s = chat(json!({"model":"g","messages":[],"stream":true,"stream_options":{"foo":1}}));
    let body: Value =
        serde_json::from_slice(&OpenAiCompat.chat_request(&s, &t, opts).unwrap().body).unwrap();
    assert_eq!(
        body["stream_options"],
        json!({"include_usage": true, "foo": 1})
    );

    let n = chat(json!({"model":"g","messages":[],"stream_options":{"include_usage":true}}));
    let body: Value =
        serde_json::from_slice(&OpenAiCompat.chat_request(&n, &t, opts).unwrap().body).unwrap();
    assert!(body.get("stream_options").is_none());

    let mut no_usage = t.clone();
    no_usage.stream_usage = false;
    let body: Value =
        serde_json::from_slice(&OpenAiCompat.chat_request(&s, &no_usage, opts).unwrap().body)
            .unwrap();
    assert!(
        body.get("stream_options").is_none(),
        "providers that reject stream_options never get it"
    );
}

#[test]
fn azure_urls_use_the_deployment_and_api_version() {
    let t = target(ProviderKind::Azure);
    let req = chat(json!({"model":"g","messages":[]}));
    let up = Azure
        .chat_request(&req, &t, BuildOptions::default())
        .unwrap();
    assert_eq!(up.url, "https://up.example/v1/openai/deployments/gpt-4o-2024/chat/completions?api-version=2024-10-21");
    let e: ferrolite_types::openai::EmbeddingRequest =
        serde_json::from_value(json!({"model":"g","input":"x"})).unwrap();
    let up = Azure
        .embedding_request(&e, &t, BuildOptions::default())
        .unwrap();
    assert!(up
        .url
        .ends_with("/openai/deployments/gpt-4o-2024/embeddings?api-version=2024-10-21"));
}

#[test]
fn errors_keep_upstream_message_type_and_param() {
    let t = target(ProviderKind::OpenAiCompat);
    let e = OpenAiCompat.parse_error(
        429,
        br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        &t,
    );
    assert_eq!(
        (e.status, e.message.as_str(), e.kind.as_deref()),
        (429, "Rate limit reached", Some("requests"))
    );
    assert_eq!(e.provider_label, "OpenAIException");
    let raw = OpenAiCompat.parse_error(502, b"<html>bad gateway</html>", &t);
    assert_eq!(raw.message, "<html>bad gateway</html>");
    assert_eq!(provider_label("groq"), "GroqException");
}

#[test]
fn stream_translator_tracks_usage_done_and_in_stream_errors() {
    let t = target(ProviderKind::OpenAiCompat);
    let mut s = OpenAiCompat.chat_stream(&t);
    let ev = |d: &str| SseEvent {
        event: None,
        data: d.to_owned(),
    };
    let chunks = s
        .on_event(&ev(r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#))
        .unwrap()
        .unwrap();
    assert_eq!(chunks[0].choices[0].delta.content.as_deref(), Some("hi"));
    s.on_event(&ev(r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#))
        .unwrap();
    assert_eq!(s.usage().unwrap().total_tokens, 5);
    assert!(s.on_event(&ev("[DONE]")).unwrap().is_none());
    match s.on_event(&ev(
        r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
    )) {
        Err(TranslateError::Upstream(e)) => assert_eq!(e.message, "overloaded"),
        other => panic!(
            "expected an upstream error, got {other:?}",
            other = other.map(|_| ())
        ),
    }
}
