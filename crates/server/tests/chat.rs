//! Chat completions through the gateway against a mock OpenAI upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{one_model, TestGateway, MASTER};
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::json;

#[tokio::test]
async fn non_stream_chat_is_forwarded_and_renamed() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("gpt-4o", &up.base_url())).await;
    let (status, h, body) = gw
        .call("/v1/chat/completions", json!({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.3,"foo_unknown":1,"metadata":{"tag":"x"},"num_retries":0}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["model"], "gpt-4o",
        "model is the group the client sent"
    );
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello! How can I help you today?"
    );
    assert_eq!(body["usage"]["total_tokens"], 21);
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cached_tokens"], 0,
        "unknown fields pass through"
    );
    assert_eq!(body["system_fingerprint"], "fp_mock");

    let calls = up.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.path, "/v1/chat/completions");
    assert_eq!(
        c.headers["authorization"], "Bearer sk-upstream-key",
        "the deployment key, never the gateway key"
    );
    assert_eq!(
        c.body,
        json!({"model":"upstream-gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.3,"foo_unknown":1}),
        "prefix stripped, LiteLLM fields removed, unknown params kept"
    );

    for name in [
        "x-litellm-call-id",
        "x-litellm-model-id",
        "x-litellm-response-duration-ms",
        "x-litellm-overhead-duration-ms",
        "x-litellm-version",
    ] {
        assert!(h.contains_key(name), "missing {name}");
    }
    assert_eq!(h["x-litellm-model-group"], "gpt-4o");
    assert_eq!(h["x-litellm-model-api-base"], up.base_url());
    assert_eq!(h["x-litellm-attempted-retries"], "0");
    assert_eq!(h["x-litellm-model-name"], "openai/upstream-gpt-4o");
    let overhead: f64 = h["x-litellm-overhead-duration-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let total: f64 = h["x-litellm-response-duration-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead <= total);
}

#[tokio::test]
async fn deployment_defaults_merge_without_overriding_the_client() {
    let up = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_base: {}\n      api_key: k\n      temperature: 0.1\n      max_tokens: 64\n      extra_headers: {{X-Team: ml}}\n      organization: org-123\n",
        up.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (status, _, _) = gw
        .call(
            "/chat/completions",
            json!({"model":"m","messages":[],"temperature":0.9}),
        )
        .await;
    assert_eq!(status, 200);
    let c = &up.calls()[0];
    assert_eq!(c.body["temperature"], 0.9);
    assert_eq!(c.body["max_tokens"], 64);
    assert_eq!(c.headers["x-team"], "ml");
    assert_eq!(c.headers["openai-organization"], "org-123");
}

#[tokio::test]
async fn every_key_header_litellm_accepts_works() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let body = json!({"model":"m","messages":[]});
    for (name, value) in [
        ("authorization", format!("Bearer {MASTER}")),
        ("x-api-key", MASTER.to_owned()),
        ("x-litellm-api-key", MASTER.to_owned()),
        ("api-key", MASTER.to_owned()),
    ] {
        let r = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .header(name, value)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
    }
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("x-api-key", "sk-wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["type"], "auth_error");
    assert_eq!(err["error"]["code"], "401");
    assert!(
        !err.to_string().contains("sk-wrong"),
        "the presented key is never echoed"
    );
    assert_eq!(up.call_count(), 4);
}

#[tokio::test]
async fn wildcard_groups_route_and_substitute_the_match() {
    let up = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: \"openrouter/*\"\n    litellm_params:\n      model: \"openrouter/*\"\n      api_base: {b}\n      api_key: k\n  - model_name: \"*\"\n    litellm_params:\n      model: \"openai/*\"\n      api_base: {b}\n      api_key: k2\n",
        b = up.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, _, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"openrouter/deepseek/deepseek-chat","messages":[]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["model"], "openrouter/deepseek/deepseek-chat");
    let (s, h, _) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"anything-else","messages":[]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["x-litellm-model-group"], "*");
    let calls = up.calls();
    assert_eq!(calls[0].body["model"], "deepseek/deepseek-chat");
    assert_eq!(calls[0].headers["authorization"], "Bearer k");
    assert_eq!(calls[1].body["model"], "anything-else");
    assert_eq!(calls[1].headers["authorization"], "Bearer k2");
}

