//! The gateway's long-lived state: configuration, model groups, the HTTP
//! client. Built once at startup and shared by every request.

use std::time::Duration;

use std::sync::Arc;

use ferrolite_types::Secret;

use crate::config::Config;
use crate::router::Router;
use crate::shared::RedisShared;

/// How often cooldowns set by other instances are read back from Redis.
pub const COOLDOWN_SYNC: Duration = Duration::from_secs(1);

/// LiteLLM's default is 6000 s; the OpenAI SDK's is 600 s. A request stuck for
/// 100 minutes helps nobody, so ferrolite uses the SDK's (docs/config.md).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The router's default `num_retries`, as LiteLLM's.
pub const DEFAULT_NUM_RETRIES: u32 = 2;
/// Longest upstream `Retry-After` honoured before retrying the same deployment.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Request body limit when `max_request_size_mb` is not set.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

pub struct Gateway {
    pub config: Config,
    pub router: Router,
    pub http: reqwest::Client,
    /// Google OAuth tokens for Vertex AI deployments.
    pub gcp_tokens: crate::upstream::gcp::TokenCache,
    /// Cooldowns.
    pub health: crate::router::health::Health,
    /// Live per-deployment usage (in flight, this minute's requests and tokens, latency).
    pub usage: std::sync::Arc<crate::router::usage::Usage>,
    pub strategy: crate::router::strategy::Strategy,
    /// Requests being served right now, for `global_max_parallel_requests`.
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Cooldown settings, read once.
    pub cooldown: crate::router::health::CooldownPolicy,
    /// Redis-shared cooldowns and limits, when configured.
    pub shared: Option<Arc<RedisShared>>,
    /// Where finished calls are recorded (spend, metrics, request log).
    /// Add sinks before the gateway is shared.
    pub sinks: Arc<crate::meter::Sinks>,
    /// The Prometheus registry, when `callbacks` names `prometheus`.
    pub metrics: Option<Arc<crate::observe::Metrics>>,
    /// The OpenTelemetry trace exporter, when `callbacks` names `otel`.
    pub otel: Option<Arc<crate::observe::otel::Otel>>,
    /// The webhooks (`generic_api` callbacks); flush them at shutdown.
    pub webhooks: Vec<Arc<crate::observe::webhook::Webhook>>,
    /// The response cache (`litellm_settings.cache`), when on.
    pub cache: Option<Arc<crate::cache::Cache>>,
    /// Prices: the built-in table, a user's map, per-deployment overrides.
    pub pricing: Arc<crate::spend::Pricing>,
    /// Virtual-key checks, when a key store is attached (set before sharing).
    pub keys: Option<Arc<crate::keys::KeyEnforcer>>,
    /// The gateway's own `Arc`, once shared (for work that outlives a
    /// request's borrow, like a mid-stream continuation).
    me: std::sync::OnceLock<std::sync::Weak<Gateway>>,
}

impl Gateway {
    pub fn new(config: Config) -> Result<Self, String> {
        let router = Router::new(&config.deployments, &config.router.model_group_alias);
        let shared = config
            .router
            .redis
            .as_ref()
            .map(RedisShared::new)
            .transpose()?;
        let crate::observe::Observers {
            metrics,
            otel,
            webhooks,
            mut sinks,
        } = crate::observe::setup(&config, &router);
        let pricing = Arc::new(crate::spend::Pricing::new(&config));
        sinks.set_finisher(pricing.finisher());
        Ok(Self {
            router,
            http: crate::upstream::client()?,
            gcp_tokens: crate::upstream::gcp::TokenCache::new(),
            health: crate::router::health::Health::new(),
            usage: crate::router::usage::Usage::with_settings(
                shared.clone(),
                config
                    .router
                    .latency_ttl
                    .unwrap_or(crate::router::usage::DEFAULT_LATENCY_TTL),
            ),
            shared,
            sinks: Arc::new(sinks),
            metrics,
            otel,
            webhooks,
            cache: config
                .litellm
                .cache
                .as_ref()
                .map(crate::cache::Cache::new)
                .transpose()?,
            pricing,
            keys: None,
            me: std::sync::OnceLock::new(),
            in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            cooldown: {
                let r = &config.router;
                let d = crate::router::health::CooldownPolicy::default();
                crate::router::health::CooldownPolicy {
                    cooldown: r.cooldown_time.unwrap_or(d.cooldown),
                    allowed_fails: r.allowed_fails.unwrap_or(d.allowed_fails),
                    disabled: r.disable_cooldowns,
                    allowed_fails_policy: r.allowed_fails_policy.clone(),
                }
            },
            strategy: crate::router::strategy::Strategy::from_name(
                config.router.routing_strategy.as_deref(),
                config.router.lowest_latency_buffer,
            ),
            config,
        })
    }

