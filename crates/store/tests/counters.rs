//! Counter-only spend writes (`disable_spend_logs`), on SQLite (a temporary
//! file) and on the real PostgreSQL (`FERROLITE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, a schema per test). Without a
//! reachable PostgreSQL the Postgres tests fail when `CI` is set, and are
//! skipped with a notice otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use ferrolite_store::{
    hash_key, Key, SpendLogFilter, SpendRow, Store, StoreOptions, Team, User, COUNTED_TTL_MS,
};

enum Cleanup {
    File(std::path::PathBuf),
    Schema(String, String),
}

async fn sqlite() -> (Store, Cleanup) {
    let path = std::env::temp_dir().join(format!("ferrolite-counters-{}.db", uuid::Uuid::new_v4()));
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    (store, Cleanup::File(path))
}

async fn postgres() -> Option<(Store, Cleanup)> {
    let url = std::env::var("FERROLITE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("ferrolite_test_{}", uuid::Uuid::new_v4().simple());
    let mut opts = StoreOptions::new(url.clone());
    opts.pg_schema = Some(schema.clone());
    opts.max_connections = Some(8);
    opts.acquire_timeout = std::time::Duration::from_secs(5);
    match Store::open(&opts).await {
        Ok(store) => Some((store, Cleanup::Schema(url, schema))),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL at {url} is required when CI is set: {e}")
        }
        Err(e) => {
            eprintln!("NOTICE: PostgreSQL test skipped, {url} not reachable: {e}");
            None
        }
    }
}

async fn finish(store: Store, cleanup: Cleanup) {
    store.close().await;
    match cleanup {
        Cleanup::File(path) => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        Cleanup::Schema(url, schema) => {
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (s, c) = super::sqlite().await;
                    super::$name(&s).await;
                    super::finish(s, c).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((s, c)) = super::postgres().await else { return };
                    super::$name(&s).await;
                    super::finish(s, c).await;
                }
            )*
        }
    };
}

both_backends!(
    counters_move_without_rows_once_per_request,
    concurrent_counter_writes_are_exact
);

const NOW: i64 = 1_700_000_000_000;

async fn setup(s: &Store, secret: &str) -> String {
    let k = Key::new(hash_key(secret), "sk-...x".into(), NOW);
    s.create_key(&k).await.unwrap();
    s.create_user(&User::new(format!("u-{secret}"), NOW))
        .await
        .unwrap();
    s.create_team(&Team::new(format!("t-{secret}"), NOW))
        .await
        .unwrap();
    k.token
}

fn row(id: &str, key: &str, secret: &str, spend: f64) -> SpendRow {
    let mut r = SpendRow::new(id.to_owned(), key.to_owned(), NOW);
    r.spend = spend;
    r.user = Some(format!("u-{secret}"));
    r.team_id = Some(format!("t-{secret}"));
    r
}

async fn spends(s: &Store, key: &str, secret: &str) -> [f64; 3] {
    [
        s.get_key(key).await.unwrap().unwrap().spend,
        s.get_user(&format!("u-{secret}"))
            .await
            .unwrap()
            .unwrap()
            .spend,
        s.get_team(&format!("t-{secret}"))
            .await
            .unwrap()
            .unwrap()
            .spend,
    ]
}

async fn counters_move_without_rows_once_per_request(s: &Store) {
    let key = setup(s, "c1").await;
    let batch = vec![
        row("a", &key, "c1", 0.5),
        row("b", &key, "c1", 0.25),
        row("b", &key, "c1", 0.25),
    ];
    assert_eq!(s.record_spend_counters(&batch, NOW).await.unwrap(), 2);
    assert_eq!(spends(s, &key, "c1").await, [0.75; 3]);
    // A replay (the commit was not acknowledged, or a spill file) adds nothing.
    assert_eq!(s.record_spend_counters(&batch, NOW + 1).await.unwrap(), 0);
    // An overlapping batch adds only what is new.
    let more = [row("b", &key, "c1", 0.25), row("c", &key, "c1", 1.0)];
    assert_eq!(s.record_spend_counters(&more, NOW + 2).await.unwrap(), 1);
    assert_eq!(spends(s, &key, "c1").await, [1.75; 3]);
    assert_eq!(s.record_spend_counters(&[], NOW).await.unwrap(), 0);
    // No spend-log row at all.
    let logs = s.spend_logs(&SpendLogFilter::default()).await.unwrap();
    assert!(logs.is_empty(), "{logs:?}");
    // Once the dedupe window is over the id is forgotten (the documented
    // trade-off): a replay that late would be counted again.
    let later = NOW + COUNTED_TTL_MS + 10;
    assert_eq!(
        s.record_spend_counters(&[row("z", &key, "c1", 0.0)], later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.record_spend_counters(&[row("a", &key, "c1", 0.5)], later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(spends(s, &key, "c1").await, [2.25; 3]);
}

async fn concurrent_counter_writes_are_exact(s: &Store) {
    let key = setup(s, "c2").await;
    let s = Arc::new(s.clone());
    // 8 writers, overlapping batches of 50 ids out of 100: each id once.
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let s = Arc::clone(&s);
            let key = key.clone();
            tokio::spawn(async move {
                let batch: Vec<SpendRow> = (0..50)
                    .map(|i| row(&format!("r{:03}", (w * 7 + i) % 100), &key, "c2", 0.01))
                    .collect();
                s.record_spend_counters(&batch, NOW).await.unwrap()
            })
        })
        .collect();
    let mut new = 0;
    for t in tasks {
        new += t.await.unwrap();
    }
    let distinct: std::collections::HashSet<usize> = (0..8)
        .flat_map(|w| (0..50).map(move |i| (w * 7 + i) % 100))
        .collect();
    assert_eq!(new, distinct.len());
    let [k, u, t] = spends(&s, &key, "c2").await;
    let want = distinct.len() as f64 * 0.01;
    for got in [k, u, t] {
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }
}
