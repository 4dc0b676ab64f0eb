//! Two gateway instances on ONE PostgreSQL store and one Redis: a key
//! created on one works on the other, a block takes effect everywhere within
//! about a second, budgets and rate limits hold across both, and both keep
//! serving on local enforcement when Redis is gone.
//!
//! Each test runs its own `redis-server` on a free port and its own
//! PostgreSQL schema (`FERROLITE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Without a reachable
//! PostgreSQL the tests fail when `CI` is set, and are skipped with a notice
//! otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrolite_core::config::{load_str, Env};
use ferrolite_core::meter::{CallRecord, CallSink};
use ferrolite_core::Gateway;
use ferrolite_server::store_glue::KeysAndSpend;
use ferrolite_server::AppState;
use ferrolite_store::{SpendLogFilter, Store, StoreOptions};
use ferrolite_testkit::MockOpenAi;
use serde_json::{json, Value};

const MASTER: &str = "sk-shared-master-0123456789";
/// Input 0.001 and output 0.002 USD per token: the mock's 9 + 12 tokens
/// cost 0.033.
const CALL_COST: f64 = 9.0 * 0.001 + 12.0 * 0.002;

struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!(
            "ferrolite-keys-redis-{port}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the machine's Redis package)");
        let r = Redis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.ping() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh schema on the test PostgreSQL, dropped at the end.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    async fn open(&self) -> Store {
        let mut opts = StoreOptions::new(self.url.clone());
        opts.pg_schema = Some(self.name.clone());
        opts.max_connections = Some(8);
        opts.acquire_timeout = Duration::from_secs(5);
        Store::open(&opts).await.unwrap()
    }

    async fn create() -> Option<Schema> {
        let url = std::env::var("FERROLITE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let s = Schema {
            name: format!("ferrolite_keys_{}", uuid_like()),
            url,
        };
        let mut opts = StoreOptions::new(s.url.clone());
        opts.pg_schema = Some(s.name.clone());
        opts.acquire_timeout = Duration::from_secs(5);
        match Store::open(&opts).await {
            Ok(store) => {
                store.close().await;
                Some(s)
            }
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL at {} is required when CI is set: {e}", s.url)
            }
            Err(e) => {
                eprintln!(
                    "NOTICE: test skipped, PostgreSQL at {} not reachable: {e}",
                    s.url
                );
                None
            }
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.url)
            .args(["-q", "-c", &format!("DROP SCHEMA {} CASCADE", self.name)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn uuid_like() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{n:x}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Counts the calls each instance has finished.
#[derive(Default)]
struct Finished(AtomicUsize);

impl CallSink for Finished {
    fn record(&self, _: &CallRecord) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Instance {
    addr: SocketAddr,
    http: reqwest::Client,
    ks: KeysAndSpend,
    finished: Arc<Finished>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Instance {
    async fn start(schema: &Schema, up: &MockOpenAi, redis_port: u16) -> Instance {
        // A key cache far longer than the test: a change reaching the other
        // instance in time can only have come through Redis.
        let yaml = format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/up-m\n      api_key: sk-up\n      api_base: {}\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\nrouter_settings:\n  redis_url: redis://127.0.0.1:{redis_port}\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n  user_api_key_cache_ttl: 600\n",
            up.base_url()
        );
        let env = Env::isolated(Vec::<(String, String)>::new());
        let cfg = load_str(&yaml, Path::new("."), &env).unwrap();
        let mut gw = Gateway::new(cfg).unwrap();
        let store = Arc::new(schema.open().await);
        let ks = KeysAndSpend::attach(&mut gw, Arc::clone(&store), None);
        let finished = Arc::new(Finished::default());
        gw.add_sink(finished.clone());
        let state = AppState::new(gw).with_store(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = ferrolite_server::serve(listener, state, async {
                let _ = rx.await;
            })
            .await;
        });
        Instance {
            addr,
            http: reqwest::Client::new(),
            ks,
            finished,
            _shutdown: tx,
        }
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .bearer_auth(MASTER)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    async fn chat(&self, key: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("http://{}/v1/chat/completions", self.addr))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap())
    }

    /// Wait until `n` calls finished here, then for their spend to be stored.
    async fn settled(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.finished.0.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "calls never finished");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(self.ks.writer.flush(Duration::from_secs(10)).await);
    }
}

