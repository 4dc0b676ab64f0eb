//! Chat through the gateway against mock native upstreams (Anthropic's
//! Messages API, Google AI Studio's Gemini API): OpenAI in, native wire
//! format upstream, OpenAI back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestGateway, MASTER};
use ferrolite_testkit::anthropic::{self, MockAnthropic};
use ferrolite_testkit::gemini::{self, MockGemini};
use ferrolite_testkit::Recorded;
use serde_json::{json, Value};

const ANTHROPIC_KEY: &str = "sk-ant-deployment-key";
const GEMINI_KEY: &str = "AIza-deployment-key";

fn anthropic_config(name: &str, root: &str) -> String {
    format!("model_list:\n  - model_name: {name}\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_base: {root}\n      api_key: {ANTHROPIC_KEY}\n")
}

fn gemini_config(name: &str, model: &str, root: &str) -> String {
    format!("model_list:\n  - model_name: {name}\n    litellm_params:\n      model: gemini/{model}\n      api_base: {root}\n      api_key: {GEMINI_KEY}\n")
}

fn chunks_of(frames: &[String]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| *f != "[DONE]")
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

fn finish_of(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| {
            c["choices"]
                .get(0)
                .and_then(|x| x["finish_reason"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

/// The tool-call deltas of a stream merged by index: (id, name, arguments).
fn tool_calls_of(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for c in chunks {
        let Some(calls) = c["choices"]
            .get(0)
            .and_then(|x| x["delta"]["tool_calls"].as_array())
        else {
            continue;
        };
        for call in calls {
            let i = call["index"].as_u64().unwrap() as usize;
            if out.len() <= i {
                out.resize(i + 1, Default::default());
            }
            if let Some(id) = call["id"].as_str() {
                out[i].0.push_str(id);
            }
            if let Some(n) = call["function"]["name"].as_str() {
                out[i].1.push_str(n);
            }
            if let Some(a) = call["function"]["arguments"].as_str() {
                out[i].2.push_str(a);
            }
        }
    }
    out
}

/// No header of an upstream call carries the gateway's key.
fn assert_no_gateway_key(call: &Recorded) {
    for (name, value) in &call.headers {
        let v = value.to_str().unwrap_or("");
        assert!(
            !v.contains(MASTER),
            "gateway key leaked upstream in {name}: {v}"
        );
    }
    assert!(
        !call.query.as_deref().unwrap_or("").contains(MASTER),
        "gateway key leaked in the query"
    );
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}
    }}])
}

// ------------------------------------------------------------------ Anthropic

#[tokio::test]
async fn anthropic_chat_is_translated_both_ways() {
    let up = MockAnthropic::start().await;
    let gw = TestGateway::start(&anthropic_config("claude", &up.root_url())).await;
    let (status, h, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "num_retries": 0, "max_tokens": 300, "temperature": 0.2,
                   "messages": [{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["model"], "claude",
        "model is the group the client sent"
    );
    assert_eq!(body["id"], "msg_01MockAnthropic000001");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], anthropic::DEFAULT_TEXT);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], anthropic::INPUT_TOKENS);
    assert_eq!(body["usage"]["completion_tokens"], anthropic::OUTPUT_TOKENS);
    assert_eq!(
        body["usage"]["total_tokens"],
        anthropic::INPUT_TOKENS + anthropic::OUTPUT_TOKENS
    );
    assert_eq!(h["x-litellm-model-group"], "claude");

    let calls = up.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.path, "/v1/messages");
    assert_eq!(c.headers["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(c.headers["anthropic-version"], "2023-06-01");
    assert!(
        !c.headers.contains_key("authorization"),
        "Anthropic is authenticated by x-api-key only"
    );
    assert_no_gateway_key(c);
    assert_eq!(c.body["model"], "claude-sonnet-4-5");
    assert_eq!(c.body["max_tokens"], 300);
    assert_eq!(c.body["temperature"], 0.2);
    let system = match &c.body["system"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect(),
        other => panic!("no system prompt upstream: {other}"),
    };
    assert_eq!(
        system, "You are terse.",
        "system message lifted to `system`"
    );
    let messages = c.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["role"], "user");
    assert!(c.body.get("num_retries").is_none());
}

