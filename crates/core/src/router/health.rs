//! Deployment health: cooldowns after failures, as LiteLLM applies them.
//!
//! A deployment cools down — is skipped by routing — for `cooldown_time`
//! (or the upstream's `Retry-After`) right after a 429, 401, 404 or 408, or
//! once it has failed more than `allowed_fails` times in the current minute.
//! A group with a single deployment is never cooled down unless it has
//! fallbacks: there would be nothing else to send the request to.
//! State is in memory, per instance (shared state through Redis comes with
//! the router issue).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// LiteLLM's defaults.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);
pub const DEFAULT_ALLOWED_FAILS: u32 = 3;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct CooldownPolicy {
    pub cooldown: Duration,
    pub allowed_fails: u32,
    pub disabled: bool,
    /// `allowed_fails_policy`: per kind of failure (`RateLimitErrorAllowedFails`,
    /// …), how many failures in a minute are allowed before a cooldown. A
    /// kind listed here is counted instead of cooling down at once.
    pub allowed_fails_policy: std::collections::BTreeMap<String, u32>,
}

impl Default for CooldownPolicy {
    fn default() -> Self {
        Self {
            cooldown: DEFAULT_COOLDOWN,
            allowed_fails: DEFAULT_ALLOWED_FAILS,
            disabled: false,
            allowed_fails_policy: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    until: Option<Instant>,
    /// This minute's failures, with their `allowed_fails_policy` key.
    failures: VecDeque<(Instant, Option<&'static str>)>,
}

/// The health state machine: healthy → cooling down → probation → healthy
/// (after a success) or back to cooling down (after any failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    Healthy,
    CoolingDown { until: Instant },
    Probation,
}

/// What happened on one attempt, as far as health is concerned.
#[derive(Debug, Clone, Copy)]
pub enum Observed {
    /// 429/401/404/408: cool down at once (for `retry_after` when given).
    Immediate { retry_after: Option<Duration> },
    /// Any other upstream failure: counts toward `allowed_fails`.
    Failure,
}

#[derive(Debug, Default)]
pub struct Health {
    states: Mutex<HashMap<usize, State>>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, State>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Until when `id` is cooling down, if it is.
    pub fn cooling_until(&self, slot: usize, now: Instant) -> Option<Instant> {
        self.lock()
            .get(&slot)
            .and_then(|s| s.until)
            .filter(|u| *u > now)
    }

    /// Record a failure of deployment `id`. `may_cool` is false for a
    /// group's only deployment without fallbacks.
    /// Returns the cooldown it started, if any (to share with other instances).
    /// `kind` is the failure's `allowed_fails_policy` key, if it has one.
    #[allow(clippy::too_many_arguments)]
    pub fn record_failure(
        &self,
        slot: usize,
        id: &str,
        seen: Observed,
        kind: Option<&'static str>,
        policy: &CooldownPolicy,
        may_cool: bool,
        now: Instant,
    ) -> Option<Duration> {
        if policy.disabled || !may_cool {
            return None;
        }
        let mut states = self.lock();
        let s = states.entry(slot).or_default();
        while s
            .failures
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= WINDOW)
        {
            s.failures.pop_front();
        }
        s.failures.push_back((now, kind));
        let per_kind = kind.and_then(|k| policy.allowed_fails_policy.get(k).map(|n| (k, *n)));
        // On probation (its cooldown is over, no success since): one more
        // failure sends it straight back.
        let probation = s.until.is_some_and(|u| u <= now);
        let cool_for = match (per_kind, seen) {
            _ if probation => Some(match seen {
                Observed::Immediate {
                    retry_after: Some(ra),
                } => ra,
                _ => policy.cooldown,
            }),
            (Some((k, allowed)), _) => {
                let count = s.failures.iter().filter(|(_, fk)| *fk == Some(k)).count();
                (count as u32 > allowed).then_some(policy.cooldown)
            }
            (None, Observed::Immediate { retry_after }) => {
                Some(retry_after.unwrap_or(policy.cooldown))
            }
            (None, Observed::Failure) if s.failures.len() as u32 > policy.allowed_fails => {
                Some(policy.cooldown)
            }
            (None, Observed::Failure) => None,
        };
        if let Some(d) = cool_for {
            let until = now + d;
            s.until = Some(s.until.map_or(until, |u| u.max(until)));
            tracing::info!(
                deployment = id,
                seconds = d.as_secs_f64(),
                "deployment cooling down"
            );
        }
        cool_for
    }

    /// A cooldown another instance reported (read back from Redis).
    pub fn merge_remote(&self, slot: usize, remaining: Duration, now: Instant) {
        let mut states = self.lock();
        let s = states.entry(slot).or_default();
        let until = now + remaining;
        if s.until.is_none_or(|u| u < until) {
            s.until = Some(until);
        }
    }

    /// A success clears the failure count, and ends probation: the
    /// deployment is healthy again.
    pub fn record_success(&self, slot: usize) {
        let now = Instant::now();
        let mut states = self.lock();
        if let Some(s) = states.get_mut(&slot) {
            s.failures.clear();
            if s.until.is_some_and(|u| u <= now) {
                s.until = None;
            }
        }
    }

    /// Where a deployment stands: healthy, cooling down (until when), or on
    /// probation after a cooldown.
    pub fn state(&self, slot: usize, now: Instant) -> DeploymentState {
        match self.lock().get(&slot).and_then(|s| s.until) {
            Some(u) if u > now => DeploymentState::CoolingDown { until: u },
            Some(_) => DeploymentState::Probation,
            None => DeploymentState::Healthy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: CooldownPolicy = CooldownPolicy {
        cooldown: Duration::from_secs(5),
        allowed_fails: 3,
        disabled: false,
        allowed_fails_policy: std::collections::BTreeMap::new(),
    };

    #[tokio::test(start_paused = true)]
    async fn rate_limits_cool_down_at_once_for_retry_after_or_cooldown_time() {
        let h = Health::new();
        let now = Instant::now();
        h.record_failure(
            0,
            "a",
            Observed::Immediate { retry_after: None },
            None,
            &P,
            true,
            now,
        );
        assert_eq!(h.cooling_until(0, now), Some(now + Duration::from_secs(5)));
        h.record_failure(
            1,
            "b",
            Observed::Immediate {
                retry_after: Some(Duration::from_secs(30)),
            },
            None,
            &P,
            true,
            now,
        );
        assert_eq!(h.cooling_until(1, now), Some(now + Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(h.cooling_until(0, Instant::now()), None, "cooldown over");
        assert!(h.cooling_until(1, Instant::now()).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn other_failures_cool_down_past_allowed_fails_in_a_minute() {
        let h = Health::new();
        for _ in 0..3 {
            h.record_failure(0, "a", Observed::Failure, None, &P, true, Instant::now());
        }
        assert_eq!(
            h.cooling_until(0, Instant::now()),
            None,
            "3 fails are allowed"
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        h.record_failure(0, "a", Observed::Failure, None, &P, true, Instant::now());
        assert_eq!(
            h.cooling_until(0, Instant::now()),
            None,
            "old failures left the window"
        );
        for _ in 0..3 {
            h.record_failure(0, "a", Observed::Failure, None, &P, true, Instant::now());
        }
        assert!(
            h.cooling_until(0, Instant::now()).is_some(),
            "the 4th failure within a minute cools it down"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn successes_reset_the_count_and_single_deployments_never_cool() {
        let h = Health::new();
        for _ in 0..3 {
            h.record_failure(0, "a", Observed::Failure, None, &P, true, Instant::now());
        }
        h.record_success(0);
        h.record_failure(0, "a", Observed::Failure, None, &P, true, Instant::now());
        assert_eq!(h.cooling_until(0, Instant::now()), None);
        h.record_failure(
            2,
            "solo",
            Observed::Immediate { retry_after: None },
            None,
            &P,
            false,
            Instant::now(),
        );
        assert_eq!(h.cooling_until(2, Instant::now()), None);
        let off = CooldownPolicy {
            disabled: true,
            ..P
        };
        h.record_failure(
            3,
            "x",
            Observed::Immediate { retry_after: None },
            None,
            &off,
            true,
            Instant::now(),
        );
        assert_eq!(h.cooling_until(3, Instant::now()), None);
        let mut per_kind = P;
        per_kind
            .allowed_fails_policy
            .insert("RateLimitErrorAllowedFails".into(), 2);
        for n in 1..=3 {
            let d = h.record_failure(
                4,
                "k",
                Observed::Immediate { retry_after: None },
                Some("RateLimitErrorAllowedFails"),
                &per_kind,
                true,
                Instant::now(),
            );
            assert_eq!(
                d.is_some(),
                n == 3,
                "allowed_fails_policy: 2 rate limits are allowed, the 3rd cools down"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_cooling_probation_healthy() {
        let h = Health::new();
        assert_eq!(h.state(0, Instant::now()), DeploymentState::Healthy);
        h.record_failure(
            0,
            "a",
            Observed::Immediate { retry_after: None },
            None,
            &P,
            true,
            Instant::now(),
        );
        assert!(matches!(
            h.state(0, Instant::now()),
            DeploymentState::CoolingDown { .. }
        ));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(h.state(0, Instant::now()), DeploymentState::Probation);
        // On probation a single ordinary failure (not enough for allowed_fails) cools it again.
        h.record_failure(0, "a", Observed::Failure, None, &P, true, Instant::now());
        assert!(matches!(
            h.state(0, Instant::now()),
            DeploymentState::CoolingDown { .. }
        ));
        tokio::time::advance(Duration::from_secs(6)).await;
        h.record_success(0);
        assert_eq!(h.state(0, Instant::now()), DeploymentState::Healthy);
        h.record_failure(0, "a", Observed::Failure, None, &P, true, Instant::now());
        assert_eq!(
            h.state(0, Instant::now()),
            DeploymentState::Healthy,
            "healthy again: one failure is allowed"
        );
    }
}
