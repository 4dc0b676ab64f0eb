//! Bad input and upstream failures: the OpenAI error shape, the right
//! status, retries where they help, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{one_model, TestGateway};
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::{json, Value};

fn assert_error_shape(body: &Value, status: u16) {
    let e = &body["error"];
    assert!(e["message"].is_string(), "{body}");
    assert!(e["type"].is_string(), "{body}");
    assert!(e.get("param").is_some(), "{body}");
    assert_eq!(e["code"], status.to_string(), "{body}");
}

async fn raw(gw: &TestGateway, body: &'static str) -> (u16, Value) {
    let r = gw
        .post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

#[tokio::test]
async fn malformed_requests_are_400_naming_the_field() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, b) = raw(&gw, "{not json").await;
    assert_eq!(s, 400);
    assert_error_shape(&b, 400);
    assert_eq!(b["error"]["type"], "invalid_request_error");
    let (s, b) = raw(&gw, r#"{"messages":[]}"#).await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("model")));
    let (s, b) = raw(&gw, r#"{"model":"m"}"#).await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("messages")));
    let (s, b) = raw(
        &gw,
        r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
    )
    .await;
    assert_eq!(
        (s, b["error"]["param"].as_str()),
        (400, Some("messages[0].content"))
    );
    let (s, b) = raw(&gw, r#"{"model":"m","messages":[],"stream":"yes"}"#).await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("stream")));
    let (s, _) = raw(&gw, "").await;
    assert_eq!(s, 400);
    assert_eq!(up.call_count(), 0, "nothing bad reaches the upstream");
}

#[tokio::test]
async fn unknown_model_is_400() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, _, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"nope","messages":[]}),
        )
        .await;
    assert_eq!(s, 400);
    assert_error_shape(&b, 400);
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Invalid model name passed in model=nope"));
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let up = MockOpenAi::start().await;
    let yaml = format!(
        "{}general_settings:\n  master_key: {}\n  max_request_size_mb: 0.001\n",
        one_model("m", &up.base_url()),
        common::MASTER
    );
    let gw = TestGateway::start(&yaml).await;
    let big = "x".repeat(4096);
    let (s, _, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[{"role":"user","content":big}]}),
        )
        .await;
    assert_eq!(s, 413);
    assert_error_shape(&b, 413);
}

#[tokio::test]
async fn upstream_client_errors_pass_through_without_retry() {
    let up = MockOpenAi::start().await;
    up.script([Reply::error(
        400,
        "Invalid value for 'temperature': must be <= 2",
    )]);
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, h, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"temperature":5}),
        )
        .await;
    assert_eq!(s, 400);
    assert_error_shape(&b, 400);
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("litellm.BadRequestError: BadRequestError: OpenAIException - Invalid value for 'temperature'"), "{msg}");
    assert_eq!(b["error"]["type"], "invalid_request_error");
    assert_eq!(up.call_count(), 1, "a 400 is not retried");
    assert_eq!(h["x-litellm-attempted-retries"], "0");
}

#[tokio::test]
async fn rate_limits_are_retried_then_reported_as_429() {
    let up = MockOpenAi::start().await;
    up.script((0..3).map(|_| Reply::error(429, "Rate limit reached")));
    let gw = TestGateway::start(&format!(
        "{}litellm_settings:\n  num_retries: 2\n",
        one_model("bad429", &up.base_url())
    ))
    .await;
    let (s, h, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"bad429","messages":[]}),
        )
        .await;
    assert_eq!(s, 429);
    assert_eq!(up.call_count(), 3);
    assert_eq!(h["x-litellm-attempted-retries"], "2");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("model group 'bad429'") || msg.contains("Model Group=bad429"),
        "{msg}"
    );
}

#[tokio::test]
async fn retries_move_to_another_deployment() {
    let bad = MockOpenAi::start().await;
    bad.script((0..5).map(|_| Reply::error(500, "boom")));
    let good = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", api_key: k, order: 1}}\n  - model_name: m\n    litellm_params: {{model: openai/b, api_base: \"{}\", api_key: k, order: 2}}\n",
        bad.base_url(),
        good.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, h, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["x-litellm-attempted-retries"], "1");
    assert_eq!((bad.call_count(), good.call_count()), (1, 1));
    assert_eq!(h["x-litellm-model-api-base"], good.base_url());
}

