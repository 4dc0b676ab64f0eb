//! Anthropic's Messages API in (`/v1/messages`, `/v1/messages/count_tokens`):
//! passed through to a Claude upstream, or translated to chat for an
//! OpenAI-format one; Anthropic-shaped answers, events and errors back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestGateway, MASTER};
use ferrolite_testkit::anthropic::{self, MockAnthropic};
use ferrolite_testkit::openai::{self as openai_mock, MockOpenAi};
use serde_json::{json, Value};

const ANTHROPIC_KEY: &str = "sk-ant-deployment-key";

fn claude_model(name: &str, root: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_base: {root}\n      api_key: {ANTHROPIC_KEY}\n")
}

fn openai_model(name: &str, base: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: {base}\n      api_key: sk-upstream-key\n")
}

async fn gateway(models: &[String]) -> TestGateway {
    TestGateway::start(&format!(
        "model_list:\n{}litellm_settings:\n  num_retries: 0\n",
        models.concat()
    ))
    .await
}

/// POST with Anthropic's headers (x-api-key, anthropic-version).
async fn post(
    gw: &TestGateway,
    path: &str,
    body: &Value,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = gw
        .http
        .post(gw.url(path))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(body);
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

async fn post_json(gw: &TestGateway, body: &Value) -> (u16, Value) {
    let (s, _, text) = post(gw, "/v1/messages", body, &[]).await;
    (
        s,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({s}): {text}")),
    )
}

/// The (event name, data) pairs of an Anthropic SSE body; every frame has
/// an `event:` line matching its data's `type`.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let name = f
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("frame without event line: {f}"));
            let data = f.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["type"], name, "{f}");
            (name.to_owned(), v)
        })
        .collect()
}

fn names(ev: &[(String, Value)]) -> Vec<&str> {
    ev.iter().map(|(n, _)| n.as_str()).collect()
}

fn text_of(ev: &[(String, Value)]) -> String {
    ev.iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect()
}

/// Claude Code's request shape.
fn claude_code_request(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "max_tokens": 32000,
        "stream": stream,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": "Long instructions…", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is in this directory?", "cache_control": {"type": "ephemeral"}}]}
        ],
        "tools": [
            {"name": "Bash", "description": "Run a shell command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
            {"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
        ],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "metadata": {"user_id": "user_0123_account__session_abc"},
        "temperature": 1
    })
}

