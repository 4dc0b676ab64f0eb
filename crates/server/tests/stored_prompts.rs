//! `store_prompts_in_spend_logs`: what each kind of call keeps in its spend
//! row (`messages`, `response`), JSON and streamed, bounded in size; nothing
//! when off or with `turn_off_message_logging`; `/spend/logs` returns it.
//! And spend-log retention driven by the config. On an in-memory SQLite
//! store, with mock upstreams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/admin_gateway.rs"]
mod admin_gateway;
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestGateway;
use ferrolite_core::config::Env;
use ferrolite_core::meter::{CallRecord, CallSink};
use ferrolite_core::spend::SpendLogSettings;
use ferrolite_server::store_glue::KeysAndSpend;
use ferrolite_store::{hash_key, Key, SpendLogFilter, SpendRow, Store};
use ferrolite_testkit::openai::chat_chunks;
use ferrolite_testkit::{MockAnthropic, MockOpenAi, Reply};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Notify;

const RAW_KEY: &str = "sk-stored-prompts-1";

#[derive(Default)]
struct Calls {
    n: Mutex<usize>,
    added: Notify,
}

impl CallSink for Calls {
    fn record(&self, _rec: &CallRecord) {
        *self.n.lock().unwrap() += 1;
        self.added.notify_waiters();
    }
}

impl Calls {
    async fn wait(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let added = self.added.notified();
            if *self.n.lock().unwrap() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, added).await.is_err() {
                panic!("only {} of {n} calls recorded", *self.n.lock().unwrap());
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
    settings: SpendLogSettings,
    oa: MockOpenAi,
    _ant: MockAnthropic,
}

/// `m` on an OpenAI mock, `claude` on an Anthropic mock; `general` is added
/// to general_settings, `rest` after it (litellm_settings …).
async fn start(general: &str, rest: &str) -> Env2 {
    let oa = MockOpenAi::start().await;
    let ant = MockAnthropic::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/up-m\n      api_key: sk-up\n      api_base: {base}\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_key: sk-ant\n      api_base: {root}\nrouter_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {master}\n  user_api_key_cache_ttl: 0\n{general}{rest}",
        base = oa.base_url(),
        root = ant.root_url(),
        master = common::MASTER
    );
    let store = Arc::new(Store::connect("sqlite::memory:").await.unwrap());
    let k = Key::new(
        hash_key(RAW_KEY),
        "sk-...ts-1".into(),
        ferrolite_store::now_ms(),
    );
    store.create_key(&k).await.unwrap();
    let calls = Arc::new(Calls::default());
    let mut ks = None;
    let mut settings = None;
    let gw = TestGateway::start_with(&yaml, Env::isolated(Vec::<(String, String)>::new()), |g| {
        settings = Some(g.config.general.spend.logs.clone());
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
        settings: settings.unwrap(),
        oa,
        _ant: ant,
    }
}

impl Env2 {
    /// `GET /spend/logs?request_id=…` from the management API on this store.
    async fn spend_logs(&self, id: &str) -> Value {
        let admin = admin_gateway::AdminGateway::start_app(
            ferrolite_server::build_app,
            Some(Arc::clone(&self.store)),
        )
        .await;
        let (s, v) = admin.get(&format!("/spend/logs?request_id={id}")).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.gw
            .http
            .post(self.gw.url(path))
            .bearer_auth(RAW_KEY)
            .json(body)
    }

    /// POST, read the whole body: status, call id, body text.
    async fn send(&self, path: &str, body: Value) -> (u16, String, String) {
        let r = self.post(path, &body).send().await.unwrap();
        let s = r.status().as_u16();
        let id = r.headers()["x-litellm-call-id"]
            .to_str()
            .unwrap()
            .to_owned();
        (s, id, r.text().await.unwrap())
    }

