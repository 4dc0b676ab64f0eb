//! Several gateway instances sharing one Redis: rpm limits hold across
//! instances, cooldowns are seen by every instance, and the gateways keep
//! serving when Redis goes away and share again when it returns.
//!
//! Each test runs its own `redis-server` on a free port, so it can stop and
//! restart it without touching anything else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::process::{tmp_config, Running};
use common::TestGateway;
use ferrolite_testkit::{MockOpenAi, Reply};
use serde_json::json;

struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let dir =
            std::env::temp_dir().join(format!("ferrolite-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
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
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the machine's Redis package)");
        let r = Redis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

#[tokio::test]
async fn three_instances_hold_one_rpm_limit_together() {
    let redis = Redis::start(free_port());
    let up = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", api_key: k, rpm: 5}}\n    model_info: {{id: shared-deployment}}\nrouter_settings:\n  redis_url: redis://127.0.0.1:{}\n  enable_pre_call_checks: true\n  num_retries: 0\n",
        up.base_url(),
        redis.port
    );
    let gws = [
        TestGateway::start(&yaml).await,
        TestGateway::start(&yaml).await,
        TestGateway::start(&yaml).await,
    ];
    let before = minute();
    let mut ok = 0;
    for round in 0..4 {
        for gw in &gws {
            let (s, _, b) = gw
                .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
                .await;
            match s {
                200 => ok += 1,
                429 => assert!(
                    b["error"]["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("No deployments available"),
                    "{b}"
                ),
                other => panic!("round {round}: unexpected {other}: {b}"),
            }
        }
    }
    if minute() == before {
        assert_eq!(ok, 5, "12 requests over 3 instances, rpm 5: exactly 5 pass");
        assert_eq!(up.call_count(), 5);
    } else {
        // The minute turned during the test: two windows, at most twice the limit.
        assert!(ok <= 10 && up.call_count() == ok);
    }
}

#[tokio::test]
async fn a_cooldown_seen_by_one_instance_is_honoured_by_the_others() {
    let redis = Redis::start(free_port());
    let x = MockOpenAi::start().await;
    let y = MockOpenAi::start().await;
    x.script([Reply::Error {
        status: 429,
        message: "Rate limit reached".into(),
        kind: "requests".into(),
        headers: vec![("retry-after".into(), "30".into())],
    }]);
    // `order` makes x everyone's first choice.
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/x, api_base: \"{}\", api_key: k, order: 1}}\n    model_info: {{id: dep-x}}\n  - model_name: m\n    litellm_params: {{model: openai/y, api_base: \"{}\", api_key: k, order: 2}}\n    model_info: {{id: dep-y}}\nrouter_settings:\n  redis_url: redis://127.0.0.1:{}\n  num_retries: 1\n",
        x.base_url(),
        y.base_url(),
        redis.port
    );
    let a = TestGateway::start(&yaml).await;
    let b = TestGateway::start(&yaml).await;
    let (s, _, _) = a
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200, "a retried on y");
    assert_eq!(x.call_count(), 1);
    // b reads cooldowns back every second; give it a little more.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    for _ in 0..5 {
        let (s, h, _) = b
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, 200);
        assert_eq!(h["x-litellm-model-id"], "dep-y");
    }
    assert_eq!(
        x.call_count(),
        1,
        "b never sent x a request while it cooled down"
    );
}

#[tokio::test]
async fn instances_keep_serving_without_redis_and_share_again_when_it_returns() {
    let port = free_port();
    let mut redis = Redis::start(port);
    let up = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", api_key: k, rpm: 1000}}\nrouter_settings:\n  redis_url: redis://127.0.0.1:{port}\n  enable_pre_call_checks: true\n",
        up.base_url()
    );
    let gw = TestGateway::start(&yaml).await;
    let (s, _, _) = gw
        .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
        .await;
    assert_eq!(s, 200);
    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let (s, _, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, 200, "Redis down: served on local state");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a dead Redis costs a bounded wait, not a hang"
        );
    }
    let _redis = Redis::start(port);
    let mut shared_again = false;
    for _ in 0..50 {
        let (s, _, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, 200);
        if redis_counter_exists(port) {
            shared_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shared_again,
        "after Redis returned, requests were counted there again"
    );
}

