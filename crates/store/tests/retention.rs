//! Spend-log retention (by age, by count, batched, concurrent) and the
//! stored-content columns, on SQLite (a temporary file) and on the real
//! PostgreSQL (`FERROLITE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, a schema per test). Without a
//! reachable PostgreSQL the Postgres tests fail when `CI` is set, and are
//! skipped with a notice otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferrolite_store::{
    hash_key, Key, Pruned, Retention, SpendLogFilter, SpendRow, Store, StoreOptions, Team, User,
};

enum Cleanup {
    File(std::path::PathBuf),
    Schema(String, String),
}

async fn sqlite() -> (Store, Cleanup) {
    let path =
        std::env::temp_dir().join(format!("ferrolite-retention-{}.db", uuid::Uuid::new_v4()));
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
    opts.acquire_timeout = Duration::from_secs(5);
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
                    let s = std::sync::Arc::new(s);
                    super::$name(&s).await;
                    super::finish(std::sync::Arc::into_inner(s).unwrap(), c).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((s, c)) = super::postgres().await else { return };
                    let s = std::sync::Arc::new(s);
                    super::$name(&s).await;
                    super::finish(std::sync::Arc::into_inner(s).unwrap(), c).await;
                }
            )*
        }
    };
}

both_backends!(
    old_rows_go_in_batches_and_counters_stay,
    the_newest_rows_are_kept_up_to_the_count,
    age_and_count_together,
    concurrent_pruners_delete_each_row_once,
    content_columns_round_trip,
);

const NOW: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
const SECRET: &str = "sk-retention-test";

/// A key, its user and its team; the key's hash.
async fn setup(s: &Store) -> String {
    let k = Key::new(hash_key(SECRET), "sk-...test".into(), NOW);
    s.create_key(&k).await.unwrap();
    s.create_user(&User::new("u1".into(), NOW)).await.unwrap();
    s.create_team(&Team::new("t1".into(), NOW)).await.unwrap();
    k.token
}

fn row(id: &str, key: &str, at: i64) -> SpendRow {
    let mut r = SpendRow::new(id.to_owned(), key.to_owned(), at);
    r.spend = 0.5;
    r.user = Some("u1".into());
    r.team_id = Some("t1".into());
    r
}

/// Record `n` rows named `{prefix}{i}`, row `i` at `at(i)`.
async fn rows(s: &Store, key: &str, prefix: &str, n: usize, at: impl Fn(i64) -> i64) {
    let batch: Vec<SpendRow> = (0..n)
        .map(|i| row(&format!("{prefix}{i:03}"), key, at(i as i64)))
        .collect();
    assert_eq!(s.record_spend(&batch).await.unwrap(), n);
}

