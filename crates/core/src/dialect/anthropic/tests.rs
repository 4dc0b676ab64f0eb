//! Translation golden tests: Messages → chat, chat → Messages, chat chunks →
//! Anthropic events, errors.

use ferrolite_providers::{AuthScheme, ProviderKind, Target};
use ferrolite_types::openai::{ChatChunk, ChatResponse};
use ferrolite_types::JsonMap;
use serde_json::{json, Value};

use super::request::{estimate_input_tokens, fit, to_chat};
use super::response::{error, from_chat};
use super::stream::{events_for_message, EventWriter};
use crate::GatewayError;

fn map(v: Value) -> JsonMap {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn target(kind: ProviderKind, model: &str) -> Target {
    Target {
        provider: "openai".into(),
        kind,
        model: model.into(),
        api_base: "http://x".into(),
        api_version: None,
        auth: AuthScheme::Bearer,
        stream_usage: true,
        headers: Vec::new(),
    }
}

/// A request shaped like Claude Code's: system blocks with cache_control,
/// tools, thinking, metadata.user_id, a tool_use / tool_result turn.
fn claude_code_body() -> JsonMap {
    map(json!({
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls", "signature": "sig-1"},
                {"type": "text", "text": "Running ls."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a.txt"}]},
                {"type": "text", "text": "thanks"}
            ]}
        ],
        "tools": [
            {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}, "cache_control": {"type": "ephemeral"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "metadata": {"user_id": "user_abc"},
        "stop_sequences": ["END"],
        "temperature": 1,
        "stream": true
    }))
}

#[test]
fn claude_code_request_becomes_chat() {
    let chat = to_chat(&claude_code_body(), "my-model").unwrap();
    let v = serde_json::to_value(&chat).unwrap();
    assert_eq!(v["model"], "my-model");
    assert_eq!(v["stream"], true);
    assert_eq!(v["max_tokens"], 32000);
    assert_eq!(v["stop"], json!(["END"]));
    assert_eq!(v["user"], "user_abc");
    assert_eq!(v["thinking"]["budget_tokens"], 10000);
    assert_eq!(v["tool_choice"], "auto");
    assert_eq!(v["parallel_tool_calls"], false);
    let m = v["messages"].as_array().unwrap();
    assert_eq!(m[0]["role"], "system");
    assert_eq!(m[0]["content"][1]["cache_control"]["type"], "ephemeral");
    assert_eq!(m[1]["role"], "user");
    assert_eq!(m[2]["role"], "assistant");
    assert_eq!(m[2]["content"], "Running ls.");
    assert_eq!(m[2]["tool_calls"][0]["id"], "toolu_1");
    assert_eq!(m[2]["tool_calls"][0]["function"]["name"], "Bash");
    assert_eq!(
        serde_json::from_str::<Value>(
            m[2]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        )
        .unwrap(),
        json!({"command": "ls"})
    );
    assert_eq!(m[2]["thinking_blocks"][0]["signature"], "sig-1");
    assert_eq!(m[2]["reasoning_content"], "I should run ls");
    // The tool result comes right after the assistant turn, then the text.
    assert_eq!(m[3]["role"], "tool");
    assert_eq!(m[3]["tool_call_id"], "toolu_1");
    assert_eq!(m[3]["content"], "a.txt");
    assert_eq!(m[4], json!({"role": "user", "content": "thanks"}));
    let tools = v["tools"].as_array().unwrap();
    assert_eq!(tools[0]["function"]["name"], "Bash");
    assert_eq!(
        tools[0]["function"]["parameters"]["properties"]["command"]["type"],
        "string"
    );
    assert_eq!(tools[1]["type"], "web_search_20250305");
}

#[test]
fn fitting_to_openai_drops_what_it_cannot_take() {
    let mut chat = to_chat(&claude_code_body(), "m").unwrap();
    fit(&mut chat, &target(ProviderKind::OpenAiCompat, "gpt-4o"));
    let v = serde_json::to_value(&chat).unwrap();
    assert!(v.get("thinking").is_none());
    assert!(v.get("reasoning_effort").is_none());
    assert_eq!(v["tools"].as_array().unwrap().len(), 1);
    assert!(v["tools"][0].get("cache_control").is_none());
    // Text-only parts without cache_control collapse into a string.
    assert_eq!(
        v["messages"][0]["content"],
        "You are Claude Code.\nBe brief."
    );
    assert_eq!(v["messages"][1]["content"], "list files");

    let mut chat = to_chat(&claude_code_body(), "m").unwrap();
    fit(&mut chat, &target(ProviderKind::OpenAiCompat, "o3-mini"));
    assert_eq!(chat.extra["reasoning_effort"], "medium");
    assert!(!chat.extra.contains_key("thinking"));

    let mut chat = to_chat(&claude_code_body(), "m").unwrap();
    fit(&mut chat, &target(ProviderKind::Gemini, "gemini-2.5-pro"));
    assert_eq!(chat.extra["thinking"]["type"], "enabled");
    assert_eq!(chat.extra["tools"].as_array().unwrap().len(), 1);
}

#[test]
fn images_documents_and_tool_result_variants() {
    let body = map(json!({
        "max_tokens": 10,
        "system": "sys",
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}
            ]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}},
                                               {"type": "tool_use", "id": "t2", "name": "g", "input": {"a": 1}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "plain", "is_error": true},
                {"type": "tool_result", "tool_use_id": "t2", "content": [
                    {"type": "text", "text": "see"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j"}}
                ]}
            ]}
        ]
    }));
    let v = serde_json::to_value(to_chat(&body, "m").unwrap()).unwrap();
    let m = v["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "sys"}));
    assert_eq!(
        m[1]["content"][0]["image_url"]["url"],
        "data:image/png;base64,iVBOR"
    );
    assert_eq!(m[1]["content"][1]["image_url"]["url"], "https://x/y.png");
    assert_eq!(
        m[1]["content"][2]["file"]["file_data"],
        "data:application/pdf;base64,JVBER"
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "t1", "content": "plain"})
    );
    assert_eq!(
        m[4],
        json!({"role": "tool", "tool_call_id": "t2", "content": "see"})
    );
    // The tool result's image follows in a user turn.
    assert_eq!(m[5]["role"], "user");
    assert_eq!(
        m[5]["content"][0]["image_url"]["url"],
        "data:image/jpeg;base64,/9j"
    );
}