    /// Share the gateway. Use this rather than `Arc::new`, so the gateway can
    /// reach its own `Arc`.
    pub fn share(self) -> Arc<Self> {
        let gw = Arc::new(self);
        let _ = gw.me.set(Arc::downgrade(&gw));
        gw
    }

    /// The gateway's own `Arc`, when it was shared with [`Gateway::share`].
    pub fn arc(&self) -> Option<Arc<Self>> {
        self.me.get().and_then(std::sync::Weak::upgrade)
    }

    /// Start the background work: every second, reading other instances'
    /// cooldowns back from Redis and exchanging in-flight counts and latency. Stops when the returned handle is dropped
    /// (or aborted at shutdown).
    pub fn spawn_background(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        // Key changes from other instances; ends with the key enforcer.
        drop(self.keys.as_ref().and_then(|k| k.spawn_sync()));
        let shared = self.shared.clone()?;
        let gw = Arc::downgrade(self);
        // Names this instance's published in-flight counts and latency.
        let instance = uuid::Uuid::new_v4().simple().to_string();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(COOLDOWN_SYNC);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(gw) = gw.upgrade() else { return };
                let all = gw.router.all();
                let ids: Vec<String> = all.iter().map(|d| d.id.clone()).collect();
                let mine: Vec<_> = all.iter().map(|d| gw.usage.local(d.index)).collect();
                if let Some(remote) = shared.exchange_stats(&instance, &ids, &mine).await {
                    for (d, r) in all.iter().zip(remote) {
                        gw.usage.set_remote(d.index, r);
                    }
                }
                if let Some(remaining) = shared.cooldowns(&ids).await {
                    let now = tokio::time::Instant::now();
                    for (d, r) in all.iter().zip(remaining) {
                        if let Some(r) = r {
                            gw.health.merge_remote(d.index, r, now);
                        }
                    }
                }
            }
        }))
    }

    /// Take a slot under `global_max_parallel_requests`; it is released when
    /// the returned guard drops (for streams: when the stream ends).
    pub fn admit(&self) -> Result<Admitted, crate::GatewayError> {
        use std::sync::atomic::Ordering;
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        let slot = Admitted(Arc::clone(&self.in_flight));
        match self.config.general.global_max_parallel_requests {
            Some(limit) if now > limit as usize => Err(crate::GatewayError::TooManyRequests(format!(
                "Max parallel request limit reached: the gateway serves at most {limit} requests at once (global_max_parallel_requests). Try again shortly."
            ))),
            _ => Ok(slot),
        }
    }

    /// Record every finished call into `sink` too. Only before the gateway
    /// is shared (`Arc::get_mut` would fail after).
    pub fn add_sink(&mut self, sink: Arc<dyn crate::meter::CallSink>) {
        Arc::make_mut(&mut self.sinks).add(sink);
    }

    /// Complete every record before the sinks see it (pricing). Only before
    /// the gateway is shared.
    pub fn set_finisher(&mut self, f: crate::meter::Finisher) {
        Arc::make_mut(&mut self.sinks).set_finisher(f);
    }

    /// Replace the prices (e.g. with a user's price map loaded). Only
    /// before the gateway is shared.
    pub fn set_pricing(&mut self, pricing: crate::spend::Pricing) {
        self.pricing = Arc::new(pricing);
        let f = self.pricing.finisher();
        Arc::make_mut(&mut self.sinks).set_finisher(f);
    }

    pub fn master_key(&self) -> Option<&Secret> {
        self.config.general.master_key.as_ref()
    }

    /// Retries after the first attempt unless the request says otherwise.
    pub fn num_retries(&self) -> u32 {
        self.config
            .router
            .num_retries
            .or(self.config.litellm.num_retries)
            .unwrap_or(DEFAULT_NUM_RETRIES)
    }

    pub fn default_timeout(&self) -> Duration {
        self.config
            .router
            .timeout
            .or(self.config.litellm.request_timeout)
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    pub fn cooldown_policy(&self) -> &crate::router::health::CooldownPolicy {
        &self.cooldown
    }

    pub fn max_request_bytes(&self) -> usize {
        match self.config.general.max_request_size_mb {
            Some(mb) if mb.is_finite() && mb > 0.0 => (mb * 1024.0 * 1024.0) as usize,
            _ => DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

/// One request counted against `global_max_parallel_requests`.
pub struct Admitted(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}
