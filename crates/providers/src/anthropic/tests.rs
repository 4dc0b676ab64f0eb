use ferrolite_types::openai::ChatRequest;
use ferrolite_types::sse::{SseEvent, SseParser};
use serde_json::{json, Value};

use super::*;
use crate::{AuthScheme, ProviderKind};

fn target() -> Target {
    Target {
        provider: "anthropic".to_owned(),
        kind: ProviderKind::Anthropic,
        model: "claude-sonnet-4-5".to_owned(),
        api_base: "https://api.anthropic.com".to_owned(),
        api_version: None,
        auth: AuthScheme::Header(http::HeaderName::from_static("x-api-key")),
        stream_usage: false,
        headers: vec![(
            http::HeaderName::from_static("anthropic-beta"),
            http::HeaderValue::from_static("prompt-caching-2024-07-31"),
        )],
    }
}

fn chat(body: Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

fn body_of(req: &ChatRequest) -> Value {
    let up = Anthropic
        .chat_request(req, &target(), BuildOptions::default())
        .unwrap();
    serde_json::from_slice(&up.body).unwrap()
}

fn bad_request(req: &ChatRequest) -> String {
    match Anthropic.chat_request(req, &target(), BuildOptions::default()) {
        Err(TranslateError::BadRequest(m)) => m,
        other => panic!(
            "expected BadRequest, got {:?}",
            other.map(|u| String::from_utf8_lossy(&u.body).into_owned())
        ),
    }
}

fn header<'a>(up: &'a UpstreamRequest, name: &str) -> Vec<&'a str> {
    up.headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.to_str().unwrap())
        .collect()
}

// ------------------------------------------------------------------ requests

#[test]
fn full_conversation_translates_to_messages_api() {
    let req = chat(json!({
        "model": "group",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [
                {"type": "text", "text": "Cache me", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "user", "content": "Hello"},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}
            ]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_2", "type": "function",
                 "function": {"name": "get_time", "arguments": ""}}
            ], "thinking_blocks": [
                {"type": "thinking", "thinking": "Need weather.", "signature": "sig-abc"},
                {"type": "redacted_thinking", "data": "opaque=="}
            ], "reasoning_content": "Need weather."},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "12:00"}]},
            {"role": "user", "content": "Thanks", "cache_control": {"type": "ephemeral"}}
        ],
        "tools": [
            {"type": "function", "function": {
                "name": "get_weather", "description": "Weather by city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            }},
            {"type": "function", "function": {"name": "get_time"}, "cache_control": {"type": "ephemeral"}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "stop": "\n\nHuman:",
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 5,
        "user": "user-42",
        "presence_penalty": 1,
        "frequency_penalty": 0.5,
        "logit_bias": {"1": 2},
        "logprobs": true,
        "n": 1,
        "seed": 7,
        "stream": true,
        "stream_options": {"include_usage": true}
    }));
    let up = Anthropic
        .chat_request(&req, &target(), BuildOptions::default())
        .unwrap();
    assert_eq!(up.url, "https://api.anthropic.com/v1/messages");
    assert_eq!(header(&up, "content-type"), ["application/json"]);
    assert_eq!(header(&up, "anthropic-version"), ["2023-06-01"]);
    assert_eq!(header(&up, "anthropic-beta"), ["prompt-caching-2024-07-31"]);
    assert_eq!(
        up.auth,
        AuthScheme::Header(http::HeaderName::from_static("x-api-key"))
    );
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "system": [
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": "Cache me", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Hello"},
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Need weather.", "signature": "sig-abc"},
                    {"type": "redacted_thinking", "data": "opaque=="},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "12:00"}]},
                    {"type": "text", "text": "Thanks", "cache_control": {"type": "ephemeral"}}
                ]}
            ],
            "max_tokens": 4096,
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 5,
            "stop_sequences": ["\n\nHuman:"],
            "metadata": {"user_id": "user-42"},
            "tools": [
                {"name": "get_weather", "description": "Weather by city",
                 "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "get_time", "input_schema": {"type": "object", "properties": {}},
                 "cache_control": {"type": "ephemeral"}}
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stream": true
        })
    );
}

