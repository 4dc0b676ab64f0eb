//! The response cache on a real Redis Cluster (`redis_startup_nodes`): each
//! test starts its own three-master cluster (password protected) in a temp
//! dir, points two gateways at it through different startup nodes, and
//! checks that an answer cached by one is a hit on the other for keys spread
//! over the cluster's slots, that TTLs are honoured, and that a killed
//! cluster only makes requests uncached.
//!
//! Needs `redis-server` and `redis-cli`. Without them the tests are skipped
//! with a notice, except under CI (`CI` set), where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TestGateway;
use ferrolite_testkit::MockOpenAi;
use serde_json::{json, Value};

const PASSWORD: &str = "cluster-secret";

fn tools_present() -> bool {
    ["redis-server", "redis-cli"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A port `p` such that `p` and its cluster bus port `p + 10000` are free.
fn cluster_port(taken: &[u16]) -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p > 55535 || taken.contains(&p) || taken.contains(&(p + 10000)) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
            return p;
        }
    }
}

fn cli(port: u16, args: &[&str]) -> Output {
    Command::new("redis-cli")
        .env("REDISCLI_AUTH", PASSWORD)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli runs")
}

fn cli_text(port: u16, args: &[&str]) -> String {
    String::from_utf8_lossy(&cli(port, args).stdout)
        .trim()
        .to_owned()
}

