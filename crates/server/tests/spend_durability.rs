//! Spend durability against a private PostgreSQL: the server is stopped
//! during load and started again, and no spend row is lost or counted twice;
//! a gateway shut down while the database is down spills its rows to a file
//! that the next gateway replays.
//!
//! Each test runs its own PostgreSQL (`initdb` into a temporary directory,
//! `pg_ctl` on a free port; as the `postgres` user through `runuser` when
//! the tests run as root, since PostgreSQL refuses to run as root). The
//! binaries are found in `FERROLITE_PG_BIN`, `/usr/lib/postgresql/*/bin`
//! or `PATH`. When PostgreSQL cannot be started the tests fail if `CI` is
//! set, and are skipped with a notice otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestGateway;
use ferrolite_core::config::Env;
use ferrolite_core::spend::WriterStats;
use ferrolite_server::store_glue::KeysAndSpend;
use ferrolite_store::{hash_key, Key, SpendLogFilter, Store, StoreOptions};
use ferrolite_testkit::MockOpenAi;
use serde_json::json;

const RAW_KEY: &str = "sk-durable-0001";
/// 9 prompt tokens at 0.001 + 12 completion tokens at 0.002 (the mock's usage).
const CALL_COST: f64 = 9.0 * 0.001 + 12.0 * 0.002;