#[test]
fn simple_request_uses_strings_defaults_and_v1_base() {
    let req = chat(json!({
        "model": "g",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "again"}]}
        ],
        "max_completion_tokens": 300,
        "temperature": 0.9,
        "stop": ["END", "  ", "STOP"],
        "user": "someone@example.com"
    }));
    let defaults: ferrolite_types::JsonMap =
        serde_json::from_value(json!({"temperature": 0.1, "top_k": 3})).unwrap();
    let mut t = target();
    t.api_base = "https://proxy.example/anthropic/v1".to_owned();
    t.headers = vec![(
        http::HeaderName::from_static("anthropic-version"),
        http::HeaderValue::from_static("2024-01-01"),
    )];
    let up = Anthropic
        .chat_request(
            &req,
            &t,
            BuildOptions {
                defaults: Some(&defaults),
                stream_usage: true,
            },
        )
        .unwrap();
    assert_eq!(up.url, "https://proxy.example/anthropic/v1/messages");
    assert_eq!(header(&up, "anthropic-version"), ["2024-01-01"]);
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    // No `metadata`: e-mail addresses are not sent as user ids. No `stream`.
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "again"}
            ],
            "max_tokens": 300,
            "temperature": 0.9,
            "top_k": 3,
            "stop_sequences": ["END", "STOP"]
        })
    );
}

#[test]
fn max_tokens_default_and_explicit() {
    let base = json!({"model": "g", "messages": [{"role": "user", "content": "x"}]});
    assert_eq!(body_of(&chat(base.clone()))["max_tokens"], 4096);
    let mut with = base.clone();
    with["max_tokens"] = json!(77);
    assert_eq!(body_of(&chat(with.clone()))["max_tokens"], 77);
    // max_completion_tokens wins over the legacy name.
    with["max_completion_tokens"] = json!(88);
    assert_eq!(body_of(&chat(with))["max_tokens"], 88);
    for (url, expect) in [
        ("https://a.example", "https://a.example/v1/messages"),
        ("https://a.example/v1", "https://a.example/v1/messages"),
        (
            "https://a.example/v1/messages",
            "https://a.example/v1/messages",
        ),
    ] {
        assert_eq!(messages_url(url), expect);
    }
}

#[test]
fn reasoning_effort_and_thinking() {
    let req = chat(json!({
        "model": "g", "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "medium"
    }));
    let body = body_of(&req);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(body["max_tokens"], 2048 + 4096);
    assert!(body.get("reasoning_effort").is_none());

    for (effort, budget) in [("low", 1024), ("high", 4096)] {
        let req = chat(json!({
            "model": "g", "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": effort, "max_tokens": 10000
        }));
        let body = body_of(&req);
        assert_eq!(body["thinking"]["budget_tokens"], budget);
        assert_eq!(body["max_tokens"], 10000);
    }

    // An explicit `thinking` passes through and wins over reasoning_effort.
    let req = chat(json!({
        "model": "g", "messages": [{"role": "user", "content": "x"}],
        "thinking": {"type": "enabled", "budget_tokens": 5000},
        "reasoning_effort": "low"
    }));
    let body = body_of(&req);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 5000})
    );
    assert_eq!(body["max_tokens"], 9096);

    let req = chat(json!({
        "model": "g", "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "extreme"
    }));
    assert!(bad_request(&req).contains("reasoning_effort"));
}

#[test]
fn tool_choice_variants() {
    let tools =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let case = |choice: Value, parallel: Option<bool>| -> Value {
        let mut req =
            json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "tools": tools});
        if !choice.is_null() {
            req["tool_choice"] = choice;
        }
        if let Some(p) = parallel {
            req["parallel_tool_calls"] = json!(p);
        }
        body_of(&chat(req))
            .get("tool_choice")
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(case(json!("auto"), None), json!({"type": "auto"}));
    assert_eq!(case(json!("none"), None), json!({"type": "none"}));
    assert_eq!(case(json!("none"), Some(false)), json!({"type": "none"}));
    assert_eq!(
        case(json!({"type": "function", "function": {"name": "f"}}), None),
        json!({"type": "tool", "name": "f"})
    );
    assert_eq!(
        case(Value::Null, Some(false)),
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(case(Value::Null, None), Value::Null);

    // No tools: no tool_choice (Anthropic rejects one without tools).
    let req = chat(
        json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"}),
    );
    let body = body_of(&req);
    assert!(body.get("tool_choice").is_none() && body.get("tools").is_none());
}

