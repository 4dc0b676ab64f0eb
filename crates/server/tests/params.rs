//! Parameters a provider cannot take (drop_params, UnsupportedParamsError,
//! allowed_openai_params, additional_drop_params) and provider error classes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{one_model, TestGateway};
use ferrolite_testkit::{anthropic, MockAnthropic, MockOpenAi, Reply};
use serde_json::json;

fn claude(base: &str, extra: &str) -> String {
    format!("model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_base: {base}\n      api_key: sk-ant-test\n{extra}")
}

#[tokio::test]
async fn unsupported_params_are_a_400_naming_them() {
    let up = MockAnthropic::start().await;
    let gw = TestGateway::start(&claude(&up.root_url(), "")).await;
    let (s, _, b) = gw
        .call("/v1/chat/completions", json!({"model":"claude","messages":[{"role":"user","content":"hi"}],"logit_bias":{"1":2},"seed":3}))
        .await;
    assert_eq!(s, 400, "{b}");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("litellm.UnsupportedParamsError: anthropic does not support parameters: ["),
        "{msg}"
    );
    assert!(
        msg.contains("'logit_bias'") && msg.contains("'seed'"),
        "{msg}"
    );
    assert!(msg.contains("drop_params"), "{msg}");
    assert_eq!(up.call_count(), 0);
}

#[tokio::test]
async fn drop_params_globally_per_deployment_or_per_request_removes_them() {
    let up = MockAnthropic::start().await;
    let body = json!({"model":"claude","messages":[{"role":"user","content":"hi"}],"logit_bias":{"1":2},"temperature":0.5});
    for (yaml, req_extra) in [
        (
            format!(
                "{}litellm_settings:\n  drop_params: true\n",
                claude(&up.root_url(), "")
            ),
            None,
        ),
        (claude(&up.root_url(), "      drop_params: true\n"), None),
        (claude(&up.root_url(), ""), Some(true)),
    ] {
        let gw = TestGateway::start(&yaml).await;
        let mut b = body.clone();
        if let Some(d) = req_extra {
            b["drop_params"] = json!(d);
        }
        let (s, _, resp) = gw.call("/v1/chat/completions", b).await;
        assert_eq!(s, 200, "{resp}");
    }
    for c in up.calls() {
        assert!(c.body.get("logit_bias").is_none(), "{}", c.body);
        assert_eq!(c.body["temperature"], 0.5);
        assert!(c.body.get("drop_params").is_none());
    }
    assert_eq!(up.call_count(), 3);
}

#[tokio::test]
async fn allowed_openai_params_pass_through() {
    let up = MockAnthropic::start().await;
    let gw = TestGateway::start(&claude(&up.root_url(), "")).await;
    let (s, _, b) = gw
        .call("/v1/chat/completions", json!({"model":"claude","messages":[{"role":"user","content":"hi"}],"seed":3,"allowed_openai_params":["seed"]}))
        .await;
    // The client forced the parameter through; the adapter still cannot map it.
    assert_eq!(s, 200, "{b}");
    assert!(up.calls()[0].body.get("allowed_openai_params").is_none());
}

#[tokio::test]
async fn additional_drop_params_apply_even_to_openai_compatible_upstreams() {
    let up = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_base: {}\n      api_key: k\n      additional_drop_params: [\"seed\", \"user\"]\n",
        up.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, _, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"m","messages":[],"seed":1,"user":"u","temperature":1}),
        )
        .await;
    assert_eq!(s, 200);
    let b = &up.calls()[0].body;
    assert!(b.get("seed").is_none() && b.get("user").is_none(), "{b}");
    assert_eq!(b["temperature"], 1);
}

#[tokio::test]
async fn rejected_provider_credentials_say_whose_key_is_wrong() {
    let up = MockOpenAi::start().await;
    up.script([Reply::error(401, "Incorrect API key provided: sk-up***")]);
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, _, b) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 401);
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("the provider rejected the gateway's credentials"),
        "{msg}"
    );
    assert!(msg.starts_with("litellm.AuthenticationError"), "{msg}");
}

#[tokio::test]
async fn context_window_errors_are_named_as_such() {
    let up = MockAnthropic::start().await;
    up.script([anthropic::Reply::error(
        400,
        "prompt is too long: 210000 tokens > 200000 maximum",
    )]);
    let gw = TestGateway::start(&claude(&up.root_url(), "")).await;
    let (s, _, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"claude","messages":[{"role":"user","content":"hi"}]}),
        )
        .await;
    assert_eq!(s, 400);
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("litellm.ContextWindowExceededError: ContextWindowExceededError: AnthropicException - prompt is too long"), "{msg}");
}
