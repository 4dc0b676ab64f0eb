//! Spend rows, exactly, for every kind of call: chat JSON and stream, an
//! abandoned stream, `/v1/messages` (JSON and stream) on an Anthropic
//! upstream, `/v1/responses`, a cached answer and a failed call; counters
//! only with `disable_spend_logs`; `cost` in the usage with
//! `include_cost_in_streaming_usage`. On an in-memory SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestGateway;
use ferrolite_core::config::Env;
use ferrolite_core::meter::{CallRecord, CallSink};
use ferrolite_server::store_glue::KeysAndSpend;
use ferrolite_store::{hash_key, Key, SpendLogFilter, SpendRow, Store};
use ferrolite_testkit::openai::chat_chunks;
use ferrolite_testkit::{MockAnthropic, MockOpenAi, Reply};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Notify;

const IN: f64 = 0.001;
const OUT: f64 = 0.002;
const RAW_KEY: &str = "sk-spend-test-1";

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
    hash: String,
    oa: MockOpenAi,
    _ant: MockAnthropic,
}

/// `m` (chat and responses) on an OpenAI mock, `claude` on an Anthropic
/// mock; both priced 0.001 in / 0.002 out per token. `extra` is appended to
/// the config (litellm_settings …).
async fn start(extra: &str, general_extra: &str) -> Env2 {
    let oa = MockOpenAi::start().await;
    let ant = MockAnthropic::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/up-m\n      api_key: sk-up\n      api_base: {base}\n      input_cost_per_token: {IN}\n      output_cost_per_token: {OUT}\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_key: sk-ant\n      api_base: {root}\n      input_cost_per_token: {IN}\n      output_cost_per_token: {OUT}\nrouter_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {master}\n  user_api_key_cache_ttl: 0\n{general_extra}{extra}",
        base = oa.base_url(),
        root = ant.root_url(),
        master = common::MASTER
    );
    let store = Arc::new(Store::connect("sqlite::memory:").await.unwrap());
    let k = Key::new(
        hash_key(RAW_KEY),
        "sk-...st-1".into(),
        ferrolite_store::now_ms(),
    );
    store.create_key(&k).await.unwrap();
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
        hash: k.token,
        oa,
        _ant: ant,
    }
}