#[tokio::test]
async fn claude_upstream_gets_the_body_as_sent() {
    let up = MockAnthropic::start().await;
    let gw = gateway(&[claude_model("sonnet", &up.root_url())]).await;
    let mut body = claude_code_request("sonnet", false);
    body["context_management"] = json!({"edits": []});
    let (s, h, text) = post(
        &gw,
        "/v1/messages",
        &body,
        &[(
            "anthropic-beta",
            "interleaved-thinking-2025-05-14,context-1m-2025-08-07",
        )],
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(h["x-litellm-model-group"], "sonnet");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["model"], "sonnet");
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], anthropic::DEFAULT_TEXT);
    assert_eq!(v["usage"]["input_tokens"], anthropic::INPUT_TOKENS);
    assert_eq!(
        v["usage"]["service_tier"], "standard",
        "unknown fields kept"
    );

    let call = &up.calls()[0];
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(call.headers["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(call.headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        call.headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    );
    // Only the model changed.
    let mut expected = body.clone();
    expected["model"] = json!("claude-sonnet-4-5");
    assert_eq!(call.body, expected);
}

#[tokio::test]
async fn claude_upstream_stream_is_relayed() {
    let up = MockAnthropic::start().await;
    let gw = gateway(&[claude_model("sonnet", &up.root_url())]).await;
    let (s, h, text) = post(
        &gw,
        "/v1/messages",
        &claude_code_request("sonnet", true),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let ev = events(&text);
    let n = names(&ev);
    assert_eq!(n[0], "message_start");
    assert!(n.contains(&"ping"));
    assert_eq!(n[n.len() - 2], "message_delta");
    assert_eq!(n[n.len() - 1], "message_stop");
    assert_eq!(ev[0].1["message"]["model"], "sonnet");
    assert_eq!(text_of(&ev), anthropic::DEFAULT_TEXT);
    assert!(!text.contains("[DONE]"));
    assert_eq!(up.calls()[0].body["stream"], true);
}

#[tokio::test]
async fn claude_upstream_errors_keep_anthropic_types() {
    let up = MockAnthropic::start().await;
    let gw = gateway(&[claude_model("sonnet", &up.root_url())]).await;
    up.script([anthropic::Reply::error(400, "max_tokens: Field required")]);
    let (s, v) = post_json(&gw, &json!({"model": "sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(s, 400);
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens: Field required"));

    // An error event after the first byte: an `event: error` frame.
    up.script([anthropic::Reply::overloaded_mid_stream("Hello there")]);
    let (s, _, text) = post(
        &gw,
        "/v1/messages",
        &claude_code_request("sonnet", true),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    let ev = events(&text);
    let last = ev.last().unwrap();
    assert_eq!(last.0, "error");
    assert_eq!(last.1["error"]["type"], "overloaded_error");
    assert_eq!(text_of(&ev), "Hello there");
}

#[tokio::test]
async fn overloaded_claude_falls_back_to_an_openai_group() {
    let up = MockAnthropic::start().await;
    let oa = MockOpenAi::start().await;
    let gw = TestGateway::start(&format!(
        "model_list:\n{}{}litellm_settings:\n  num_retries: 1\n  fallbacks: [{{\"sonnet\": [\"gpt\"]}}]\n",
        claude_model("sonnet", &up.root_url()),
        openai_model("gpt", &oa.base_url())
    ))
    .await;
    let overloaded = anthropic::Reply::Error {
        status: 529,
        kind: "overloaded_error".into(),
        message: "Overloaded".into(),
        headers: Vec::new(),
    };
    up.script([overloaded.clone(), overloaded]);
    let (s, h, text) = post(
        &gw,
        "/v1/messages",
        &claude_code_request("sonnet", false),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{text}");
    // The only Claude deployment cools down after its failure; the group
    // then has nothing left and the fallback answers.
    assert!(up.call_count() >= 1);
    assert_eq!(h["x-litellm-attempted-fallbacks"], "1");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "sonnet");
    assert_eq!(v["content"][0]["type"], "text");
    // The fallback got chat, not the Anthropic body.
    assert!(oa.calls()[0].body["messages"].is_array());
    assert!(oa.calls()[0].body.get("thinking").is_none());
}

#[tokio::test]
async fn openai_upstream_gets_chat_and_answers_in_anthropic_shape() {
    let oa = MockOpenAi::start().await;
    let gw = gateway(&[openai_model("gpt", &oa.base_url())]).await;
    let mut body = claude_code_request("gpt", false);
    body["messages"] = json!([
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "use Bash", "signature": "sig"},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a.txt\nb.txt"}]},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
        ]}
    ]);
    body["stop_sequences"] = json!(["STOP"]);
    let (s, v) = post_json(&gw, &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "gpt");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["content"][0]["type"], "text");
    assert!(v["usage"]["input_tokens"].as_u64().is_some());
    assert!(v["usage"]["output_tokens"].as_u64().is_some());

    let sent = &oa.calls()[0].body;
    assert_eq!(sent["model"], "gpt-4o");
    assert_eq!(sent["max_tokens"], 32000);
    assert_eq!(sent["user"], "user_0123_account__session_abc");
    assert_eq!(sent["stop"], json!(["STOP"]));
    assert!(sent.get("thinking").is_none(), "gpt-4o takes no thinking");
    assert!(sent.get("reasoning_effort").is_none());
    assert!(sent.get("metadata").is_none());
    let m = sent["messages"].as_array().unwrap();
    assert_eq!(m[0]["role"], "system");
    assert!(m[0]["content"]
        .as_str()
        .unwrap()
        .starts_with("You are Claude Code"));
    assert_eq!(m[1], json!({"role": "user", "content": "list files"}));
    assert_eq!(m[2]["tool_calls"][0]["id"], "toolu_1");
    assert_eq!(
        m[2]["tool_calls"][0]["function"]["arguments"],
        "{\"command\":\"ls\"}"
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "a.txt\nb.txt"})
    );
    assert_eq!(
        m[4]["content"][0]["image_url"]["url"],
        "data:image/png;base64,iVBORw0KGgo="
    );
    let tools = sent["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0]["type"], "function");
    assert_eq!(tools[0]["function"]["name"], "Bash");
    assert_eq!(
        tools[0]["function"]["parameters"]["required"],
        json!(["command"])
    );
}

fn chat_tool_call_json() -> String {
    json!({
        "id": "chatcmpl-tool", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "call_abc", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls -la\"}"}}]
        }}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}
    })
    .to_string()
}