#[tokio::test]
async fn anthropic_stream_is_translated_and_usage_only_on_request() {
    let up = MockAnthropic::start().await;
    let gw = TestGateway::start(&anthropic_config("claude", &up.root_url())).await;
    let req = json!({"model": "claude", "stream": true, "num_retries": 0,
                     "messages": [{"role": "user", "content": "hi"}]});
    let (s, h, frames) = gw.stream("/v1/chat/completions", req).await;
    assert_eq!(s, 200, "{frames:?}");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(frames.iter().filter(|f| *f == "[DONE]").count(), 1);
    let chunks = chunks_of(&frames);
    assert_eq!(text_of(&chunks), anthropic::DEFAULT_TEXT);
    assert!(chunks.iter().all(|c| c["model"] == "claude"), "{frames:?}");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(finish_of(&chunks), vec!["stop"]);
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none_or(Value::is_null)),
        "no usage unless asked: {frames:?}"
    );
    let c = &up.calls()[0];
    assert_eq!(c.path, "/v1/messages");
    assert_eq!(c.body["stream"], true);
    assert!(
        c.body.get("stream_options").is_none(),
        "Anthropic has no stream_options"
    );

    let req = json!({"model": "claude", "stream": true, "num_retries": 0,
                     "stream_options": {"include_usage": true},
                     "messages": [{"role": "user", "content": "hi"}]});
    let (_, _, frames) = gw.stream("/v1/chat/completions", req).await;
    let chunks = chunks_of(&frames);
    assert_eq!(text_of(&chunks), anthropic::DEFAULT_TEXT);
    let with_usage: Vec<&Value> = chunks
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(with_usage.len(), 1, "{frames:?}");
    let u = &with_usage[0]["usage"];
    assert_eq!(u["prompt_tokens"], anthropic::INPUT_TOKENS);
    assert_eq!(u["completion_tokens"], anthropic::OUTPUT_TOKENS);
    assert_eq!(
        u["total_tokens"],
        anthropic::INPUT_TOKENS + anthropic::OUTPUT_TOKENS
    );
    assert_eq!(
        chunks.last().unwrap()["usage"],
        *u,
        "the usage chunk is the last one"
    );
    assert_eq!(frames.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn anthropic_tool_call_round_trip() {
    let up = MockAnthropic::start().await;
    up.script([anthropic::Reply::ToolUse {
        text: Some("Let me check.".into()),
        name: "get_weather".into(),
        input: json!({"city": "Paris", "unit": "c"}),
    }]);
    let gw = TestGateway::start(&anthropic_config("claude", &up.root_url())).await;
    let question = json!({"role": "user", "content": "Weather in Paris?"});
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "num_retries": 0, "messages": [question],
                   "tools": weather_tool(), "tool_choice": "auto"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Let me check.");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["id"], "toolu_01MockTool000001");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris", "unit": "c"}));

    let first = &up.calls()[0];
    let tool = &first.body["tools"][0];
    assert_eq!(tool["name"], "get_weather");
    assert_eq!(tool["input_schema"]["required"], json!(["city"]));
    assert_eq!(first.body["tool_choice"]["type"], "auto");

    // The answer goes back with the tool's result.
    let assistant = choice["message"].clone();
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "num_retries": 0, "tools": weather_tool(), "messages": [
                question, assistant,
                {"role": "tool", "tool_call_id": "toolu_01MockTool000001", "content": "{\"temp\": 21}"}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let second = &up.calls()[1];
    let messages = second.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(messages[1]["role"], "assistant");
    let tool_use = messages[1]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap();
    assert_eq!(tool_use["id"], "toolu_01MockTool000001");
    assert_eq!(tool_use["name"], "get_weather");
    assert_eq!(tool_use["input"], json!({"city": "Paris", "unit": "c"}));
    assert_eq!(messages[2]["role"], "user");
    let result = &messages[2]["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "toolu_01MockTool000001");
}

#[tokio::test]
async fn anthropic_streamed_tool_call_joins_partial_json() {
    let up = MockAnthropic::start().await;
    let input = json!({"city": "São Paulo", "unit": "c"});
    up.script([anthropic::Reply::tool_use("get_weather", input.clone())]);
    let gw = TestGateway::start(&anthropic_config("claude", &up.root_url())).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "num_retries": 0, "tools": weather_tool(),
                   "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await;
    assert_eq!(s, 200, "{frames:?}");
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks = chunks_of(&frames);
    let calls = tool_calls_of(&chunks);
    assert_eq!(calls.len(), 1, "{frames:?}");
    assert_eq!(calls[0].0, "toolu_01MockTool000001");
    assert_eq!(calls[0].1, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].2).unwrap();
    assert_eq!(args, input);
    let arg_deltas = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .is_some_and(|a| !a.is_empty())
        })
        .count();
    assert!(arg_deltas > 1, "arguments arrive in pieces: {frames:?}");
    assert_eq!(finish_of(&chunks), vec!["tool_calls"]);
}

