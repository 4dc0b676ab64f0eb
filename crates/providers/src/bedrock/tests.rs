#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferrolite_types::openai::{ChatChunk, ChatRequest};
use ferrolite_types::sse::SseEvent;
use serde_json::{json, Value};

use super::eventstream::{EventStreamDecoder, EXCEPTION_EVENT};
use super::*;
use crate::{AuthScheme, EventDecoder, ProviderKind, StreamTranslator};

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const BASE: &str = "https://bedrock-runtime.us-east-1.amazonaws.com";

fn target(model: &str) -> Target {
    Target {
        provider: "bedrock".into(),
        kind: ProviderKind::Bedrock,
        model: model.into(),
        api_base: BASE.into(),
        api_version: None,
        auth: AuthScheme::AwsSigV4 {
            region: "us-east-1".into(),
            service: "bedrock",
        },
        stream_usage: true,
        headers: Vec::new(),
    }
}

fn chat(v: Value) -> ChatRequest {
    serde_json::from_value(v).unwrap()
}

fn body_for(model: &str, v: Value) -> Value {
    let up = Bedrock
        .chat_request(&chat(v), &target(model), BuildOptions::default())
        .unwrap();
    serde_json::from_slice(&up.body).unwrap()
}

fn body(v: Value) -> Value {
    body_for(MODEL, v)
}

fn bad_request(v: Value) -> String {
    match Bedrock.chat_request(&chat(v), &target(MODEL), BuildOptions::default()) {
        Err(TranslateError::BadRequest(m)) => m,
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

// ------------------------------------------------------------------ URLs

#[test]
fn urls_encode_the_model_id() {
    let up = Bedrock
        .chat_request(
            &chat(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})),
            &target(MODEL),
            BuildOptions::default(),
        )
        .unwrap();
    assert_eq!(
        up.url,
        format!("{BASE}/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse")
    );
    assert_eq!(up.headers[0].1, "application/json");
    assert!(matches!(up.auth, AuthScheme::AwsSigV4 { .. }));

    let up = Bedrock
        .chat_request(
            &chat(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]})),
            &target(&format!("converse/{MODEL}")),
            BuildOptions::default(),
        )
        .unwrap();
    assert_eq!(
        up.url,
        format!("{BASE}/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"),
        "converse/ route prefix stripped, stream endpoint"
    );
    assert_eq!(
        converse_url(
            "https://x/",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-1-8b-instruct-v1:0",
            false
        ),
        "https://x/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-1-8b-instruct-v1%3A0/converse"
    );
}

// --------------------------------------------------------------- requests

#[test]
fn basic_request_shape() {
    let b = body(json!({
        "model": "m",
        "max_tokens": 300, "temperature": 0.2, "top_p": 0.9, "stop": "END",
        "user": "u-1", "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Be exact."}]},
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "again"}, {"type": "text", "text": " "}]},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "bye"}
        ]
    }));
    assert_eq!(
        b["system"],
        json!([{"text": "You are terse."}, {"text": "Be exact."}])
    );
    assert_eq!(
        b["messages"],
        json!([
            {"role": "user", "content": [{"text": "hi"}, {"text": "again"}]},
            {"role": "assistant", "content": [{"text": "hello"}]},
            {"role": "user", "content": [{"text": "bye"}]}
        ])
    );
    assert_eq!(
        b["inferenceConfig"],
        json!({"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]})
    );
    assert!(b.get("additionalModelRequestFields").is_none(), "{b}");
    assert!(b.get("toolConfig").is_none());
    for k in ["model", "stream", "user", "stream_options"] {
        assert!(b.get(k).is_none(), "{k} must not be sent: {b}");
    }
}

#[test]
fn tools_and_tool_history() {
    let b = body(json!({
        "model": "m",
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "t2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "t1", "content": "18C"},
            {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "21C"}]}
        ]
    }));
    assert_eq!(
        b["toolConfig"],
        json!({
            "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather by city",
                "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
            "toolChoice": {"tool": {"name": "get_weather"}}
        })
    );
    assert_eq!(
        b["messages"][1],
        json!({"role": "assistant", "content": [
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {}}}
        ]})
    );
    assert_eq!(
        b["messages"][2],
        json!({"role": "user", "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "18C"}]}},
            {"toolResult": {"toolUseId": "t2", "content": [{"text": "21C"}]}}
        ]}),
        "tool results merged into one user turn"
    );
    assert_eq!(b["messages"].as_array().unwrap().len(), 3);

    for (choice, want) in [
        (json!("auto"), json!({"auto": {}})),
        (json!("required"), json!({"any": {}})),
    ] {
        let b = body(json!({"model": "m", "tool_choice": choice,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(b["toolConfig"]["toolChoice"], want);
        assert_eq!(
            b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
            json!({"type": "object", "properties": {}})
        );
    }
    let b = body(json!({"model": "m", "tool_choice": "none",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [{"role": "user", "content": "x"}]}));
    assert!(b["toolConfig"].get("toolChoice").is_none());
}

#[test]
fn tool_history_without_tools_is_refused() {
    let m = bad_request(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "ok"}
    ]}));
    assert!(m.contains("tools"), "{m}");
}

