//! Virtual keys end to end over HTTP, on a SQLite store: spend recorded
//! exactly (JSON, stream, abandoned stream), model restrictions, limits,
//! budgets under parallel load, budget resets, admin routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestGateway;
use ferrolite_core::config::Env;
use ferrolite_core::meter::{CallRecord, CallSink};
use ferrolite_server::store_glue::KeysAndSpend;
use ferrolite_store::{hash_key, Key, SpendLogFilter, Store, User};
use ferrolite_testkit::openai::chat_chunks;
use ferrolite_testkit::{MockOpenAi, Reply};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Notify;

/// Input 0.001 and output 0.002 USD per token: the mock's 9 + 12 tokens
/// cost 0.033.
const CALL_COST: f64 = 9.0 * 0.001 + 12.0 * 0.002;

#[derive(Default)]
struct Calls {
    n: Mutex<Vec<CallRecord>>,
    added: Notify,
}

impl CallSink for Calls {
    fn record(&self, rec: &CallRecord) {
        self.n.lock().unwrap().push(rec.clone());
        self.added.notify_waiters();
    }
}

impl Calls {
    async fn wait(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let added = self.added.notified();
            if self.n.lock().unwrap().len() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, added).await.is_err() {
                panic!(
                    "only {} of {n} calls recorded",
                    self.n.lock().unwrap().len()
                );
            }
        }
    }
}

struct Env2 {
    gw: TestGateway,
    store: Arc<Store>,
    ks: KeysAndSpend,
    calls: Arc<Calls>,
    _up: MockOpenAi,
}

async fn start(up: MockOpenAi) -> Env2 {
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/up-m\n      api_key: sk-up\n      api_base: {base}\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n  - model_name: other\n    litellm_params:\n      model: openai/up-other\n      api_key: sk-up\n      api_base: {base}\n    model_info:\n      access_groups: [beta]\ngeneral_settings:\n  master_key: {master}\n  user_api_key_cache_ttl: 0\n",
        base = up.base_url(),
        master = common::MASTER
    );
    let store = Arc::new(Store::connect("sqlite::memory:").await.unwrap());
    let calls = Arc::new(Calls::default());
    let mut ks = None;
    let gw = TestGateway::start_with(&yaml, Env::isolated(Vec::<(String, String)>::new()), |g| {
        ks = Some(KeysAndSpend::attach(g, Arc::clone(&store), None));
        g.add_sink(calls.clone());
    })
    .await;
    Env2 {
        gw,
        store,
        ks: ks.unwrap(),
        calls,
        _up: up,
    }
}

impl Env2 {
    async fn key(&self, raw: &str, edit: impl FnOnce(&mut Key)) -> String {
        let mut k = Key::new(
            hash_key(raw),
            "sk-...test".into(),
            ferrolite_store::now_ms(),
        );
        edit(&mut k);
        self.store.create_key(&k).await.unwrap();
        k.token
    }

    fn post(&self, key: &str, path: &str) -> reqwest::RequestBuilder {
        self.gw.http.post(self.gw.url(path)).bearer_auth(key)
    }

    async fn chat(&self, key: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self
            .post(key, "/v1/chat/completions")
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let h = r.headers().clone();
        (s, h, r.json().await.unwrap())
    }

    /// Wait for `n` calls to end, then for the spend writer to store them.
    async fn settled(&self, n: usize) {
        self.calls.wait(n).await;
        assert!(self.ks.writer.flush(Duration::from_secs(10)).await);
    }