/// A PostgreSQL server of our own, stopped and removed on drop.
struct Pg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn pg_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FERROLITE_PG_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    if let Some(b) = found.pop() {
        return Some(b);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Pg {
    fn cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let out = self
            .cmd(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn try_start() -> Result<Pg, String> {
        let bin = pg_bin().ok_or("no initdb found (set FERROLITE_PG_BIN)")?;
        let dir =
            std::env::temp_dir().join(format!("ferrolite-pg-{}", common::process::uuid_like()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:", dir.to_str().unwrap()])
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !ok.success() {
                return Err("cannot give the data directory to the postgres user".into());
            }
        }
        let port = common::process::free_port();
        let pg = Pg {
            bin,
            dir,
            port,
            as_postgres,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        pg.start()?;
        Ok(pg)
    }

    /// Start PostgreSQL for a test, or `None` (with a notice) when it cannot
    /// run here; with `CI` set that is a failure.
    fn start_for_test() -> Option<Pg> {
        match Self::try_start() {
            Ok(pg) => Some(pg),
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("a private PostgreSQL is required when CI is set: {e}")
            }
            Err(e) => {
                eprintln!("NOTICE: spend durability test skipped, cannot start PostgreSQL: {e}");
                None
            }
        }
    }

    fn start(&self) -> Result<(), String> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &opts,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    fn stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "fast", "-w", "-t", "60", "stop"],
        )
        .unwrap();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn store(&self) -> Arc<Store> {
        let mut o = StoreOptions::new(self.url());
        // Fail fast while the server is down: the writer retries anyway.
        o.acquire_timeout = Duration::from_secs(1);
        Arc::new(Store::open(&o).await.unwrap())
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Gw {
    gw: TestGateway,
    ks: KeysAndSpend,
}

/// A gateway whose keys stay cached for an hour (they must be usable while
/// the database is down) and whose spend goes to `store`.
async fn gateway(up: &MockOpenAi, store: &Arc<Store>, spill: &Path) -> Gw {
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/up-m\n      api_key: sk-up\n      api_base: {base}\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\ngeneral_settings:\n  master_key: {master}\n  user_api_key_cache_ttl: 3600\n  allow_requests_on_db_unavailable: true\n  proxy_batch_write_at: 0.05\n",
        base = up.base_url(),
        master = common::MASTER
    );
    let mut ks = None;
    let gw = TestGateway::start_with(&yaml, Env::isolated(Vec::<(String, String)>::new()), |g| {
        ks = Some(KeysAndSpend::attach(
            g,
            Arc::clone(store),
            Some(spill.to_path_buf()),
        ));
    })
    .await;
    Gw {
        gw,
        ks: ks.unwrap(),
    }
}

impl Gw {
    /// One chat call with the virtual key; its call id.
    async fn call(&self) -> String {
        let r = self
            .gw
            .http
            .post(self.gw.url("/v1/chat/completions"))
            .bearer_auth(RAW_KEY)
            .json(&json!({"model":"m","messages":[{"role":"user","content":"hi"}]}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let id = r.headers()["x-litellm-call-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "{body}");
        id
    }

    fn stat(&self, f: impl Fn(&WriterStats) -> &std::sync::atomic::AtomicU64) -> u64 {
        WriterStats::get(f(self.ks.writer.stats()))
    }
}

async fn make_key(store: &Store) -> String {
    let k = Key::new(
        hash_key(RAW_KEY),
        "sk-...0001".into(),
        ferrolite_store::now_ms(),
    );
    store.create_key(&k).await.unwrap();
    k.token
}

/// Poll `cond` every 20 ms for up to `secs`.
async fn until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every call id has exactly one row, there are no others, and the key's
/// spend is their sum.
async fn assert_exact(store: &Store, hash: &str, ids: &[String]) {
    let rows = store
        .spend_logs(&SpendLogFilter {
            api_key: Some(hash.to_owned()),
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let want: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(want.len(), ids.len(), "call ids are unique");
    let got: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    let got_set: HashSet<&str> = got.iter().copied().collect();
    assert_eq!(got.len(), got_set.len(), "a request stored twice");
    let missing: Vec<_> = want.difference(&got_set).collect();
    let extra: Vec<_> = got_set.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    let sum: f64 = rows.iter().map(|r| r.spend).sum();
    assert!((sum - ids.len() as f64 * CALL_COST).abs() < 1e-9, "{sum}");
    let key = store.get_key(hash).await.unwrap().unwrap();
    assert!(
        (key.spend - sum).abs() < 1e-9,
        "key spend {} vs rows {sum}",
        key.spend
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_row_is_lost_when_the_database_stops_during_load() {
    let Some(pg) = Pg::start_for_test() else {
        return;
    };
    let store = pg.store().await;
    let hash = make_key(&store).await;
    let up = MockOpenAi::start().await;
    let spill = pg.dir.join("spill.jsonl");
    let g = Arc::new(gateway(&up, &store, &spill).await);

    // Load: 8 clients sending one request after another until told to stop.
    let ids = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (g, ids, stop) = (Arc::clone(&g), Arc::clone(&ids), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let id = g.call().await;
                    ids.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    let count = || ids.lock().unwrap().len();

    // Some rows are written while the database is up…
    until("rows written before the stop", 30, || {
        g.stat(|s| &s.written) >= 20
    })
    .await;
    // …then it stops in the middle of the load.
    pg.stop();
    let at_stop = count();
    until("failed writes while down", 30, || {
        g.stat(|s| &s.failed_writes) >= 2
    })
    .await;
    until("calls served while down", 30, || count() >= at_stop + 40).await;
    let served_down = count() - at_stop;
    pg.start().unwrap();
    let at_start = count();
    until("calls after the restart", 30, || count() >= at_start + 40).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert!(
        g.ks.writer.flush(Duration::from_secs(30)).await,
        "not flushed"
    );
    let ids = ids.lock().unwrap().clone();
    assert_exact(&store, &hash, &ids).await;
    assert_eq!(g.stat(|s| &s.dropped), 0);
    eprintln!(
        "durability: {} calls, {served_down} served while PostgreSQL was down, {} failed batch writes, {} rows spilled and {} replayed",
        ids.len(),
        g.stat(|s| &s.failed_writes),
        g.stat(|s| &s.spilled),
        g.stat(|s| &s.replayed)
    );
    g.ks.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_stopped_while_the_database_is_down_spills_and_the_next_one_replays() {
    let Some(pg) = Pg::start_for_test() else {
        return;
    };
    let store = pg.store().await;
    let hash = make_key(&store).await;
    let up = MockOpenAi::start().await;
    let spill = pg.dir.join("spill.jsonl");

    let first = gateway(&up, &store, &spill).await;
    let mut ids = vec![first.call().await];
    assert!(first.ks.writer.flush(Duration::from_secs(10)).await);
    pg.stop();
    for _ in 0..25 {
        ids.push(first.call().await);
    }
    // Wait until the writer holds all 25 (the meter emits as the answer ends).
    until("calls queued", 10, || first.stat(|s| &s.queued) >= 26).await;
    first.ks.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        first.stat(|s| &s.spilled),
        25,
        "every unwritten row spilled"
    );
    assert_eq!(first.stat(|s| &s.dropped), 0);
    let lines = std::fs::read_to_string(&spill).unwrap().lines().count();
    assert_eq!(lines, 25);
    drop(first);

    pg.start().unwrap();
    // A new gateway (a new process in production) finds the file and writes it.
    let store2 = pg.store().await;
    let second = gateway(&up, &store2, &spill).await;
    until("the spill file replayed", 30, || !spill.exists()).await;
    assert_eq!(second.stat(|s| &s.replayed), 25);
    assert_exact(&store2, &hash, &ids).await;
    second.ks.shutdown(Duration::from_secs(10)).await;
}
