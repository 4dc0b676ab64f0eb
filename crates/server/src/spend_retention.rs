//! Spend-log retention (`general_settings.maximum_spend_logs_retention_period`
//! and ferrolite's `maximum_spend_logs_rows`): a background task that
//! deletes old rows shortly after startup, then every
//! `maximum_spend_logs_retention_interval`. Off unless one of them is set.
//!
//! Every instance runs its own task; the store deletes in bounded batches
//! and its deletes are idempotent, so instances sharing one PostgreSQL only
//! repeat each other's work. Only spend-log rows go: key, user and team spend
//! (and so their budgets) live in their own tables and do not change.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrolite_core::spend::SpendLogSettings;
use ferrolite_store::{Pruned, Retention, Store, StoreError};

/// How long after startup the first run waits (startup, migrations and the
/// first requests go first).
pub const FIRST_RUN_AFTER: Duration = Duration::from_secs(10);

/// What to delete at `now_ms` under `s`.
pub fn retention(s: &SpendLogSettings, now_ms: i64) -> Retention {
    Retention {
        before: s
            .retention_period
            .map(|p| now_ms.saturating_sub(i64::try_from(p.as_millis()).unwrap_or(i64::MAX))),
        max_rows: s.max_rows,
        ..Default::default()
    }
}

/// One run: delete what `s` says is too old or too many, log the count.
pub async fn run_once(
    store: &Store,
    s: &SpendLogSettings,
    now_ms: i64,
) -> Result<Pruned, StoreError> {
    let r = retention(s, now_ms);
    let started = Instant::now();
    match store.prune_spend_logs(&r).await {
        Ok(p) => {
            tracing::info!(
                deleted = p.total(),
                older_than_period = p.by_age,
                beyond_max_rows = p.by_count,
                statements = p.statements,
                ms = started.elapsed().as_millis() as u64,
                "spend-log retention: {} row(s) deleted",
                p.total()
            );
            Ok(p)
        }
        Err(e) => {
            tracing::warn!("spend-log retention failed (tried again at the next interval): {e}");
            Err(e)
        }
    }
}

/// Run `job` once `first` has passed, then every `every` (a run that
/// takes longer delays the next one rather than piling up).
pub async fn repeat<F, Fut>(first: Duration, every: Duration, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = tokio::time::Instant::now() + first;
    let mut tick = tokio::time::interval_at(start, every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        job().await;
    }
}

/// Start the task when retention is configured.
pub fn spawn(store: Arc<Store>, s: &SpendLogSettings) -> Option<tokio::task::JoinHandle<()>> {
    if !s.retention_on() {
        return None;
    }
    let s = s.clone();
    tracing::info!(
        period_secs = s.retention_period.map(|p| p.as_secs()),
        max_rows = s.max_rows,
        every_secs = s.retention_interval.as_secs(),
        "spend-log retention on"
    );
    Some(tokio::spawn(repeat(
        FIRST_RUN_AFTER,
        s.retention_interval,
        move || {
            let store = Arc::clone(&store);
            let s = s.clone();
            async move {
                let _ = run_once(&store, &s, ferrolite_store::now_ms()).await;
            }
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn cutoffs() {
        let s = SpendLogSettings {
            retention_period: Some(Duration::from_secs(60)),
            max_rows: Some(5),
            ..Default::default()
        };
        let r = retention(&s, 1_000_000);
        assert_eq!(r.before, Some(940_000));
        assert_eq!(r.max_rows, Some(5));
        assert_eq!(retention(&SpendLogSettings::default(), 5).before, None);
    }

    #[tokio::test(start_paused = true)]
    async fn runs_shortly_after_startup_then_every_interval() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r2 = Arc::clone(&runs);
        let task = tokio::spawn(repeat(
            Duration::from_secs(10),
            Duration::from_secs(3_600),
            move || {
                r2.fetch_add(1, Ordering::SeqCst);
                async {}
            },
        ));
        let at = |secs: u64| async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
        };
        at(9).await;
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        at(2).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "first run 10 s after start");
        at(3_598).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        at(2).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "then every interval");
        task.abort();
    }
}
