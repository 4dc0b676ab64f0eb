//! Cooldowns: a deployment that rate-limits is skipped until it recovers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestGateway;
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::json;

fn two(a: &str, b: &str, settings: &str) -> String {
    format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{a}\", api_key: k}}\n  - model_name: m\n    litellm_params: {{model: openai/b, api_base: \"{b}\", api_key: k}}\n{settings}"
    )
}

fn rate_limited(retry_after: &str) -> Reply {
    Reply::Error {
        status: 429,
        message: "Rate limit reached".into(),
        kind: "requests".into(),
        headers: vec![("retry-after".into(), retry_after.into())],
    }
}

#[tokio::test]
async fn a_rate_limited_deployment_is_skipped_while_it_cools_down() {
    let a = MockOpenAi::start().await;
    let b = MockOpenAi::start().await;
    a.script((0..10).map(|_| rate_limited("30")));
    b.script((0..10).map(|_| rate_limited("30")));
    let gw = TestGateway::start(&two(
        &a.base_url(),
        &b.base_url(),
        "router_settings:\n  num_retries: 1\n",
    ))
    .await;
    // Both deployments rate-limit: the request fails and both cool down for 30 s.
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 429);
    assert_eq!(a.call_count() + b.call_count(), 2);
    // Now nothing is available: LiteLLM's 429 with a Retry-After, and no upstream call.
    let (s, h, body) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 429);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("No deployments available for selected model, Try again in"),
        "{msg}"
    );
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((25..=30).contains(&wait), "{wait}");
    assert_eq!(a.call_count() + b.call_count(), 2);
}

#[tokio::test]
async fn traffic_moves_to_the_healthy_deployment() {
    let a = MockOpenAi::start().await;
    let b = MockOpenAi::start().await;
    a.script((0..10).map(|_| rate_limited("60")));
    // `order` makes `a` the first choice: without cooldowns every request would go there.
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", api_key: k, order: 1}}\n  - model_name: m\n    litellm_params: {{model: openai/b, api_base: \"{}\", api_key: k, order: 2}}\nrouter_settings:\n  num_retries: 0\n",
        a.base_url(),
        b.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 429);
    for _ in 0..5 {
        let (s, h, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, 200);
        assert_eq!(h["x-litellm-model-api-base"], b.base_url());
    }
    assert_eq!(
        (a.call_count(), b.call_count()),
        (1, 5),
        "the cooling deployment got no traffic"
    );
}

#[tokio::test]
async fn single_deployment_groups_are_never_cooled_down() {
    let a = MockOpenAi::start().await;
    a.script([rate_limited("60")]);
    let yaml = format!("model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", api_key: k}}\nrouter_settings:\n  num_retries: 0\n", a.base_url());
    let gw = TestGateway::start(&yaml).await;
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 429);
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(
        s, 200,
        "nowhere else to go: the only deployment keeps serving"
    );
}

#[tokio::test]
async fn disable_cooldowns_keeps_every_deployment_in_rotation() {
    let a = MockOpenAi::start().await;
    let b = MockOpenAi::start().await;
    a.script([rate_limited("60")]);
    b.script([rate_limited("60")]);
    let gw = TestGateway::start(&two(
        &a.base_url(),
        &b.base_url(),
        "router_settings:\n  num_retries: 1\n  disable_cooldowns: true\n",
    ))
    .await;
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 429);
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200);
}