#[test]
fn reasoning_effort_becomes_thinking_for_claude() {
    let b = body(json!({"model": "m", "reasoning_effort": "low",
        "tool_choice": "required", "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(
        b["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(
        b["inferenceConfig"]["maxTokens"],
        1024 + 4096,
        "budget plus headroom"
    );
    assert_eq!(
        b["toolConfig"]["toolChoice"],
        json!({"auto": {}}),
        "forced tool use is refused with thinking"
    );

    let b = body(json!({"model": "m", "max_tokens": 9000,
        "thinking": {"type": "enabled", "budget_tokens": 100},
        "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(
        b["additionalModelRequestFields"]["thinking"]["budget_tokens"], 1024,
        "clamped to Bedrock's minimum"
    );
    assert_eq!(b["inferenceConfig"]["maxTokens"], 9000);

    let b = body_for(
        "openai.gpt-oss-120b-1:0",
        json!({"model": "m", "reasoning_effort": "high", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"reasoning_effort": "high"})
    );

    let b = body_for(
        "us.amazon.nova-2-lite-v1:0",
        json!({"model": "m", "reasoning_effort": "medium", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "medium"}})
    );
}

#[test]
fn top_k_and_extra_fields() {
    let b = body(json!({"model": "m", "top_k": 5, "anthropic_beta": ["x"],
        "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"},
        "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"top_k": 5, "anthropic_beta": ["x"]})
    );
    assert_eq!(b["guardrailConfig"]["guardrailIdentifier"], "g");

    let b = body_for(
        "us.amazon.nova-pro-v1:0",
        json!({"model": "m", "top_k": 5, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"inferenceConfig": {"topK": 5}})
    );

    let b = body_for(
        "meta.llama3-1-8b-instruct-v1:0",
        json!({"model": "m", "top_k": 5, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(b.get("additionalModelRequestFields").is_none(), "{b}");
}

#[test]
fn images_and_documents() {
    let b = body(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "file", "file": {"filename": "report.v2.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
        ]}]}),
    );
    assert_eq!(
        b["messages"][0]["content"],
        json!([
            {"text": "what is this?"},
            {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
            {"document": {"format": "pdf", "name": "report-v2", "source": {"bytes": "JVBERi0="}}}
        ])
    );
    let m = bad_request(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
    );
    assert!(m.contains("data: URL"), "{m}");
    let m = bad_request(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}]}),
    );
    assert!(m.contains("image/tiff"), "{m}");
}

#[test]
fn cache_control_and_thinking_blocks_replayed() {
    let b = body(json!({"model": "m", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "long", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "q", "cache_control": {"type": "ephemeral"}},
        {"role": "assistant", "content": "a", "thinking_blocks": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xyz"}]},
        {"role": "user", "content": "q2"}
    ]}));
    assert_eq!(
        b["system"],
        json!([{"text": "long"}, {"cachePoint": {"type": "default"}}])
    );
    assert_eq!(
        b["messages"][0]["content"],
        json!([{"text": "q"}, {"cachePoint": {"type": "default"}}])
    );
    assert_eq!(
        b["messages"][1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
            {"reasoningContent": {"redactedContent": "xyz"}},
            {"text": "a"}
        ])
    );
}

