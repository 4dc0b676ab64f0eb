//! Load balancing across a group, and timeouts that fall back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::TestGateway;
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::json;

#[tokio::test]
async fn two_deployments_both_receive_traffic_in_proportion_to_weight() {
    let a = MockOpenAi::start().await;
    let b = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", api_key: k, weight: 3}}\n  - model_name: m\n    litellm_params: {{model: openai/b, api_base: \"{}\", api_key: k, weight: 1}}\n",
        a.base_url(),
        b.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    for _ in 0..200 {
        let (s, _, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, 200);
    }
    let (na, nb) = (a.call_count(), b.call_count());
    assert_eq!(na + nb, 200);
    // Expected 150 / 50; the bounds are > 6 standard deviations wide.
    assert!((110..=190).contains(&na), "weights 3:1 gave {na}:{nb}");
    assert!(
        nb >= 10,
        "the lighter deployment still gets traffic: {na}:{nb}"
    );
}

#[tokio::test]
async fn a_timeout_falls_back_to_another_group() {
    let slow = MockOpenAi::start().await;
    slow.script([Reply::Delay(
        Duration::from_secs(5),
        Box::new(Reply::Default),
    )]);
    let fast = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: slow\n    litellm_params: {{model: openai/s, api_base: \"{}\", api_key: k, timeout: 0.2}}\n  - model_name: fast\n    litellm_params: {{model: openai/f, api_base: \"{}\", api_key: k}}\nlitellm_settings:\n  num_retries: 0\n  fallbacks: [{{\"slow\": [\"fast\"]}}]\n",
        slow.base_url(),
        fast.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, h, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"slow","messages":[]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["x-litellm-model-group"], "fast");
    assert_eq!(h["x-litellm-attempted-fallbacks"], "1");
    assert_eq!(b["model"], "slow");
}
