//! The real `ferrolite` binary: flags, config validation, startup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

mod common;

use common::process::{tmp_config, Running, BIN};

use ferrolite_testkit::MockOpenAi;
use serde_json::{json, Value};

#[test]
fn version_flag() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ferrolite {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn validate_config_reports_every_problem_and_exits_1() {
    let p = tmp_config("model_list:\n  - model_name: a\n    litellm_params: {api_key: os.environ/FERROLITE_TEST_UNSET_VAR}\n  - model_name: b\n    litellm_params: {model: openai/b, timeout: soon}\n");
    let out = Command::new(BIN)
        .args(["--config", p.path(), "--validate_config"])
        .env_remove("FERROLITE_TEST_UNSET_VAR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("model_list[0].litellm_params.api_key: environment variable FERROLITE_TEST_UNSET_VAR is not set"), "{err}");
    assert!(
        err.contains("model_list[0].litellm_params.model: missing"),
        "{err}"
    );
    assert!(
        err.contains("model_list[1].litellm_params.timeout"),
        "{err}"
    );

    let ok = tmp_config("model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, mock_response: hi}\nlitellm_settings: {langfuse_default_tags: [a]}\n");
    let out = Command::new(BIN)
        .args(["--config", ok.path(), "--validate_config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("config OK: 1 deployment(s)"), "{stdout}");
    assert!(
        stdout.contains("litellm_settings.langfuse_default_tags"),
        "{stdout}"
    );
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/ferrolite.yaml", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read config file /nonexistent/ferrolite.yaml"));
}

#[tokio::test]
async fn serves_a_config_and_warns_once_about_unimplemented_keys() {
    let p = tmp_config(
        "model_list:\n  - model_name: m\n    litellm_params: {model: openai/m, mock_response: hello}\nlitellm_settings: {langfuse_default_tags: [a], callbacks: [langfuse]}\nrouter_settings: {enable_health_check_routing: true}\ngeneral_settings: {master_key: sk-cli-test-master-key}\n",
    );
    let r = Running::start(&["--config", p.path(), "--num_workers", "4"], &[]);
    let warn: Vec<&String> = r
        .seen
        .iter()
        .filter(|l| l.contains("not implemented"))
        .collect();
    assert_eq!(warn.len(), 1, "{:?}", r.seen);
    for k in [
        "litellm_settings.langfuse_default_tags",
        "litellm_settings.callbacks: langfuse",
        "router_settings.enable_health_check_routing",
    ] {
        assert!(warn[0].contains(k), "{}", warn[0]);
    }
    assert!(
        r.seen.iter().any(|l| l.contains("--num_workers 4 ignored")),
        "{:?}",
        r.seen
    );
    let c = ferrolite_core::upstream::client().unwrap();
    let b: Value = c
        .post(r.url("/v1/chat/completions"))
        .bearer_auth("sk-cli-test-master-key")
        .json(&json!({"model":"m","messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["choices"][0]["message"]["content"], "hello");
    assert!(
        !r.seen.iter().any(|l| l.contains("sk-cli-test-master-key")),
        "keys never logged"
    );
}

#[tokio::test]
async fn single_model_mode_and_master_key_from_env() {
    let up = MockOpenAi::start().await;
    let base = up.base_url();
    let r = Running::start(
        &[
            "--model",
            "openai/upstream-model",
            "--alias",
            "mine",
            "--api_base",
            &base,
        ],
        &[("LITELLM_MASTER_KEY", "sk-env-master-key")],
    );
    let c = ferrolite_core::upstream::client().unwrap();
    for model in ["mine", "any-other-name"] {
        let resp = c
            .post(r.url("/chat/completions"))
            .bearer_auth("sk-env-master-key")
            .json(&json!({"model": model, "messages":[]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.json::<Value>().await.unwrap()["model"], model);
    }
    assert!(up
        .calls()
        .iter()
        .all(|c| c.body["model"] == "upstream-model"));
    let denied = c.get(r.url("/v1/models")).send().await.unwrap();
    assert_eq!(denied.status(), 401);
}

#[tokio::test]
async fn no_master_key_warns_loudly() {
    let p = tmp_config("model_list:\n  - model_name: m\n    litellm_params: {model: openai/m, mock_response: hello}\n");
    let r = Running::start(&["--config", p.path()], &[]);
    assert!(
        r.seen.iter().any(|l| l.contains("NO MASTER KEY IS SET")),
        "{:?}",
        r.seen
    );
}