#[test]
fn tool_choice_variants() {
    let with = |choice: Value| {
        let body = map(
            json!({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": choice}),
        );
        to_chat(&body, "m").unwrap().extra
    };
    assert_eq!(with(json!({"type": "any"}))["tool_choice"], "required");
    assert_eq!(with(json!({"type": "none"}))["tool_choice"], "none");
    assert_eq!(
        with(json!({"type": "tool", "name": "f"}))["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    let bad = map(json!({"max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}));
    let e = to_chat(&bad, "m").unwrap_err();
    assert_eq!(e.status(), 400);
}

#[test]
fn chat_answer_becomes_message() {
    let resp: ChatResponse = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me look.",
            "reasoning_content": "thinking...",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}}]
        }}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                  "prompt_tokens_details": {"cached_tokens": 30}}
    })).unwrap();
    let m = from_chat(&resp, "claude-alias");
    assert_eq!(m["type"], "message");
    assert_eq!(m["role"], "assistant");
    assert_eq!(m["model"], "claude-alias");
    assert_eq!(m["id"], "msg_chatcmpl-1");
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        m["content"][0],
        json!({"type": "thinking", "thinking": "thinking...", "signature": ""})
    );
    assert_eq!(
        m["content"][1],
        json!({"type": "text", "text": "Let me look."})
    );
    assert_eq!(
        m["content"][2],
        json!({"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}})
    );
    assert_eq!(
        m["usage"],
        json!({"input_tokens": 70, "output_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 30})
    );

    let mut resp = resp;
    resp.choices[0].finish_reason = Some("length".into());
    resp.choices[0].message.tool_calls = None;
    assert_eq!(from_chat(&resp, "m")["stop_reason"], "max_tokens");
}

/// Parse `event: …\ndata: …` frames into (name, data).
fn parse_events(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in f.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            assert_eq!(
                data["type"],
                Value::String(name.clone()),
                "event name matches type"
            );
            (name, data)
        })
        .collect()
}

fn chunk(v: Value) -> ChatChunk {
    serde_json::from_value(v).unwrap()
}

#[test]
fn chat_chunks_become_anthropic_events() {
    let mut w = EventWriter::new("claude-alias");
    let mut out = Vec::new();
    let c = |delta: Value, finish: Value| {
        chunk(
            json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "x",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
    };
    w.on_chunk(
        &c(json!({"role": "assistant", "content": ""}), Value::Null),
        &mut out,
    );
    w.on_chunk(
        &c(json!({"reasoning_content": "hmm"}), Value::Null),
        &mut out,
    );
    w.on_chunk(
        &c(
            json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "SIG"}]}),
            Value::Null,
        ),
        &mut out,
    );
    w.on_chunk(&c(json!({"content": "Hel"}), Value::Null), &mut out);
    w.on_chunk(&c(json!({"content": "lo"}), Value::Null), &mut out);
    w.on_chunk(&c(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": ""}}]}), Value::Null), &mut out);
    w.on_chunk(
        &c(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"command\":"}}]}),
            Value::Null,
        ),
        &mut out,
    );
    w.on_chunk(
        &c(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"ls\"}"}}]}),
            Value::Null,
        ),
        &mut out,
    );
    w.on_chunk(&c(json!({}), json!("tool_calls")), &mut out);
    assert!(w.finished());
    w.on_chunk(&chunk(json!({"id": "chatcmpl-9", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})), &mut out);
    w.end(&mut out);
    let ev = parse_events(&out);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(ev[0].1["message"]["model"], "claude-alias");
    assert_eq!(ev[0].1["message"]["id"], "msg_chatcmpl-9");
    assert_eq!(ev[2].1["content_block"]["type"], "thinking");
    assert_eq!(
        ev[3].1["delta"],
        json!({"type": "thinking_delta", "thinking": "hmm"})
    );
    assert_eq!(
        ev[4].1["delta"],
        json!({"type": "signature_delta", "signature": "SIG"})
    );
    assert_eq!(
        ev[7].1["delta"],
        json!({"type": "text_delta", "text": "Hel"})
    );
    assert_eq!(ev[7].1["index"], 1);
    assert_eq!(
        ev[10].1["content_block"],
        json!({"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}})
    );
    let args: String = ev[11..13]
        .iter()
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(args, "{\"command\":\"ls\"}");
    assert_eq!(ev[14].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(ev[14].1["usage"]["input_tokens"], 11);
    assert_eq!(ev[14].1["usage"]["output_tokens"], 7);
    // end() twice writes nothing more.
    let before = out.len();
    w.end(&mut out);
    assert_eq!(out.len(), before);
}

#[test]
fn a_whole_message_streams_as_events() {
    let msg = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": "hi"}, {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
        "stop_reason": "tool_use", "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 2}});
    let ev = parse_events(&events_for_message(&msg));
    assert_eq!(ev.len(), 10);
    assert_eq!(ev[3].1["delta"]["text"], "hi");
    assert_eq!(ev[6].1["delta"]["partial_json"], "{\"a\":1}");
    assert_eq!(ev[8].1["delta"]["stop_reason"], "tool_use");
}

#[test]
fn errors_take_anthropic_types() {
    let (s, b) = error(&GatewayError::UnknownModel("no such model".into()));
    assert_eq!(
        (s, b["type"].as_str(), b["error"]["type"].as_str()),
        (404, Some("error"), Some("not_found_error"))
    );
    let (s, b) = error(&GatewayError::Unauthorized("bad key".into()));
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    let (s, b) = error(&GatewayError::PayloadTooLarge("big".into()));
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (413, Some("request_too_large"))
    );
    let (s, b) = error(&GatewayError::Internal("x".into()));
    assert_eq!((s, b["error"]["type"].as_str()), (500, Some("api_error")));
    let up = |status: u16, kind: Option<&str>| GatewayError::Upstream {
        error: Box::new(ferrolite_providers::UpstreamError {
            status,
            message: "m".into(),
            kind: kind.map(Into::into),
            param: None,
            code: None,
            provider_label: "AnthropicException".into(),
        }),
        group: "g".into(),
        retries: 0,
    };
    let (s, b) = error(&up(529, Some("overloaded_error")));
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (529, Some("overloaded_error"))
    );
    // An OpenAI upstream's type is mapped from the status.
    let (s, b) = error(&up(429, Some("tokens")));
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (429, Some("rate_limit_error"))
    );
}

#[test]
fn token_estimate_counts_text_tools_and_images() {
    let small = map(json!({"messages": [{"role": "user", "content": "abcd"}]}));
    let with_image = map(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "abcd"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}));
    let a = estimate_input_tokens(&small);
    assert!(a > 0);
    assert_eq!(estimate_input_tokens(&with_image), a + 1600);
    let big = claude_code_body();
    assert!(
        estimate_input_tokens(&big) > 30,
        "{}",
        estimate_input_tokens(&big)
    );
}
