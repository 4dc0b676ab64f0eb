//! The generic webhook callback end to end: calls through the gateway reach
//! an in-process receiver as LiteLLM-shaped events (tokens, cost, model
//! group, status, who called), filtered by event type, in each log format,
//! with the configured headers; a dead receiver slows no request; shutdown
//! sends what is queued.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestGateway, MASTER};
use ferrolite_core::config::Env;
use ferrolite_core::observe::webhook::{shutdown_all, Webhook};
use ferrolite_testkit::{MockOpenAi, MockWebhook, Reply};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// A priced deployment `m` at `base`, and `extra` appended (YAML).
fn config(base: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/upstream-m\n      api_key: sk-upstream-key\n      api_base: {base}\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n{extra}"
    )
}

fn env(vars: &[(&str, &str)]) -> Env {
    Env::isolated(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

async fn start(yaml: &str, env: Env) -> (TestGateway, Vec<Arc<Webhook>>) {
    let mut hooks = Vec::new();
    let gw = TestGateway::start_with(yaml, env, |g| hooks = g.webhooks.clone()).await;
    (gw, hooks)
}

fn chat(stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

fn by_id<'a>(events: &'a [Value], id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no event {id} in {events:?}"))
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-9
}

#[tokio::test]
async fn json_and_stream_calls_become_events_with_usage_cost_and_group() {
    let up = MockOpenAi::start().await;
    let hook = MockWebhook::start().await;
    let yaml = config(
        &up.base_url(),
        "litellm_settings:\n  callbacks: [\"audit\"]\ncallback_settings:\n  audit:\n    callback_type: generic_api\n    endpoint: os.environ/AUDIT_URL\n    headers:\n      Authorization: os.environ/AUDIT_TOKEN\n      X-Source: ferrolite\n    flush_interval: 0.05\n",
    );
    let (gw, hooks) = start(
        &yaml,
        env(&[
            ("AUDIT_URL", &hook.url()),
            ("AUDIT_TOKEN", "Bearer audit-secret"),
        ]),
    )
    .await;
    assert_eq!(hooks.len(), 1);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (status, h, _) = gw.call("/v1/chat/completions", chat(false)).await;
    assert_eq!(status, 200);
    let json_id = h["x-litellm-call-id"].to_str().unwrap().to_owned();
    let (status, h, frames) = gw.stream("/v1/chat/completions", chat(true)).await;
    assert_eq!(status, 200);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let stream_id = h["x-litellm-call-id"].to_str().unwrap().to_owned();

    let events = hook.wait_events(2, WAIT).await;
    assert_eq!(events.len(), 2, "{events:?}");
    for (id, stream) in [(&json_id, false), (&stream_id, true)] {
        let e = by_id(&events, id);
        assert_eq!(e["status"], "success");
        assert_eq!(e["call_type"], "acompletion");
        assert_eq!(e["stream"], stream);
        assert_eq!(e["model"], "upstream-m");
        assert_eq!(e["model_group"], "m");
        assert_eq!(e["custom_llm_provider"], "openai");
        assert_eq!(e["api_base"], up.base_url());
        assert!(e["model_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(
            (
                &e["prompt_tokens"],
                &e["completion_tokens"],
                &e["total_tokens"]
            ),
            (&json!(9), &json!(12), &json!(21)),
            "{e}"
        );
        // 9 × 0.001 + 12 × 0.002
        assert!(close(&e["response_cost"], 0.033), "{e}");
        assert_eq!(e["cache_hit"], false);
        assert_eq!(e["hidden_params"]["usage_estimated"], false);
        let (s, end) = (
            e["startTime"].as_f64().unwrap(),
            e["endTime"].as_f64().unwrap(),
        );
        assert!(s >= started - 1.0 && end >= s, "{e}");
        let first = e["completionStartTime"].as_f64().unwrap();
        if stream {
            assert!(first >= s && first <= end, "{e}");
        } else {
            assert_eq!(first, end);
        }
        assert_eq!(e["error_information"], Value::Null);
        assert!(e.get("messages").is_none());
    }
    // The master key: no virtual key to describe.
    assert_eq!(events[0]["metadata"]["user_api_key_hash"], Value::Null);
    let d = &hook.deliveries()[0];
    assert_eq!(d.headers["authorization"], "Bearer audit-secret");
    assert_eq!(d.headers["x-source"], "ferrolite");
    assert_eq!(d.headers["content-type"], "application/json");
    assert!(d.body.starts_with(b"["), "json_array by default");
    let body = String::from_utf8_lossy(&d.body);
    assert!(!body.contains(MASTER) && !body.contains("sk-upstream-key"));
}

#[tokio::test]
async fn failures_are_failure_events_and_lists_and_event_types_filter() {
    let up = MockOpenAi::start().await;
    let ok_hook = MockWebhook::start().await;
    let fail_hook = MockWebhook::start().await;
    let yaml = config(
        &up.base_url(),
        &format!(
            "litellm_settings:\n  success_callback: [\"ok_only\"]\n  callbacks: [\"fail_only\"]\ncallback_settings:\n  ok_only: {{callback_type: generic_api, endpoint: \"{}\", flush_interval: 0.05}}\n  fail_only: {{callback_type: generic_api, endpoint: \"{}\", event_types: [llm_api_failure], log_format: ndjson, flush_interval: 0.05}}\nrouter_settings:\n  num_retries: 0\n",
            ok_hook.url(),
            fail_hook.url()
        ),
    );
    let (gw, _hooks) = start(&yaml, env(&[])).await;
    up.script([Reply::error(400, "bad input from the client")]);
    let (status, h, _) = gw.call("/v1/chat/completions", chat(false)).await;
    assert_eq!(status, 400);
    let failed_id = h["x-litellm-call-id"].to_str().unwrap().to_owned();
    let (status, h, _) = gw.call("/v1/chat/completions", chat(false)).await;
    assert_eq!(status, 200);
    let ok_id = h["x-litellm-call-id"].to_str().unwrap().to_owned();

    let failures = fail_hook.wait_events(1, WAIT).await;
    let oks = ok_hook.wait_events(1, WAIT).await;
    assert_eq!(failures.len(), 1);
    assert_eq!(oks.len(), 1);
    let f = &failures[0];
    assert_eq!(f["id"], failed_id.as_str());
    assert_eq!(f["status"], "failure");
    assert_eq!(f["model_group"], "m");
    assert_eq!(
        f["error_information"],
        json!({"error_code": "400", "error_class": "BadRequestError", "llm_provider": "openai"})
    );
    assert!(
        f["error_str"].as_str().unwrap().contains("bad input"),
        "{f}"
    );
    assert_eq!(f["response_cost"], 0.0);
    assert_eq!(oks[0]["id"], ok_id.as_str());
    assert_eq!(oks[0]["status"], "success");
    // ndjson: one object per line, not an array.
    assert!(fail_hook.deliveries()[0].body.starts_with(b"{"));
    // Give a wrongly routed event time to arrive, then check none did.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ok_hook.events().len(), 1);
    assert_eq!(fail_hook.events().len(), 1);
}

#[tokio::test]
async fn a_url_in_callbacks_and_the_single_format_one_post_per_event() {
    let up = MockOpenAi::start().await;
    let url_hook = MockWebhook::start().await;
    let single = MockWebhook::start().await;
    let yaml = config(
        &up.base_url(),
        &format!(
            "litellm_settings:\n  callbacks: [\"{}\"]\ncallback_settings:\n  each: {{callback_type: generic_api, endpoint: \"{}\", log_format: single, flush_interval: 0.05}}\n",
            url_hook.url(),
            single.url()
        ),
    );
    let (gw, hooks) = start(&yaml, env(&[])).await;
    for _ in 0..3 {
        let (status, _, _) = gw.call("/v1/chat/completions", chat(false)).await;
        assert_eq!(status, 200);
    }
    assert_eq!(single.wait_events(3, WAIT).await.len(), 3);
    assert!(single
        .deliveries()
        .iter()
        .all(|d| d.body.starts_with(b"{") && d.events().len() == 1));
    // The URL webhook batches every 5 s by default: shutdown sends it.
    drop(gw);
    shutdown_all(&hooks, WAIT).await;
    assert_eq!(url_hook.events().len(), 3);
    assert_eq!(url_hook.deliveries().len(), 1);
}

#[tokio::test]
async fn a_dead_receiver_slows_nothing_and_its_events_are_counted_as_dropped() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let up = MockOpenAi::start().await;
    let yaml = config(
        &up.base_url(),
        &format!(
            "litellm_settings:\n  callbacks: [\"dead\"]\ncallback_settings:\n  dead: {{callback_type: generic_api, endpoint: \"{url}\", batch_size: 2, flush_interval: 0.01, timeout: 5, max_retries: 1}}\n"
        ),
    );
    let (gw, hooks) = start(&yaml, env(&[])).await;
    let t = Instant::now();
    for _ in 0..20 {
        let (status, _, _) = gw.call("/v1/chat/completions", chat(false)).await;
        assert_eq!(status, 200);
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "requests waited on the webhook: {:?}",
        t.elapsed()
    );
    let w = &hooks[0];
    assert_eq!(w.sent(), 0);
    // Shutdown gives up on the stuck POST within its limit; every event is
    // accounted for.
    drop(gw);
    let t = Instant::now();
    shutdown_all(&hooks, Duration::from_millis(300)).await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(w.dropped(), 20);
    assert_eq!(w.queued(), 0);
}

#[tokio::test]
async fn a_virtual_keys_hash_and_names_are_sent_never_the_key() {
    use ferrolite_server::store_glue::KeysAndSpend;
    use ferrolite_store::{hash_key, Key, Store, Team};

    let up = MockOpenAi::start().await;
    let hook = MockWebhook::start().await;
    let yaml = config(
        &up.base_url(),
        &format!(
            "litellm_settings:\n  callbacks: [\"k\"]\ncallback_settings:\n  k: {{callback_type: generic_api, endpoint: \"{}\", flush_interval: 0.05}}\ngeneral_settings:\n  master_key: {MASTER}\n",
            hook.url()
        ),
    );
    let store = Arc::new(Store::connect("sqlite::memory:").await.unwrap());
    let mut ks = None;
    let gw = TestGateway::start_with(&yaml, env(&[]), |g| {
        ks = Some(KeysAndSpend::attach(g, Arc::clone(&store), None));
    })
    .await;
    let _ks = ks.unwrap();
    let now = ferrolite_store::now_ms();
    let mut team = Team::new("team-1".into(), now);
    team.team_alias = Some("Team One".into());
    store.create_team(&team).await.unwrap();
    let raw = "sk-webhook-virtual-key";
    let mut k = Key::new(hash_key(raw), "sk-...-key".into(), now);
    k.key_alias = Some("ci".into());
    k.team_id = Some("team-1".into());
    k.user_id = Some("user-9".into());
    store.create_key(&k).await.unwrap();
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(raw)
        .json(
            &json!({"model": "m", "user": "end-7", "metadata": {"tags": ["batch"]},
                      "messages": [{"role": "user", "content": "a secret prompt"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let events = hook.wait_events(1, WAIT).await;
    let e = &events[0];
    assert_eq!(
        e["metadata"],
        json!({
            "user_api_key_hash": hash_key(raw),
            "user_api_key_alias": "ci",
            "user_api_key_team_id": "team-1",
            "user_api_key_team_alias": "Team One",
            "user_api_key_user_id": "user-9",
            "user_api_key_end_user_id": "end-7",
        })
    );
    assert_eq!(e["end_user"], "end-7");
    assert_eq!(e["request_tags"], json!(["batch"]));
    let body = String::from_utf8_lossy(&hook.deliveries()[0].body).into_owned();
    assert!(!body.contains(raw), "the raw key was sent");
    assert!(!body.contains("a secret prompt"), "the prompt was sent");
}
