//! Observability: Prometheus metrics, process metrics, OpenTelemetry traces,
//! webhooks and the one log line per request. Each is a
//! [`CallSink`](crate::meter::CallSink) or reads the gateway's state when
//! scraped; none of them sees prompts or answers.

pub mod metrics;
pub mod otel;
pub mod process;
pub mod request_log;
pub mod webhook;

use std::sync::Arc;

use crate::config::Config;
use crate::meter::Sinks;
use crate::router::Router;

pub use metrics::Metrics;
pub use request_log::RequestLog;

/// The `callbacks` names this version acts on.
pub const IMPLEMENTED_CALLBACKS: &[&str] = &["prometheus", "otel"];

/// What the config's callbacks start.
pub struct Observers {
    /// The metrics registry, when `callbacks` names `prometheus`.
    pub metrics: Option<Arc<Metrics>>,
    /// The trace exporter, when `callbacks` names `otel`.
    pub otel: Option<Arc<otel::Otel>>,
    /// The webhooks (`generic_api` callbacks), each with its task.
    pub webhooks: Vec<Arc<webhook::Webhook>>,
    /// The sinks every gateway starts with.
    pub sinks: Sinks,
}

/// Start what the config's callbacks ask for.
pub fn setup(config: &Config, router: &Router) -> Observers {
    let mut sinks = Sinks::default();
    let metrics = config
        .litellm
        .callbacks
        .iter()
        .any(|c| c == "prometheus")
        .then(|| {
            let m = Metrics::new(router, config.router.model_group_alias.keys());
            Arc::new(m.with_cache(config.litellm.cache.as_ref()))
        });
    if let Some(m) = &metrics {
        sinks.add(Arc::clone(m) as Arc<dyn crate::meter::CallSink>);
    }
    let otel = config.litellm.otel.as_ref().map(otel::Otel::start);
    if otel.is_some() {
        sinks.add(Arc::new(otel::OtelSink));
    }
    let webhooks: Vec<Arc<webhook::Webhook>> = config
        .litellm
        .webhooks
        .iter()
        .map(webhook::Webhook::start)
        .collect();
    if !webhooks.is_empty() {
        sinks.add(Arc::new(
            webhook::WebhookSink::new(&webhooks)
                .with_groups(router, config.router.model_group_alias.keys()),
        ));
    }
    // One INFO line per request, unless INFO is filtered out for it (then the
    // record would be built for nothing).
    if tracing::enabled!(target: request_log::TARGET, tracing::Level::INFO) {
        sinks.add(Arc::new(RequestLog));
    }
    Observers {
        metrics,
        otel,
        webhooks,
        sinks,
    }
}