    /// Wait for `n` calls to end and be stored; the row of `id`, content
    /// included.
    async fn row(&self, n: usize, id: &str) -> SpendRow {
        self.calls.wait(n).await;
        assert!(self.ks.writer.flush(Duration::from_secs(10)).await);
        let rows = self
            .store
            .spend_logs(&SpendLogFilter {
                request_id: Some(id.into()),
                content: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "one row for {id}");
        rows.into_iter().next().unwrap()
    }
}

fn parsed(text: &Option<String>) -> Value {
    serde_json::from_str(text.as_deref().expect("stored")).expect("stored JSON")
}

const ON: &str = "  store_prompts_in_spend_logs: true\n";

#[tokio::test]
async fn off_by_default_nothing_is_kept() {
    let e = start("", "").await;
    let body = json!({"model":"m","messages":[{"role":"user","content":"secret question"}]});
    let (s, id, _) = e.send("/v1/chat/completions", body.clone()).await;
    assert_eq!(s, 200);
    let row = e.row(1, &id).await;
    assert_eq!((row.messages, row.response), (None, None));
    let mut stream = body;
    stream["stream"] = json!(true);
    let (s, id, _) = e.send("/v1/chat/completions", stream).await;
    assert_eq!(s, 200);
    let row = e.row(2, &id).await;
    assert_eq!((row.messages, row.response), (None, None));
    // LiteLLM's /spend/logs shows `{}` for content never stored.
    let logs = e.spend_logs(&id).await;
    assert_eq!(logs[0]["messages"], json!({}), "{logs}");
    assert_eq!(logs[0]["response"], json!({}), "{logs}");
}

#[tokio::test]
async fn chat_json_and_stream_are_kept_as_sent() {
    let e = start(ON, "").await;
    let messages = json!([
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "<script>alert(1)</script> & \"quotes\""}
    ]);
    e.oa.script([Reply::Content("<b>bold</b> answer".into())]);
    let (s, id, text) = e
        .send(
            "/v1/chat/completions",
            json!({"model": "m", "messages": messages, "temperature": 0.2}),
        )
        .await;
    assert_eq!(s, 200, "{text}");
    let row = e.row(1, &id).await;
    assert_eq!(parsed(&row.messages), messages, "the messages as sent");
    let sent: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        parsed(&row.response),
        sent,
        "the answer as the client got it"
    );
    assert_eq!(
        sent["choices"][0]["message"]["content"],
        "<b>bold</b> answer"
    );

    e.oa.script([Reply::Content("streamed, in pieces".into())]);
    let (s, id, text) = e
        .send(
            "/v1/chat/completions",
            json!({"model": "m", "messages": messages, "stream": true}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(text.contains("[DONE]"));
    let row = e.row(2, &id).await;
    assert_eq!(parsed(&row.messages), messages);
    let answer = parsed(&row.response);
    assert_eq!(answer["object"], "chat.completion", "{answer}");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "streamed, in pieces"
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");

    // The LiteLLM API returns them as JSON.
    let logs = e.spend_logs(&id).await;
    assert_eq!(logs[0]["messages"], messages, "{logs}");
    assert_eq!(
        logs[0]["response"]["choices"][0]["message"]["content"],
        "streamed, in pieces"
    );
}

#[tokio::test]
async fn an_abandoned_stream_keeps_what_was_relayed() {
    let e = start(ON, "").await;
    e.oa.script([Reply::SseHang {
        data: chat_chunks("x", "first words then more", false)[..3].to_vec(),
    }]);
    let r = e
        .post(
            "/v1/chat/completions",
            &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}),
        )
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-litellm-call-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("first") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    drop(body);
    let row = e.row(1, &id).await;
    let content = parsed(&row.response)["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(content.starts_with("first"), "{content}");
    assert!(
        !content.contains("more"),
        "only what was relayed: {content}"
    );
}

#[tokio::test]
async fn huge_prompts_and_answers_are_cut_to_the_bound() {
    let e = start(
        &format!("{ON}  maximum_spend_logs_content_bytes: 4096\n"),
        "",
    )
    .await;
    let prompt = format!("BEGIN{}END", "x".repeat(300_000));
    e.oa.script([Reply::Content(format!("ANS{}WER", "y".repeat(100_000)))]);
    let (s, id, _) = e
        .send(
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": prompt}]}),
        )
        .await;
    assert_eq!(s, 200);
    let row = e.row(1, &id).await;
    for (what, col) in [("messages", &row.messages), ("response", &row.response)] {
        let len = col.as_ref().unwrap().len();
        assert!(len <= 4096, "{what}: {len} bytes");
    }
    let m = parsed(&row.messages);
    let text = m[0]["content"].as_str().unwrap();
    assert!(text.starts_with("BEGIN") && text.ends_with("END"), "{text}");
    assert!(text.contains("…[ferrolite truncated "), "{text}");
    assert_eq!(m[0]["role"], "user");
    let a = parsed(&row.response);
    let text = a["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("ANS") && text.ends_with("WER"), "{text}");
}

#[tokio::test]
async fn every_dialect_keeps_its_own_shape() {
    use ferrolite_testkit::anthropic::DEFAULT_TEXT;
    let e = start(ON, "").await;
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };

    // Anthropic /v1/messages: system and messages; the message answer.
    let req = json!({"model": "claude", "max_tokens": 64, "system": "be kind",
        "messages": [{"role": "user", "content": "hi"}]});
    let (s, id, _) = e.send("/v1/messages", req.clone()).await;
    assert_eq!(s, 200);
    let row = e.row(next(), &id).await;
    assert_eq!(
        parsed(&row.messages),
        json!({"system": "be kind", "messages": [{"role": "user", "content": "hi"}]})
    );
    let a = parsed(&row.response);
    assert_eq!(
        (a["type"].as_str(), a["content"][0]["text"].as_str()),
        (Some("message"), Some(DEFAULT_TEXT)),
        "{a}"
    );
    let mut stream = req;
    stream["stream"] = json!(true);
    let (s, id, text) = e.send("/v1/messages", stream).await;
    assert_eq!(s, 200, "{text}");
    let row = e.row(next(), &id).await;
    let a = parsed(&row.response);
    assert_eq!(a["content"][0]["text"], DEFAULT_TEXT, "{a}");
    assert_eq!(a["stop_reason"], "end_turn", "{a}");

    // Responses: instructions and input; the response object.
    let (s, id, text) = e
        .send(
            "/v1/responses",
            json!({"model": "m", "instructions": "terse", "input": "hello"}),
        )
        .await;
    assert_eq!(s, 200, "{text}");
    let row = e.row(next(), &id).await;
    assert_eq!(
        parsed(&row.messages),
        json!({"instructions": "terse", "input": "hello"})
    );
    assert_eq!(
        parsed(&row.response),
        serde_json::from_str::<Value>(&text).unwrap()
    );

    // Legacy completions: the prompt.
    let (s, id, text) = e
        .send("/v1/completions", json!({"model": "m", "prompt": "say hi"}))
        .await;
    assert_eq!(s, 200, "{text}");
    let row = e.row(next(), &id).await;
    assert_eq!(parsed(&row.messages), json!("say hi"));
    assert_eq!(
        parsed(&row.response),
        serde_json::from_str::<Value>(&text).unwrap()
    );

    // Embeddings: the input only.
    let (s, id, _) = e
        .send("/v1/embeddings", json!({"model": "m", "input": ["a", "b"]}))
        .await;
    assert_eq!(s, 200);
    let row = e.row(next(), &id).await;
    assert_eq!(parsed(&row.messages), json!(["a", "b"]));
    assert_eq!(row.response, None, "vectors are not kept");

    // Gemini: contents as sent; the answer in Gemini's shape, JSON and SSE.
    let contents = json!([{"role": "user", "parts": [{"text": "ciao"}]}]);
    let (s, id, text) = e
        .send(
            "/v1beta/models/m:generateContent",
            json!({"contents": contents}),
        )
        .await;
    assert_eq!(s, 200, "{text}");
    let row = e.row(next(), &id).await;
    assert_eq!(parsed(&row.messages), json!({"contents": contents}));
    assert_eq!(
        parsed(&row.response),
        serde_json::from_str::<Value>(&text).unwrap()
    );
    let (s, id, text) = e
        .send(
            "/v1beta/models/m:streamGenerateContent?alt=sse",
            json!({"contents": contents}),
        )
        .await;
    assert_eq!(s, 200, "{text}");
    let row = e.row(next(), &id).await;
    let a = parsed(&row.response);
    assert_eq!(
        a["candidates"][0]["content"]["parts"][0]["text"], "Hello! How can I help you today?",
        "{a}"
    );
}

#[tokio::test]
async fn turn_off_message_logging_keeps_nothing() {
    let e = start(ON, "litellm_settings:\n  turn_off_message_logging: true\n").await;
    let (s, id, _) = e
        .send(
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "private"}]}),
        )
        .await;
    assert_eq!(s, 200);
    let row = e.row(1, &id).await;
    assert_eq!((row.messages, row.response), (None, None));
}

