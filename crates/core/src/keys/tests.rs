use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use super::*;
use crate::config::Config;
use crate::meter::{CallRecord, CallSink};
use crate::spend::Pricing;
use crate::GatewayError;

#[derive(Default)]
struct Dir {
    keys: Mutex<HashMap<String, KeyRecord>>,
    users: Mutex<HashMap<String, UserRecord>>,
    teams: Mutex<HashMap<String, TeamRecord>>,
    down: std::sync::atomic::AtomicBool,
}

impl Dir {
    fn check(&self) -> Result<(), String> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            Err("connection refused".into())
        } else {
            Ok(())
        }
    }
}

impl KeyDirectory for Dir {
    fn key<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, String>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.keys.lock().unwrap().get(hash).cloned())
        })
    }
    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.users.lock().unwrap().get(id).cloned())
        })
    }
    fn team<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TeamRecord>, String>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.teams.lock().unwrap().get(id).cloned())
        })
    }
    fn total_spend(&self, _since: Option<i64>) -> BoxFuture<'_, Result<f64, String>> {
        Box::pin(async move { Ok(0.0) })
    }
    fn reset_budgets(&self, _now: i64) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async move {
            let mut n = 0;
            for k in self.keys.lock().unwrap().values_mut() {
                if k.spend > 0.0 {
                    k.spend = 0.0;
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}

fn config() -> Config {
    crate::config::load_str(
        "model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, api_key: k, input_cost_per_token: 0.001, output_cost_per_token: 0.001}\n  - model_name: other\n    litellm_params: {model: openai/y, api_key: k}\n    model_info: {access_groups: [beta]}\n",
        std::path::Path::new("."),
        &crate::config::Env::isolated(Vec::<(String, String)>::new()),
    )
    .unwrap()
}

fn setup(key: KeyRecord) -> (Arc<Dir>, Arc<KeyEnforcer>) {
    let dir = Arc::new(Dir::default());
    dir.keys.lock().unwrap().insert(key.token.clone(), key);
    let cfg = config();
    let e = KeyEnforcer::new(
        dir.clone(),
        &cfg,
        Arc::new(Pricing::new(&cfg)),
        EnforcerSettings {
            cache_ttl: std::time::Duration::ZERO,
            ..Default::default()
        },
    );
    (dir, e)
}

fn key(raw: &str) -> KeyRecord {
    KeyRecord {
        token: hash_key(raw),
        ..Default::default()
    }
}

fn call(model: &str) -> CallInfo {
    CallInfo {
        model: Some(model.into()),
        group: Some(model.into()),
        prompt_tokens: 10,
        max_output_tokens: Some(10),
    }
}

fn denied(e: GatewayError) -> (u16, String, String) {
    (e.status(), e.error_type(), e.to_string())
}

#[tokio::test]
async fn unknown_blocked_and_expired_keys_are_refused_in_order() {
    let (dir, e) = setup(key("sk-good"));
    let (s, t, _) = denied(e.authorize("sk-nope", &call("m")).await.unwrap_err());
    assert_eq!((s, t.as_str()), (401, "token_not_found_in_db"));
    assert!(e.authorize("sk-good", &call("m")).await.is_ok());

    dir.keys
        .lock()
        .unwrap()
        .get_mut(&hash_key("sk-good"))
        .unwrap()
        .blocked = true;
    let (s, _, m) = denied(e.authorize("sk-good", &call("m")).await.unwrap_err());
    assert_eq!(s, 401);
    assert!(m.contains("blocked"), "{m}");

    {
        let mut keys = dir.keys.lock().unwrap();
        let k = keys.get_mut(&hash_key("sk-good")).unwrap();
        k.blocked = false;
        k.expires = Some(1_000);
    }
    let (s, t, m) = denied(e.authorize("sk-good", &call("m")).await.unwrap_err());
    assert_eq!((s, t.as_str()), (401, "expired_key"));
    assert!(
        m.starts_with(
            "Authentication Error - Expired Key. Key Expiry time 1970-01-01 00:00:01+00:00"
        ),
        "{m}"
    );
}

#[tokio::test]
async fn models_are_checked_on_the_key_then_the_team_with_access_groups() {
    let mut k = key("sk-a");
    k.models = vec!["m".into()];
    let (dir, e) = setup(k);
    assert!(e.authorize("sk-a", &call("m")).await.is_ok());
    let (s, t, m) = denied(e.authorize("sk-a", &call("other")).await.unwrap_err());
    assert_eq!((s, t.as_str()), (401, "key_model_access_denied"));
    assert_eq!(m, "key not allowed to access model. This key can only access models=['m']. Tried to access other");

    dir.keys
        .lock()
        .unwrap()
        .get_mut(&hash_key("sk-a"))
        .unwrap()
        .models = vec!["beta".into()];
    assert!(
        e.authorize("sk-a", &call("other")).await.is_ok(),
        "access group"
    );
    dir.keys
        .lock()
        .unwrap()
        .get_mut(&hash_key("sk-a"))
        .unwrap()
        .models = vec!["all-proxy-models".into()];
    assert!(e.authorize("sk-a", &call("other")).await.is_ok());

    dir.teams.lock().unwrap().insert(
        "t1".into(),
        TeamRecord {
            team_id: "t1".into(),
            models: vec!["m".into()],
            ..Default::default()
        },
    );
    dir.keys
        .lock()
        .unwrap()
        .get_mut(&hash_key("sk-a"))
        .unwrap()
        .team_id = Some("t1".into());
    let (_, t, _) = denied(e.authorize("sk-a", &call("other")).await.unwrap_err());
    assert_eq!(t, "team_model_access_denied");
    let p = e.authorize("sk-a", &call("m")).await.unwrap();
    assert_eq!(p.team_id.as_deref(), Some("t1"));
    assert!(!p.admin);
}

#[tokio::test]
async fn proxy_admin_users_make_admin_keys() {
    let mut k = key("sk-adm");
    k.user_id = Some("u".into());
    let (dir, e) = setup(k);
    dir.users.lock().unwrap().insert(
        "u".into(),
        UserRecord {
            user_id: "u".into(),
            user_role: Some("proxy_admin".into()),
            ..Default::default()
        },
    );
    let p = e.authorize("sk-adm", &CallInfo::default()).await.unwrap();
    assert!(p.admin);
    assert!(p.hold.is_none(), "no model, nothing reserved");
}

fn record(p: &crate::auth::Principal, cost: f64) -> CallRecord {
    CallRecord {
        principal: Some(Arc::new(p.clone())),
        cost,
        ..Default::default()
    }
}

#[tokio::test]
async fn reservations_bound_parallel_calls_and_settle_to_the_actual_cost() {
    // Each call reserves (10 + 10 tokens) × 0.001 = 0.02.
    let mut k = key("sk-b");
    k.max_budget = Some(0.05);
    let (_, e) = setup(k);
    let hash = hash_key("sk-b");
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        match e.authorize("sk-b", &call("m")).await {
            Ok(p) => held.push(p),
            Err(err) => {
                assert_eq!(err.error_type(), "budget_exceeded");
                refused += 1;
            }
        }
    }
    // 0 → 0.02 → 0.04 admitted; 0.06 ≥ 0.05 refused.
    assert_eq!((held.len(), refused), (3, 17));
    assert!((e.ledger.reserved(&format!("key:{hash}")) - 0.06).abs() < 1e-9);
    // Settling at the actual cost releases the rest of the reservation.
    for p in &held {
        e.record(&record(p, 0.01));
    }
    drop(held);
    assert!(e.ledger.reserved(&format!("key:{hash}")).abs() < 1e-12);
    // Spent 0.03 of 0.05: admitted again, once more; then refused.
    let p1 = e.authorize("sk-b", &call("m")).await.unwrap();
    let err = e.authorize("sk-b", &call("m")).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "Budget has been exceeded! Key={hash} Current cost: 0.03"
        )),
        "{err}"
    );
    assert_eq!(err.status(), 400);
    // A call that never reports (dropped) gives its reservation back.
    drop(p1);
    assert!(e.authorize("sk-b", &call("m")).await.is_ok());
}