#[tokio::test]
async fn request_and_header_retry_counts_and_deployment_max_retries_are_honoured() {
    let up = MockOpenAi::start().await;
    up.script((0..10).map(|_| Reply::error(500, "boom")));
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, _, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"num_retries":0}),
        )
        .await;
    assert_eq!((s, up.call_count()), (500, 1));
    let r = gw
        .post("/v1/chat/completions")
        .header("x-litellm-num-retries", "1")
        .json(&json!({"model":"m","messages":[]}))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), up.call_count()), (500, 3));

    let up2 = MockOpenAi::start().await;
    up2.script((0..10).map(|_| Reply::error(503, "down")));
    let yaml = format!("model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", api_key: k, max_retries: 0}}\n", up2.base_url());
    let gw2 = TestGateway::start(&yaml).await;
    let (s, h, _) = gw2
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(
        (s, up2.call_count()),
        (503, 1),
        "max_retries: 0 means one call to this deployment"
    );
    assert_eq!(h["x-litellm-attempted-retries"], "0");
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    // Bind and drop a listener: the port is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = TestGateway::start(&one_model("m", &format!("http://127.0.0.1:{port}/v1"))).await;
    let (s, _, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"num_retries":1}),
        )
        .await;
    assert_eq!(s, 502);
    assert_error_shape(&b, 502);
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("litellm.APIConnectionError: cannot connect to upstream"),
        "{msg}"
    );
    assert!(msg.contains("LiteLLM Retried: 1 times"), "{msg}");
}

#[tokio::test]
async fn slow_upstream_times_out_with_408() {
    let up = MockOpenAi::start().await;
    up.script([Reply::Delay(
        Duration::from_secs(5),
        Box::new(Reply::Default),
    )]);
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let r = gw
        .post("/v1/chat/completions")
        .header("x-litellm-timeout", "0.2")
        .json(&json!({"model":"m","messages":[],"num_retries":0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 408);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("litellm.Timeout: Request timed out after 0.2 seconds"));
}

#[tokio::test]
async fn non_json_upstream_errors_keep_status_and_text() {
    let up = MockOpenAi::start().await;
    up.script([Reply::Raw {
        status: 502,
        content_type: "text/html".into(),
        body: "<html>Bad Gateway</html>".into(),
    }]);
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, _, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"num_retries":0}),
        )
        .await;
    assert_eq!(s, 502);
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("<html>Bad Gateway</html>"));
}

#[tokio::test]
async fn unsupported_providers_get_a_clear_400() {
    let gw = TestGateway::start("model_list:\n  - model_name: claude\n    litellm_params:\n      model: someprovider/some-model\n      api_key: k\n").await;
    let (s, _, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"claude","messages":[]}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("provider \"someprovider\" is not supported"),
        "{b}"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_in_openai_shape_and_bad_headers_are_400() {
    let gw = TestGateway::start("model_list: []\n").await;
    let r = gw.get("/v1/nope").send().await.unwrap();
    assert_eq!(r.status(), 404);
    let b: Value = r.json().await.unwrap();
    assert_error_shape(&b, 404);
    let r = gw
        .post("/v1/chat/completions")
        .header("x-litellm-timeout", "soon")
        .json(&json!({"model":"m","messages":[]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn retry_policy_sets_retries_per_kind_of_failure() {
    let up = MockOpenAi::start().await;
    up.script((0..10).map(|_| Reply::error(429, "slow down")));
    let yaml = format!(
        "{}router_settings:\n  num_retries: 0\n  retry_policy: {{\"RateLimitErrorRetries\": 2, \"BadRequestErrorRetries\": 1}}\n",
        one_model("m", &up.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, h, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(
        (s, up.call_count()),
        (429, 3),
        "rate limits get 2 retries despite num_retries: 0"
    );
    assert_eq!(h["x-litellm-attempted-retries"], "2");

    let up2 = MockOpenAi::start().await;
    up2.script((0..10).map(|_| Reply::error(400, "bad")));
    let yaml = format!(
        "{}router_settings:\n  model_group_retry_policy: {{\"m\": {{\"BadRequestErrorRetries\": 1}}}}\n",
        one_model("m", &up2.base_url())
    );
    let gw2 = TestGateway::start(&yaml).await;
    let (s, _, _) = gw2
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(
        (s, up2.call_count()),
        (400, 2),
        "a group policy can make a 400 retryable"
    );
}
