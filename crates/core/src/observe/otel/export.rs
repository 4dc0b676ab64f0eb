//! The span queue and the background task that sends it. A request only
//! pushes onto a bounded in-memory queue (a short lock, never a wait on the
//! network); when the queue is full the oldest span is dropped and counted.
//! One task sends batches every `schedule_delay`, or as soon as a batch is
//! full, and drains the queue at shutdown.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::encode::{self, Resource, SpanData};
use super::settings::{OtelSettings, Protocol};

/// Counts of what happened to spans, for tests and the shutdown log line.
#[derive(Debug, Default)]
pub struct Counters {
    /// Spans accepted by the collector.
    pub exported: AtomicU64,
    /// Spans dropped: the queue was full, or the collector refused or could
    /// not be reached.
    pub dropped: AtomicU64,
}

pub(crate) struct Exporter {
    queue: Mutex<VecDeque<SpanData>>,
    wake: Notify,
    closing: AtomicBool,
    pub(crate) counters: Counters,
    settings: OtelSettings,
    resource: Resource,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Exporter {
    pub(crate) fn new(settings: OtelSettings) -> Arc<Self> {
        let mut attributes = vec![
            (
                "service.name".to_owned(),
                encode::AttrValue::Str(settings.service_name.clone()),
            ),
            (
                "telemetry.sdk.name".to_owned(),
                encode::AttrValue::Str("ferrolite".into()),
            ),
            (
                "telemetry.sdk.language".to_owned(),
                encode::AttrValue::Str("rust".into()),
            ),
            (
                "telemetry.sdk.version".to_owned(),
                encode::AttrValue::Str(env!("CARGO_PKG_VERSION").into()),
            ),
        ];
        for (k, v) in &settings.resource {
            if k != "service.name" {
                attributes.push((k.clone(), encode::AttrValue::Str(v.clone())));
            }
        }
        Arc::new(Self {
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            counters: Counters::default(),
            resource: Resource {
                attributes,
                scope_name: "ferrolite",
                scope_version: env!("CARGO_PKG_VERSION"),
            },
            settings,
            task: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<SpanData>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start the sending task on the current Tokio runtime (none: spans
    /// queue up, bounded, and are never sent — a gateway built outside a
    /// runtime serves no requests anyway).
    pub(crate) fn start(self: &Arc<Self>) -> Result<(), String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "OpenTelemetry export needs a Tokio runtime".to_owned())?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(self.settings.timeout)
            .connect_timeout(self.settings.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|e| format!("cannot build the OTLP HTTP client: {e}"))?;
        let me = Arc::clone(self);
        let task = handle.spawn(async move { me.run(client).await });
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(())
    }

    /// Queue a finished span; never waits.
    pub(crate) fn push(&self, span: SpanData) {
        let full_batch = {
            let mut q = self.lock();
            if q.len() >= self.settings.max_queue {
                q.pop_front();
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(span);
            q.len() >= self.settings.max_batch
        };
        if full_batch {
            self.wake.notify_one();
        }
    }

    fn take_batch(&self) -> Vec<SpanData> {
        let mut q = self.lock();
        let n = q.len().min(self.settings.max_batch);
        q.drain(..n).collect()
    }

    async fn run(self: Arc<Self>, client: reqwest::Client) {
        let mut failing = false;
        loop {
            let closing = self.closing.load(Ordering::Acquire);
            if !closing {
                let _ =
                    tokio::time::timeout(self.settings.schedule_delay, self.wake.notified()).await;
            }
            let closing = self.closing.load(Ordering::Acquire);
            loop {
                let batch = self.take_batch();
                if batch.is_empty() {
                    break;
                }
                let n = batch.len() as u64;
                match self.send(&client, &batch).await {
                    Ok(()) => {
                        self.counters.exported.fetch_add(n, Ordering::Relaxed);
                        if failing {
                            tracing::info!(endpoint = %self.settings.endpoint, "OTLP trace export works again");
                            failing = false;
                        }
                    }
                    Err(e) => {
                        self.counters.dropped.fetch_add(n, Ordering::Relaxed);
                        // Once per outage, not once per batch.
                        if !failing {
                            tracing::warn!(endpoint = %self.settings.endpoint, error = %e, "OTLP trace export failed; spans are dropped until the collector answers");
                            failing = true;
                        }
                        if closing {
                            // Do not spend the shutdown on a dead collector.
                            let left = self.lock().drain(..).count() as u64;
                            self.counters.dropped.fetch_add(left, Ordering::Relaxed);
                            return;
                        }
                        break;
                    }
                }
                if !closing && self.lock().len() < self.settings.max_batch {
                    break;
                }
            }
            if closing {
                return;
            }
        }
    }

    async fn send(&self, client: &reqwest::Client, batch: &[SpanData]) -> Result<(), String> {
        let body = match self.settings.protocol {
            Protocol::Protobuf => encode::protobuf(&self.resource, batch),
            Protocol::Json => encode::json(&self.resource, batch),
        };
        let mut req = client
            .post(&self.settings.endpoint)
            .header(
                http::header::CONTENT_TYPE,
                self.settings.protocol.content_type(),
            )
            .body(body);
        for (k, v) in &self.settings.headers {
            let Ok(mut value) = http::HeaderValue::from_str(v) else {
                continue;
            };
            value.set_sensitive(true);
            req = req.header(k.as_str(), value);
        }
        let resp = req.send().await.map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            msg
        })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {}", resp.status()))
        }
    }

    /// Send what is queued and stop, waiting at most `limit`.
    pub(crate) async fn shutdown(&self, limit: Duration) {
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            if tokio::time::timeout(limit, task).await.is_err() {
                tracing::warn!("OTLP trace export did not finish within {limit:?}");
            }
        }
        let dropped = self.counters.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "OpenTelemetry spans were dropped (queue full or collector unreachable)"
            );
        }
    }
}

#[cfg(test)]
impl Exporter {
    pub(crate) fn take_batch_for_test(&self) -> Vec<SpanData> {
        self.take_batch()
    }
}