async fn ids(s: &Store) -> BTreeSet<String> {
    s.spend_logs(&SpendLogFilter {
        limit: 100_000,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.request_id)
    .collect()
}

async fn spends(s: &Store, key: &str) -> [f64; 3] {
    [
        s.get_key(key).await.unwrap().unwrap().spend,
        s.get_user("u1").await.unwrap().unwrap().spend,
        s.get_team("t1").await.unwrap().unwrap().spend,
    ]
}

fn rules(before: Option<i64>, max_rows: Option<u64>, batch: u32) -> Retention {
    Retention {
        before,
        max_rows,
        batch,
        pause: Duration::ZERO,
    }
}

async fn old_rows_go_in_batches_and_counters_stay(s: &Arc<Store>) {
    let key = setup(s).await;
    // 17 rows 10 days old and older, 6 recent, 1 exactly at the cutoff.
    rows(s, &key, "old", 17, |i| NOW - 10 * DAY - i * MIN).await;
    rows(s, &key, "new", 6, |i| NOW - i * MIN).await;
    let cutoff = NOW - 7 * DAY;
    s.record_spend(&[row("edge", &key, cutoff)]).await.unwrap();
    let before = spends(s, &key).await;
    assert_eq!(before, [12.0, 12.0, 12.0]);

    let p = s
        .prune_spend_logs(&rules(Some(cutoff), None, 5))
        .await
        .unwrap();
    assert_eq!(
        p,
        Pruned {
            by_age: 17,
            by_count: 0,
            statements: 4
        },
        "batches of 5: 5 + 5 + 5 + 2"
    );
    let left = ids(s).await;
    assert_eq!(left.len(), 7, "{left:?}");
    assert!(
        left.iter().all(|id| id.starts_with("new") || id == "edge"),
        "{left:?}"
    );
    assert_eq!(
        spends(s, &key).await,
        before,
        "key, user and team spend untouched"
    );
    assert_eq!(s.count_spend_logs().await.unwrap(), 7);

    // Nothing older is left: one statement, nothing deleted.
    let again = s
        .prune_spend_logs(&rules(Some(cutoff), None, 5))
        .await
        .unwrap();
    assert_eq!((again.total(), again.statements), (0, 1));
    // An exact multiple of the batch takes one more (empty) statement.
    rows(s, &key, "ten", 10, |i| NOW - 30 * DAY - i).await;
    let p = s
        .prune_spend_logs(&rules(Some(cutoff), None, 5))
        .await
        .unwrap();
    assert_eq!((p.by_age, p.statements), (10, 3));
    assert_eq!(ids(s).await, left);
}

async fn the_newest_rows_are_kept_up_to_the_count(s: &Arc<Store>) {
    let key = setup(s).await;
    rows(s, &key, "r", 30, |i| NOW - i * MIN).await;
    let before = spends(s, &key).await;
    let p = s.prune_spend_logs(&rules(None, Some(12), 7)).await.unwrap();
    assert_eq!(
        p,
        Pruned {
            by_age: 0,
            by_count: 18,
            statements: 3
        },
        "7 + 7 + 4"
    );
    let want: BTreeSet<String> = (0..12).map(|i| format!("r{i:03}")).collect();
    assert_eq!(ids(s).await, want, "the 12 newest");
    assert_eq!(spends(s, &key).await, before);

    // At or under the count: no statement at all.
    let p = s.prune_spend_logs(&rules(None, Some(12), 7)).await.unwrap();
    assert_eq!(p, Pruned::default());
    let p = s
        .prune_spend_logs(&rules(None, Some(100), 7))
        .await
        .unwrap();
    assert_eq!(p, Pruned::default());

    // Rows sharing the oldest kept row's time are kept with it.
    let oldest_kept = NOW - 11 * MIN;
    s.record_spend(&[row("tie", &key, oldest_kept)])
        .await
        .unwrap();
    let p = s.prune_spend_logs(&rules(None, Some(12), 7)).await.unwrap();
    assert_eq!(p.total(), 0);
    assert_eq!(s.count_spend_logs().await.unwrap(), 13);
    let p = s.prune_spend_logs(&rules(None, Some(1), 7)).await.unwrap();
    assert_eq!(p.by_count, 12);
    assert_eq!(ids(s).await, BTreeSet::from(["r000".to_owned()]));
}

async fn age_and_count_together(s: &Arc<Store>) {
    let key = setup(s).await;
    rows(s, &key, "old", 8, |i| NOW - 40 * DAY - i).await;
    rows(s, &key, "new", 20, |i| NOW - i * MIN).await;
    let p = s
        .prune_spend_logs(&rules(Some(NOW - 30 * DAY), Some(15), 1000))
        .await
        .unwrap();
    assert_eq!((p.by_age, p.by_count), (8, 5));
    let want: BTreeSet<String> = (0..15).map(|i| format!("new{i:03}")).collect();
    assert_eq!(ids(s).await, want);
}

/// Several instances pruning one database at once: every old row goes
/// exactly once, no newer row goes, nothing fails.
async fn concurrent_pruners_delete_each_row_once(s: &Arc<Store>) {
    let key = setup(s).await;
    rows(s, &key, "old", 400, |i| NOW - 10 * DAY - i).await;
    rows(s, &key, "new", 50, |i| NOW - i).await;
    let before = spends(s, &key).await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let s = Arc::clone(s);
            tokio::spawn(async move {
                s.prune_spend_logs(&rules(Some(NOW - DAY), None, 25))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap().by_age;
    }
    assert_eq!(total, 400, "each old row deleted once in all");
    let left = ids(s).await;
    assert_eq!(left.len(), 50);
    assert!(left.iter().all(|id| id.starts_with("new")));
    assert_eq!(spends(s, &key).await, before);
}

async fn content_columns_round_trip(s: &Arc<Store>) {
    let key = setup(s).await;
    let mut with = row("with", &key, NOW);
    let big = "x".repeat(200_000);
    with.messages = Some(
        serde_json::json!([{"role": "user", "content": format!("<b>hi</b> {big}")}]).to_string(),
    );
    with.response = Some(r#"{"choices":[{"message":{"content":"é \"quoted\""}}]}"#.into());
    let without = row("without", &key, NOW - 1);
    assert_eq!(s.record_spend(&[with.clone(), without]).await.unwrap(), 2);

    let read = |content: bool, id: &'static str| {
        let s = Arc::clone(s);
        async move {
            let rows = s
                .spend_logs(&SpendLogFilter {
                    request_id: Some(id.into()),
                    content,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            rows.into_iter().next().unwrap()
        }
    };
    let got = read(true, "with").await;
    assert_eq!(got.messages, with.messages, "stored as written");
    assert_eq!(got.response, with.response);
    let got = read(false, "with").await;
    assert_eq!(
        (got.messages, got.response),
        (None, None),
        "not read unless asked"
    );
    let got = read(true, "without").await;
    assert_eq!(
        (got.messages, got.response),
        (None, None),
        "NULL when not stored"
    );
}
