//! Bedrock through the whole gateway: a LiteLLM-style `bedrock/…` deployment
//! pointed at the mock Bedrock runtime, called with OpenAI requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestGateway;
use ferrolite_testkit::bedrock::{self, MockBedrock, Reply};
use ferrolite_testkit::Recorded;
use serde_json::{json, Value};

const MODEL_ID: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const ENCODED_PATH: &str = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0";

fn config(name: &str, root: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: {name}\n    litellm_params:\n      model: bedrock/{MODEL_ID}\n      aws_region_name: us-east-1\n      aws_access_key_id: {}\n      aws_secret_access_key: {}\n      aws_bedrock_runtime_endpoint: {root}\n{extra}",
        bedrock::ACCESS_KEY_ID,
        bedrock::SECRET_ACCESS_KEY
    )
}

async fn gateway(up: &MockBedrock) -> TestGateway {
    TestGateway::start(&config("claude", &up.root_url(), "")).await
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

/// The SigV4 `authorization` header: the deployment's key id, today's
/// scope in us-east-1 for the `bedrock` service, the signed headers.
fn assert_signed(c: &Recorded) {
    let auth = c.headers["authorization"].to_str().unwrap();
    let rest = auth
        .strip_prefix(&format!(
            "AWS4-HMAC-SHA256 Credential={}/",
            bedrock::ACCESS_KEY_ID
        ))
        .unwrap_or_else(|| panic!("not a SigV4 header for the key: {auth}"));
    let scope: Vec<&str> = rest.split(',').next().unwrap().split('/').collect();
    assert_eq!(scope.len(), 4, "{auth}");
    let date = c.headers["x-amz-date"].to_str().unwrap();
    assert_eq!(scope[0], &date[..8], "scope date is the x-amz-date day");
    assert_eq!(scope[1], "us-east-1");
    assert_eq!(scope[2], "bedrock");
    assert_eq!(scope[3], "aws4_request");
    assert!(
        auth.contains("SignedHeaders=content-type;host;x-amz-date"),
        "{auth}"
    );
    let sig = auth.rsplit("Signature=").next().unwrap();
    assert_eq!(sig.len(), 64, "{auth}");
    assert!(sig.chars().all(|ch| ch.is_ascii_hexdigit()));
    assert!(
        !auth.contains(bedrock::SECRET_ACCESS_KEY),
        "the secret never travels"
    );
}

#[tokio::test]
async fn chat_is_translated_and_signed() {
    let up = MockBedrock::start().await;
    let gw = gateway(&up).await;
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
    assert_eq!(body["model"], "claude");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], bedrock::DEFAULT_TEXT);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], bedrock::INPUT_TOKENS);
    assert_eq!(body["usage"]["completion_tokens"], bedrock::OUTPUT_TOKENS);
    assert_eq!(
        body["usage"]["total_tokens"],
        bedrock::INPUT_TOKENS + bedrock::OUTPUT_TOKENS
    );
    assert_eq!(h["x-litellm-model-group"], "claude");

    let calls = up.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.path, format!("{ENCODED_PATH}/converse"));
    assert_signed(c);
    assert!(!c.headers.contains_key("x-amz-security-token"));
    assert_eq!(c.headers["content-type"], "application/json");
    assert_eq!(c.body["system"], json!([{"text": "You are terse."}]));
    assert_eq!(
        c.body["messages"],
        json!([{"role": "user", "content": [{"text": "hi"}]}])
    );
    assert_eq!(
        c.body["inferenceConfig"],
        json!({"maxTokens": 300, "temperature": 0.2})
    );
    for k in ["model", "num_retries", "stream"] {
        assert!(c.body.get(k).is_none(), "{k} sent upstream: {}", c.body);
    }
}