#[tokio::test]
async fn azure_uses_deployment_urls_api_version_and_api_key_header() {
    let up = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: az\n    litellm_params:\n      model: azure/my-gpt4o\n      api_base: {}\n      api_key: az-key\n      api_version: \"2024-10-21\"\n",
        up.root_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, _, b) = gw
        .call("/v1/chat/completions", json!({"model":"az","messages":[]}))
        .await;
    assert_eq!(s, 200, "{b}");
    let c = &up.calls()[0];
    assert_eq!(c.path, "/openai/deployments/my-gpt4o/chat/completions");
    assert_eq!(c.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(c.headers["api-key"], "az-key");
    assert!(!c.headers.contains_key("authorization"));
}

#[tokio::test]
async fn azure_style_and_engine_paths_take_the_model_from_the_path() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    for path in [
        "/openai/deployments/m/chat/completions",
        "/engines/m/chat/completions",
    ] {
        let (s, _, b) = gw.call(path, json!({"messages":[]})).await;
        assert_eq!((s, b["model"].as_str()), (200, Some("m")), "{path}");
    }
}

#[tokio::test]
async fn aliases_answer_with_the_alias_name() {
    let up = MockOpenAi::start().await;
    let yaml = format!(
        "{}router_settings:\n  model_group_alias: {{\"gpt4\": \"m\"}}\n",
        one_model("m", &up.base_url())
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, h, b) = gw
        .call(
            "/v1/chat/completions",
            json!({"model":"gpt4","messages":[]}),
        )
        .await;
    assert_eq!((s, b["model"].as_str()), (200, Some("gpt4")));
    assert_eq!(h["x-litellm-model-group"], "m");
}

#[tokio::test]
async fn mock_response_answers_without_an_upstream() {
    let gw = TestGateway::start("model_list:\n  - model_name: fake\n    litellm_params:\n      model: openai/gpt-4o\n      mock_response: \"canned answer\"\n").await;
    let (s, _, b) = gw.call("/v1/chat/completions", json!({"model":"fake","messages":[{"role":"user","content":"hello"}],"mock_response":"client override is ignored"})).await;
    assert_eq!(s, 200);
    assert_eq!(b["choices"][0]["message"]["content"], "canned answer");
    assert_eq!(b["object"], "chat.completion");
    assert!(b["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn legacy_completions_and_embeddings_pass_through() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, _, b) = gw
        .call(
            "/v1/completions",
            json!({"model":"m","prompt":"Say hi","max_tokens":5}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["model"].as_str(), b["object"].as_str()),
        (Some("m"), Some("text_completion"))
    );
    assert_eq!(b["choices"][0]["text"], "Hello! How can I help you today?");
    let (s, _, b) = gw
        .call("/embeddings", json!({"model":"m","input":["a","b"]}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["model"], "m");
    assert_eq!(b["data"].as_array().unwrap().len(), 2);
    assert_eq!(b["data"][1]["embedding"], json!([0.1, -0.2, 0.3]));
    let calls = up.calls();
    assert_eq!(calls[0].path, "/v1/completions");
    assert_eq!(calls[0].body["prompt"], "Say hi");
    assert_eq!(calls[1].path, "/v1/embeddings");
    assert_eq!(
        calls[1].body,
        json!({"model":"upstream-m","input":["a","b"]})
    );
}

#[tokio::test]
async fn completions_stream_strips_usage_unless_asked() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&one_model("m", &up.base_url())).await;
    let (s, _, frames) = gw
        .stream(
            "/v1/completions",
            json!({"model":"m","prompt":"x","stream":true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert!(
        frames.iter().all(|f| !f.contains("\"usage\"")),
        "{frames:?}"
    );
    assert_eq!(
        up.calls()[0].body["stream_options"],
        json!({"include_usage": true})
    );
    let text: String = frames[..frames.len() - 1]
        .iter()
        .map(|f| {
            serde_json::from_str::<serde_json::Value>(f).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(text, "Hello! How can I help you today?");
    let _ = Reply::Default;
}