#[test]
fn response_format_becomes_a_forced_tool() {
    let schema =
        json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]});
    let req = chat(json!({
        "model": "g", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
    }));
    let body = body_of(&req);
    assert_eq!(
        body["tools"],
        json!([{"name": "json_tool_call", "input_schema": schema}])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "json_tool_call"})
    );
    assert!(body.get("response_format").is_none());

    let req = chat(json!({
        "model": "g", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"}, "reasoning_effort": "low"
    }));
    let body = body_of(&req);
    assert_eq!(
        body["tools"],
        json!([{"name": "json_tool_call", "input_schema": {"type": "object", "additionalProperties": true, "properties": {}}}])
    );
    // Thinking forbids forcing a tool.
    assert!(body.get("tool_choice").is_none());

    let req = chat(json!({
        "model": "g", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "text"}
    }));
    assert!(body_of(&req).get("tools").is_none());
}

#[test]
fn untranslatable_requests_are_bad_requests() {
    let with_args = |args: &str| {
        chat(json!({"model": "g", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": args}}]}
        ]}))
    };
    assert!(bad_request(&with_args("{\"a\": ")).contains("not valid JSON"));
    assert!(bad_request(&with_args("[1]")).contains("JSON object"));
    let img = chat(
        json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}
        ]}]}),
    );
    assert!(bad_request(&img).contains("unsupported image URL"));
    let not_b64 = chat(
        json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}
        ]}]}),
    );
    assert!(bad_request(&not_b64).contains("base64"));
    let tool = chat(json!({"model": "g", "messages": [{"role": "tool", "content": "x"}]}));
    assert!(bad_request(&tool).contains("tool_call_id"));
}

// ----------------------------------------------------------------- responses

#[test]
fn response_with_text_tool_use_thinking_and_cached_usage() {
    let body = json!({
        "id": "msg_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBsig"},
            {"type": "redacted_thinking", "data": "EmwKAhgB"},
            {"type": "text", "text": "I'll check "},
            {"type": "text", "text": "the weather."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 2000, "output_tokens": 55}
    });
    let resp = Anthropic
        .parse_chat_response(body.to_string().as_bytes(), &target())
        .unwrap();
    assert!(resp.created > 1_600_000_000);
    let mut v = serde_json::to_value(&resp).unwrap();
    v["created"] = json!(0);
    assert_eq!(
        v,
        json!({
            "id": "msg_01XYZ",
            "object": "chat.completion",
            "created": 0,
            "model": "claude-sonnet-4-5-20250929",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "I'll check the weather.",
                    "tool_calls": [{"id": "toolu_01", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}],
                    "reasoning_content": "Let me think.",
                    "thinking_blocks": [
                        {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBsig"},
                        {"type": "redacted_thinking", "data": "EmwKAhgB"}
                    ]
                },
                "finish_reason": "tool_calls"
            }],
            "usage": {
                "prompt_tokens": 2042,
                "completion_tokens": 55,
                "total_tokens": 2097,
                "cache_creation_input_tokens": 30,
                "cache_read_input_tokens": 2000,
                "prompt_tokens_details": {"cached_tokens": 2000, "cache_creation_tokens": 30}
            }
        })
    );
}

#[test]
fn thinking_blocks_round_trip_into_the_next_request() {
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [
            {"type": "thinking", "thinking": "Plan.", "signature": "sig1"},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {}}
        ],
        "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}
    });
    let resp = Anthropic
        .parse_chat_response(body.to_string().as_bytes(), &target())
        .unwrap();
    let assistant = serde_json::to_value(&resp.choices[0].message).unwrap();
    let req = chat(json!({"model": "g", "messages": [
        {"role": "user", "content": "go"},
        assistant,
        {"role": "tool", "tool_call_id": "toolu_9", "content": "done"}
    ]}));
    assert_eq!(
        body_of(&req)["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Plan.", "signature": "sig1"},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {}}
        ]})
    );
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ] {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": "x"}],
            "stop_reason": stop, "usage": {"input_tokens": 3, "output_tokens": 4}
        });
        let resp = Anthropic
            .parse_chat_response(body.to_string().as_bytes(), &target())
            .unwrap();
        assert_eq!(
            resp.choices[0].finish_reason.as_deref(),
            Some(finish),
            "{stop}"
        );
        let u = resp.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (3, 4, 7)
        );
    }
}

