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

#[tokio::test]
async fn tag_filtering_routes_tagged_requests_to_matching_deployments() {
    let eu = MockOpenAi::start().await;
    let us = MockOpenAi::start().await;
    let fallback = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/eu, api_base: \"{}\", api_key: k, tags: [eu, gdpr]}}\n  - model_name: m\n    litellm_params: {{model: openai/us, api_base: \"{}\", api_key: k, tags: [us]}}\n  - model_name: m\n    litellm_params: {{model: openai/d, api_base: \"{}\", api_key: k, tags: [default]}}\nrouter_settings:\n  enable_tag_filtering: true\n",
        eu.base_url(),
        us.base_url(),
        fallback.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    // Tags in metadata (the body) or the x-litellm-tags header: eu or default.
    for _ in 0..20 {
        let (s, _, b) = gw
            .call(
                "/v1/chat/completions",
                json!({"model":"m","messages":[],"metadata":{"tags":["eu"]}}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let r = gw
            .post("/v1/chat/completions")
            .header("x-litellm-tags", "gdpr, other")
            .json(&json!({"model":"m","messages":[]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(us.call_count(), 0, "us never serves eu-tagged requests");
    assert!(eu.call_count() > 0 && eu.call_count() + fallback.call_count() == 40);
    // Untagged requests go to the default deployment.
    for _ in 0..10 {
        let (s, _, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, 200);
    }
    let eu_before = eu.call_count();
    assert_eq!(us.call_count(), 0);
    assert_eq!(eu.call_count(), eu_before);
    assert_eq!(eu.call_count() + fallback.call_count(), 50);
}

#[tokio::test]
async fn a_tagged_request_no_deployment_matches_is_refused() {
    let a = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:
  - model_name: m
    litellm_params: {{model: openai/a, api_base: \"{}\", api_key: k, tags: [us]}}
router_settings:
  enable_tag_filtering: true
  tag_filtering_match_any: false
",
        a.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, _, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"tags":["us","eu"]}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("tags configuration"));
    assert_eq!(a.call_count(), 0);
    // Without tags the only deployment serves (no `default` deployment exists).
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200);
}