#[tokio::test]
async fn anthropic_errors_keep_status_and_message() {
    let up = MockAnthropic::start().await;
    up.script([
        anthropic::Reply::error(
            429,
            "This request would exceed the rate limit for your organization of 50 requests per minute.",
        ),
        anthropic::Reply::error(400, "max_tokens: 99999999 > 64000, which is the maximum allowed"),
        anthropic::Reply::error(401, "invalid x-api-key"),
    ]);
    let gw = TestGateway::start(&anthropic_config("claude", &up.root_url())).await;
    let req = json!({"model": "claude", "num_retries": 0, "messages": [{"role": "user", "content": "hi"}]});
    for (want, text) in [
        (429, "exceed the rate limit for your organization"),
        (400, "which is the maximum allowed"),
        (401, "invalid x-api-key"),
    ] {
        let (s, _, body) = gw.call("/v1/chat/completions", req.clone()).await;
        assert_eq!(s, want, "{body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(text), "{msg}");
        assert!(!msg.contains(ANTHROPIC_KEY));
    }
    assert_eq!(up.call_count(), 3, "num_retries: 0 means one call each");
}

#[tokio::test]
async fn anthropic_streamed_rate_limit_is_an_http_error() {
    let up = MockAnthropic::start().await;
    up.script([anthropic::Reply::error(
        429,
        "Number of request tokens has exceeded your per-minute rate limit",
    )]);
    let gw = TestGateway::start(&anthropic_config("claude", &up.root_url())).await;
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "num_retries": 0, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(s, 429, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("per-minute rate limit"));
    assert_eq!(up.call_count(), 1);
}

#[tokio::test]
async fn anthropic_error_event_mid_stream_becomes_an_error_frame() {
    let up = MockAnthropic::start().await;
    up.script([anthropic::Reply::overloaded_mid_stream("partial answer ")]);
    let gw = TestGateway::start(&anthropic_config("claude", &up.root_url())).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "num_retries": 0, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(frames.len() >= 3, "{frames:?}");
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks = chunks_of(&frames[..frames.len() - 2]);
    assert_eq!(text_of(&chunks), "partial answer ");
    let err: Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Overloaded"),
        "{err}"
    );
    assert_eq!(up.call_count(), 1, "no retry once bytes went out");
}

