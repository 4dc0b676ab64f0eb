//! Deployment limits: max_parallel_requests, and rpm/tpm with pre-call checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::TestGateway;
use ferrolite_testkit::openai::chat_chunks;
use ferrolite_testkit::{MockOpenAi, Reply};
use futures_util::StreamExt;
use serde_json::json;

fn one(base: &str, params: &str, settings: &str) -> String {
    format!("model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{base}\", api_key: k{params}}}\n{settings}")
}

#[tokio::test]
async fn max_parallel_requests_holds_until_the_stream_ends() {
    let up = MockOpenAi::start().await;
    up.script([Reply::SseHang {
        data: chat_chunks("x", "slow answer", false)[..2].to_vec(),
    }]);
    let gw = TestGateway::start(&one(&up.base_url(), ", max_parallel_requests: 1", "")).await;
    let resp = gw
        .post("/v1/chat/completions")
        .json(&json!({"model":"m","messages":[],"stream":true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let _ = body.next().await;
    let (s, h, b) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 429, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("No deployments available"));
    assert!(h.contains_key("retry-after"));
    drop(body);
    assert_eq!(up.wait_dropped_streams(1, Duration::from_secs(10)).await, 1);
    // The slot is free again once the gateway has seen the client go.
    let mut ok = false;
    for _ in 0..50 {
        let (s, _, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        if s == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        ok,
        "the parallel slot was released after the client disconnected"
    );
}

#[tokio::test]
async fn rpm_is_enforced_with_pre_call_checks() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one(
        &up.base_url(),
        ", rpm: 2",
        "router_settings:\n  enable_pre_call_checks: true\n",
    ))
    .await;
    for _ in 0..2 {
        let (s, _, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, 200);
    }
    let (s, h, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 429);
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    assert_eq!(
        up.call_count(),
        2,
        "the third request never reached the upstream"
    );
}

#[tokio::test]
async fn rpm_without_pre_call_checks_only_weights_routing_as_in_litellm() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one(&up.base_url(), ", rpm: 1", "")).await;
    for _ in 0..3 {
        let (s, _, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, 200);
    }
}

#[tokio::test]
async fn tpm_counts_the_tokens_answers_report() {
    let up = MockOpenAi::start().await;
    // Each mock answer reports 21 tokens: the second one brings the minute to 42 ≥ 30.
    let gw = TestGateway::start(&one(
        &up.base_url(),
        ", tpm: 30",
        "router_settings:\n  optional_pre_call_checks: [\"enforce_model_rate_limits\"]\n",
    ))
    .await;
    for expected in [200, 200, 429] {
        let (s, _, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, expected);
    }
}

#[tokio::test]
async fn answers_carry_retry_timeout_and_rate_limit_headers() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one(
        &up.base_url(),
        ", rpm: 10, tpm: 1000, timeout: 30",
        "router_settings:\n  num_retries: 3\n",
    ))
    .await;
    let (s, h, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["x-litellm-max-retries"], "3");
    assert_eq!(h["x-litellm-timeout"], "30");
    assert_eq!(h["x-ratelimit-remaining-requests"], "9");
    assert_eq!(
        h["x-ratelimit-remaining-tokens"], "979",
        "1000 minus the 21 tokens the answer reported"
    );
}

#[tokio::test]
async fn general_settings_max_parallel_requests_is_the_per_deployment_default() {
    let up = MockOpenAi::start().await;
    up.script([Reply::SseHang {
        data: chat_chunks("x", "slow", false)[..2].to_vec(),
    }]);
    let yaml = format!(
        "{}general_settings:\n  master_key: {}\n  max_parallel_requests: 1\n",
        one(&up.base_url(), "", ""),
        common::MASTER
    );
    let gw = TestGateway::start(&yaml).await;
    let resp = gw
        .post("/v1/chat/completions")
        .json(&json!({"model":"m","messages":[],"stream":true}))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let _ = body.next().await;
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 429);
}

#[tokio::test]
async fn global_max_parallel_requests_caps_the_whole_gateway() {
    let up = MockOpenAi::start().await;
    up.script([Reply::SseHang {
        data: chat_chunks("x", "slow", false)[..2].to_vec(),
    }]);
    let yaml = format!(
        "{}general_settings:\n  master_key: {}\n  global_max_parallel_requests: 1\n",
        one(&up.base_url(), "", ""),
        common::MASTER
    );
    let gw = TestGateway::start(&yaml).await;
    let resp = gw
        .post("/v1/chat/completions")
        .json(&json!({"model":"m","messages":[],"stream":true}))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let _ = body.next().await;
    let (s, h, b) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 429, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Max parallel request limit reached"));
    assert_eq!(h["retry-after"], "1");
    drop(body);
    assert_eq!(up.wait_dropped_streams(1, Duration::from_secs(10)).await, 1);
    let mut ok = false;
    for _ in 0..50 {
        if gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await
            .0
            == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the slot came back when the stream ended");
}
