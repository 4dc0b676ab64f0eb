//! Fallback model groups: picked by the kind of failure, from the config or
//! the request, reported in headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestGateway;
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::{json, Value};

fn group(name: &str, base: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params: {{model: openai/{name}-up, api_base: \"{base}\", api_key: k}}\n")
}

#[tokio::test]
async fn a_failing_group_falls_back_and_says_so() {
    let bad = MockOpenAi::start().await;
    bad.script((0..5).map(|_| Reply::error(500, "boom")));
    let good = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n{}{}litellm_settings:\n  num_retries: 0\n  fallbacks: [{{\"primary\": [\"backup\"]}}]\n",
        group("primary", &bad.base_url()),
        group("backup", &good.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, h, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"primary","messages":[]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["model"], "primary",
        "answers report the name the client asked for"
    );
    assert_eq!(h["x-litellm-attempted-fallbacks"], "1");
    assert_eq!(h["x-litellm-model-group"], "backup");
    assert_eq!((bad.call_count(), good.call_count()), (1, 1));
    assert_eq!(good.calls()[0].body["model"], "backup-up");
}

#[tokio::test]
async fn context_window_errors_use_context_window_fallbacks() {
    let small = MockOpenAi::start().await;
    small.script([Reply::Error {
        status: 400,
        message: "This model's maximum context length is 8192 tokens".into(),
        kind: "invalid_request_error".into(),
        headers: vec![],
    }]);
    let general = MockOpenAi::start().await;
    let long = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  fallbacks: [{{\"small\": [\"general\"]}}]\n  context_window_fallbacks: [{{\"small\": [\"long\"]}}]\n",
        group("small", &small.base_url()),
        group("general", &general.base_url()),
        group("long", &long.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, h, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"small","messages":[]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["x-litellm-model-group"], "long");
    assert_eq!((general.call_count(), long.call_count()), (0, 1));
}

#[tokio::test]
async fn malformed_requests_do_not_fall_back() {
    let primary = MockOpenAi::start().await;
    primary.script([Reply::error(400, "Invalid value for 'temperature'")]);
    let backup = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n{}{}litellm_settings:\n  fallbacks: [{{\"primary\": [\"backup\"]}}]\n",
        group("primary", &primary.base_url()),
        group("backup", &backup.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, h, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"primary","messages":[],"temperature":9}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(backup.call_count(), 0);
    assert!(
        !h.contains_key("x-litellm-attempted-fallbacks")
            || h["x-litellm-attempted-fallbacks"] == "0"
    );
}

#[tokio::test]
async fn request_fallbacks_and_default_fallbacks() {
    let bad = MockOpenAi::start().await;
    bad.script((0..10).map(|_| Reply::error(503, "down")));
    let a = MockOpenAi::start().await;
    let d = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n{}{}{}litellm_settings:\n  num_retries: 0\n  default_fallbacks: [\"dflt\"]\n",
        group("bad", &bad.base_url()),
        group("alt", &a.base_url()),
        group("dflt", &d.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, h, _) = gw
        .call("/v1/chat/completions", json!({"model":"bad","messages":[]}))
        .await;
    assert_eq!(
        (s, h["x-litellm-model-group"].to_str().unwrap()),
        (200, "dflt")
    );
    let (s, h, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"bad","messages":[],"fallbacks":["alt"]}),
        )
        .await;
    assert_eq!(
        (s, h["x-litellm-model-group"].to_str().unwrap()),
        (200, "alt")
    );
    assert!(
        a.calls()[0].body.get("fallbacks").is_none(),
        "LiteLLM fields never reach the upstream"
    );
}

#[tokio::test]
async fn when_every_group_fails_the_last_error_is_returned() {
    let a = MockOpenAi::start().await;
    a.script((0..3).map(|_| Reply::error(500, "first down")));
    let b = MockOpenAi::start().await;
    b.script((0..3).map(|_| Reply::error(503, "second down")));
    let yaml = format!(
        "model_list:\n{}{}litellm_settings:\n  num_retries: 0\n  fallbacks: [{{\"a\": [\"b\"]}}]\n",
        group("a", &a.base_url()),
        group("b", &b.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, _, body) = gw
        .call("/v1/chat/completions", json!({"model":"a","messages":[]}))
        .await;
    assert_eq!(s, 503);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("second down"));
    let health: Value = gw
        .get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["unhealthy_count"], 2,
        "health checks never fall back: {health}"
    );
}

#[tokio::test]
async fn a_cooling_single_deployment_group_falls_back() {
    let primary = MockOpenAi::start().await;
    primary.script((0..5).map(|_| Reply::error(429, "slow down")));
    let backup = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n{}{}litellm_settings:\n  num_retries: 0\n  fallbacks: [{{\"primary\": [\"backup\"]}}]\n",
        group("primary", &primary.base_url()),
        group("backup", &backup.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    for _ in 0..3 {
        let (s, h, _) = gw
            .call(
                "/v1/chat/completions",
                json!({"model":"primary","messages":[]}),
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(h["x-litellm-model-group"], "backup");
    }
    assert_eq!(
        primary.call_count(),
        1,
        "cooling after the first 429, then skipped straight to the fallback"
    );
}

#[tokio::test]
async fn health_checks_every_deployment_of_a_group() {
    let good = MockOpenAi::start().await;
    let bad = MockOpenAi::start().await;
    bad.script((0..5).map(|_| Reply::error(500, "down")));
    let yaml = format!(
        "model_list:\n{}{}",
        group("m", &good.base_url()),
        group("m", &bad.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    for _ in 0..3 {
        let h: Value = gw
            .get("/health")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (h["healthy_count"].as_u64(), h["unhealthy_count"].as_u64()),
            (Some(1), Some(1)),
            "{h}"
        );
    }
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200, "health checks did not cool anything down");
}

#[tokio::test]
async fn pre_call_checks_skip_deployments_the_prompt_does_not_fit() {
    let small = MockOpenAi::start().await;
    let long = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: small\n    litellm_params: {{model: openai/s, api_base: \"{}\", api_key: k}}\n    model_info: {{max_input_tokens: 100}}\n  - model_name: long\n    litellm_params: {{model: openai/l, api_base: \"{}\", api_key: k}}\n    model_info: {{max_input_tokens: 100000}}\nrouter_settings:\n  enable_pre_call_checks: true\n  context_window_fallbacks: [{{\"small\": [\"long\"]}}]\n",
        small.base_url(),
        long.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, h, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"small","messages":[{"role":"user","content":"hi"}]}),
        )
        .await;
    assert_eq!(
        (s, h["x-litellm-model-group"].to_str().unwrap()),
        (200, "small")
    );
    let big = "word ".repeat(400);
    let (s, h, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"small","messages":[{"role":"user","content":big}]}),
        )
        .await;
    assert_eq!(
        (s, h["x-litellm-model-group"].to_str().unwrap()),
        (200, "long")
    );
    assert_eq!(
        small.call_count(),
        1,
        "the over-long prompt never reached the small model"
    );
}