#[tokio::test]
async fn anthropic_mock_refuses_what_anthropic_refuses() {
    // The mock itself: requests Anthropic rejects are rejected the same way.
    let up = MockAnthropic::start().await;
    let http = ferrolite_core::upstream::client().unwrap();
    let url = format!("{}/v1/messages", up.root_url());
    let r = http
        .post(&url)
        .json(&json!({"model": "m", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "m", "messages": [{"role": "system", "content": "x"}], "max_tokens": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("request-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

// --------------------------------------------------------------------- Gemini

#[tokio::test]
async fn gemini_chat_is_translated_both_ways() {
    let up = MockGemini::start().await;
    let gw = TestGateway::start(&gemini_config("flash", "gemini-2.5-flash", &up.root_url())).await;
    let (status, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "flash", "num_retries": 0, "max_tokens": 200, "temperature": 0.4,
                   "messages": [{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "flash", "model is the group the client sent");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], gemini::DEFAULT_TEXT);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], gemini::PROMPT_TOKENS);
    assert_eq!(
        body["usage"]["completion_tokens"],
        gemini::CANDIDATES_TOKENS + gemini::THOUGHTS_TOKENS,
        "thinking tokens are completion tokens"
    );
    assert_eq!(body["usage"]["total_tokens"], gemini::TOTAL_TOKENS);
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        gemini::THOUGHTS_TOKENS
    );

    let calls = up.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(c.query, None, "the key goes in a header, not the URL");
    assert_eq!(c.headers["x-goog-api-key"], GEMINI_KEY);
    assert!(!c.headers.contains_key("authorization"));
    assert_no_gateway_key(c);
    assert_eq!(
        c.body["systemInstruction"]["parts"][0]["text"],
        "You are terse."
    );
    let contents = c.body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 1, "{contents:?}");
    assert_eq!(contents[0]["role"], "user");
    assert_eq!(contents[0]["parts"][0]["text"], "hi");
    assert_eq!(c.body["generationConfig"]["maxOutputTokens"], 200);
    assert_eq!(c.body["generationConfig"]["temperature"], 0.4);
    assert!(c.body.get("model").is_none() && c.body.get("messages").is_none());
}

#[tokio::test]
async fn gemini_stream_is_translated_and_usage_only_on_request() {
    let up = MockGemini::start().await;
    let gw = TestGateway::start(&gemini_config("flash", "gemini-2.5-flash", &up.root_url())).await;
    let req = json!({"model": "flash", "stream": true, "num_retries": 0,
                     "messages": [{"role": "user", "content": "hi"}]});
    let (s, h, frames) = gw.stream("/v1/chat/completions", req).await;
    assert_eq!(s, 200, "{frames:?}");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(frames.iter().filter(|f| *f == "[DONE]").count(), 1);
    let chunks = chunks_of(&frames);
    assert_eq!(text_of(&chunks), gemini::DEFAULT_TEXT);
    assert!(chunks.iter().all(|c| c["model"] == "flash"), "{frames:?}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(finish_of(&chunks), vec!["stop"]);
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none_or(Value::is_null)),
        "no usage unless asked: {frames:?}"
    );
    assert!(
        chunks
            .iter()
            .all(|c| !c["choices"].as_array().unwrap().is_empty()),
        "no usage-only chunk unless asked: {frames:?}"
    );
    let c = &up.calls()[0];
    assert_eq!(
        c.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(c.query.as_deref(), Some("alt=sse"));
    assert_eq!(c.headers["x-goog-api-key"], GEMINI_KEY);

    let req = json!({"model": "flash", "stream": true, "num_retries": 0,
                     "stream_options": {"include_usage": true},
                     "messages": [{"role": "user", "content": "hi"}]});
    let (_, _, frames) = gw.stream("/v1/chat/completions", req).await;
    let chunks = chunks_of(&frames);
    assert_eq!(text_of(&chunks), gemini::DEFAULT_TEXT);
    let with_usage: Vec<&Value> = chunks
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(with_usage.len(), 1, "{frames:?}");
    let u = &with_usage[0]["usage"];
    assert_eq!(u["prompt_tokens"], gemini::PROMPT_TOKENS);
    assert_eq!(
        u["completion_tokens"],
        gemini::CANDIDATES_TOKENS + gemini::THOUGHTS_TOKENS
    );
    assert_eq!(u["total_tokens"], gemini::TOTAL_TOKENS);
    assert_eq!(chunks.last().unwrap()["usage"], *u);
    assert_eq!(frames.last().unwrap(), "[DONE]");
}

/// Ask for a tool call, send it back with its result; returns the second
/// upstream request's contents.
async fn gemini_round_trip(model: &str, strip_fields: bool) -> Vec<Value> {
    let up = MockGemini::start().await;
    up.script([gemini::Reply::function_call(
        "get_weather",
        json!({"city": "Paris"}),
    )]);
    let gw = TestGateway::start(&gemini_config("g", model, &up.root_url())).await;
    let question = json!({"role": "user", "content": "Weather in Paris?"});
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "g", "num_retries": 0, "tools": weather_tool(), "messages": [question]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    let id = calls[0]["id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());

    let first = &up.calls()[0];
    let decl = &first.body["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "get_weather");

    let mut assistant = choice["message"].clone();
    if strip_fields {
        // A client that keeps only the OpenAI fields of a tool call.
        let call = &calls[0];
        assistant = json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": call["id"], "type": "function",
            "function": {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}
        }]});
    }
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "g", "num_retries": 0, "tools": weather_tool(), "messages": [
                question, assistant,
                {"role": "tool", "tool_call_id": id, "content": "{\"temp\": 21}"}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        gemini::DEFAULT_TEXT
    );
    let calls = up.calls();
    assert_eq!(calls.len(), 2);
    calls[1].body["contents"].as_array().unwrap().clone()
}

