//! Observability: Prometheus metrics, process metrics, OpenTelemetry traces
//! and the one log line per request. Each is a
//! [`CallSink`](crate::meter::CallSink) or reads the gateway's state when
//! scraped; none of them sees prompts or answers.

pub mod metrics;
pub mod otel;
pub mod process;
pub mod request_log;

use std::sync::Arc;

use crate::config::Config;
use crate::meter::Sinks;
use crate::router::Router;

pub use metrics::Metrics;
pub use request_log::RequestLog;

/// The `callbacks` names this version acts on.
pub const IMPLEMENTED_CALLBACKS: &[&str] = &["prometheus", "otel"];

/// The metrics registry (when `callbacks` names `prometheus`), the trace
/// exporter (when it names `otel`) and the sinks every gateway starts with.
pub fn setup(
    config: &Config,
    router: &Router,
) -> (Option<Arc<Metrics>>, Option<Arc<otel::Otel>>, Sinks) {
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
    // One INFO line per request, unless INFO is filtered out for it (then the
    // record would be built for nothing).
    if tracing::enabled!(target: request_log::TARGET, tracing::Level::INFO) {
        sinks.add(Arc::new(RequestLog));
    }
    (metrics, otel, sinks)
}