    async fn row(&self, request_id: &str) -> ferrolite_store::SpendRow {
        let rows = self
            .store
            .spend_logs(&SpendLogFilter {
                request_id: Some(request_id.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "one row for {request_id}");
        rows.into_iter().next().unwrap()
    }
}

fn hi() -> Value {
    json!({"model":"m","messages":[{"role":"user","content":"hi"}]})
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn spend_is_recorded_exactly_for_json_streams_and_abandoned_streams() {
    let e = start(MockOpenAi::start().await).await;
    let hash = e
        .key("sk-live-1", |k| k.key_alias = Some("ci".into()))
        .await;

    // JSON: cost header, spend row, key spend.
    let (s, h, _) = e.chat("sk-live-1", hi()).await;
    assert_eq!(s, 200);
    let cost: f64 = h["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(close(cost, CALL_COST), "{cost}");
    assert_eq!(h["x-litellm-key-spend"], "0");
    e.settled(1).await;
    let row = e.row(h["x-litellm-call-id"].to_str().unwrap()).await;
    assert!(close(row.spend, CALL_COST));
    assert_eq!(row.api_key, hash);
    assert_eq!((row.prompt_tokens, row.completion_tokens), (9, 12));
    assert_eq!(row.model_group, "m");
    assert_eq!(row.status, "success");

    // Stream: billed from the upstream's usage when it ends.
    let r = e
        .post("sk-live-1", "/v1/chat/completions")
        .json(&json!({"model":"m","messages":[],"stream":true}))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-litellm-call-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(r.text().await.unwrap().contains("[DONE]"));
    e.settled(2).await;
    let row = e.row(&id).await;
    assert!(row.spend > 0.0 && row.total_tokens > 0, "{row:?}");

    let key = e.store.get_key(&hash).await.unwrap().unwrap();
    let logged: f64 = e
        .store
        .spend_logs(&SpendLogFilter {
            api_key: Some(hash.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|r| r.spend)
        .sum();
    assert!(close(key.spend, logged), "{} vs {logged}", key.spend);
}

#[tokio::test]
async fn an_abandoned_stream_is_billed_for_what_was_relayed() {
    let up = MockOpenAi::start().await;
    up.script([Reply::SseHang {
        data: chat_chunks("x", "twelve chars and more text", false)[..3].to_vec(),
    }]);
    let e = start(up).await;
    let hash = e.key("sk-live-2", |_| {}).await;
    let r = e
        .post("sk-live-2", "/v1/chat/completions")
        .json(&json!({"model":"m","messages":[{"role":"user","content":"a prompt of forty characters, roughly.."}],"stream":true}))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-litellm-call-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    e.settled(1).await;
    let row = e.row(&id).await;
    assert!(row.spend > 0.0, "{row:?}");
    assert!(
        row.prompt_tokens >= 9 && row.completion_tokens >= 1,
        "{row:?}"
    );
    let key = e.store.get_key(&hash).await.unwrap().unwrap();
    assert!(close(key.spend, row.spend));
}

#[tokio::test]
async fn keys_are_checked_in_order_with_litellm_errors() {
    let e = start(MockOpenAi::start().await).await;
    let (s, _, b) = e.chat("sk-unknown", hi()).await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["error"]["type"], "token_not_found_in_db");

    let hash = e.key("sk-only-m", |k| k.models = vec!["m".into()]).await;
    assert_eq!(e.chat("sk-only-m", hi()).await.0, 200);
    let (s, _, b) = e
        .chat("sk-only-m", json!({"model":"other","messages":[]}))
        .await;
    assert_eq!(s, 401);
    assert_eq!(b["error"]["type"], "key_model_access_denied");
    assert_eq!(
        b["error"]["message"],
        "key not allowed to access model. This key can only access models=['m']. Tried to access other"
    );
    // The same check on /v1/messages, in Anthropic's error shape.
    let r = e
        .post("sk-only-m", "/v1/messages")
        .json(&json!({"model":"other","max_tokens":5,"messages":[{"role":"user","content":"x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Blocking takes effect on the next request (cache TTL 0 here).
    e.store
        .set_key_blocked(&hash, true, ferrolite_store::now_ms())
        .await
        .unwrap();
    let (s, _, b) = e.chat("sk-only-m", hi()).await;
    assert_eq!(s, 401);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("blocked"),
        "{b}"
    );

    e.key("sk-expired", |k| k.expires = Some(1_000)).await;
    let (s, _, b) = e.chat("sk-expired", hi()).await;
    assert_eq!((s, b["error"]["type"].as_str()), (401, Some("expired_key")));

    e.key("sk-group", |k| k.models = vec!["beta".into()]).await;
    assert_eq!(
        e.chat("sk-group", json!({"model":"other","messages":[]}))
            .await
            .0,
        200,
        "access group"
    );
}

#[tokio::test]
async fn a_keys_aliases_send_a_model_name_to_another_group() {
    let e = start(MockOpenAi::start().await).await;
    // LiteLLM's example: the key may only use `other`, and `m` is its alias.
    e.key("sk-aliased", |k| {
        k.models = vec!["other".into()];
        k.aliases.insert("m".into(), json!("other"));
        k.aliases.insert("fast".into(), json!("other"));
    })
    .await;
    let (s, h, b) = e.chat("sk-aliased", hi()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["x-litellm-model-group"], "other");
    let (s, h, _) = e
        .chat(
            "sk-aliased",
            json!({"model":"fast","messages":[{"role":"user","content":"x"}]}),
        )
        .await;
    assert_eq!(
        (s, h["x-litellm-model-group"].to_str().unwrap()),
        (200, "other")
    );
    let seen = e._up.calls();
    assert_eq!(
        seen.last().unwrap().body["model"],
        "up-other",
        "sent to the alias's deployment"
    );
    // A stream through the alias.
    let r = e
        .post("sk-aliased", "/v1/chat/completions")
        .json(&json!({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-litellm-model-group"], "other");
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    // Another key without the alias: `fast` is no model at all, and `m`
    // is still `m` (here refused: that key may only use `other`).
    e.key("sk-plain", |k| k.models = vec!["other".into()]).await;
    let (s, _, b) = e
        .chat("sk-plain", json!({"model":"fast","messages":[]}))
        .await;
    assert_eq!(s, 401, "{b}");
    let (s, _, b) = e.chat("sk-plain", hi()).await;
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (401, Some("key_model_access_denied"))
    );
    // The spend row names the group that served the call.
    e.settled(3).await;
    let calls = e.calls.n.lock().unwrap().clone();
    assert!(
        calls.iter().all(|c| c.meta.model_group == "other"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn management_routes_need_an_admin_key() {
    let e = start(MockOpenAi::start().await).await;
    e.key("sk-plain", |_| {}).await;
    let r =
        e.gw.http
            .get(e.gw.url("/key/list"))
            .bearer_auth("sk-plain")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let mut u = User::new("boss".into(), ferrolite_store::now_ms());
    u.user_role = Some("proxy_admin".into());
    e.store.create_user(&u).await.unwrap();
    e.key("sk-boss", |k| k.user_id = Some("boss".into())).await;
    let r =
        e.gw.http
            .get(e.gw.url("/key/list"))
            .bearer_auth("sk-boss")
            .send()
            .await
            .unwrap();
    // Past the admin check (this test gateway has no management store
    // attached, so the route itself answers that).
    assert_ne!(r.status().as_u16(), 403, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn rpm_and_parallel_limits_answer_429() {
    let up = MockOpenAi::start().await;
    up.script([Reply::SseHang {
        data: chat_chunks("x", "hello", false)[..2].to_vec(),
    }]);
    let e = start(up).await;
    e.key("sk-par", |k| k.max_parallel_requests = Some(1)).await;
    let r = e
        .post("sk-par", "/v1/chat/completions")
        .json(&json!({"model":"m","messages":[],"stream":true}))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    let (s, h, b) = e.chat("sk-par", hi()).await;
    assert_eq!(s, 429, "{b}");
    assert!(h.contains_key("retry-after"));
    drop(body);
    e.calls.wait(1).await;
    assert_eq!(e.chat("sk-par", hi()).await.0, 200, "slot released");

    e.key("sk-rpm", |k| k.rpm_limit = Some(2)).await;
    assert_eq!(e.chat("sk-rpm", hi()).await.0, 200);
    assert_eq!(e.chat("sk-rpm", hi()).await.0, 200);
    let (s, _, b) = e.chat("sk-rpm", hi()).await;
    assert_eq!(s, 429);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Limit type: requests. Current limit: 2"),
        "{b}"
    );
}

#[tokio::test]
async fn parallel_requests_cannot_overspend_a_budget() {
    let e = start(MockOpenAi::start().await).await;
    let budget = 0.1;
    let hash = e.key("sk-budget", |k| k.max_budget = Some(budget)).await;
    let body = json!({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":12});
    let results =
        futures_util::future::join_all((0..20).map(|_| e.chat("sk-budget", body.clone()))).await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|r| r.0 != 200)
        .map(|r| &r.2)
        .collect();
    assert!(ok >= 1 && !refused.is_empty(), "ok {ok}");
    for b in &refused {
        assert_eq!(b["error"]["type"], "budget_exceeded", "{b}");
        assert_eq!(b["error"]["code"], "400");
    }
    e.settled(ok).await;
    let key = e.store.get_key(&hash).await.unwrap().unwrap();
    // The reservation of one call: its prompt estimate + max_tokens, priced.
    let body_len = serde_json::to_vec(&body).unwrap().len() as f64;
    let one_reservation = (body_len / 4.0).ceil() * 0.001 + 12.0 * 0.002;
    assert!(
        key.spend <= budget + one_reservation + 1e-9,
        "spent {} of {budget} (+{one_reservation})",
        key.spend
    );
    assert!(close(key.spend, ok as f64 * CALL_COST));
    // Calls go on being admitted while the spend is under the budget, then
    // are refused with the key's spend in the message.
    let mut more = 0;
    let b = loop {
        let (s, _, b) = e.chat("sk-budget", body.clone()).await;
        if s != 200 {
            assert_eq!(s, 400);
            break b;
        }
        more += 1;
        assert!(more < 10, "never refused");
    };
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Budget has been exceeded! Key="),
        "{b}"
    );
    e.settled(ok + more).await;
    let key = e.store.get_key(&hash).await.unwrap().unwrap();
    assert!(
        key.spend >= budget && key.spend <= budget + one_reservation + 1e-9,
        "{}",
        key.spend
    );
}

#[tokio::test]
async fn budgets_reset_when_their_period_is_over() {
    let e = start(MockOpenAi::start().await).await;
    e.key("sk-reset", |k| {
        k.max_budget = Some(0.01);
        k.spend = 5.0;
        k.budget_duration = Some("30d".into());
        k.budget_reset_at = Some(ferrolite_store::now_ms() - 1_000);
    })
    .await;
    let (s, _, b) = e.chat("sk-reset", hi()).await;
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (400, Some("budget_exceeded"))
    );
    assert!(e.ks.enforcer.reset_budgets().await.unwrap() >= 1);
    assert_eq!(e.chat("sk-reset", hi()).await.0, 200);
}