fn assert_signed_replay(contents: &[Value]) {
    assert_eq!(contents.len(), 3, "{contents:?}");
    assert_eq!(contents[1]["role"], "model");
    let part = contents[1]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p.get("functionCall").is_some())
        .unwrap_or_else(|| panic!("no functionCall replayed: {contents:?}"));
    assert_eq!(part["functionCall"]["name"], "get_weather");
    assert_eq!(part["functionCall"]["args"], json!({"city": "Paris"}));
    assert_eq!(
        part["thoughtSignature"],
        gemini::SIGNATURE,
        "the signature rides back on the functionCall part"
    );
    let response = contents[2]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p.get("functionResponse").is_some())
        .unwrap_or_else(|| panic!("no functionResponse: {contents:?}"));
    assert_eq!(response["functionResponse"]["name"], "get_weather");
    assert!(
        response["functionResponse"]["response"]
            .to_string()
            .contains("21"),
        "{response}"
    );
    assert_ne!(contents[2]["role"], "model");
    for c in contents {
        assert!(
            !c.to_string().contains("__thought__"),
            "id suffix leaked upstream: {c}"
        );
    }
}

#[tokio::test]
async fn gemini_tool_call_round_trip_keeps_the_thought_signature() {
    assert_signed_replay(&gemini_round_trip("gemini-2.5-flash", false).await);
}

#[tokio::test]
async fn gemini_thought_signature_survives_clients_that_drop_unknown_fields() {
    assert_signed_replay(&gemini_round_trip("gemini-3-pro-preview", true).await);
}

#[tokio::test]
async fn gemini_streamed_tool_call() {
    let up = MockGemini::start().await;
    up.script([gemini::Reply::function_call(
        "get_weather",
        json!({"city": "Oslo", "unit": "c"}),
    )]);
    let gw = TestGateway::start(&gemini_config("flash", "gemini-2.5-flash", &up.root_url())).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model": "flash", "stream": true, "num_retries": 0, "tools": weather_tool(),
                   "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await;
    assert_eq!(s, 200, "{frames:?}");
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks = chunks_of(&frames);
    let calls = tool_calls_of(&chunks);
    assert_eq!(calls.len(), 1, "{frames:?}");
    assert!(!calls[0].0.is_empty());
    assert_eq!(calls[0].1, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].2).unwrap();
    assert_eq!(args, json!({"city": "Oslo", "unit": "c"}));
    assert_eq!(finish_of(&chunks), vec!["tool_calls"]);

    // Replayed with only what an OpenAI stream accumulator keeps (id, name,
    // arguments), the signature still reaches the upstream.
    let (id, name, arguments) = calls[0].clone();
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "flash", "num_retries": 0, "tools": weather_tool(), "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
                {"role": "tool", "tool_call_id": id, "content": "sunny"}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let contents = up.calls()[1].body["contents"].clone();
    assert_eq!(
        contents[1]["parts"][0]["thoughtSignature"],
        gemini::SIGNATURE,
        "{contents}"
    );
    assert!(!contents.to_string().contains("__thought__"), "{contents}");
}

