//! Gemini inbound (`/v1beta/models/{model}:generateContent` and friends)
//! against mock OpenAI, Gemini and Anthropic upstreams: Google's wire format
//! in and out, whatever the upstream speaks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{one_model, TestGateway, MASTER};
use ferrolite_testkit::gemini::{self as gmock, MockGemini};
use ferrolite_testkit::openai::{chat_chunks, Reply};
use ferrolite_testkit::{MockAnthropic, MockOpenAi};
use serde_json::{json, Value};

fn gemini_config(name: &str, model: &str, root: &str) -> String {
    format!("model_list:\n  - model_name: {name}\n    litellm_params:\n      model: gemini/{model}\n      api_base: {root}\n      api_key: AIza-deployment-key\n")
}

fn anthropic_config(name: &str, root: &str) -> String {
    format!("model_list:\n  - model_name: {name}\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_base: {root}\n      api_key: sk-ant-deployment-key\n")
}

/// POST with the key in `x-goog-api-key` (as the google-genai SDK sends it).
async fn post(gw: &TestGateway, path: &str, body: &Value) -> (u16, String, String) {
    let r = gw
        .http
        .post(gw.url(path))
        .header("x-goog-api-key", MASTER)
        .header("x-litellm-num-retries", "0")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

fn sse_events(text: &str) -> Vec<Value> {
    text.split("\r\n\r\n")
        .filter_map(|f| f.trim().strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .flat_map(|e| {
            e["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|p| p.get("thought").is_none())
        .filter_map(|p| p["text"].as_str().map(str::to_owned))
        .collect()
}

fn weather_tools() -> Value {
    json!([{"functionDeclarations": [{"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}])
}

#[tokio::test]
async fn generate_content_against_an_openai_upstream() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("gpt", &up.base_url())).await;
    // The key as `?key=` this time; no header.
    let r = gw
        .http
        .post(gw.url(&format!("/v1beta/models/gpt:generateContent?key={MASTER}")))
        .json(&json!({
            "systemInstruction": {"parts": [{"text": "Be terse."}]},
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": weather_tools(),
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 50, "stopSequences": ["X"]}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["candidates"][0]["content"],
        json!({"role": "model", "parts": [{"text": "Hello! How can I help you today?"}]}),
        "{body}"
    );
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["modelVersion"], "gpt");
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 9);
    assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 12);
    assert_eq!(body["usageMetadata"]["totalTokenCount"], 21);

    let calls = up.calls();
    assert_eq!(calls.len(), 1);
    let sent = &calls[0].body;
    assert_eq!(calls[0].path, "/v1/chat/completions");
    assert_eq!(sent["model"], "upstream-gpt");
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}])
    );
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        sent["tools"][0]["function"]["parameters"]["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["stop"], json!(["X"]));
    // The gateway key went nowhere upstream.
    assert!(!calls[0].query.as_deref().unwrap_or("").contains(MASTER));
    for (_, v) in &calls[0].headers {
        assert!(!v.to_str().unwrap_or("").contains(MASTER));
    }
}

#[tokio::test]
async fn sse_stream_against_an_openai_upstream() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("gpt", &up.base_url())).await;
    let (status, ct, text) = post(
        &gw,
        "/v1beta/models/gpt:streamGenerateContent?alt=sse",
        &json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let events = sse_events(&text);
    assert!(events.len() >= 3, "{text}");
    assert_eq!(text_of(&events), "Hello! How can I help you today?");
    let last = events.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 21);
    assert!(events[..events.len() - 1]
        .iter()
        .all(|e| e["candidates"][0].get("finishReason").is_none()));
    let sent = &up.calls()[0].body;
    assert_eq!(sent["stream"], true);
}

#[tokio::test]
async fn json_array_stream_and_function_call_round_trip_with_a_gemini_upstream() {
    let up = MockGemini::start().await;
    let gw = TestGateway::start(&gemini_config(
        "gem",
        "gemini-3-pro-preview",
        &up.root_url(),
    ))
    .await;
    up.script([gmock::Reply::function_call(
        "get_weather",
        json!({"city": "Paris"}),
    )]);
    let ask = json!({"contents": [{"role": "user", "parts": [{"text": "weather in Paris?"}]}],
                     "tools": weather_tools()});
    // No alt=sse: Google's JSON array.
    let (status, ct, text) = post(&gw, "/v1beta/models/gem:streamGenerateContent", &ask).await;
    assert_eq!(status, 200, "{text}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let arr: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let last = arr.as_array().unwrap().last().unwrap().clone();
    let part = last["candidates"][0]["content"]["parts"][0].clone();
    assert_eq!(part["functionCall"]["name"], "get_weather");
    assert_eq!(part["functionCall"]["args"], json!({"city": "Paris"}));
    assert_eq!(part["thoughtSignature"], gmock::SIGNATURE);
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    // The upstream was asked in Gemini's own shape, tools included.
    let first = &up.calls()[0];
    assert!(
        first.path.ends_with(":streamGenerateContent"),
        "{}",
        first.path
    );
    assert_eq!(
        first.body["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );

    // Second turn: the client replays the call (with its signature) and the
    // result; Gemini 3 refuses a replayed call without its signature.
    let follow = json!({"contents": [
        {"role": "user", "parts": [{"text": "weather in Paris?"}]},
        {"role": "model", "parts": [part]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}]}
    ], "tools": weather_tools()});
    let (status, _, text) = post(&gw, "/v1beta/models/gem:generateContent", &follow).await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["text"],
        gmock::DEFAULT_TEXT
    );
    assert_eq!(
        body["usageMetadata"]["thoughtsTokenCount"],
        gmock::THOUGHTS_TOKENS
    );
    let second = &up.calls()[1].body;
    let model_turn = &second["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert_eq!(model_turn["parts"][0]["thoughtSignature"], gmock::SIGNATURE);
    assert_eq!(
        second["contents"][2]["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
}

#[tokio::test]
async fn anthropic_upstream_answers_in_gemini_shape_on_every_prefix() {
    let up = MockAnthropic::start().await;
    let gw = TestGateway::start(&anthropic_config("claude", &up.root_url())).await;
    let ask = json!({"contents": [{"parts": [{"text": "hi"}]}],
                     "generationConfig": {"maxOutputTokens": 64}});
    for path in [
        "/v1beta/models/claude:generateContent",
        "/v1/models/claude:generateContent",
        "/models/claude:generateContent",
        "/gemini/v1beta/models/claude:generateContent",
    ] {
        let (status, _, text) = post(&gw, path, &ask).await;
        assert_eq!(status, 200, "{path}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["candidates"][0]["finishReason"], "STOP", "{path}");
        assert!(body["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
        assert!(body["usageMetadata"]["promptTokenCount"].as_u64().unwrap() > 0);
    }
    let sent = &up.calls()[0].body;
    assert_eq!(sent["max_tokens"], 64);
    assert_eq!(sent["messages"][0]["role"], "user");
    // OpenAI's GET /v1/models/{id} still works beside the POST routes.
    let r = gw.get("/v1/models/claude").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn errors_are_google_shaped() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("gpt", &up.base_url())).await;
    let ask = json!({"contents": [{"parts": [{"text": "hi"}]}]});

    // No key at all.
    let r = gw
        .http
        .post(gw.url("/v1beta/models/gpt:generateContent"))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["code"], 401);
    // A wrong key in the query is refused and not echoed back.
    let r = gw
        .http
        .post(gw.url("/v1beta/models/gpt:generateContent?key=sk-wrong-key-123"))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(!r.text().await.unwrap().contains("sk-wrong-key-123"));

    let (status, _, text) = post(&gw, "/v1beta/models/nope:generateContent", &ask).await;
    assert_eq!(status, 404, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["status"], "NOT_FOUND");

    let (status, _, text) = post(
        &gw,
        "/v1beta/models/gpt:generateContent",
        &json!({"contents": "x"}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");

    let (status, _, text) = post(&gw, "/v1beta/models/gpt:embedContent", &ask).await;
    assert_eq!(status, 404, "{text}");

    up.script([Reply::error(429, "Rate limit reached")]);
    let (status, _, text) = post(&gw, "/v1beta/models/gpt:generateContent", &ask).await;
    assert_eq!(status, 429, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Rate limit reached"));
}

#[tokio::test]
async fn mid_stream_failures_end_with_a_google_error() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("gpt", &up.base_url())).await;
    // The upstream sends some text, then closes without finishing.
    let mut chunks = chat_chunks("upstream-gpt", "Hello there friend", false);
    chunks.truncate(2);
    up.script([Reply::Sse {
        data: chunks,
        done: false,
    }]);
    let ask = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let (status, _, text) = post(
        &gw,
        "/v1beta/models/gpt:streamGenerateContent?alt=sse",
        &ask,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let events = sse_events(&text);
    let last = events.last().unwrap();
    assert_eq!(last["error"]["status"], "UNAVAILABLE", "{text}");
    assert_eq!(last["error"]["code"], 502);
    assert_eq!(text_of(&events), "Hello ");

    // Same failure, JSON array framing: still one valid array.
    let mut chunks = chat_chunks("upstream-gpt", "Hello there friend", false);
    chunks.truncate(2);
    up.script([Reply::Sse {
        data: chunks,
        done: false,
    }]);
    let (_, _, text) = post(&gw, "/v1beta/models/gpt:streamGenerateContent", &ask).await;
    let arr: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        arr.as_array().unwrap().last().unwrap()["error"]["status"],
        "UNAVAILABLE"
    );
}

#[tokio::test]
async fn count_tokens_is_estimated_locally() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("gpt", &up.base_url())).await;
    let (status, _, text) = post(
        &gw,
        "/v1beta/models/gpt:countTokens",
        &json!({"contents": [{"parts": [{"text": "abcdefghijkl"}]}]}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"totalTokens": 3})
    );
    assert_eq!(up.call_count(), 0);
    let (status, _, _) = post(
        &gw,
        "/v1beta/models/unknown:countTokens",
        &json!({"contents": []}),
    )
    .await;
    assert_eq!(status, 404);
}
