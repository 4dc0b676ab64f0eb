//! Live per-deployment usage: requests in flight, requests and tokens in the
//! current minute, and recent latency. Routing strategies read it and the
//! deployment limits (`rpm`, `tpm`, `max_parallel_requests`) are checked
//! against it. In memory, per instance, plus what other instances last
//! published through Redis (in flight, latency), when Redis is configured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::shared::{RedisShared, RemoteStats};

/// Weight of the newest sample in the latency average.
const LATENCY_ALPHA: f64 = 0.3;

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    in_flight: u32,
    minute: u64,
    requests: u32,
    tokens: u64,
    latency_ms: Option<f64>,
    /// When the latency average last took a sample.
    latency_at: Option<Instant>,
}

/// How long a latency average counts without new samples, as LiteLLM's
/// `routing_strategy_args.ttl` default (one hour).
pub const DEFAULT_LATENCY_TTL: Duration = Duration::from_secs(3600);

/// What a strategy sees of one deployment.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct View {
    /// Requests in flight here and, with Redis, on the other instances.
    pub in_flight: u32,
    /// Requests in flight on this instance only.
    pub local_in_flight: u32,
    pub requests_this_minute: u32,
    pub tokens_this_minute: u64,
    pub latency_ms: Option<f64>,
}

pub struct Usage {
    start: Instant,
    stats: Mutex<HashMap<usize, Stats>>,
    /// Other instances' in-flight counts and latency, per slot.
    remote: Mutex<HashMap<usize, RemoteStats>>,
    /// Latency older than this is forgotten (`routing_strategy_args.ttl`).
    latency_ttl: Duration,
    /// Tokens are also added to the Redis-shared count, when there is one.
    shared: Option<Arc<RedisShared>>,
}

impl Default for Usage {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            stats: Mutex::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
            latency_ttl: DEFAULT_LATENCY_TTL,
            shared: None,
        }
    }
}

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Usage")
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Usage {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn with_shared(shared: Option<Arc<RedisShared>>) -> Arc<Self> {
        Self::with_settings(shared, DEFAULT_LATENCY_TTL)
    }

    pub fn with_settings(shared: Option<Arc<RedisShared>>, latency_ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            shared,
            latency_ttl,
            ..Self::default()
        })
    }

    fn minute(&self, now: Instant) -> u64 {
        now.duration_since(self.start).as_secs() / 60
    }

    /// Time until the current minute's counters reset.
    pub fn until_next_minute(&self, now: Instant) -> Duration {
        let secs = now.duration_since(self.start).as_secs_f64();
        Duration::from_secs_f64(60.0 - secs % 60.0)
    }

    fn with<R>(&self, slot: usize, now: Instant, f: impl FnOnce(&mut Stats) -> R) -> R {
        let minute = self.minute(now);
        let mut map = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.entry(slot).or_default();
        if s.minute != minute {
            s.minute = minute;
            s.requests = 0;
            s.tokens = 0;
        }
        f(s)
    }

    pub fn view(&self, slot: usize, now: Instant) -> View {
        let ttl = self.latency_ttl;
        let mut v = self.with(slot, now, |s| View {
            in_flight: s.in_flight,
            local_in_flight: s.in_flight,
            requests_this_minute: s.requests,
            tokens_this_minute: s.tokens,
            latency_ms: s
                .latency_ms
                .filter(|_| s.latency_at.is_some_and(|at| now.duration_since(at) <= ttl)),
        });
        if self.shared.is_some() {
            let remote = self
                .remote
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&slot)
                .copied();
            if let Some(r) = remote {
                v.in_flight += r.in_flight;
                v.latency_ms = match (v.latency_ms, r.latency_ms) {
                    (Some(a), Some(b)) => Some((a + b) / 2.0),
                    (a, b) => a.or(b),
                };
            }
        }
        v
    }

    /// This instance's own numbers for `slot`, to publish.
    pub fn local(&self, slot: usize) -> RemoteStats {
        let v = self.view_local(slot);
        RemoteStats {
            in_flight: v.in_flight,
            latency_ms: v.latency_ms,
        }
    }

    fn view_local(&self, slot: usize) -> View {
        let now = Instant::now();
        let ttl = self.latency_ttl;
        self.with(slot, now, |s| View {
            in_flight: s.in_flight,
            local_in_flight: s.in_flight,
            requests_this_minute: s.requests,
            tokens_this_minute: s.tokens,
            latency_ms: s
                .latency_ms
                .filter(|_| s.latency_at.is_some_and(|at| now.duration_since(at) <= ttl)),
        })
    }

    /// What the other instances last published for `slot`.
    pub fn set_remote(&self, slot: usize, stats: RemoteStats) {
        self.remote
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slot, stats);
    }

    /// A request to deployment `slot` starts; it ends when the guard drops.
    /// `id` names it in the Redis-shared token count, when there is one.
    pub fn start(self: &Arc<Self>, slot: usize, id: &str) -> InFlight {
        self.with(slot, Instant::now(), |s| {
            s.in_flight += 1;
            s.requests += 1;
        });
        let shared_id = self.shared.as_ref().map(|_| id.to_owned());
        InFlight {
            usage: Arc::clone(self),
            slot,
            shared_id,
            tokens: 0,
            lease: None,
        }
    }

    pub fn record_latency(&self, slot: usize, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let now = Instant::now();
        let ttl = self.latency_ttl;
        self.with(slot, now, |s| {
            let fresh = s.latency_at.is_some_and(|at| now.duration_since(at) <= ttl);
            s.latency_ms = Some(match s.latency_ms.filter(|_| fresh) {
                Some(prev) => prev + LATENCY_ALPHA * (ms - prev),
                None => ms,
            });
            s.latency_at = Some(now);
        });
    }
}