#[tokio::test]
async fn retention_from_the_config_deletes_old_rows_and_keeps_spend() {
    let e = start(
        "  maximum_spend_logs_retention_period: 7d\n  maximum_spend_logs_rows: 5\n",
        "",
    )
    .await;
    assert_eq!(
        e.settings.retention_period,
        Some(Duration::from_secs(7 * 86_400))
    );
    let (s, id, _) = e
        .send(
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(s, 200);
    e.row(1, &id).await;
    let now = ferrolite_store::now_ms();
    let at = |id: String, t: i64| {
        let mut r = SpendRow::new(id, e.hash.clone(), t);
        r.spend = 0.25;
        r
    };
    let old: Vec<SpendRow> = (0..10)
        .map(|i| at(format!("old-{i}"), now - 30 * 86_400_000 - i))
        .collect();
    let recent: Vec<SpendRow> = (0..6)
        .map(|i| at(format!("recent-{i}"), now - 60_000 * (i + 1)))
        .collect();
    e.store.record_spend(&old).await.unwrap();
    e.store.record_spend(&recent).await.unwrap();
    let spend = e.store.get_key(&e.hash).await.unwrap().unwrap().spend;

    let p = ferrolite_server::spend_retention::run_once(&e.store, &e.settings, now)
        .await
        .unwrap();
    assert_eq!((p.by_age, p.by_count), (10, 2), "{p:?}");
    let left: Vec<String> = e
        .store
        .spend_logs(&SpendLogFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(left.len(), 5, "{left:?}");
    assert!(left.contains(&id), "the newest rows stay: {left:?}");
    assert!(left.iter().all(|r| !r.starts_with("old-")));
    assert_eq!(
        e.store.get_key(&e.hash).await.unwrap().unwrap().spend,
        spend,
        "key spend untouched"
    );
}