#[tokio::test]
async fn openai_tool_calls_become_tool_use() {
    let oa = MockOpenAi::start().await;
    let gw = gateway(&[openai_model("gpt", &oa.base_url())]).await;
    oa.script([openai_mock::Reply::Raw {
        status: 200,
        content_type: "application/json".into(),
        body: chat_tool_call_json(),
    }]);
    let (s, v) = post_json(&gw, &claude_code_request("gpt", false)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"][0],
        json!({"type": "tool_use", "id": "call_abc", "name": "Bash", "input": {"command": "ls -la"}})
    );
    assert_eq!(v["usage"]["input_tokens"], 50);
    assert_eq!(v["usage"]["output_tokens"], 9);
}

#[tokio::test]
async fn openai_stream_becomes_anthropic_events() {
    let oa = MockOpenAi::start().await;
    let gw = gateway(&[openai_model("gpt", &oa.base_url())]).await;
    let (s, _, text) = post(&gw, "/v1/messages", &claude_code_request("gpt", true), &[]).await;
    assert_eq!(s, 200, "{text}");
    let ev = events(&text);
    let n = names(&ev);
    assert_eq!(n[0], "message_start");
    assert_eq!(ev[0].1["message"]["model"], "gpt");
    assert_eq!(n[n.len() - 1], "message_stop");
    assert_eq!(n[n.len() - 2], "message_delta");
    let delta = &ev[n.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(!text_of(&ev).is_empty());
    assert!(!text.contains("[DONE]"));
    assert_eq!(oa.calls()[0].body["stream"], true);

    // A streamed tool call.
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    oa.script([openai_mock::Reply::Sse {
        data: vec![
            chunk(json!({"role": "assistant", "content": "Checking."}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": ""}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"command\""}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": ":\"ls\"}"}}]}), Value::Null),
            chunk(json!({}), json!("tool_calls")),
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
                   "usage": {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48}}).to_string(),
        ],
        done: true,
    }]);
    let (_, _, text) = post(&gw, "/v1/messages", &claude_code_request("gpt", true), &[]).await;
    let ev = events(&text);
    let starts: Vec<&Value> = ev
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| &d["content_block"])
        .collect();
    assert_eq!(starts[0]["type"], "text");
    assert_eq!(
        starts[1],
        &json!({"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}})
    );
    let args: String = ev
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"command": "ls"})
    );
    let delta = &ev[ev.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["input_tokens"], 40);
    assert_eq!(delta["usage"]["output_tokens"], 8);
}