#[test]
fn response_format_uses_the_json_tool() {
    let b = body(
        json!({"model": "m", "response_format": {"type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
        "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(
        b["toolConfig"]["tools"][0]["toolSpec"]["name"],
        RESPONSE_FORMAT_TOOL_NAME
    );
    assert_eq!(
        b["toolConfig"]["toolChoice"],
        json!({"tool": {"name": RESPONSE_FORMAT_TOOL_NAME}})
    );
}

// -------------------------------------------------------------- responses

fn parse(v: Value) -> ferrolite_types::openai::ChatResponse {
    Bedrock
        .parse_chat_response(v.to_string().as_bytes(), &target(MODEL))
        .unwrap()
}

#[test]
fn text_response_and_usage() {
    let r = parse(json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}, {"text": " there"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 35,
                  "cacheReadInputTokens": 12, "cacheWriteInputTokens": 8},
        "metrics": {"latencyMs": 100}
    }));
    assert!(r.id.starts_with("chatcmpl-"));
    assert_eq!(r.object, "chat.completion");
    let c = &r.choices[0];
    assert_eq!(c.message.content.as_ref().unwrap().text(), "Hello there");
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    let u = r.usage.unwrap();
    assert_eq!(u.prompt_tokens, 30, "input + cache reads + cache writes");
    assert_eq!(u.completion_tokens, 5);
    assert_eq!(u.total_tokens, 35);
    assert_eq!(u.extra["cache_read_input_tokens"], 12);
    assert_eq!(u.extra["cache_creation_input_tokens"], 8);
    assert_eq!(u.extra["prompt_tokens_details"]["cached_tokens"], 12);
}