/// One request in flight to a deployment. Dropping it (the answer was sent,
/// the stream ended, or the client went away) ends the request and adds its
/// tokens to the minute's count.
#[derive(Debug)]
pub struct InFlight {
    usage: Arc<Usage>,
    slot: usize,
    /// The deployment id, kept only when tokens go to Redis too.
    shared_id: Option<String>,
    tokens: u64,
    /// The Redis-shared slot under `max_parallel_requests`, given back on drop.
    lease: Option<crate::shared::SlotLease>,
}

impl InFlight {
    pub fn keep_lease(&mut self, lease: crate::shared::SlotLease) {
        self.lease = Some(lease);
    }

    pub fn add_tokens(&mut self, tokens: u64) {
        self.tokens += tokens;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let tokens = self.tokens;
        self.usage.with(self.slot, Instant::now(), |s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.tokens += tokens;
        });
        if let (Some(shared), Some(id), true, Ok(rt)) = (
            &self.usage.shared,
            self.shared_id.take(),
            tokens > 0,
            tokio::runtime::Handle::try_current(),
        ) {
            let shared = Arc::clone(shared);
            rt.spawn(async move { shared.add_tokens(&id, tokens).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_reset_every_minute_and_in_flight_follows_guards() {
        let u = Usage::new();
        let mut g = u.start(0, "a");
        let _g2 = u.start(0, "a");
        assert_eq!(u.view(0, Instant::now()).in_flight, 2);
        g.add_tokens(30);
        drop(g);
        let v = u.view(0, Instant::now());
        assert_eq!(
            (v.in_flight, v.requests_this_minute, v.tokens_this_minute),
            (1, 2, 30)
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        let v = u.view(0, Instant::now());
        assert_eq!(
            (v.in_flight, v.requests_this_minute, v.tokens_this_minute),
            (1, 0, 0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_instances_numbers_are_added_only_with_redis() {
        let settings = crate::shared::RedisSettings {
            url: ferrolite_types::Secret::new("redis://127.0.0.1:1"),
            prefix: "t".into(),
        };
        let with = Usage::with_shared(Some(RedisShared::new(&settings).unwrap()));
        let without = Usage::new();
        let mut guards = Vec::new();
        for u in [&with, &without] {
            guards.push(u.start(0, "a"));
            u.record_latency(0, Duration::from_millis(100));
            u.set_remote(
                0,
                RemoteStats {
                    in_flight: 4,
                    latency_ms: Some(300.0),
                },
            );
        }
        let v = with.view(0, Instant::now());
        assert_eq!((v.in_flight, v.latency_ms), (5, Some(200.0)));
        assert_eq!(with.local(0).in_flight, 1, "published numbers stay local");
        let v = without.view(0, Instant::now());
        assert_eq!((v.in_flight, v.latency_ms), (1, Some(100.0)));
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_forgotten_after_its_ttl() {
        let u = Usage::with_settings(None, Duration::from_secs(60));
        u.record_latency(0, Duration::from_millis(500));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(u.view(0, Instant::now()).latency_ms, Some(500.0));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(u.view(0, Instant::now()).latency_ms, None);
        // A new sample starts a new average instead of blending the stale one.
        u.record_latency(0, Duration::from_millis(100));
        assert_eq!(u.view(0, Instant::now()).latency_ms, Some(100.0));
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_a_moving_average() {
        let u = Usage::new();
        u.record_latency(0, Duration::from_millis(100));
        u.record_latency(0, Duration::from_millis(200));
        let l = u.view(0, Instant::now()).latency_ms.unwrap();
        assert!((l - 130.0).abs() < 1e-9, "{l}");
    }
}