#[tokio::test]
async fn auth_and_model_errors_are_anthropic_shaped() {
    let oa = MockOpenAi::start().await;
    let gw = gateway(&[openai_model("gpt", &oa.base_url())]).await;
    let body =
        json!({"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});

    let r = gw
        .http
        .post(gw.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");

    let r = gw
        .http
        .post(gw.url("/v1/messages"))
        .header("x-api-key", "sk-wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");

    // Claude Code's ANTHROPIC_AUTH_TOKEN arrives as a bearer token.
    let r = gw
        .http
        .post(gw.url("/v1/messages"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let (s, v) = post_json(&gw, &json!({"model": "nope", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["type"], "not_found_error");

    let (s, _, text) = post(&gw, "/v1/messages", &json!("not an object"), &[]).await;
    assert_eq!(s, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");

    let (s, v) = post_json(
        &gw,
        &json!({"model": "gpt", "messages": [{"role": "system", "content": "x"}]}),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["type"], "invalid_request_error");

    oa.script([openai_mock::Reply::error(429, "Rate limit reached")]);
    let (s, v) = post_json(&gw, &body).await;
    assert_eq!(s, 429);
    assert_eq!(v["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn count_tokens_asks_anthropic_or_estimates() {
    let up = MockAnthropic::start().await;
    let oa = MockOpenAi::start().await;
    let gw = gateway(&[
        claude_model("sonnet", &up.root_url()),
        openai_model("gpt", &oa.base_url()),
    ])
    .await;
    let mut body = claude_code_request("sonnet", false);
    body.as_object_mut().unwrap().remove("max_tokens");
    let (s, _, text) = post(
        &gw,
        "/v1/messages/count_tokens",
        &body,
        &[("anthropic-beta", "token-counting-2024-11-01")],
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v, json!({"input_tokens": anthropic::COUNTED_TOKENS}));
    let call = &up.calls()[0];
    assert_eq!(call.path, "/v1/messages/count_tokens");
    assert_eq!(call.body["model"], "claude-sonnet-4-5");
    assert_eq!(call.headers["x-api-key"], ANTHROPIC_KEY);

    body["model"] = json!("gpt");
    let (s, _, text) = post(&gw, "/v1/messages/count_tokens", &body, &[]).await;
    assert_eq!(s, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let n = v["input_tokens"].as_u64().unwrap();
    assert!(n > 20 && n < 1000, "{n}");
    assert_eq!(oa.call_count(), 0);

    body["model"] = json!("nope");
    let (s, _, text) = post(&gw, "/v1/messages/count_tokens", &body, &[]).await;
    assert_eq!(s, 404, "{text}");
}

#[tokio::test]
async fn mock_response_models_answer_in_anthropic_shape() {
    let gw = TestGateway::start(
        "model_list:\n  - model_name: fake\n    litellm_params:\n      model: openai/fake\n      mock_response: \"Hi from the mock\"\n",
    )
    .await;
    let body =
        json!({"model": "fake", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let (s, v) = post_json(&gw, &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["content"][0]["text"], "Hi from the mock");
    let mut body = body;
    body["stream"] = json!(true);
    let (s, _, text) = post(&gw, "/v1/messages", &body, &[]).await;
    assert_eq!(s, 200);
    let ev = events(&text);
    assert_eq!(text_of(&ev), "Hi from the mock");
    assert_eq!(ev.last().unwrap().0, "message_stop");
}

#[tokio::test]
async fn vertex_claude_gets_the_body_with_version_and_betas_inside() {
    use ferrolite_testkit::vertex::{self as vertex_mock, MockVertex};
    let mock = MockVertex::start().await;
    let creds = mock.service_account_json("proj").to_string();
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: vclaude\n    litellm_params:\n      model: vertex_ai/claude-sonnet-4-5@20250929\n      vertex_project: proj\n      vertex_location: us-east5\n      vertex_credentials: {creds}\n      api_base: {}\n",
        mock.root_url()
    ))
    .await;
    let body = claude_code_request("vclaude", false);
    let (s, _, text) = post(
        &gw,
        "/v1/messages",
        &body,
        &[("anthropic-beta", "context-1m-2025-08-07")],
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["model"], "vclaude");
    assert_eq!(v["content"][0]["text"], vertex_mock::DEFAULT_TEXT);

    let mut stream_body = body.clone();
    stream_body["stream"] = json!(true);
    let (s, _, text) = post(&gw, "/v1/messages", &stream_body, &[]).await;
    assert_eq!(s, 200, "{text}");
    let ev = events(&text);
    assert_eq!(ev[0].1["message"]["model"], "vclaude");
    assert_eq!(text_of(&ev), vertex_mock::DEFAULT_TEXT);
    assert_eq!(ev.last().unwrap().0, "message_stop");

    let calls = mock.calls();
    assert!(
        calls[0]
            .path
            .ends_with("/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"),
        "{}",
        calls[0].path
    );
    assert!(calls[1].path.ends_with(":streamRawPredict"));
    let sent = &calls[0].body;
    assert!(sent.get("model").is_none());
    assert_eq!(sent["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(sent["anthropic_beta"], json!(["context-1m-2025-08-07"]));
    // Everything else as the client sent it.
    let mut expected = body;
    let o = expected.as_object_mut().unwrap();
    o.remove("model");
    o.insert("anthropic_version".into(), json!("vertex-2023-10-16"));
    o.insert("anthropic_beta".into(), json!(["context-1m-2025-08-07"]));
    assert_eq!(sent, &expected);
    assert!(calls[0].headers.get("anthropic-version").is_none());
}