#[test]
fn tool_use_and_reasoning_response() {
    let r = parse(json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "think", "signature": "s1"}}},
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}
    }));
    let m = &r.choices[0].message;
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let calls = m.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].id.as_deref(), Some("tooluse_1"));
    let f = calls[0].function.as_ref().unwrap();
    assert_eq!(f.name.as_deref(), Some("get_weather"));
    assert_eq!(
        serde_json::from_str::<Value>(f.arguments.as_deref().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(m.extra["reasoning_content"], "think");
    assert_eq!(
        m.extra["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "think", "signature": "s1"}])
    );
}

#[test]
fn stop_reasons_and_json_tool() {
    for (stop, want) in [
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ] {
        let r = parse(
            json!({"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
            "stopReason": stop, "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}),
        );
        assert_eq!(r.choices[0].finish_reason.as_deref(), Some(want), "{stop}");
    }
    let r = parse(
        json!({"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t", "name": RESPONSE_FORMAT_TOOL_NAME, "input": {"properties": {"a": 1}}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}),
    );
    let c = &r.choices[0];
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    assert!(c.message.tool_calls.is_none());
    assert_eq!(
        serde_json::from_str::<Value>(&c.message.content.as_ref().unwrap().text()).unwrap(),
        json!({"a": 1})
    );
}

#[test]
fn errors() {
    let e = Bedrock.parse_error(
        429,
        br#"{"message":"Too many requests, please wait before trying again."}"#,
        &target(MODEL),
    );
    assert_eq!(e.status, 429);
    assert_eq!(
        e.message,
        "Too many requests, please wait before trying again."
    );
    assert_eq!(e.kind.as_deref(), Some("ThrottlingException"));
    assert_eq!(e.provider_label, "BedrockException");
    assert_eq!(e.class(), crate::ErrorClass::RateLimit);

    let e = Bedrock.parse_error(
        400,
        br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Input is too long for requested model."}"#,
        &target(MODEL),
    );
    assert_eq!(e.kind.as_deref(), Some("ValidationException"));
    assert_eq!(e.class(), crate::ErrorClass::ContextWindow);

    let e = Bedrock.parse_error(502, b"<html>bad gateway</html>", &target(MODEL));
    assert_eq!(e.message, "<html>bad gateway</html>");
    assert!(e.kind.is_none());
    let e = Bedrock.parse_error(500, b"", &target(MODEL));
    assert!(e.message.contains("HTTP 500"), "{}", e.message);
}

// ---------------------------------------------------------- event stream

/// An event-stream frame with string headers, built by hand from the spec.
fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (k, v) in headers {
        h.push(k.len() as u8);
        h.extend_from_slice(k.as_bytes());
        h.push(7);
        h.extend_from_slice(&(v.len() as u16).to_be_bytes());
        h.extend_from_slice(v.as_bytes());
    }
    frame_raw(&h, payload)
}

fn frame_raw(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (16 + headers.len() + payload.len()) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn event(kind: &str, payload: Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn decode_bytewise(bytes: &[u8]) -> Vec<SseEvent> {
    let mut d = EventStreamDecoder::new();
    let mut out = Vec::new();
    for b in bytes {
        d.feed(std::slice::from_ref(b), &mut out).unwrap();
    }
    d.finish(&mut out).unwrap();
    out
}

#[test]
fn known_frame_decodes() {
    // A frame whose bytes and CRCs are fixed here (not produced by the
    // encoder above), so encoder and decoder cannot agree on the same bug:
    // one string header `:event-type: messageStart`, payload `{"role":"assistant"}`.
    let mut f = Vec::new();
    let headers: &[u8] = b"\x0b:event-type\x07\x00\x0cmessageStart";
    let payload: &[u8] = br#"{"role":"assistant"}"#;
    let total = 16 + headers.len() + payload.len();
    assert_eq!(total, 63);
    f.extend_from_slice(&[0, 0, 0, 63, 0, 0, 0, 27]);
    // CRC-32 (IEEE) of the 8 prelude bytes and of the whole message,
    // computed with Python's zlib.crc32.
    f.extend_from_slice(&0xcc36_39d2u32.to_be_bytes());
    f.extend_from_slice(headers);
    f.extend_from_slice(payload);
    f.extend_from_slice(&0x13bc_dddau32.to_be_bytes());
    let evs = decode_bytewise(&f);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].event.as_deref(), Some("messageStart"));
    assert_eq!(evs[0].data, r#"{"role":"assistant"}"#);
}

#[test]
fn frames_split_and_packed() {
    let mut bytes = event("messageStart", json!({"role": "assistant", "p": "abc"}));
    bytes.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
    ));
    let evs = decode_bytewise(&bytes);
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1].event.as_deref(), Some("contentBlockDelta"));

    // Whole buffer at once.
    let mut d = EventStreamDecoder::new();
    let mut out = Vec::new();
    d.feed(&bytes, &mut out).unwrap();
    assert_eq!(out.len(), 2);
}