fn body() -> Value {
    json!({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":12})
}

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

/// Poll `f` until it returns true, for at most `within`.
async fn eventually<F, Fut>(within: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Pair {
    a: Instance,
    b: Instance,
    up: MockOpenAi,
    redis: Redis,
    // Last: the stores close before the schema is dropped.
    _schema: Schema,
}

async fn pair() -> Option<Pair> {
    let schema = Schema::create().await?;
    let redis = Redis::start();
    let up = MockOpenAi::start().await;
    let a = Instance::start(&schema, &up, redis.port).await;
    let b = Instance::start(&schema, &up, redis.port).await;
    Some(Pair {
        a,
        b,
        up,
        redis,
        _schema: schema,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_or_blocked_on_one_instance_holds_on_the_other() {
    let Some(p) = pair().await else { return };
    // B first looks the key up while it does not exist yet (and caches that).
    let (s, _) = p.b.chat("sk-shared-key-1", &body()).await;
    assert_eq!(s, 401);
    let made =
        p.a.admin("/key/generate", json!({"key": "sk-shared-key-1"}))
            .await;
    let key = made["key"].as_str().unwrap().to_owned();
    eventually(Duration::from_millis(1500), || async {
        p.b.chat(&key, &body()).await.0 == 200
    })
    .await;
    assert_eq!(p.a.chat(&key, &body()).await.0, 200);

    // Blocked on A: refused at once on A, within about a second on B.
    p.a.admin("/key/block", json!({"key": key})).await;
    let (s, b) = p.a.chat(&key, &body()).await;
    assert_eq!(s, 401, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Key is blocked"));
    let took = eventually(Duration::from_millis(1500), || async {
        p.b.chat(&key, &body()).await.0 == 401
    })
    .await;
    eprintln!("block reached the other instance in {took:?}");

    // Unblocked and given a model list on B: A follows.
    p.b.admin("/key/unblock", json!({"key": key})).await;
    eventually(Duration::from_millis(1500), || async {
        p.a.chat(&key, &body()).await.0 == 200
    })
    .await;
    p.b.admin("/key/update", json!({"key": key, "models": ["other"]}))
        .await;
    eventually(Duration::from_millis(1500), || async {
        p.a.chat(&key, &body()).await.0 == 401
    })
    .await;

    // Deleted on A: gone on B.
    p.a.admin("/key/update", json!({"key": key, "models": []}))
        .await;
    eventually(Duration::from_millis(1500), || async {
        p.b.chat(&key, &body()).await.0 == 200
    })
    .await;
    p.a.admin("/key/delete", json!({"keys": [key]})).await;
    eventually(Duration::from_millis(1500), || async {
        p.b.chat(&key, &body()).await.0 == 401
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_calls_on_both_instances_cannot_overspend_a_budget() {
    let Some(p) = pair().await else { return };
    let budget = 0.1;
    p.a.admin(
        "/key/generate",
        json!({"key": "sk-shared-budget", "max_budget": budget}),
    )
    .await;
    let hash = ferrolite_store::hash_key("sk-shared-budget");
    let key = "sk-shared-budget";
    let b = body();
    let results = futures_util::future::join_all((0..20).map(|i| {
        let inst = if i % 2 == 0 { &p.a } else { &p.b };
        let b = b.clone();
        async move { (i % 2, inst.chat(key, &b).await) }
    }))
    .await;
    let ok_a = results
        .iter()
        .filter(|(side, r)| *side == 0 && r.0 == 200)
        .count();
    let ok_b = results
        .iter()
        .filter(|(side, r)| *side == 1 && r.0 == 200)
        .count();
    for (_, (s, b)) in &results {
        assert!(
            *s == 200 || (*s == 400 && b["error"]["type"] == "budget_exceeded"),
            "{s} {b}"
        );
    }
    assert!(ok_a + ok_b >= 1 && ok_a + ok_b < 20, "ok {ok_a} + {ok_b}");
    p.a.settled(ok_a).await;
    p.b.settled(ok_b).await;
    // The spend rows in the store, whichever instance wrote them.
    let store = p._schema.open().await;
    let rows = store
        .spend_logs(&SpendLogFilter {
            api_key: Some(hash.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), ok_a + ok_b);
    let total: f64 = rows.iter().map(|r| r.spend).sum();
    let body_len = serde_json::to_vec(&b).unwrap().len() as f64;
    let one_reservation = (body_len / 4.0).ceil() * 0.001 + 12.0 * 0.002;
    assert!(
        total <= budget + one_reservation + 1e-9,
        "spent {total} of {budget} (+{one_reservation}) over {} calls",
        rows.len()
    );
    assert!((total - rows.len() as f64 * CALL_COST).abs() < 1e-9);
    // Both instances now refuse: the spend is seen everywhere, whatever
    // their key caches hold.
    for inst in [&p.a, &p.b] {
        let (s, b) = inst.chat(key, &body()).await;
        assert_eq!(s, 400, "{b}");
        assert!(b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Budget has been exceeded! Key="));
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rpm_limit_holds_across_instances() {
    let Some(p) = pair().await else { return };
    p.a.admin(
        "/key/generate",
        json!({"key": "sk-shared-rpm", "rpm_limit": 3}),
    )
    .await;
    let before = minute();
    let mut ok = 0;
    for i in 0..8 {
        let inst = if i % 2 == 0 { &p.a } else { &p.b };
        let (s, b) = inst.chat("sk-shared-rpm", &body()).await;
        match s {
            200 => ok += 1,
            429 => assert!(
                b["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("Limit type: requests. Current limit: 3"),
                "{b}"
            ),
            other => panic!("{other}: {b}"),
        }
    }
    if minute() == before {
        assert_eq!(ok, 3, "8 calls over 2 instances, rpm_limit 3");
    } else {
        assert!(ok <= 6, "two minutes: at most twice the limit, got {ok}");
    }
    assert_eq!(p.up.call_count(), ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_both_instances_serve_on_local_enforcement() {
    let Some(mut p) = pair().await else { return };
    p.a.admin(
        "/key/generate",
        json!({"key": "sk-shared-local", "rpm_limit": 2}),
    )
    .await;
    let before = minute();
    p.redis.stop();
    // Each instance serves and counts on its own: 2 calls each, then 429.
    let mut ok = [0, 0];
    for (i, inst) in [&p.a, &p.b].into_iter().enumerate() {
        for _ in 0..3 {
            let (s, b) = inst.chat("sk-shared-local", &body()).await;
            match s {
                200 => ok[i] += 1,
                429 => {}
                other => panic!("{other}: {b}"),
            }
        }
    }
    if minute() == before {
        assert_eq!(ok, [2, 2], "local rpm_limit on each instance");
    } else {
        assert!(ok[0] >= 2 && ok[1] >= 2, "{ok:?}");
    }
    // A key made while Redis is down works on the instance that made it.
    let made =
        p.b.admin("/key/generate", json!({"key": "sk-shared-local-2"}))
            .await;
    assert_eq!(made["key"], "sk-shared-local-2");
    assert_eq!(p.b.chat("sk-shared-local-2", &body()).await.0, 200);
    // And on the other once its cache is asked (it never cached the key).
    assert_eq!(p.a.chat("sk-shared-local-2", &body()).await.0, 200);
}