#[tokio::test]
async fn gemini_rate_limit_is_a_429_with_googles_message() {
    let up = MockGemini::start().await;
    let message = "You exceeded your current quota, please check your plan and billing details.";
    up.script([
        gemini::Reply::error(429, message),
        gemini::Reply::error(429, message),
    ]);
    let gw = TestGateway::start(&gemini_config("flash", "gemini-2.5-flash", &up.root_url())).await;
    for stream in [false, true] {
        let (s, _, body) = gw
            .call(
                "/v1/chat/completions",
                json!({"model": "flash", "stream": stream, "num_retries": 0,
                       "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!(s, 429, "stream={stream}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("You exceeded your current quota"), "{msg}");
        assert!(!msg.contains(GEMINI_KEY));
    }
    assert_eq!(up.call_count(), 2);
}

#[tokio::test]
async fn gemini_error_mid_stream_becomes_an_error_frame() {
    let up = MockGemini::start().await;
    up.script([gemini::Reply::StreamError {
        text: "partial answer ".into(),
        code: 500,
        message: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting".into(),
    }]);
    let gw = TestGateway::start(&gemini_config("flash", "gemini-2.5-flash", &up.root_url())).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model": "flash", "stream": true, "num_retries": 0,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(frames.len() >= 3, "{frames:?}");
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks = chunks_of(&frames[..frames.len() - 2]);
    assert_eq!(text_of(&chunks), "partial answer ");
    let err: Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("An internal error has occurred"),
        "{err}"
    );
    assert_eq!(up.call_count(), 1);
}

#[tokio::test]
async fn gemini_mock_refuses_what_google_refuses() {
    let up = MockGemini::start().await;
    let http = ferrolite_core::upstream::client().unwrap();
    let url = format!(
        "{}/v1beta/models/gemini-3-pro-preview:generateContent",
        up.root_url()
    );
    let r = http
        .post(&url)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let unsigned = json!({"contents": [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": true}}}]}
    ]});
    let r = http
        .post(&url)
        .header("x-goog-api-key", "k")
        .json(&unsigned)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("thought_signature"));
    // Without alt=sse the stream is one JSON array.
    let r = http
        .post(url.replace(":generateContent", ":streamGenerateContent"))
        .header("x-goog-api-key", "k")
        .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v.as_array().is_some_and(|a| a.len() > 1), "{v}");
}

#[tokio::test]
async fn anthropic_error_event_before_any_content_is_retried() {
    // Anthropic often answers 200 and then `event: error` (overloaded) before
    // any content: nothing reached the client yet, so it is retryable.
    let up = MockAnthropic::start().await;
    up.script([anthropic::Reply::overloaded_mid_stream("")]);
    let gw = TestGateway::start(&anthropic_config("claude", &up.root_url())).await;
    let (s, h, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "num_retries": 1,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(s, 200, "{frames:?}");
    assert_eq!(h["x-litellm-attempted-retries"], "1");
    assert_eq!(text_of(&chunks_of(&frames)), anthropic::DEFAULT_TEXT);
    assert_eq!(up.call_count(), 2);

    up.script([anthropic::Reply::overloaded_mid_stream("")]);
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "num_retries": 0,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(s, 529, "without retries it is an HTTP error: {body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Overloaded"));
}

#[tokio::test]
async fn gemini_error_frame_before_any_content_is_retried() {
    let up = MockGemini::start().await;
    up.script([gemini::Reply::StreamError {
        text: String::new(),
        code: 503,
        message: "The model is overloaded. Please try again later.".into(),
    }]);
    let gw = TestGateway::start(&gemini_config("flash", "gemini-2.5-flash", &up.root_url())).await;
    let (s, h, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model": "flash", "stream": true, "num_retries": 1,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(s, 200, "{frames:?}");
    assert_eq!(h["x-litellm-attempted-retries"], "1");
    assert_eq!(text_of(&chunks_of(&frames)), gemini::DEFAULT_TEXT);
    assert_eq!(up.call_count(), 2);
}

#[tokio::test]
async fn client_disconnect_closes_native_upstream_streams() {
    use futures_util::StreamExt;
    use std::time::Duration;

    let a = MockAnthropic::start().await;
    a.script([anthropic::Reply::Hang(anthropic::text_events(
        "claude-sonnet-4-5-20250929",
        "never ending ",
        false,
    ))]);
    let g = MockGemini::start().await;
    g.script([gemini::Reply::SseHang(vec![gemini::response_json(
        "gemini-2.5-flash",
        "r1",
        vec![json!({"text": "never ending "})],
        false,
    )])]);
    let yaml = format!(
        "{}  - model_name: flash\n    litellm_params:\n      model: gemini/gemini-2.5-flash\n      api_base: {}\n      api_key: {GEMINI_KEY}\n",
        anthropic_config("claude", &a.root_url()),
        g.root_url()
    );
    let gw = TestGateway::start(&yaml).await;
    for model in ["claude", "flash"] {
        let resp = gw
            .post("/v1/chat/completions")
            .json(&json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        assert!(
            std::str::from_utf8(&first).unwrap().contains("data: "),
            "{model}: {first:?}"
        );
        drop(body);
    }
    assert_eq!(a.wait_dropped_streams(1, Duration::from_secs(10)).await, 1);
    assert_eq!(g.wait_dropped_streams(1, Duration::from_secs(10)).await, 1);
}