#[test]
fn json_tool_call_response_becomes_content() {
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "json_tool_call", "input": {"a": 1}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}
    });
    let resp = Anthropic
        .parse_chat_response(body.to_string().as_bytes(), &target())
        .unwrap();
    let c = &resp.choices[0];
    assert_eq!(
        serde_json::to_value(&c.message.content).unwrap(),
        json!("{\"a\":1}")
    );
    assert!(c.message.tool_calls.is_none());
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
}

#[test]
fn error_body_in_a_200_and_garbage_are_errors() {
    let err = Anthropic.parse_chat_response(
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        &target(),
    );
    match err {
        Err(TranslateError::Upstream(e)) => {
            assert_eq!((e.status, e.message.as_str()), (529, "Overloaded"))
        }
        other => panic!("expected upstream error, got {:?}", other.map(|r| r.id)),
    }
    assert!(matches!(
        Anthropic.parse_chat_response(b"not json", &target()),
        Err(TranslateError::InvalidResponse(_))
    ));
}

// ------------------------------------------------------------------- streams

const RECORDED_STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01Stream","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":20,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me check"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the weather."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\", \"unit\": \"c\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01B","name":"get_time","input":{}}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}

event: message_stop
data: {"type":"message_stop"}

"#;

fn events(text: &str) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    p.feed(text.as_bytes(), &mut out).unwrap();
    p.finish(&mut out);
    out
}

/// Runs a stream to its end; returns every chunk (as JSON, `created`
/// checked for consistency then zeroed) and the translator.
fn run(text: &str) -> (Vec<Value>, Box<dyn StreamTranslator>) {
    let mut s = Anthropic.chat_stream(&target());
    let mut out = Vec::new();
    let mut ended = false;
    for ev in events(text) {
        assert!(!ended, "event after the end of the stream");
        match s.on_event(&ev).unwrap() {
            Some(chunks) => out.extend(chunks),
            None => ended = true,
        }
    }
    assert!(ended, "stream never ended");
    let created = out[0].created;
    assert!(created > 1_600_000_000);
    let values = out
        .iter()
        .map(|c| {
            assert_eq!(c.created, created);
            let mut v = serde_json::to_value(c).unwrap();
            v["created"] = json!(0);
            v
        })
        .collect();
    (values, s)
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({
        "id": "msg_01Stream",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "claude-sonnet-4-5-20250929",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    })
}

#[test]
fn recorded_stream_with_text_and_tool_use() {
    let (chunks, s) = run(RECORDED_STREAM);
    let usage = json!({
        "prompt_tokens": 125,
        "completion_tokens": 42,
        "total_tokens": 167,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 5}
    });
    let expected = vec![
        chunk(
            json!({"role": "assistant", "content": "Let me check"}),
            Value::Null,
        ),
        chunk(json!({"content": " the weather."}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "toolu_01A", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Pa"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "ris\", \"unit\": \"c\"}"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "toolu_01B", "type": "function",
                "function": {"name": "get_time", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        json!({
            "id": "msg_01Stream",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "claude-sonnet-4-5-20250929",
            "choices": [],
            "usage": usage
        }),
    ];
    assert_eq!(chunks, expected);

    // The argument fragments of each call concatenate to valid JSON.
    for (index, want) in [(0, json!({"city": "Paris", "unit": "c"})), (1, json!({}))] {
        let args: String = chunks
            .iter()
            .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
            .flat_map(|ch| {
                ch["delta"]["tool_calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|tc| tc["index"] == index)
            .map(|tc| {
                tc["function"]["arguments"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), want);
    }
    assert_eq!(serde_json::to_value(s.usage().unwrap()).unwrap(), usage);
}

#[test]
fn thinking_stream_carries_reasoning_and_signature() {
    let text = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_T","model":"claude-sonnet-4-5-20250929","content":[],"usage":{"input_tokens":5,"output_tokens":0}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBsig"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Yes."}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}

event: message_stop
data: {"type":"message_stop"}

"#;
    let (chunks, s) = run(text);
    let deltas: Vec<(Value, Value)> = chunks
        .iter()
        .filter_map(|c| {
            let ch = c["choices"].get(0)?;
            Some((ch["delta"].clone(), ch["finish_reason"].clone()))
        })
        .collect();
    assert_eq!(
        deltas,
        vec![
            (
                json!({"role": "assistant", "reasoning_content": "Hmm.",
                    "thinking_blocks": [{"type": "thinking", "thinking": "Hmm.", "signature": ""}]}),
                Value::Null
            ),
            (
                json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "EqQBsig"}]}),
                Value::Null
            ),
            (json!({"content": "Yes."}), Value::Null),
            (json!({}), json!("stop")),
        ]
    );
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 14);
    let u = s.usage().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (5, 9));
}

