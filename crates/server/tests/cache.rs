//! The response cache against mock upstreams: hits and misses, per-request
//! controls, `default_off`, `supported_call_types`, what the key ignores,
//! stream replay, the call record of a hit, Redis (shared by two gateways,
//! stopped mid-test, never reachable) and coalescing of identical requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestGateway;
use ferrolite_core::config::Env;
use ferrolite_core::meter::{CallRecord, CallSink, CallType};
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::{json, Value};

fn config(base: &str, cache_params: &str) -> String {
    format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/upstream-m, api_key: k, api_base: \"{base}\"}}\n  - model_name: e\n    litellm_params: {{model: openai/text-embedding-3-small, api_key: k, api_base: \"{base}\"}}\nrouter_settings:\n  num_retries: 0\n  model_group_alias: {{alias: m}}\nlitellm_settings:\n  cache: true\n  cache_params: {cache_params}\n"
    )
}

async fn local(up: &MockOpenAi) -> TestGateway {
    TestGateway::start(&config(&up.base_url(), "{type: local}")).await
}

fn chat(content: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": content}]})
}

fn cache_key(h: &reqwest::header::HeaderMap) -> Option<String> {
    h.get("x-litellm-cache-key")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_identical_request_is_answered_from_the_cache() {
    let up = MockOpenAi::start().await;
    let gw = local(&up).await;
    let (s1, h1, b1) = gw.call("/v1/chat/completions", chat("hi")).await;
    assert_eq!(s1, 200);
    assert_eq!(cache_key(&h1), None, "a miss has no cache key");
    let (s2, h2, b2) = gw.call("/v1/chat/completions", chat("hi")).await;
    assert_eq!(s2, 200);
    assert_eq!(up.call_count(), 1);
    let key = cache_key(&h2).expect("a hit names its key");
    assert_eq!(key.len(), 64);
    assert_eq!(b1, b2, "the stored answer, id and created included");
    assert_eq!(h2["x-litellm-model-group"], "m");
    // Another prompt misses; an alias of the same group hits, reported
    // under the name asked for.
    gw.call("/v1/chat/completions", chat("other")).await;
    assert_eq!(up.call_count(), 2);
    let (_, h3, b3) = gw
        .call(
            "/v1/chat/completions",
            json!({"model": "alias", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(up.call_count(), 2);
    assert_eq!(cache_key(&h3).as_deref(), Some(key.as_str()));
    assert_eq!(b3["model"], "alias");
    assert_eq!(b3["choices"], b1["choices"]);
}

#[tokio::test]
async fn metadata_user_and_stream_flags_are_not_part_of_the_key() {
    let up = MockOpenAi::start().await;
    let gw = local(&up).await;
    let mut a = chat("hi");
    a["user"] = json!("alice");
    a["metadata"] = json!({"tags": ["x"], "trace": 1});
    gw.call("/v1/chat/completions", a).await;
    let mut b = chat("hi");
    b["user"] = json!("bob");
    b["metadata"] = json!({"other": true});
    b["num_retries"] = json!(1);
    let (_, h, _) = gw.call("/v1/chat/completions", b).await;
    assert!(cache_key(&h).is_some());
    // Sampling parameters are part of it.
    let mut c = chat("hi");
    c["temperature"] = json!(0.3);
    let (_, h, _) = gw.call("/v1/chat/completions", c).await;
    assert!(cache_key(&h).is_none());
    assert_eq!(up.call_count(), 2);
    // The upstream never saw LiteLLM's fields.
    assert!(up.calls()[0].body.get("metadata").is_none());
}

#[tokio::test]
async fn no_cache_skips_the_read_and_no_store_skips_the_write() {
    let up = MockOpenAi::start().await;
    let gw = local(&up).await;
    let mut body = chat("hi");
    body["cache"] = json!({"no-store": true});
    gw.call("/v1/chat/completions", body.clone()).await;
    gw.call("/v1/chat/completions", body).await;
    assert_eq!(up.call_count(), 2, "no-store: nothing was kept");
    gw.call("/v1/chat/completions", chat("hi")).await;
    assert_eq!(up.call_count(), 3);
    let mut body = chat("hi");
    body["cache"] = json!({"no-cache": true});
    let (_, h, _) = gw.call("/v1/chat/completions", body).await;
    assert!(cache_key(&h).is_none());
    assert_eq!(up.call_count(), 4, "no-cache: went upstream");
    // The Cache-Control header does the same.
    let r = gw
        .post("/v1/chat/completions")
        .header("cache-control", "no-cache")
        .json(&chat("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-litellm-cache-key").is_none());
    assert_eq!(up.call_count(), 5);
    let (_, h, _) = gw.call("/v1/chat/completions", chat("hi")).await;
    assert!(cache_key(&h).is_some());
    assert_eq!(up.call_count(), 5);
}

#[tokio::test]
async fn s_maxage_and_max_age_refuse_older_entries() {
    let up = MockOpenAi::start().await;
    let gw = local(&up).await;
    gw.call("/v1/chat/completions", chat("hi")).await;
    let mut fresh_enough = chat("hi");
    fresh_enough["cache"] = json!({"s-maxage": 600});
    let (_, h, _) = gw.call("/v1/chat/completions", fresh_enough).await;
    assert!(cache_key(&h).is_some());
    let r = gw
        .post("/v1/chat/completions")
        .header("cache-control", "max-age=0")
        .json(&chat("hi"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-litellm-cache-key").is_none());
    assert_eq!(up.call_count(), 2);
}

#[tokio::test]
async fn default_off_caches_only_requests_that_opt_in() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&config(&up.base_url(), "{type: local, mode: default_off}")).await;
    gw.call("/v1/chat/completions", chat("hi")).await;
    gw.call("/v1/chat/completions", chat("hi")).await;
    assert_eq!(up.call_count(), 2);
    let mut opt_in = chat("hi");
    opt_in["cache"] = json!({"use-cache": true});
    gw.call("/v1/chat/completions", opt_in.clone()).await;
    let (_, h, _) = gw.call("/v1/chat/completions", opt_in).await;
    assert!(cache_key(&h).is_some());
    assert_eq!(up.call_count(), 3);
}

#[tokio::test]
async fn only_supported_call_types_are_cached() {
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&config(
        &up.base_url(),
        "{type: local, supported_call_types: [aembedding]}",
    ))
    .await;
    gw.call("/v1/chat/completions", chat("hi")).await;
    gw.call("/v1/chat/completions", chat("hi")).await;
    assert_eq!(up.call_count(), 2);
    let emb = json!({"model": "e", "input": ["a", "b"]});
    let (_, _, b1) = gw.call("/v1/embeddings", emb.clone()).await;
    let (s, h, b2) = gw.call("/v1/embeddings", emb).await;
    assert_eq!(s, 200);
    assert!(cache_key(&h).is_some());
    assert_eq!(b1, b2);
    assert_eq!(up.call_count(), 3);
    // Completions are not in the list.
    let c = json!({"model": "m", "prompt": "say"});
    gw.call("/v1/completions", c.clone()).await;
    gw.call("/v1/completions", c).await;
    assert_eq!(up.call_count(), 5);
}

#[tokio::test]
async fn a_cached_answer_is_replayed_as_a_stream_and_a_stream_is_stored() {
    let up = MockOpenAi::start().await;
    let gw = local(&up).await;
    // A JSON answer, replayed to a streaming request.
    let (_, _, json_answer) = gw.call("/v1/chat/completions", chat("hi")).await;
    let mut s = chat("hi");
    s["stream"] = json!(true);
    let (status, h, frames) = gw.stream("/v1/chat/completions", s).await;
    assert_eq!(status, 200);
    assert!(cache_key(&h).is_some());
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        text,
        json_answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
    );
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "m"));
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "usage only when asked"
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(up.call_count(), 1);

    // A streamed miss is stored when it ends, and replayed with the usage
    // chunk to a client that asks for it.
    let mut s = chat("streamed");
    s["stream"] = json!(true);
    let (_, _, first) = gw.stream("/v1/chat/completions", s.clone()).await;
    assert_eq!(up.call_count(), 2);
    s["stream_options"] = json!({"include_usage": true});
    let (_, h, again) = gw.stream("/v1/chat/completions", s).await;
    assert!(cache_key(&h).is_some());
    assert_eq!(up.call_count(), 2);
    let text = |frames: &[String]| -> String {
        frames
            .iter()
            .filter(|f| f.as_str() != "[DONE]")
            .filter_map(|f| {
                let v: Value = serde_json::from_str(f).unwrap();
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    };
    assert_eq!(text(&again), text(&first));
    let usage: Value = serde_json::from_str(&again[again.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["total_tokens"], 21, "{again:?}");
    // And a JSON request gets the assembled answer.
    let (_, h, b) = gw.call("/v1/chat/completions", chat("streamed")).await;
    assert!(cache_key(&h).is_some());
    assert_eq!(b["object"], "chat.completion");
    assert_eq!(
        b["choices"][0]["message"]["content"].as_str().unwrap(),
        text(&first)
    );
    assert_eq!(up.call_count(), 2);
}

#[derive(Default)]
struct Collect(Mutex<Vec<CallRecord>>);

impl CallSink for Collect {
    fn record(&self, rec: &CallRecord) {
        self.0.lock().unwrap().push(rec.clone());
    }
}

#[tokio::test]
async fn a_hit_is_recorded_as_a_cache_hit_with_the_stored_usage() {
    let up = MockOpenAi::start().await;
    let sink = Arc::new(Collect::default());
    let s = Arc::clone(&sink);
    let gw = TestGateway::start_with(
        &config(&up.base_url(), "{type: local}"),
        Env::isolated(Vec::<(String, String)>::new()),
        move |g| g.add_sink(s),
    )
    .await;
    gw.call("/v1/chat/completions", chat("hi")).await;
    let mut again = chat("hi");
    again["user"] = json!("end-9");
    gw.call("/v1/chat/completions", again).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.0.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let recs = sink.0.lock().unwrap().clone();
    assert_eq!(recs.len(), 2);
    assert!(!recs[0].cache_hit);
    let hit = &recs[1];
    assert!(hit.cache_hit);
    assert!(hit.succeeded());
    assert_eq!(hit.call_type, CallType::Chat);
    assert_eq!(hit.requested_model, "m");
    assert_eq!(hit.meta.model_group, "m");
    assert_eq!(hit.end_user.as_deref(), Some("end-9"));
    assert_eq!(hit.usage.as_ref().unwrap().total_tokens, 21);
}

#[tokio::test]
async fn identical_requests_in_flight_share_one_upstream_call() {
    let up = MockOpenAi::start().await;
    up.script([Reply::Delay(
        Duration::from_millis(400),
        Box::new(Reply::Default),
    )]);
    let gw = Arc::new(local(&up).await);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let gw = Arc::clone(&gw);
        tasks.push(tokio::spawn(async move {
            gw.call("/v1/chat/completions", chat("together")).await
        }));
    }
    let mut hits = 0;
    let mut bodies = Vec::new();
    for t in tasks {
        let (s, h, b) = t.await.unwrap();
        assert_eq!(s, 200);
        hits += usize::from(cache_key(&h).is_some());
        bodies.push(b["choices"].clone());
    }
    assert_eq!(up.call_count(), 1);
    assert_eq!(hits, 9);
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn when_the_leader_fails_the_waiters_go_upstream_themselves() {
    let up = MockOpenAi::start().await;
    up.script([Reply::Delay(
        Duration::from_millis(300),
        Box::new(Reply::error(500, "boom")),
    )]);
    let gw = Arc::new(local(&up).await);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let gw = Arc::clone(&gw);
        tasks.push(tokio::spawn(async move {
            gw.call("/v1/chat/completions", chat("fragile")).await.0
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    // One failure (the leader); the others succeed on their own calls.
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert!(up.call_count() >= 2);
}

// ---- Redis ----

const REDIS: &str = "127.0.0.1:6379";

/// One RESP command; the first line of the reply.
fn redis_cmd(addr: &str, args: &[&str]) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    Some(text.lines().next().unwrap_or_default().to_owned())
}

/// Wait until `pattern` matches `n` keys (writes to Redis are in the
/// background).
async fn wait_keys(addr: &str, pattern: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if redis_cmd(addr, &["KEYS", pattern]) == Some(format!("*{n}")) {
            return;
        }
        assert!(Instant::now() < deadline, "{pattern}: not {n} keys");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn namespace(test: &str) -> String {
    format!(
        "ferrolite-test-{test}-{}-{}",
        std::process::id(),
        uuid_ish()
    )
}

fn uuid_ish() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[tokio::test]
async fn redis_is_shared_by_gateways_and_keys_carry_the_namespace() {
    let up = MockOpenAi::start().await;
    let ns = namespace("shared");
    let params = format!("{{type: redis, host: 127.0.0.1, port: 6379, namespace: {ns}, ttl: 60}}");
    let a = TestGateway::start(&config(&up.base_url(), &params)).await;
    let b = TestGateway::start(&config(&up.base_url(), &params)).await;
    a.call("/v1/chat/completions", chat("hi")).await;
    wait_keys(REDIS, &format!("{ns}:*"), 1).await;
    let (s, h, body) = b.call("/v1/chat/completions", chat("hi")).await;
    assert_eq!(s, 200);
    let key = cache_key(&h).expect("hit from the other gateway");
    assert!(key.starts_with(&format!("{ns}:")));
    assert_eq!(body["model"], "m");
    assert_eq!(up.call_count(), 1);
    let ttl: i64 = redis_cmd(REDIS, &["TTL", &key]).unwrap()[1..]
        .parse()
        .unwrap();
    assert!((1..=60).contains(&ttl), "{ttl}");
    // A per-request namespace keeps its own entries.
    let mut other = chat("hi");
    other["cache"] = json!({"namespace": format!("{ns}-b")});
    b.call("/v1/chat/completions", other).await;
    assert_eq!(up.call_count(), 2);
    redis_cmd(REDIS, &["DEL", &key]);
}

#[tokio::test]
async fn redis_entries_expire_after_the_request_ttl() {
    let up = MockOpenAi::start().await;
    let ns = namespace("ttl");
    let gw = TestGateway::start(&config(
        &up.base_url(),
        &format!("{{type: redis, host: 127.0.0.1, port: 6379, namespace: {ns}}}"),
    ))
    .await;
    let mut body = chat("short-lived");
    body["cache"] = json!({"ttl": 0.3});
    gw.call("/v1/chat/completions", body.clone()).await;
    wait_keys(REDIS, &format!("{ns}:*"), 1).await;
    // Redis expires it; nothing else is waited on.
    wait_keys(REDIS, &format!("{ns}:*"), 0).await;
    let (_, h, _) = gw.call("/v1/chat/completions", body).await;
    assert!(cache_key(&h).is_none());
    assert_eq!(up.call_count(), 2);
}

#[tokio::test]
async fn an_unreachable_redis_never_fails_a_request() {
    let up = MockOpenAi::start().await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = TestGateway::start(&config(
        &up.base_url(),
        &format!("{{type: redis, host: 127.0.0.1, port: {port}}}"),
    ))
    .await;
    for _ in 0..3 {
        let started = Instant::now();
        let (s, h, _) = gw.call("/v1/chat/completions", chat("hi")).await;
        assert_eq!(s, 200);
        assert!(cache_key(&h).is_none());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    let mut s = chat("hi");
    s["stream"] = json!(true);
    let (status, _, frames) = gw.stream("/v1/chat/completions", s).await;
    assert_eq!(status, 200);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert_eq!(up.call_count(), 4);
}

/// A `redis-server` of this test's own, to stop mid-test.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis_cmd(&addr, &["PING"]).as_deref() != Some("+PONG") {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn redis_stopped_mid_test_means_uncached_not_failed() {
    let up = MockOpenAi::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = OwnRedis::start(port);
    let addr = format!("127.0.0.1:{}", redis.port);
    let gw = TestGateway::start(&config(
        &up.base_url(),
        &format!("{{type: redis, host: 127.0.0.1, port: {port}}}"),
    ))
    .await;
    gw.call("/v1/chat/completions", chat("hi")).await;
    wait_keys(&addr, "*", 1).await;
    let (_, h, _) = gw.call("/v1/chat/completions", chat("hi")).await;
    assert!(cache_key(&h).is_some());
    assert_eq!(up.call_count(), 1);
    redis.stop();
    for n in 0..3 {
        let (s, h, _) = gw.call("/v1/chat/completions", chat("hi")).await;
        assert_eq!(s, 200);
        assert!(cache_key(&h).is_none());
        assert_eq!(up.call_count(), 2 + n);
    }
}