/// Whether any ferrolite rpm counter exists in the Redis on `port`.
fn redis_counter_exists(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"KEYS ferrolite:rpm:*\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    // An empty list is "*0\r\n".
    n > 0 && !buf[..n].starts_with(b"*0")
}

#[tokio::test]
async fn three_gateway_processes_hold_one_rpm_limit_together() {
    let redis = Redis::start(free_port());
    let up = MockOpenAi::start().await;
    let config = tmp_config(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", api_key: k, rpm: 4}}\n    model_info: {{id: shared-deployment}}\nrouter_settings:\n  redis_url: redis://127.0.0.1:{}\n  enable_pre_call_checks: true\n  num_retries: 0\ngeneral_settings:\n  master_key: sk-multi-process-test\n",
        up.base_url(),
        redis.port
    ));
    let procs: Vec<Running> = (0..3)
        .map(|_| Running::start(&["--config", config.path()], &[]))
        .collect();
    let client = ferrolite_core::upstream::client().unwrap();
    let before = minute();
    let mut ok = 0;
    for _ in 0..3 {
        for p in &procs {
            let r = client
                .post(p.url("/v1/chat/completions"))
                .bearer_auth("sk-multi-process-test")
                .json(&json!({"model":"m","messages":[]}))
                .send()
                .await
                .unwrap();
            match r.status().as_u16() {
                200 => ok += 1,
                429 => {}
                other => panic!("unexpected status {other}"),
            }
        }
    }
    if minute() == before {
        assert_eq!(
            (ok, up.call_count()),
            (4, 4),
            "9 requests over 3 processes, rpm 4: exactly 4 pass"
        );
    } else {
        assert!(ok <= 8 && up.call_count() == ok);
    }
}

#[tokio::test]
async fn max_parallel_requests_holds_exactly_across_instances() {
    let redis = Redis::start(free_port());
    let x = MockOpenAi::start().await;
    let y = MockOpenAi::start().await;
    // x holds every stream open until its client leaves.
    let hang = || Reply::SseHang {
        data: ferrolite_testkit::openai::chat_chunks("x", "held open", false)[..2].to_vec(),
    };
    x.script([hang(), hang()]);
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/x, api_base: \"{}\", api_key: k, order: 1, max_parallel_requests: 2}}\n    model_info: {{id: dep-x}}\n  - model_name: m\n    litellm_params: {{model: openai/y, api_base: \"{}\", api_key: k, order: 2}}\n    model_info: {{id: dep-y}}\nrouter_settings:\n  redis_url: redis://127.0.0.1:{}\n  num_retries: 0\n",
        x.base_url(),
        y.base_url(),
        redis.port
    );
    let gws = [
        TestGateway::start(&yaml).await,
        TestGateway::start(&yaml).await,
        TestGateway::start(&yaml).await,
    ];
    let hold = |gw: &TestGateway| {
        gw.post("/v1/chat/completions")
            .json(&json!({"model":"m","messages":[],"stream":true}))
            .send()
    };
    // One stream held on each of two instances: x's two slots are taken.
    let held_a = hold(&gws[0]).await.unwrap();
    let held_b = hold(&gws[1]).await.unwrap();
    assert_eq!(held_a.headers()["x-litellm-model-id"], "dep-x");
    assert_eq!(held_b.headers()["x-litellm-model-id"], "dep-x");
    // Right away (no waiting for a sync), every instance sees x full.
    for gw in &gws {
        let (s, h, _) = gw
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        assert_eq!(s, 200);
        assert_eq!(
            h["x-litellm-model-id"], "dep-y",
            "x is at max_parallel_requests"
        );
    }
    assert_eq!(x.call_count(), 2);
    // A stream that ends gives its slot back to the fleet.
    drop(held_a);
    x.wait_dropped_streams(1, Duration::from_secs(10)).await;
    let mut freed = false;
    for _ in 0..100 {
        let (_, h, _) = gws[2]
            .call("/v1/chat/completions", json!({"model":"m","messages":[]}))
            .await;
        if h["x-litellm-model-id"] == "dep-x" {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the released slot is usable from another instance");
    drop(held_b);
    drop(redis);
}