#[test]
fn other_header_types_are_skipped() {
    let mut h = Vec::new();
    let push_name = |h: &mut Vec<u8>, n: &str, t: u8| {
        h.push(n.len() as u8);
        h.extend_from_slice(n.as_bytes());
        h.push(t);
    };
    push_name(&mut h, "t", 0);
    push_name(&mut h, "f", 1);
    push_name(&mut h, "b", 2);
    h.push(1);
    push_name(&mut h, "s", 3);
    h.extend_from_slice(&[0, 1]);
    push_name(&mut h, "i", 4);
    h.extend_from_slice(&[0; 4]);
    push_name(&mut h, "l", 5);
    h.extend_from_slice(&[0; 8]);
    push_name(&mut h, "bytes", 6);
    h.extend_from_slice(&[0, 3, 1, 2, 3]);
    push_name(&mut h, "ts", 8);
    h.extend_from_slice(&[0; 8]);
    push_name(&mut h, "uuid", 9);
    h.extend_from_slice(&[0; 16]);
    push_name(&mut h, ":event-type", 7);
    h.extend_from_slice(&[0, 8]);
    h.extend_from_slice(b"metadata");
    let evs = decode_bytewise(&frame_raw(&h, b"{}"));
    assert_eq!(evs[0].event.as_deref(), Some("metadata"));
}

#[test]
fn corrupt_and_truncated_frames_fail() {
    let mut bytes = event("messageStart", json!({"role": "assistant"}));
    let last = bytes.len() - 6;
    bytes[last] ^= 0xff;
    let mut d = EventStreamDecoder::new();
    let mut out = Vec::new();
    assert!(matches!(
        d.feed(&bytes, &mut out),
        Err(TranslateError::InvalidResponse(m)) if m.contains("checksum")
    ));

    let mut bytes = event("messageStart", json!({"role": "assistant"}));
    bytes[9] ^= 0xff; // prelude CRC
    let mut d = EventStreamDecoder::new();
    assert!(d.feed(&bytes[..14], &mut out).is_err());

    let bytes = event("messageStart", json!({"role": "assistant"}));
    let mut d = EventStreamDecoder::new();
    d.feed(&bytes[..bytes.len() - 3], &mut out).unwrap();
    assert!(d.finish(&mut out).is_err());
}