#[test]
fn json_tool_stream_is_streamed_as_content() {
    let text = r#"data: {"type":"message_start","message":{"id":"msg_J","model":"m","usage":{"input_tokens":5,"output_tokens":1}}}

data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_J","name":"json_tool_call","input":{}}}

data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}

data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":" 1}"}}

data: {"type":"content_block_stop","index":0}

data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":7}}

data: {"type":"message_stop"}

"#;
    let (chunks, _) = run(text);
    let content: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "{\"a\": 1}");
    assert!(chunks
        .iter()
        .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()));
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
}

#[test]
fn error_event_mid_stream_is_an_upstream_error() {
    let mut s = Anthropic.chat_stream(&target());
    let ev = |event: &str, data: &str| SseEvent {
        event: Some(event.to_owned()),
        data: data.to_owned(),
    };
    s.on_event(&ev(
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_E","model":"m","usage":{"input_tokens":3,"output_tokens":1}}}"#,
    ))
    .unwrap();
    let hi = s
        .on_event(&ev(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        ))
        .unwrap()
        .unwrap();
    assert_eq!(hi[0].choices[0].delta.content.as_deref(), Some("Hi"));
    assert!(s
        .on_event(&ev("ping", r#"{"type":"ping"}"#))
        .unwrap()
        .unwrap()
        .is_empty());
    match s.on_event(&ev(
        "error",
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )) {
        Err(TranslateError::Upstream(e)) => {
            assert_eq!(e.status, 529);
            assert_eq!(e.message, "Overloaded");
            assert_eq!(e.kind.as_deref(), Some("overloaded_error"));
            assert_eq!(e.provider_label, "AnthropicException");
        }
        other => panic!("expected upstream error, got {:?}", other.map(|_| ())),
    }
    match s.on_event(&ev(
        "error",
        r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
    )) {
        Err(TranslateError::Upstream(e)) => {
            assert_eq!(
                (e.status, e.message.as_str()),
                (500, "Internal server error")
            )
        }
        other => panic!("expected upstream error, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        s.on_event(&ev("content_block_delta", "{not json")),
        Err(TranslateError::InvalidResponse(_))
    ));
    assert_eq!(s.usage().unwrap().prompt_tokens, 3);
}

// -------------------------------------------------------------------- errors

#[test]
fn parse_error_reads_anthropic_bodies_and_keeps_raw_text() {
    let t = target();
    let e = Anthropic.parse_error(
        400,
        br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"},"request_id":"req_1"}"#,
        &t,
    );
    assert_eq!(e.status, 400);
    assert_eq!(e.message, "max_tokens: Field required");
    assert_eq!(e.kind.as_deref(), Some("invalid_request_error"));
    assert_eq!(e.provider_label, "AnthropicException");

    let raw = Anthropic.parse_error(502, b"<html>bad gateway</html>", &t);
    assert_eq!(
        (raw.status, raw.message.as_str(), raw.kind),
        (502, "<html>bad gateway</html>", None)
    );

    let long = "x".repeat(5000);
    assert_eq!(
        Anthropic
            .parse_error(500, long.as_bytes(), &t)
            .message
            .len(),
        2048
    );
    assert_eq!(
        Anthropic.parse_error(503, b"", &t).message,
        "upstream returned HTTP 503 with an empty body"
    );
}
