//! One test suite, run on SQLite (a temporary file) and on the real
//! PostgreSQL (`FERROLITE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), each Postgres test in a
//! schema of its own so tests run in parallel. Without a reachable
//! PostgreSQL the Postgres tests fail when `CI` is set, and are skipped with
//! a notice otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use ferrolite_store::{
    hash_key, parse_time, Key, KeyFilter, SpendDimension, SpendLogFilter, SpendRow, Store,
    StoreError, StoreOptions, Team, TeamMember, User,
};

const DAY: i64 = 86_400_000;

struct TestDb {
    store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Schema(String, String),
}

impl TestDb {
    async fn sqlite() -> Self {
        let path =
            std::env::temp_dir().join(format!("ferrolite-store-{}.db", uuid::Uuid::new_v4()));
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(store.backend(), "sqlite");
        TestDb {
            store,
            cleanup: Cleanup::File(path),
        }
    }

    async fn postgres() -> Option<Self> {
        let url = std::env::var("FERROLITE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = format!("ferrolite_test_{}", uuid::Uuid::new_v4().simple());
        let mut opts = StoreOptions::new(url.clone());
        opts.pg_schema = Some(schema.clone());
        opts.max_connections = Some(8);
        opts.acquire_timeout = std::time::Duration::from_secs(5);
        match Store::open(&opts).await {
            Ok(store) => {
                assert_eq!(store.backend(), "postgres");
                Some(TestDb {
                    store,
                    cleanup: Cleanup::Schema(url, schema),
                })
            }
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL at {url} is required when CI is set: {e}")
            }
            Err(e) => {
                eprintln!("NOTICE: PostgreSQL test skipped, {url} not reachable: {e}");
                None
            }
        }
    }

    async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
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
}

/// Each test body runs once per backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db.store).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres().await else { return };
                    super::$name(&db.store).await;
                    db.finish().await;
                }
            )*
        }
    };
}

both_backends!(
    key_lifecycle,
    key_list_filters,
    users,
    teams_and_members,
    record_spend_is_idempotent,
    replay_found_in_a_later_chunk_is_not_counted,
    concurrent_spend_is_exact,
    budget_reset,
    spend_queries,
);

fn key(secret: &str, now: i64) -> Key {
    Key::new(
        hash_key(secret),
        ferrolite_store::key_display_name(secret),
        now,
    )
}

fn row(id: &str, key: &str, spend: f64, at: i64) -> SpendRow {
    let mut r = SpendRow::new(id.to_owned(), key.to_owned(), at);
    r.spend = spend;
    r.prompt_tokens = 10;
    r.completion_tokens = 5;
    r.total_tokens = 15;
    r.model = "gpt-4o-mini".into();
    r.model_group = "gpt".into();
    r
}