#[test]
fn exception_frames_become_exception_events() {
    let ex = frame(
        &[
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        br#"{"message":"Too many tokens, please wait before trying again."}"#,
    );
    let evs = decode_bytewise(&ex);
    assert_eq!(evs[0].event.as_deref(), Some(EXCEPTION_EVENT));
    let mut s = Bedrock.chat_stream(&target(MODEL));
    match s.on_event(&evs[0]) {
        Err(TranslateError::Upstream(e)) => {
            assert_eq!(e.status, 429);
            assert_eq!(e.kind.as_deref(), Some("ThrottlingException"));
            assert_eq!(
                e.message,
                "Too many tokens, please wait before trying again."
            );
            assert_eq!(e.provider_label, "BedrockException");
        }
        other => panic!("{other:?}"),
    }
    for (kind, status) in [
        ("validationException", 400),
        ("serviceUnavailableException", 503),
        ("modelStreamErrorException", 500),
        ("internalServerException", 500),
    ] {
        let ex = frame(
            &[(":exception-type", kind), (":message-type", "exception")],
            br#"{"message":"m"}"#,
        );
        let evs = decode_bytewise(&ex);
        match Bedrock.chat_stream(&target(MODEL)).on_event(&evs[0]) {
            Err(TranslateError::Upstream(e)) => assert_eq!(e.status, status, "{kind}"),
            other => panic!("{other:?}"),
        }
    }
    let err = frame(
        &[
            (":message-type", "error"),
            (":error-code", "InternalFailure"),
            (":error-message", "boom"),
        ],
        b"",
    );
    let evs = decode_bytewise(&err);
    match Bedrock.chat_stream(&target(MODEL)).on_event(&evs[0]) {
        Err(TranslateError::Upstream(e)) => {
            assert_eq!(e.status, 500);
            assert_eq!(e.message, "boom");
        }
        other => panic!("{other:?}"),
    }
}

// --------------------------------------------------------------- streams

fn run(events: &[Vec<u8>]) -> (Vec<ChatChunk>, Box<dyn StreamTranslator>) {
    let bytes: Vec<u8> = events.concat();
    let mut d = Bedrock.stream_decoder();
    let mut evs = Vec::new();
    // Feed in uneven pieces.
    for piece in bytes.chunks(7) {
        d.feed(piece, &mut evs).unwrap();
    }
    d.finish(&mut evs).unwrap();
    let mut s = Bedrock.chat_stream(&target(MODEL));
    let mut chunks = Vec::new();
    for ev in &evs {
        chunks.extend(s.on_event(ev).unwrap().unwrap());
    }
    (chunks, s)
}

fn metadata() -> Vec<u8> {
    event(
        "metadata",
        json!({"usage": {"inputTokens": 25, "outputTokens": 12, "totalTokens": 37},
               "metrics": {"latencyMs": 321}, "p": "abcdefgh"}),
    )
}

#[test]
fn text_stream() {
    let (chunks, s) = run(&[
        event("messageStart", json!({"role": "assistant", "p": "abcd"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}, "p": "ab"}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": " world"}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "end_turn"})),
        metadata(),
    ]);
    let text: String = chunks
        .iter()
        .filter_map(|c| c.choices.first().and_then(|x| x.delta.content.clone()))
        .collect();
    assert_eq!(text, "Hello world");
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert!(chunks
        .iter()
        .all(|c| c.id == chunks[0].id && c.id.starts_with("chatcmpl-")));
    let finish: Vec<_> = chunks
        .iter()
        .filter_map(|c| c.choices.first().and_then(|x| x.finish_reason.clone()))
        .collect();
    assert_eq!(finish, vec!["stop"]);
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    assert_eq!(last.usage.as_ref().unwrap().total_tokens, 37);
    assert_eq!(s.usage().unwrap().prompt_tokens, 25);
}

#[test]
fn tool_stream() {
    let (chunks, _) = run(&[
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"text": "Checking."}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 2})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "tu_2", "name": "now"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 3})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        metadata(),
    ]);
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| {
            c.choices
                .first()
                .and_then(|x| x.delta.extra.get("reasoning_content"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(reasoning, "hmm");
    // Tool call deltas, assembled per index.
    let mut calls: std::collections::BTreeMap<u32, (String, String, String)> = Default::default();
    for c in &chunks {
        for tc in c
            .choices
            .first()
            .and_then(|x| x.delta.tool_calls.clone())
            .unwrap_or_default()
        {
            let e = calls.entry(tc.index).or_default();
            if let Some(id) = tc.call.id {
                e.0 = id;
            }
            if let Some(f) = tc.call.function {
                if let Some(n) = f.name {
                    e.1 = n;
                }
                e.2.push_str(f.arguments.as_deref().unwrap_or(""));
            }
        }
    }
    assert_eq!(
        calls.get(&0),
        Some(&(
            "tu_1".into(),
            "get_weather".into(),
            "{\"city\":\"Paris\"}".into()
        ))
    );
    assert_eq!(
        calls.get(&1),
        Some(&("tu_2".into(), "now".into(), "{}".into()))
    );
    let finish: Vec<_> = chunks
        .iter()
        .filter_map(|c| c.choices.first().and_then(|x| x.finish_reason.clone()))
        .collect();
    assert_eq!(finish, vec!["tool_calls"]);
}

#[test]
fn json_tool_stream_is_content() {
    let (chunks, _) = run(&[
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": RESPONSE_FORMAT_TOOL_NAME}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "tool_use"})),
    ]);
    let text: String = chunks
        .iter()
        .filter_map(|c| c.choices.first().and_then(|x| x.delta.content.clone()))
        .collect();
    assert_eq!(text, "{\"a\":1}");
    assert!(chunks.iter().all(|c| c
        .choices
        .first()
        .is_none_or(|x| x.delta.tool_calls.is_none())));
    assert_eq!(
        chunks.last().unwrap().choices[0].finish_reason.as_deref(),
        Some("stop")
    );
}