/// A three-master Redis Cluster of this test's own.
struct Cluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl Cluster {
    /// The cluster, or `None` (with a notice) when Redis is not installed;
    /// under CI a missing Redis fails the test.
    fn start_or_skip(test: &str) -> Option<Cluster> {
        if !tools_present() {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: redis-server and redis-cli are required in CI (install the Redis package)");
            }
            eprintln!("SKIPPED {test}: redis-server / redis-cli not installed");
            return None;
        }
        Some(Cluster::start())
    }

    fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "ferrolite-cluster-{}",
            common::process::uuid_like()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ports = Vec::new();
        for _ in 0..3 {
            let p = cluster_port(&ports);
            ports.push(p);
        }
        let mut c = Cluster {
            nodes: Vec::new(),
            ports: ports.clone(),
            dir,
        };
        c.spawn_nodes();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addrs.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = cli(ports[0], &create);
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        c.wait_ok();
        c
    }

    /// Start the three servers (again: each keeps its cluster config file).
    fn spawn_nodes(&mut self) {
        for p in &self.ports {
            let child = Command::new("redis-server")
                .args(["--port", &p.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .args(["--cluster-config-file", &format!("nodes-{p}.conf")])
                .args(["--requirepass", PASSWORD, "--masterauth", PASSWORD])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            self.nodes.push(child);
        }
        for p in &self.ports {
            wait_for(&format!("redis-server on {p} answers"), || {
                cli_text(*p, &["PING"]) == "PONG"
            });
        }
    }

    fn wait_ok(&self) {
        for p in &self.ports {
            wait_for(&format!("cluster_state:ok on {p}"), || {
                cli_text(*p, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
    }

    /// Keys held by each master.
    fn key_counts(&self) -> Vec<u64> {
        self.ports
            .iter()
            .map(|p| cli_text(*p, &["DBSIZE"]).parse().unwrap_or(0))
            .collect()
    }

    fn total_keys(&self) -> u64 {
        self.key_counts().iter().sum()
    }

    /// A command sent to any node and redirected to the key's owner.
    fn routed(&self, args: &[&str]) -> String {
        let mut a = vec!["-c"];
        a.extend_from_slice(args);
        cli_text(self.ports[0], &a)
    }

    fn kill(&mut self) {
        for mut c in self.nodes.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Poll `ok` (blocking checks, a few ms apart) for up to 20 s.
fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// As [`wait_for`], without blocking the gateways' runtime between checks.
async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn config(base: &str, startup_port: u16, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/upstream-m, api_key: k, api_base: \"{base}\"}}\nrouter_settings:\n  num_retries: 0\nlitellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n    redis_startup_nodes: [{{host: 127.0.0.1, port: \"{startup_port}\"}}]\n    password: {PASSWORD}\n{extra}"
    )
}

fn chat(content: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": content}]})
}

fn cache_key(h: &reqwest::header::HeaderMap) -> Option<String> {
    h.get("x-litellm-cache-key")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_answers_across_the_cluster_slots_with_ttls() {
    let Some(cluster) = Cluster::start_or_skip("two_gateways_share_answers") else {
        return;
    };
    let up = MockOpenAi::start().await;
    let extra = "    namespace: fl\n    ttl: 60\n";
    // Each gateway knows a different startup node and discovers the rest.
    let a = TestGateway::start(&config(&up.base_url(), cluster.ports[0], extra)).await;
    let b = TestGateway::start(&config(&up.base_url(), cluster.ports[2], extra)).await;

    // Twelve different prompts: their keys land in different slots, and so
    // (almost surely: all on one master is a 3^-11 chance) on several masters.
    const N: u64 = 12;
    let mut answers = Vec::new();
    for i in 0..N {
        let (s, h, body) = a
            .call("/v1/chat/completions", chat(&format!("prompt {i}")))
            .await;
        assert_eq!(s, 200, "{body}");
        assert!(cache_key(&h).is_none(), "a first request is a miss");
        answers.push(body);
    }
    assert_eq!(up.call_count(), N as usize);
    // Writes are in the background: wait until all of them are in.
    until("every answer stored in the cluster", || {
        cluster.total_keys() == N
    })
    .await;
    let counts = cluster.key_counts();
    assert!(
        counts.iter().filter(|c| **c > 0).count() >= 2,
        "keys spread over the masters: {counts:?}"
    );

    // The other gateway answers every one of them from the cluster.
    let mut keys = Vec::new();
    for (i, first) in answers.iter().enumerate() {
        let (s, h, body) = b
            .call("/v1/chat/completions", chat(&format!("prompt {i}")))
            .await;
        assert_eq!(s, 200);
        let key = cache_key(&h).unwrap_or_else(|| panic!("prompt {i}: no hit on gateway b"));
        assert!(key.starts_with("fl:"), "{key}");
        assert_eq!(body["choices"], first["choices"]);
        assert_eq!(body["id"], first["id"], "the stored answer");
        keys.push(key);
    }
    assert_eq!(up.call_count(), N as usize, "no upstream call for a hit");

    // The configured TTL is set on the entries, wherever they live.
    for key in &keys {
        let ttl: i64 = cluster.routed(&["TTL", key]).parse().unwrap();
        assert!((1..=60).contains(&ttl), "{key}: TTL {ttl}");
    }

    // A per-request TTL: the entry expires in the cluster, then misses.
    let mut short = chat("short-lived");
    short["cache"] = json!({"ttl": 0.3});
    a.call("/v1/chat/completions", short.clone()).await;
    until("the short-lived entry stored", || {
        cluster.total_keys() == N + 1
    })
    .await;
    let (_, h, _) = b.call("/v1/chat/completions", short.clone()).await;
    assert!(cache_key(&h).is_some(), "a hit before it expires");
    until("the short-lived entry expired", || {
        cluster.total_keys() == N
    })
    .await;
    let (_, h, _) = b.call("/v1/chat/completions", short).await;
    assert!(cache_key(&h).is_none(), "expired: a miss");
    assert_eq!(up.call_count(), N as usize + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_cluster_means_uncached_not_failed_and_caching_resumes() {
    let Some(mut cluster) = Cluster::start_or_skip("a_killed_cluster_means_uncached") else {
        return;
    };
    let up = MockOpenAi::start().await;
    let gw = TestGateway::start(&config(&up.base_url(), cluster.ports[1], "")).await;
    for i in 0..3 {
        gw.call("/v1/chat/completions", chat(&format!("q{i}")))
            .await;
    }
    until("answers stored", || cluster.total_keys() == 3).await;
    for i in 0..3 {
        let (_, h, _) = gw
            .call("/v1/chat/completions", chat(&format!("q{i}")))
            .await;
        assert!(
            cache_key(&h).is_some(),
            "q{i}: a hit while the cluster is up"
        );
    }
    assert_eq!(up.call_count(), 3);

    cluster.kill();
    for i in 0..3 {
        let started = Instant::now();
        let (s, h, body) = gw
            .call("/v1/chat/completions", chat(&format!("q{i}")))
            .await;
        assert_eq!(s, 200, "{body}");
        assert!(cache_key(&h).is_none());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a down cluster costs a request at most the read bound, took {:?}",
            started.elapsed()
        );
    }
    let mut s = chat("streamed");
    s["stream"] = json!(true);
    let (status, _, frames) = gw.stream("/v1/chat/completions", s).await;
    assert_eq!(status, 200);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert_eq!(up.call_count(), 7);

    // The same cluster back (empty: nothing was saved): answers are stored
    // and served again, with no restart of the gateway.
    cluster.spawn_nodes();
    cluster.wait_ok();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, h, _) = gw.call("/v1/chat/completions", chat("again")).await;
        assert_eq!(s, 200);
        if cache_key(&h).is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "caching did not resume");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cluster.total_keys(), 1);
}