impl Env2 {
    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.gw
            .http
            .post(self.gw.url(path))
            .bearer_auth(RAW_KEY)
            .json(body)
    }

    /// POST, read the whole body; status, headers, body text.
    async fn send(&self, path: &str, body: Value) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self.post(path, &body).send().await.unwrap();
        let s = r.status().as_u16();
        let h = r.headers().clone();
        (s, h, r.text().await.unwrap())
    }

    /// Wait for `n` calls to end and be stored; the row of `id`.
    async fn row(&self, n: usize, id: &str) -> SpendRow {
        self.calls.wait(n).await;
        assert!(self.ks.writer.flush(Duration::from_secs(10)).await);
        let rows = self
            .store
            .spend_logs(&SpendLogFilter {
                request_id: Some(id.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "one row for {id}");
        rows.into_iter().next().unwrap()
    }

    async fn key_spend(&self) -> f64 {
        self.store.get_key(&self.hash).await.unwrap().unwrap().spend
    }
}

fn id(h: &reqwest::header::HeaderMap) -> String {
    h["x-litellm-call-id"].to_str().unwrap().to_owned()
}

fn deployment(h: &reqwest::header::HeaderMap) -> String {
    h["x-litellm-model-id"].to_str().unwrap().to_owned()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// The fields every successful row of `group` shares.
fn check(row: &SpendRow, e: &Env2, call_type: &str, group: &str, tokens: (i64, i64)) {
    assert_eq!(row.api_key, e.hash, "{row:?}");
    assert_eq!(row.call_type, call_type, "{row:?}");
    assert_eq!(row.model_group, group, "{row:?}");
    assert_eq!(row.status, "success", "{row:?}");
    assert_eq!(
        (row.prompt_tokens, row.completion_tokens),
        tokens,
        "{row:?}"
    );
    assert_eq!(row.total_tokens, tokens.0 + tokens.1, "{row:?}");
    let want = tokens.0 as f64 * IN + tokens.1 as f64 * OUT;
    assert!(close(row.spend, want), "spend {} want {want}", row.spend);
    assert!(!row.cache_hit);
    assert!(row.end_time >= row.start_time);
}

fn chat(extra: Value) -> Value {
    let mut b = json!({"model":"m","messages":[{"role":"user","content":"hi"}],
        "metadata":{"tags":["team-a","exp-1"]}});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[tokio::test]
async fn chat_json_and_stream_rows_are_exact() {
    let e = start("", "").await;
    let (s, h, _) = e.send("/v1/chat/completions", chat(json!({}))).await;
    assert_eq!(s, 200);
    let row = e.row(1, &id(&h)).await;
    check(&row, &e, "acompletion", "m", (9, 12));
    assert_eq!(row.model_id, deployment(&h));
    assert_eq!(row.model, "openai/up-m");
    assert_eq!(row.request_tags, vec!["team-a", "exp-1"]);
    let cost: f64 = h["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(close(cost, row.spend));

    let (s, h, body) = e
        .send("/v1/chat/completions", chat(json!({"stream": true})))
        .await;
    assert_eq!(s, 200);
    assert!(body.contains("[DONE]"));
    assert!(!body.contains("\"usage\":{"), "usage not asked for: {body}");
    let row2 = e.row(2, &id(&h)).await;
    check(&row2, &e, "acompletion", "m", (9, 12));
    assert_eq!(row2.model_id, deployment(&h));
    assert_eq!(row2.request_tags, vec!["team-a", "exp-1"]);
    assert!(close(e.key_spend().await, row.spend + row2.spend));
}

#[tokio::test]
async fn an_abandoned_stream_is_billed_from_the_estimate() {
    let e = start("", "").await;
    e.oa.script([Reply::SseHang {
        data: chat_chunks("x", "twelve chars", false)[..2].to_vec(),
    }]);
    let r = e
        .post("/v1/chat/completions", &chat(json!({"stream": true})))
        .send()
        .await
        .unwrap();
    let h = r.headers().clone();
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    let row = e.row(1, &id(&h)).await;
    assert_eq!(row.status, "success", "{row:?}");
    assert_eq!(row.model_id, deployment(&h));
    assert_eq!(row.metadata["usage_estimated"], true, "{row:?}");
    assert!(
        row.prompt_tokens >= 1 && row.completion_tokens >= 1,
        "{row:?}"
    );
    let want = row.prompt_tokens as f64 * IN + row.completion_tokens as f64 * OUT;
    assert!(close(row.spend, want), "{row:?}");
    assert!(close(e.key_spend().await, row.spend));
}

fn messages(stream: bool) -> Value {
    json!({"model":"claude","max_tokens":64,"stream":stream,
        "messages":[{"role":"user","content":"hi"}],"metadata":{"tags":["anthropic-sdk"]}})
}

#[tokio::test]
async fn messages_json_and_stream_rows_are_exact() {
    use ferrolite_testkit::anthropic::{INPUT_TOKENS, OUTPUT_TOKENS};
    let tokens = (INPUT_TOKENS as i64, OUTPUT_TOKENS as i64);
    let e = start("", "").await;
    let (s, h, body) = e.send("/v1/messages", messages(false)).await;
    assert_eq!(s, 200, "{body}");
    let row = e.row(1, &id(&h)).await;
    check(&row, &e, "anthropic_messages", "claude", tokens);
    assert_eq!(row.model_id, deployment(&h));
    assert_eq!(row.request_tags, vec!["anthropic-sdk"]);

    let (s, h, body) = e.send("/v1/messages", messages(true)).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("message_stop"), "{body}");
    let row2 = e.row(2, &id(&h)).await;
    check(&row2, &e, "anthropic_messages", "claude", tokens);
    assert_eq!(row2.model_id, deployment(&h));
    assert!(close(e.key_spend().await, row.spend + row2.spend));
}

#[tokio::test]
async fn responses_rows_are_exact() {
    let e = start("", "").await;
    let (s, h, body) = e
        .send(
            "/v1/responses",
            json!({"model":"m","input":"hi","metadata":{"tags":["resp"]}}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let row = e.row(1, &id(&h)).await;
    check(&row, &e, "aresponses", "m", (11, 6));
    assert_eq!(row.model_id, deployment(&h));
    assert!(close(e.key_spend().await, row.spend));
}

#[tokio::test]
async fn a_cached_answer_costs_nothing() {
    let e = start(
        "litellm_settings:\n  cache: true\n  cache_params: {type: local}\n",
        "",
    )
    .await;
    let (_, h1, _) = e.send("/v1/chat/completions", chat(json!({}))).await;
    let (s, h2, _) = e.send("/v1/chat/completions", chat(json!({}))).await;
    assert_eq!(s, 200);
    assert!(h2.contains_key("x-litellm-cache-key"), "a hit");
    assert_eq!(e.oa.call_count(), 1);
    let first = e.row(2, &id(&h1)).await;
    let row = e.row(2, &id(&h2)).await;
    assert!(row.cache_hit, "{row:?}");
    assert_eq!(row.spend, 0.0);
    assert_eq!(row.status, "success");
    assert_eq!(row.call_type, "acompletion");
    assert_eq!(row.model_group, "m");
    assert_eq!(row.api_key, e.hash);
    assert_eq!(row.request_tags, vec!["team-a", "exp-1"]);
    assert!(close(e.key_spend().await, first.spend));
    let cost: f64 = h2["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(cost, 0.0);
}

#[tokio::test]
async fn a_failed_call_is_recorded_at_no_cost() {
    let e = start("", "").await;
    e.oa.script([Reply::error(400, "bad things")]);
    let (s, h, body) = e.send("/v1/chat/completions", chat(json!({}))).await;
    assert_eq!(s, 400, "{body}");
    let row = e.row(1, &id(&h)).await;
    assert_eq!(row.status, "failure", "{row:?}");
    assert_eq!(row.spend, 0.0);
    assert_eq!(row.api_key, e.hash);
    assert_eq!(row.call_type, "acompletion");
    assert_eq!(row.model_group, "m");
    assert_eq!(row.request_tags, vec!["team-a", "exp-1"]);
    assert!(row.metadata.contains_key("error_class"), "{row:?}");
    assert_eq!(e.key_spend().await, 0.0);
}

#[tokio::test]
async fn disable_spend_logs_counts_spend_without_rows() {
    let e = start("", "  disable_spend_logs: true\n").await;
    let (s, h, _) = e.send("/v1/chat/completions", chat(json!({}))).await;
    assert_eq!(s, 200);
    let (s, _, _) = e
        .send("/v1/chat/completions", chat(json!({"stream": true})))
        .await;
    assert_eq!(s, 200);
    e.calls.wait(2).await;
    assert!(e.ks.writer.flush(Duration::from_secs(10)).await);
    let rows = e
        .store
        .spend_logs(&SpendLogFilter::default())
        .await
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    let one = 9.0 * IN + 12.0 * OUT;
    assert!(
        close(e.key_spend().await, 2.0 * one),
        "{}",
        e.key_spend().await
    );
    let _ = id(&h);
}

#[tokio::test]
async fn include_cost_in_streaming_usage_puts_cost_in_the_usage() {
    let e = start(
        "litellm_settings:\n  include_cost_in_streaming_usage: true\n",
        "",
    )
    .await;
    let one = 9.0 * IN + 12.0 * OUT;
    let (s, _, body) = e.send("/v1/chat/completions", chat(json!({}))).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(close(v["usage"]["cost"].as_f64().unwrap(), one), "{v}");
    assert_eq!(v["usage"]["prompt_tokens"], 9);

    let (s, _, body) = e
        .send(
            "/v1/chat/completions",
            chat(json!({"stream": true, "stream_options": {"include_usage": true}})),
        )
        .await;
    assert_eq!(s, 200);
    let frames = common::sse_data(&body);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let usage: Vec<Value> = frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f).ok())
        .filter(|c| c["usage"].is_object())
        .collect();
    assert_eq!(usage.len(), 1, "{body}");
    assert!(
        close(usage[0]["usage"]["cost"].as_f64().unwrap(), one),
        "{body}"
    );
    assert_eq!(usage[0]["model"], "m");
    // The other chunks are relayed as they came.
    assert!(frames
        .iter()
        .all(|f| !f.contains("\"cost\"") || f.contains("\"usage\":{")));

    // Off: no cost anywhere.
    let off = start("", "").await;
    let (_, _, body) = off.send("/v1/chat/completions", chat(json!({}))).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["usage"].get("cost").is_none(), "{v}");
}
