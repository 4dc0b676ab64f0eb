//! The generic webhook callback (LiteLLM's "Generic API Callback"): every
//! finished call becomes a JSON event shaped like LiteLLM's
//! `StandardLoggingPayload`, POSTed in batches to a URL the operator
//! configures (`callback_settings` with `callback_type: generic_api`,
//! `generic_api` with `GENERIC_LOGGER_ENDPOINT`, or a URL in `callbacks`).
//!
//! [`WebhookSink`] builds the event once per call and pushes it onto the
//! queue of each webhook that wants it; each webhook's task sends its queue
//! (`deliver`). Nothing here runs on the request path beyond that push.

mod deliver;
pub mod event;
pub mod settings;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use event::{Event, GroupInfo};
pub use settings::{LogFormat, WebhookSettings};

use crate::meter::{CallRecord, CallSink};

/// One running webhook.
pub struct Webhook {
    exporter: Arc<deliver::Exporter>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.exporter.settings.name)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Build the webhook and start its task on the current runtime.
    pub fn start(settings: &WebhookSettings) -> Arc<Self> {
        let exporter = deliver::Exporter::new(settings.clone());
        if let Err(e) = exporter.start() {
            tracing::warn!(webhook = %settings.name, "webhook events will not be sent: {e}");
        }
        Arc::new(Self { exporter })
    }

    pub fn name(&self) -> &str {
        &self.exporter.settings.name
    }

    /// Events the receiver accepted so far.
    pub fn sent(&self) -> u64 {
        self.exporter.counters.sent.load(Ordering::Relaxed)
    }

    /// Events dropped so far (queue full, receiver refusing or unreachable).
    pub fn dropped(&self) -> u64 {
        self.exporter.counters.dropped.load(Ordering::Relaxed)
    }

    /// POSTs that failed so far, retried ones included.
    pub fn failed_posts(&self) -> u64 {
        self.exporter.counters.failed_posts.load(Ordering::Relaxed)
    }

    /// Events waiting to be sent.
    pub fn queued(&self) -> usize {
        self.exporter.queued()
    }

    /// Send what is queued and stop, waiting at most `limit`.
    pub async fn shutdown(&self, limit: Duration) {
        self.exporter.shutdown(limit).await;
    }
}

/// Flush and stop every webhook, together, within `limit` (graceful shutdown).
pub async fn shutdown_all(hooks: &[Arc<Webhook>], limit: Duration) {
    futures_util::future::join_all(hooks.iter().map(|h| h.shutdown(limit))).await;
}

/// Turns each finished call into one event for the webhooks that want it.
pub struct WebhookSink {
    exporters: Vec<Arc<deliver::Exporter>>,
    /// Configured model names (groups and aliases) → group and provider.
    groups: HashMap<String, GroupInfo>,
}

impl WebhookSink {
    pub fn new(hooks: &[Arc<Webhook>]) -> Self {
        Self {
            exporters: hooks.iter().map(|h| Arc::clone(&h.exporter)).collect(),
            groups: HashMap::new(),
        }
    }

    /// Name the group and provider of failed calls by the configured
    /// groups and `aliases` of `router`.
    pub fn with_groups<'a>(
        mut self,
        router: &crate::router::Router,
        aliases: impl IntoIterator<Item = &'a String>,
    ) -> Self {
        let aliases: Vec<&str> = aliases.into_iter().map(String::as_str).collect();
        for name in router.model_names().into_iter().chain(aliases) {
            let Some(r) = router.resolve(name) else {
                continue;
            };
            let mut providers = r
                .deployments
                .iter()
                .map(|d| d.litellm_model.split_once('/').map_or("", |(p, _)| p));
            let first = providers.next().filter(|p| !p.is_empty());
            let provider = first
                .filter(|f| providers.all(|p| p == *f))
                .map(str::to_owned);
            self.groups.insert(
                name.to_owned(),
                GroupInfo {
                    group: r.group.to_owned(),
                    provider,
                },
            );
        }
        self
    }
}

impl CallSink for WebhookSink {
    fn record(&self, rec: &CallRecord) {
        let ok = rec.succeeded();
        if !self.exporters.iter().any(|e| e.wants(ok)) {
            return;
        }
        let group = self.groups.get(&rec.requested_model);
        let ev = Arc::new(Event::from_record(rec, group));
        for e in self.exporters.iter().filter(|e| e.wants(ok)) {
            e.push(Arc::clone(&ev));
        }
    }
}

#[cfg(test)]
mod tests;
