//! Streaming chat through the gateway: relay, usage handling, errors before
//! and after the first byte, client disconnects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{one_model, sse_data, TestGateway};
use ferrolite_testkit::openai::chat_chunks;
use ferrolite_testkit::{MockOpenAi, Reply};
use futures_util::StreamExt;
use serde_json::{json, Value};

fn parse(frames: &[String]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| *f != "[DONE]")
        .map(|f| serde_json::from_str(f).unwrap())
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

#[tokio::test]
async fn stream_is_relayed_with_usage_requested_upstream_and_stripped() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, h, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache");
    assert!(h.contains_key("x-litellm-call-id"));
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let chunks = parse(&frames);
    assert_eq!(text_of(&chunks), "Hello! How can I help you today?");
    assert!(chunks.iter().all(|c| c["model"] == "m"));
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "no usage chunk or field unless asked: {frames:?}"
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(
        up.calls()[0].body["stream_options"],
        json!({"include_usage": true}),
        "the gateway always asks for usage"
    );
}

#[tokio::test]
async fn usage_chunk_is_kept_when_the_client_asks() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (_, _, frames) = gw
        .stream("/v1/chat/completions", json!({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}))
        .await;
    let chunks = parse(&frames);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 21);
    assert_eq!(frames.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn upstream_error_before_the_first_byte_is_an_http_error() {
    let up = MockOpenAi::start().await;
    up.script([Reply::error(429, "Rate limit reached for requests")]);
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true,"num_retries":0}),
        )
        .await;
    assert_eq!(s, 429);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Rate limit reached for requests"));
}

#[tokio::test]
async fn failure_before_the_first_chunk_is_retried() {
    let up = MockOpenAi::start().await;
    up.script([Reply::error(503, "overloaded")]);
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, h, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["x-litellm-attempted-retries"], "1");
    assert_eq!(text_of(&parse(&frames)), "Hello! How can I help you today?");
}

#[tokio::test]
async fn connection_cut_after_the_first_byte_ends_with_an_error_frame() {
    let up = MockOpenAi::start().await;
    let chunks = chat_chunks("x", "partial answer", false);
    up.script([Reply::Sse {
        data: chunks[..2].to_vec(),
        done: false,
    }]);
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(frames.len(), 4, "{frames:?}");
    assert_eq!(text_of(&parse(&frames[..2])), "partial ");
    let err: Value = serde_json::from_str(&frames[2]).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("closed the stream before it finished"),
        "{err}"
    );
    assert_eq!(err["error"]["code"], "502");
    assert_eq!(frames[3], "[DONE]");
}

#[tokio::test]
async fn in_stream_error_payload_becomes_an_error_frame() {
    let up = MockOpenAi::start().await;
    let mut data = chat_chunks("x", "abc", false)[..2].to_vec();
    data.push(json!({"error": {"message": "The server had an error while processing your request", "type": "server_error"}}).to_string());
    up.script([Reply::Sse { data, done: true }]);
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (_, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true}),
        )
        .await;
    let err: Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("The server had an error"),
        "{err}"
    );
    assert_eq!(err["error"]["type"], "server_error");
    assert_eq!(frames.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let up = MockOpenAi::start().await;
    up.script([Reply::SseHang {
        data: chat_chunks("x", "never ending", false)[..2].to_vec(),
    }]);
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let resp = gw
        .post("/v1/chat/completions")
        .json(&json!({"model":"m","messages":[],"stream":true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!sse_data(std::str::from_utf8(&first).unwrap()).is_empty());
    assert_eq!(
        up.dropped_streams(),
        0,
        "the upstream stream is still open while the client reads"
    );
    drop(body);
    assert_eq!(
        up.wait_dropped_streams(1, Duration::from_secs(10)).await,
        1,
        "upstream stream closed after the client left"
    );
}

#[tokio::test]
async fn no_first_chunk_within_stream_timeout_is_a_timeout_error() {
    let up = MockOpenAi::start().await;
    up.script([Reply::SseHang { data: vec![] }]);
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_base: {}\n      api_key: k\n      stream_timeout: 0.2\n",
        up.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, _, body) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true,"num_retries":0}),
        )
        .await;
    assert_eq!(s, 408, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("litellm.Timeout"));
}

#[tokio::test]
async fn mock_model_streams_in_openai_format() {
    let gw = TestGateway::start("model_list:\n  - model_name: fake\n    litellm_params:\n      model: openai/x\n      mock_response: \"one two three\"\n").await;
    let (s, _, frames) = gw.stream("/v1/chat/completions", json!({"model":"fake","messages":[],"stream":true,"stream_options":{"include_usage":true}})).await;
    assert_eq!(s, 200);
    let chunks = parse(&frames);
    assert_eq!(text_of(&chunks), "one two three");
    assert!(
        chunks.last().unwrap()["usage"]["completion_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(frames.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn a_stall_mid_stream_past_stream_timeout_ends_with_an_error_frame() {
    let up = MockOpenAi::start().await;
    up.script([Reply::SseHang {
        data: chat_chunks("x", "two words", false)[..2].to_vec(),
    }]);
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_base: {}\n      api_key: k\n      stream_timeout: 0.3\n",
        up.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"stream":true}),
        )
        .await;
    assert_eq!(s, 200);
    let err: Value = serde_json::from_str(&frames[frames.len() - 2]).unwrap();
    assert_eq!(err["error"]["code"], "408", "{frames:?}");
    assert_eq!(frames.last().unwrap(), "[DONE]");
}
