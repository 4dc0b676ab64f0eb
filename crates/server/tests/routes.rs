//! Models, model info and health routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestGateway;
use ferrolite_core::config::Env;
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::{json, Value};

#[tokio::test]
async fn models_lists_groups_aliases_and_wildcards() {
    let gw = TestGateway::start(
        "model_list:\n  - {model_name: a, litellm_params: {model: openai/a, mock_response: x}}\n  - {model_name: a, litellm_params: {model: openai/a2, mock_response: x}}\n  - {model_name: \"openrouter/*\", litellm_params: {model: \"openrouter/*\", api_key: k}}\nrouter_settings:\n  model_group_alias: {b: a, hidden-one: {model: a, hidden: true}}\n",
    )
    .await;
    for path in ["/v1/models", "/models"] {
        let b: Value = gw.get(path).send().await.unwrap().json().await.unwrap();
        assert_eq!(b["object"], "list");
        let ids: Vec<&str> = b["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a", "b", "openrouter/*"]);
        assert_eq!(
            b["data"][0],
            json!({"id": "a", "object": "model", "created": 1677610602, "owned_by": "openai"})
        );
    }
    let r = gw.get("/v1/models/openrouter/x/y").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], "openrouter/x/y");
    assert_eq!(gw.get("/v1/models/zzz").send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn model_info_never_shows_secrets() {
    let env = Env::isolated([
        ("UPSTREAM_KEY", "sk-super-secret-value"),
        ("ORG", "org-from-env"),
    ]);
    let yaml = "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: os.environ/UPSTREAM_KEY\n      organization: os.environ/ORG\n      extra_headers: {X-Auth: literal-header-secret}\n      temperature: 0.2\n    model_info: {id: my-id, mode: chat, input_cost_per_token: 0.000001}\n";
    let gw = TestGateway::start_with_env(yaml, env).await;
    let text = gw
        .get("/model/info")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("sk-super-secret-value"), "{text}");
    assert!(
        !text.contains("org-from-env"),
        "values from os.environ/ are treated as secrets: {text}"
    );
    assert!(!text.contains("literal-header-secret"), "{text}");
    let b: Value = serde_json::from_str(&text).unwrap();
    let d = &b["data"][0];
    assert_eq!(d["model_name"], "m");
    assert_eq!(d["model_info"]["id"], "my-id");
    assert_eq!(d["litellm_params"]["model"], "openai/gpt-4o");
    assert_eq!(d["litellm_params"]["temperature"], 0.2);
    assert!(d["litellm_params"].get("api_key").is_none());
    let filtered: Value = gw
        .get("/v1/model/info?litellm_model_id=other")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["data"], json!([]));
}

#[tokio::test]
async fn probes_are_open_and_everything_else_needs_the_key() {
    let gw = TestGateway::start("model_list: []\n").await;
    for path in ["/health/liveliness", "/health/liveness"] {
        let r = gw.http.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), json!("I'm alive!"));
    }
    let r = gw
        .http
        .get(gw.url("/health/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        (b["status"].as_str(), b["db"].as_str()),
        (Some("healthy"), Some("Not connected"))
    );
    for path in ["/health", "/v1/models", "/model/info"] {
        assert_eq!(
            gw.http.get(gw.url(path)).send().await.unwrap().status(),
            401,
            "{path}"
        );
    }
    let r = gw
        .http
        .get(gw.url("/health/liveliness"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn no_master_key_means_open() {
    let gw = TestGateway::start("model_list:\n  - {model_name: a, litellm_params: {model: openai/a, mock_response: x}}\ngeneral_settings: {}\n").await;
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model":"a","messages":[]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn health_reports_healthy_and_unhealthy_deployments() {
    let good = MockOpenAi::start().await;
    let bad = MockOpenAi::start().await;
    bad.script([Reply::error(401, "Incorrect API key provided")]);
    let yaml = format!(
        "model_list:\n  - model_name: good\n    litellm_params: {{model: openai/g, api_base: \"{}\", api_key: k}}\n  - model_name: bad\n    litellm_params: {{model: openai/b, api_base: \"{}\", api_key: k}}\n  - model_name: emb\n    litellm_params: {{model: openai/e, api_base: \"{}\", api_key: k}}\n    model_info: {{mode: embedding}}\n",
        good.base_url(),
        bad.base_url(),
        good.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let b: Value = gw
        .get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["healthy_count"], 2, "{b}");
    assert_eq!(b["unhealthy_count"], 1, "{b}");
    let u = &b["unhealthy_endpoints"][0];
    assert_eq!(u["model"], "openai/b");
    assert!(u["error"]
        .as_str()
        .unwrap()
        .contains("Incorrect API key provided"));
    assert!(!b.to_string().contains("Traceback"));
    let paths: Vec<String> = good.calls().iter().map(|c| c.path.clone()).collect();
    assert!(
        paths.contains(&"/v1/embeddings".to_owned())
            && paths.contains(&"/v1/chat/completions".to_owned()),
        "{paths:?}"
    );
    assert_eq!(
        good.calls()
            .iter()
            .find(|c| c.path.ends_with("chat/completions"))
            .unwrap()
            .body["max_tokens"],
        1
    );
}