async fn key_lifecycle(s: &Store) {
    let now = 1_700_000_000_000;
    let mut k = key("sk-aaaaaaaaaaaaaaaaaaaaaaaa", now);
    k.key_alias = Some("alpha".into());
    k.models = vec!["gpt".into(), "claude".into()];
    k.aliases.insert("fast".into(), "gpt".into());
    k.metadata
        .insert("owner".into(), serde_json::json!({"team": "x"}));
    k.max_budget = Some(10.5);
    k.budget_duration = Some("30d".into());
    k.budget_reset_at = Some(now + 30 * DAY);
    k.rpm_limit = Some(100);
    k.allowed_routes = vec!["/chat/completions".into()];
    k.created_by = Some("admin".into());
    s.create_key(&k).await.unwrap();
    assert_eq!(s.get_key(&k.token).await.unwrap().as_ref(), Some(&k));
    assert_eq!(
        s.get_key_by_alias("alpha").await.unwrap().unwrap().token,
        k.token
    );
    assert!(s.get_key(&hash_key("sk-unknown")).await.unwrap().is_none());

    // A second key with the same alias, or the same hash, is a conflict.
    let mut dup = key("sk-bbbbbbbbbbbbbbbbbbbbbbbb", now);
    dup.key_alias = Some("alpha".into());
    assert!(matches!(
        s.create_key(&dup).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_key(&k).await,
        Err(StoreError::Conflict(_))
    ));

    // Spend recorded meanwhile survives an update (update never writes spend).
    s.record_spend(&[row("r1", &k.token, 1.25, now)])
        .await
        .unwrap();
    let mut edit = k.clone();
    edit.spend = 0.0;
    edit.max_budget = None;
    edit.models = vec![];
    edit.updated_at = now + 1;
    assert!(s.update_key(&edit).await.unwrap());
    let got = s.get_key(&k.token).await.unwrap().unwrap();
    assert_eq!(
        (got.spend, got.max_budget, got.models.len(), got.updated_at),
        (1.25, None, 0, now + 1)
    );
    let mut ghost = edit.clone();
    ghost.token = hash_key("sk-ghost");
    assert!(!s.update_key(&ghost).await.unwrap());

    // Block / unblock.
    assert!(
        s.set_key_blocked(&k.token, true, now + 2)
            .await
            .unwrap()
            .unwrap()
            .blocked
    );
    assert!(
        !s.set_key_blocked(&k.token, false, now + 3)
            .await
            .unwrap()
            .unwrap()
            .blocked
    );
    assert!(s
        .set_key_blocked("nope", true, now)
        .await
        .unwrap()
        .is_none());

    // Regenerate: new hash, same row (spend, alias).
    let new_secret = "sk-cccccccccccccccccccccccc";
    let regen = s
        .regenerate_key(
            &k.token,
            &hash_key(new_secret),
            &ferrolite_store::key_display_name(new_secret),
            now + 4,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            regen.spend,
            regen.key_alias.as_deref(),
            regen.key_name.as_str()
        ),
        (1.25, Some("alpha"), "sk-...cccc")
    );
    assert!(s.get_key(&k.token).await.unwrap().is_none());
    assert!(s
        .regenerate_key(&k.token, "x", "y", now)
        .await
        .unwrap()
        .is_none());

    // Delete reports which keys existed.
    let deleted = s
        .delete_keys(&[regen.token.clone(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(deleted, vec![regen.token.clone()]);
    assert!(s.get_key(&regen.token).await.unwrap().is_none());
}

async fn key_list_filters(s: &Store) {
    for i in 0..7 {
        let mut k = key(&format!("sk-list-{i}"), 1000 + i);
        k.user_id = Some(if i % 2 == 0 { "u-even" } else { "u-odd" }.into());
        k.team_id = (i < 3).then(|| "t1".to_owned());
        k.key_alias = Some(format!("alias-{i}"));
        s.create_key(&k).await.unwrap();
    }
    let f = |user: Option<&str>, team: Option<&str>, alias: Option<&str>, page, size| KeyFilter {
        user_id: user.map(Into::into),
        team_id: team.map(Into::into),
        key_alias: alias.map(Into::into),
        page,
        size,
    };
    let (all, total) = s.list_keys(&f(None, None, None, 1, 100)).await.unwrap();
    assert_eq!((all.len(), total), (7, 7));
    let (even, total) = s
        .list_keys(&f(Some("u-even"), None, None, 1, 100))
        .await
        .unwrap();
    assert_eq!((even.len(), total), (4, 4));
    assert!(even.iter().all(|k| k.user_id.as_deref() == Some("u-even")));
    let (t1_even, _) = s
        .list_keys(&f(Some("u-even"), Some("t1"), None, 1, 100))
        .await
        .unwrap();
    assert_eq!(
        t1_even
            .iter()
            .map(|k| k.key_alias.clone().unwrap())
            .collect::<Vec<_>>(),
        ["alias-0", "alias-2"]
    );
    let (one, total) = s
        .list_keys(&f(None, None, Some("alias-5"), 1, 10))
        .await
        .unwrap();
    assert_eq!((one.len(), total, one[0].created_at), (1, 1, 1005));
    // Pages: 3 + 3 + 1, oldest first.
    let (p3, total) = s.list_keys(&f(None, None, None, 3, 3)).await.unwrap();
    assert_eq!((p3.len(), total, p3[0].created_at), (1, 7, 1006));
    let (p2, _) = s.list_keys(&f(None, None, None, 2, 3)).await.unwrap();
    assert_eq!(
        p2.iter().map(|k| k.created_at).collect::<Vec<_>>(),
        [1003, 1004, 1005]
    );
}

async fn users(s: &Store) {
    let mut u = User::new("u1".into(), 10);
    u.user_email = Some("u1@example.com".into());
    u.user_role = Some("internal_user".into());
    u.max_budget = Some(5.0);
    u.models = vec!["gpt".into()];
    u.metadata.insert("k".into(), 1.into());
    s.create_user(&u).await.unwrap();
    assert!(matches!(
        s.create_user(&u).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_user("u1").await.unwrap().as_ref(), Some(&u));
    s.create_user(&User::new("u2".into(), 20)).await.unwrap();
    let mut admin = User::new("u3".into(), 30);
    admin.user_role = Some("proxy_admin".into());
    s.create_user(&admin).await.unwrap();

    u.user_email = None;
    u.tpm_limit = Some(1000);
    u.updated_at = 11;
    assert!(s.update_user(&u).await.unwrap());
    assert_eq!(
        s.get_user("u1").await.unwrap().unwrap().tpm_limit,
        Some(1000)
    );
    assert!(!s.update_user(&User::new("ghost".into(), 0)).await.unwrap());

    let (list, total) = s.list_users(None, 1, 2).await.unwrap();
    assert_eq!(
        (
            list.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(),
            total
        ),
        (vec!["u1", "u2"], 3)
    );
    let (admins, total) = s.list_users(Some("proxy_admin"), 1, 10).await.unwrap();
    assert_eq!((admins.len(), total), (1, 1));

    assert_eq!(
        s.delete_users(&["u2".into(), "zz".into()]).await.unwrap(),
        vec!["u2".to_owned()]
    );
    assert!(s.get_user("u2").await.unwrap().is_none());
}

async fn teams_and_members(s: &Store) {
    let mut t = Team::new("t1".into(), 5);
    t.team_alias = Some("Team One".into());
    t.models = vec!["gpt".into()];
    t.max_budget = Some(100.0);
    t.members_with_roles = vec![TeamMember {
        user_id: "admin1".into(),
        role: "admin".into(),
    }];
    s.create_team(&t).await.unwrap();
    assert!(matches!(
        s.create_team(&t).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_team("t1").await.unwrap().as_ref(), Some(&t));

    // update_team leaves members alone.
    let mut edit = t.clone();
    edit.members_with_roles.clear();
    edit.blocked = true;
    edit.tpm_limit = Some(5);
    assert!(s.update_team(&edit).await.unwrap());
    let got = s.get_team("t1").await.unwrap().unwrap();
    assert_eq!(
        (got.blocked, got.tpm_limit, got.members_with_roles.len()),
        (true, Some(5), 1)
    );

    // Concurrent member adds are all kept.
    let s = Arc::new(s.clone());
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.update_team_members("t1", 100 + i, |m| {
                m.push(TeamMember {
                    user_id: format!("u{i}"),
                    role: "user".into(),
                });
                Ok(())
            })
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = s.get_team("t1").await.unwrap().unwrap();
    assert_eq!(got.members_with_roles.len(), 11);

    // A refused edit changes nothing; an unknown team is None.
    let refused = s
        .update_team_members("t1", 200, |_| Err("no".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refused, Err("no".to_owned()));
    assert!(s
        .update_team_members("nope", 1, |_| Ok(()))
        .await
        .unwrap()
        .is_none());
    let removed = s
        .update_team_members("t1", 300, |m| {
            m.retain(|x| x.user_id != "u3");
            Ok(())
        })
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(removed.members_with_roles.len(), 10);

    s.create_team(&Team::new("t2".into(), 6)).await.unwrap();
    assert_eq!(s.list_teams(None).await.unwrap().len(), 2);
    let mine = s.list_teams(Some("u4")).await.unwrap();
    assert_eq!(
        mine.iter().map(|t| t.team_id.as_str()).collect::<Vec<_>>(),
        ["t1"]
    );
    assert_eq!(
        s.delete_teams(&["t2".into(), "t9".into()]).await.unwrap(),
        vec!["t2".to_owned()]
    );
}

async fn record_spend_is_idempotent(s: &Store) {
    let now = 1_700_000_000_000;
    let k = key("sk-spend", now);
    s.create_key(&k).await.unwrap();
    s.create_user(&User::new("u1".into(), now)).await.unwrap();
    s.create_team(&Team::new("t1".into(), now)).await.unwrap();
    let mk = |id: &str, spend| {
        let mut r = row(id, &k.token, spend, now);
        r.user = Some("u1".into());
        r.team_id = Some("t1".into());
        r.request_tags = vec!["tag-a".into()];
        r.metadata.insert("x".into(), 1.into());
        r
    };
    let batch = vec![mk("a", 0.5), mk("b", 0.25), mk("b", 0.25)];
    assert_eq!(s.record_spend(&batch).await.unwrap(), 2);
    // The same batch again (a replay after a failed write) adds nothing.
    assert_eq!(s.record_spend(&batch).await.unwrap(), 0);
    // An overlapping batch adds only its new row.
    assert_eq!(
        s.record_spend(&[mk("b", 0.25), mk("c", 1.0)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.record_spend(&[]).await.unwrap(), 0);
    assert_eq!(s.get_key(&k.token).await.unwrap().unwrap().spend, 1.75);
    assert_eq!(s.get_user("u1").await.unwrap().unwrap().spend, 1.75);
    assert_eq!(s.get_team("t1").await.unwrap().unwrap().spend, 1.75);
    let logs = s
        .spend_logs(&SpendLogFilter {
            request_id: Some("a".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(logs, vec![mk("a", 0.5)]);
    // Rows for unknown keys/users/teams (e.g. the master key) are still logged.
    let mut orphan = row("d", "", 2.0, now);
    orphan.user = Some("nobody".into());
    assert_eq!(s.record_spend(&[orphan]).await.unwrap(), 1);
    assert_eq!(s.global_spend(None, None).await.unwrap(), 3.75);
}

/// A batch whose only stored row sits after the first INSERT chunk: the
/// fast path has already inserted 256 rows when it finds the duplicate, and
/// must undo them before counting again, or they would be counted twice.
async fn replay_found_in_a_later_chunk_is_not_counted(s: &Store) {
    let now = 1_700_000_000_000;
    let k = key("sk-chunks", now);
    s.create_key(&k).await.unwrap();
    let ids: Vec<String> = (0..300).map(|i| format!("req-{i:04}")).collect();
    assert_eq!(
        s.record_spend(&[row(&ids[290], &k.token, 1.0, now)])
            .await
            .unwrap(),
        1
    );
    let batch: Vec<SpendRow> = ids.iter().map(|id| row(id, &k.token, 0.5, now)).collect();
    assert_eq!(s.record_spend(&batch).await.unwrap(), 299);
    // 1.0 for the first write + 299 × 0.5; the replayed row's 0.5 is not added.
    assert_eq!(s.get_key(&k.token).await.unwrap().unwrap().spend, 150.5);
    assert_eq!(s.global_spend(None, None).await.unwrap(), 150.5);
    // And counters-only writes behave the same way.
    let counted: Vec<SpendRow> = (0..300)
        .map(|i| row(&format!("cnt-{i:04}"), &k.token, 0.25, now))
        .collect();
    assert_eq!(
        s.record_spend_counters(&counted[270..271], now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.record_spend_counters(&counted, now).await.unwrap(), 299);
    assert_eq!(
        s.get_key(&k.token).await.unwrap().unwrap().spend,
        150.5 + 300.0 * 0.25
    );
}

async fn concurrent_spend_is_exact(s: &Store) {
    let k = key("sk-concurrent", 0);
    s.create_key(&k).await.unwrap();
    let mut t = Team::new("t".into(), 0);
    t.max_budget = Some(1.0);
    s.create_team(&t).await.unwrap();
    let s = Arc::new(s.clone());
    let mut tasks = Vec::new();
    for task in 0..16 {
        let s = s.clone();
        let token = k.token.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..5 {
                let batch: Vec<SpendRow> = (0..4)
                    .map(|i| {
                        // Tasks overlap: ids repeat across pairs of tasks.
                        let mut r = row(&format!("req-{}-{b}-{i}", task / 2), &token, 0.125, 1000);
                        r.team_id = Some("t".into());
                        r
                    })
                    .collect();
                s.record_spend(&batch).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 8 distinct task ids × 5 batches × 4 rows = 160 rows of 0.125.
    let logs = s
        .spend_logs(&SpendLogFilter {
            api_key: Some(k.token.clone()),
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(logs.len(), 160);
    assert_eq!(s.get_key(&k.token).await.unwrap().unwrap().spend, 20.0);
    assert_eq!(s.get_team("t").await.unwrap().unwrap().spend, 20.0);
}

async fn budget_reset(s: &Store) {
    let now = parse_time("2025-01-31T12:00:00Z").unwrap();
    let mut due = key("sk-due", 0);
    due.budget_duration = Some("1d".into());
    due.budget_reset_at = Some(now - 1);
    let mut later = key("sk-later", 0);
    later.budget_duration = Some("1d".into());
    later.budget_reset_at = Some(now + 1);
    let mut monthly = key("sk-monthly", 0);
    monthly.budget_duration = Some("1mo".into());
    monthly.budget_reset_at = Some(now);
    for k in [&due, &later, &monthly] {
        s.create_key(k).await.unwrap();
    }
    let mut u = User::new("u".into(), 0);
    u.budget_duration = Some("1h".into());
    u.budget_reset_at = Some(now - 5);
    s.create_user(&u).await.unwrap();
    let mut t = Team::new("t".into(), 0);
    t.budget_duration = Some("bogus".into());
    t.budget_reset_at = Some(now - 5);
    s.create_team(&t).await.unwrap();
    let batch: Vec<SpendRow> = [&due, &later, &monthly]
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut r = row(&format!("r{i}"), &k.token, 2.0, now - 10);
            r.user = Some("u".into());
            r.team_id = Some("t".into());
            r
        })
        .collect();
    s.record_spend(&batch).await.unwrap();

    let done = s.reset_budgets(now).await.unwrap();
    assert_eq!((done.keys, done.users, done.teams), (2, 1, 1));
    let got = s.get_key(&due.token).await.unwrap().unwrap();
    assert_eq!((got.spend, got.budget_reset_at), (0.0, Some(now + DAY)));
    let got = s.get_key(&later.token).await.unwrap().unwrap();
    assert_eq!((got.spend, got.budget_reset_at), (2.0, Some(now + 1)));
    let got = s.get_key(&monthly.token).await.unwrap().unwrap();
    assert_eq!(
        (got.spend, got.budget_reset_at),
        (0.0, Some(parse_time("2025-02-28T12:00:00Z").unwrap()))
    );
    let got = s.get_user("u").await.unwrap().unwrap();
    assert_eq!(
        (got.spend, got.budget_reset_at),
        (0.0, Some(now + 3_600_000))
    );
    // An invalid duration: spend reset, no next reset.
    let got = s.get_team("t").await.unwrap().unwrap();
    assert_eq!((got.spend, got.budget_reset_at), (0.0, None));
    // Nothing is due any more; the logs are untouched.
    assert_eq!(s.reset_budgets(now).await.unwrap(), Default::default());
    assert_eq!(s.global_spend(None, None).await.unwrap(), 6.0);
}

async fn spend_queries(s: &Store) {
    let d1 = parse_time("2025-03-01T10:00:00Z").unwrap();
    let d2 = d1 + DAY;
    let (ka, kb) = (key("sk-qa", 0), key("sk-qb", 0));
    let mut kb = kb;
    kb.key_alias = Some("bee".into());
    s.create_key(&ka).await.unwrap();
    s.create_key(&kb).await.unwrap();
    let mut rows = Vec::new();
    for (i, (k, at, group, spend, user, team)) in [
        (&ka, d1, "gpt", 1.0, "u1", Some("t1")),
        (&ka, d1 + 1000, "claude", 2.0, "u1", Some("t1")),
        (&kb, d2, "gpt", 4.0, "u2", None),
        (&kb, d2 + 5, "gpt", 8.0, "u2", None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = row(&format!("q{i}"), &k.token, spend, at);
        r.model_group = group.into();
        r.user = Some(user.into());
        r.team_id = team.map(Into::into);
        rows.push(r);
    }
    s.record_spend(&rows).await.unwrap();

    let by = |f: SpendLogFilter| async move {
        s.spend_logs(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.request_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by(SpendLogFilter {
            api_key: Some(ka.token.clone()),
            ..Default::default()
        })
        .await,
        ["q1", "q0"]
    );
    assert_eq!(
        by(SpendLogFilter {
            user_id: Some("u2".into()),
            ..Default::default()
        })
        .await,
        ["q3", "q2"]
    );
    assert_eq!(
        by(SpendLogFilter {
            team_id: Some("t1".into()),
            limit: 1,
            ..Default::default()
        })
        .await,
        ["q1"]
    );
    assert_eq!(
        by(SpendLogFilter {
            start: Some(d1 + 1),
            end: Some(d2 + 5),
            ..Default::default()
        })
        .await,
        ["q2", "q1"]
    );

    assert_eq!(s.global_spend(None, None).await.unwrap(), 15.0);
    assert_eq!(s.global_spend(Some(d2), None).await.unwrap(), 12.0);
    assert_eq!(s.global_spend(Some(d2 + DAY), None).await.unwrap(), 0.0);

    let keys = s.spend_per_key(10).await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k.token.as_str(), k.spend))
            .collect::<Vec<_>>(),
        [(kb.token.as_str(), 12.0), (ka.token.as_str(), 3.0)]
    );
    assert_eq!(keys[0].key_alias.as_deref(), Some("bee"));

    let models = s.spend_per_model(None, None, 10).await.unwrap();
    assert_eq!(
        models
            .iter()
            .map(|m| (m.model.as_str(), m.spend, m.requests, m.total_tokens))
            .collect::<Vec<_>>(),
        [("gpt", 13.0, 3, 45), ("claude", 2.0, 1, 15)]
    );

    let days = s
        .spend_per_day(SpendDimension::Team, None, None)
        .await
        .unwrap();
    assert_eq!(
        days.iter()
            .map(|d| (d.day.as_str(), d.group.as_str(), d.spend, d.requests))
            .collect::<Vec<_>>(),
        [("2025-03-01", "t1", 3.0, 2), ("2025-03-02", "", 12.0, 2)]
    );
    let days = s
        .spend_per_day(SpendDimension::Model, Some(d1), Some(d2))
        .await
        .unwrap();
    assert_eq!(
        days.iter()
            .map(|d| (
                d.group.as_str(),
                d.spend,
                d.prompt_tokens,
                d.completion_tokens
            ))
            .collect::<Vec<_>>(),
        [("claude", 2.0, 10, 5), ("gpt", 1.0, 10, 5)]
    );
    assert_eq!(
        s.spend_per_day(SpendDimension::Key, None, None)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.spend_per_day(SpendDimension::User, None, None)
            .await
            .unwrap()[1]
            .group,
        "u2"
    );
}

#[tokio::test]
async fn bad_urls_fail_with_a_clear_message() {
    let e = Store::connect("mysql://localhost/x").await.unwrap_err();
    assert!(matches!(e, StoreError::BadUrl(_)), "{e}");
    assert!(e.to_string().contains("expected sqlite://"), "{e}");
    let mut opts = StoreOptions::new("postgres://u:hunter2@127.0.0.1:1/db");
    opts.acquire_timeout = std::time::Duration::from_millis(300);
    let e = Store::open(&opts).await.unwrap_err();
    assert!(matches!(e, StoreError::Connect(_)), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = Store::connect("sqlite:///nonexistent-dir-ferrolite/x/y.db")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Connect(_)), "{e}");
}

#[tokio::test]
async fn memory_store_keeps_its_data() {
    let s = Store::connect("sqlite::memory:").await.unwrap();
    s.create_user(&User::new("u".into(), 0)).await.unwrap();
    s.ping().await.unwrap();
    assert!(s.get_user("u").await.unwrap().is_some());
}

#[tokio::test]
async fn reopening_a_file_keeps_data_and_migrations() {
    let db = TestDb::sqlite().await;
    db.store
        .create_user(&User::new("u".into(), 0))
        .await
        .unwrap();
    db.store.close().await;
    let Cleanup::File(path) = &db.cleanup else {
        unreachable!()
    };
    let again = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(again.get_user("u").await.unwrap().is_some());
    again.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_stores_may_open_a_new_file_at_once() {
    let path = std::env::temp_dir().join(format!("ferrolite-store-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", path.display());
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::connect(&url).await })
        })
        .collect();
    for o in opens {
        let s = o.await.unwrap().unwrap();
        s.ping().await.unwrap();
        s.close().await;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