#[tokio::test]
async fn parallel_and_rpm_limits_answer_429() {
    let mut k = key("sk-c");
    k.max_parallel_requests = Some(2);
    k.rpm_limit = Some(3);
    let (_, e) = setup(k);
    let a = e.authorize("sk-c", &call("m")).await.unwrap();
    let b = e.authorize("sk-c", &call("m")).await.unwrap();
    let err = e.authorize("sk-c", &call("m")).await.unwrap_err();
    assert_eq!(err.status(), 429);
    assert!(err.to_string().contains("max_parallel_requests"), "{err}");
    assert!(err.retry_after().is_some());
    drop(a);
    let c = e.authorize("sk-c", &call("m")).await.unwrap();
    drop((b, c));
    let err = e.authorize("sk-c", &call("m")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Limit type: requests. Current limit: 3"),
        "{err}"
    );
}

#[tokio::test]
async fn unwritten_spend_counts_until_the_database_has_it() {
    let mut k = key("sk-d");
    k.max_budget = Some(0.03);
    let (dir, e) = setup(k);
    let hash = hash_key("sk-d");
    let p = e.authorize("sk-d", &call("m")).await.unwrap();
    e.record(&record(&p, 0.025));
    drop(p);
    // Not yet written: the ledger still counts it (0.025 + 0 reserved < 0.03).
    let p = e.authorize("sk-d", &call("m")).await.unwrap();
    e.record(&record(&p, 0.01));
    drop(p);
    assert!(
        e.authorize("sk-d", &call("m")).await.is_err(),
        "0.035 ≥ 0.03"
    );
    // The writer stores both rows, and the database now has the spend:
    // nothing is counted twice.
    dir.keys.lock().unwrap().get_mut(&hash).unwrap().spend = 0.035;
    let mut row = crate::spend::SpendEntry::from_record(&CallRecord::default());
    row.api_key = hash.clone();
    row.spend = 0.035;
    e.written(&[row]);
    let err = e.authorize("sk-d", &call("m")).await.unwrap_err();
    assert!(err.to_string().contains("Current cost: 0.035"), "{err}");
    // Budget reset.
    assert_eq!(e.reset_budgets().await.unwrap(), 1);
    assert!(e.authorize("sk-d", &call("m")).await.is_ok());
}

#[tokio::test]
async fn a_database_outage_uses_the_cache_or_the_configured_policy() {
    let (dir, e) = setup(key("sk-e"));
    dir.down.store(true, std::sync::atomic::Ordering::Relaxed);
    let err = e.authorize("sk-e", &call("m")).await.unwrap_err();
    assert_eq!(
        (err.status(), err.error_type().as_str()),
        (503, "no_db_connection")
    );
    dir.down.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(e.authorize("sk-e", &call("m")).await.is_ok());
    dir.down.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        e.authorize("sk-e", &call("m")).await.is_ok(),
        "stale cache entry used"
    );
}

#[test]
fn dates_format_like_litellm() {
    assert_eq!(
        enforcer::format_ms_for_tests(1_700_000_000_000),
        "2023-11-14 22:13:20+00:00"
    );
}