#[tokio::test]
async fn session_token_is_sent_and_signed() {
    let up = MockBedrock::start().await;
    let gw = TestGateway::start(&config(
        "claude",
        &up.root_url(),
        "      aws_session_token: FwoGZXIvYXdzEMockSessionToken\n",
    ))
    .await;
    let (status, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "num_retries": 0, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let c = &up.calls()[0];
    assert_eq!(
        c.headers["x-amz-security-token"],
        "FwoGZXIvYXdzEMockSessionToken"
    );
    assert!(c.headers["authorization"]
        .to_str()
        .unwrap()
        .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
}

#[tokio::test]
async fn stream_text_done_and_usage_only_when_asked() {
    let up = MockBedrock::start().await;
    let gw = gateway(&up).await;
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
    assert_eq!(text_of(&chunks), bedrock::DEFAULT_TEXT);
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
    assert_eq!(c.path, format!("{ENCODED_PATH}/converse-stream"));
    assert_signed(c);
    assert!(c.body.get("stream").is_none());

    let req = json!({"model": "claude", "stream": true, "num_retries": 0,
                     "stream_options": {"include_usage": true},
                     "messages": [{"role": "user", "content": "hi"}]});
    let (_, _, frames) = gw.stream("/v1/chat/completions", req).await;
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks_of(&frames);
    assert_eq!(text_of(&chunks), bedrock::DEFAULT_TEXT);
    let with_usage: Vec<&Value> = chunks
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(with_usage.len(), 1, "{frames:?}");
    let u = with_usage[0];
    assert_eq!(u["choices"], json!([]));
    assert_eq!(u["usage"]["prompt_tokens"], bedrock::INPUT_TOKENS);
    assert_eq!(u["usage"]["completion_tokens"], bedrock::OUTPUT_TOKENS);
    assert_eq!(
        chunks.last().unwrap()["usage"]["total_tokens"],
        bedrock::INPUT_TOKENS + bedrock::OUTPUT_TOKENS,
        "the usage chunk is the last one"
    );
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

#[tokio::test]
async fn tool_call_round_trip() {
    let up = MockBedrock::start().await;
    up.script([
        Reply::ToolUse {
            text: Some("Let me check.".into()),
            name: "get_weather".into(),
            input: json!({"city": "Paris"}),
        },
        Reply::Text("It is 18C in Paris.".into()),
    ]);
    let gw = gateway(&up).await;
    let question = json!({"role": "user", "content": "Weather in Paris?"});
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "num_retries": 0, "tools": weather_tool(),
                   "tool_choice": "required", "messages": [question]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Let me check.");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    let id = call["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tooluse_"), "{id}");

    let c = &up.calls()[0];
    assert_eq!(
        c.body["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "get_weather"
    );
    assert_eq!(
        c.body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"],
        json!(["city"])
    );
    assert_eq!(c.body["toolConfig"]["toolChoice"], json!({"any": {}}));

    // Second turn: the assistant's call and the tool result go back.
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "num_retries": 0, "tools": weather_tool(),
                   "messages": [question, choice["message"].clone(),
                                {"role": "tool", "tool_call_id": id, "content": "18C"}]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "It is 18C in Paris."
    );
    let c = &up.calls()[1];
    let msgs = c.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{}", c.body);
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["content"][1]["toolUse"]["toolUseId"], id.as_str());
    assert_eq!(
        msgs[1]["content"][1]["toolUse"]["input"],
        json!({"city": "Paris"})
    );
    assert_eq!(
        msgs[2],
        json!({"role": "user", "content": [{"toolResult": {"toolUseId": id, "content": [{"text": "18C"}]}}]})
    );
}

#[tokio::test]
async fn streamed_tool_call() {
    let up = MockBedrock::start().await;
    up.script([Reply::tool_use(
        "get_weather",
        json!({"city": "Paris", "unit": "celsius"}),
    )]);
    let gw = gateway(&up).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "num_retries": 0, "tools": weather_tool(),
                   "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
        )
        .await;
    assert_eq!(s, 200, "{frames:?}");
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks_of(&frames);
    let mut id = None;
    let mut name = None;
    let mut args = String::new();
    for c in &chunks {
        for tc in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(tc["index"], 0);
            if let Some(i) = tc["id"].as_str() {
                id = Some(i.to_owned());
            }
            if let Some(n) = tc["function"]["name"].as_str() {
                name = Some(n.to_owned());
            }
            args.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert!(id.unwrap().starts_with("tooluse_"));
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert_eq!(finish_of(&chunks), vec!["tool_calls"]);
}

#[tokio::test]
async fn throttling_is_a_429() {
    let up = MockBedrock::start().await;
    up.script([Reply::throttled(), Reply::throttled()]);
    let gw = gateway(&up).await;
    for stream in [false, true] {
        let (s, _, body) = gw
            .call(
                "/v1/chat/completions",
                json!({"model": "claude", "stream": stream, "num_retries": 0,
                       "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!(s, 429, "stream={stream}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("Too many requests"), "{msg}");
        assert!(msg.contains("BedrockException"), "{msg}");
    }
    assert_eq!(up.call_count(), 2);
}

#[tokio::test]
async fn validation_error_is_a_400() {
    let up = MockBedrock::start().await;
    up.script([Reply::validation(
        "The model returned the following errors: temperature: range: 0..1",
    )]);
    let gw = gateway(&up).await;
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "num_retries": 0, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("temperature: range"));
}

#[tokio::test]
async fn exception_mid_stream_becomes_an_error_frame() {
    let up = MockBedrock::start().await;
    up.script([Reply::exception_mid_stream("partial answer ")]);
    let gw = gateway(&up).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "num_retries": 0,
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
            .contains("The model stream was interrupted."),
        "{err}"
    );
    assert_eq!(up.call_count(), 1, "no retry once bytes went out");
}

#[tokio::test]
async fn wrong_credentials_are_refused_upstream() {
    // The mock expects another key id: Bedrock's 403 comes back as an error.
    let up = MockBedrock::start_for_key("AKIASOMEOTHERKEY0001").await;
    let gw = gateway(&up).await;
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "claude", "num_retries": 0, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert!(s == 401 || s == 403, "{s}: {body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("security token included in the request is invalid"));
}
