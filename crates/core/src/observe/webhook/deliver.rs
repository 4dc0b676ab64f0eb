//! The event queue of one webhook and the task that sends it.
//!
//! A finished call only pushes its event onto a bounded in-memory queue (a
//! short lock; never a wait on the network). When the queue is full the
//! oldest event is dropped and counted. One background task sends a batch
//! as soon as `batch_size` events wait, or every `flush_interval`; a POST
//! that fails with a connection error, a timeout, 408, 429 or a 5xx is
//! retried with exponential backoff (429's `Retry-After` honoured, up to
//! 30 s), `max_retries` times, then its events are dropped and counted. An
//! outage is logged once when it starts and once when delivery works
//! again. At shutdown the queue is sent (one attempt per POST).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tokio::sync::{watch, Notify};

use super::event::Event;
use super::settings::{LogFormat, WebhookSettings};

/// The longest wait between two attempts of one POST.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// POSTs in flight at once in the `single` format.
const SINGLE_CONCURRENCY: usize = 8;

/// What happened to events, for tests, logs and the shutdown line.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events the receiver accepted (a 2xx answer).
    pub sent: AtomicU64,
    /// Events dropped: the queue was full, the receiver refused them, or
    /// every attempt failed.
    pub dropped: AtomicU64,
    /// POSTs that failed, retried ones included.
    pub failed_posts: AtomicU64,
}

/// Why one POST did not deliver.
enum Failure {
    /// Worth another attempt; the receiver's `Retry-After`, if it sent one.
    Retry(String, Option<Duration>),
    /// Another attempt would fail the same way (a 4xx other than 408/429).
    Final(String),
}

pub(crate) struct Exporter {
    pub(crate) settings: WebhookSettings,
    queue: Mutex<VecDeque<Arc<Event>>>,
    wake: Notify,
    closing: watch::Sender<bool>,
    pub(crate) counters: Counters,
    /// Events taken from the queue and not yet sent or dropped.
    in_flight: AtomicU64,
    /// The queue overflowed and this was logged; cleared once it drains.
    overflowing: AtomicBool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Exporter {
    pub(crate) fn new(settings: WebhookSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            closing: watch::Sender::new(false),
            counters: Counters::default(),
            in_flight: AtomicU64::new(0),
            overflowing: AtomicBool::new(false),
            task: Mutex::new(None),
        })
    }

    /// Start the sending task on the current Tokio runtime (none: events
    /// queue up, bounded, and are never sent — a gateway built outside a
    /// runtime serves no requests anyway).
    pub(crate) fn start(self: &Arc<Self>) -> Result<(), String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "the webhook needs a Tokio runtime".to_owned())?;
        let client = crate::upstream::client()?;
        let me = Arc::clone(self);
        let task = handle.spawn(async move { me.run(client).await });
        *lock(&self.task) = Some(task);
        Ok(())
    }

    /// Whether this webhook wants an event for a call that succeeded (or not).
    pub(crate) fn wants(&self, success: bool) -> bool {
        if success {
            self.settings.success
        } else {
            self.settings.failure
        }
    }

    /// Queue an event; never waits.
    pub(crate) fn push(&self, ev: Arc<Event>) {
        let (full_batch, overflowed) = {
            let mut q = lock(&self.queue);
            let overflowed = q.len() >= self.settings.max_queue;
            if overflowed {
                q.pop_front();
            }
            q.push_back(ev);
            (q.len() >= self.settings.batch_size, overflowed)
        };
        if overflowed {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if !self.overflowing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    webhook = %self.settings.name,
                    max_queue_size = self.settings.max_queue,
                    "webhook queue is full; the oldest events are dropped until it drains"
                );
            }
        }
        if full_batch {
            self.wake.notify_one();
        }
    }

    /// Events waiting in the queue.
    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).len()
    }

    fn take_batch(&self) -> Vec<Arc<Event>> {
        let mut q = lock(&self.queue);
        let n = q.len().min(self.settings.batch_size);
        let batch: Vec<Arc<Event>> = q.drain(..n).collect();
        self.in_flight
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if q.is_empty() {
            self.overflowing.store(false, Ordering::Relaxed);
        }
        batch
    }

    fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    async fn run(self: Arc<Self>, client: reqwest::Client) {
        let mut closed = self.closing.subscribe();
        let mut failing = false;
        loop {
            if !self.is_closing() {
                tokio::select! {
                    _ = tokio::time::timeout(self.settings.flush_interval, self.wake.notified()) => {}
                    _ = closed.wait_for(|c| *c) => {}
                }
            }
            let closing = self.is_closing();
            loop {
                let batch = self.take_batch();
                if batch.is_empty() {
                    break;
                }
                self.deliver(&client, &batch, &mut failing).await;
                if !closing && self.queued() < self.settings.batch_size {
                    break;
                }
            }
            if closing {
                return;
            }
        }
    }

    /// Send one batch in the configured format and account for every event.
    async fn deliver(&self, client: &reqwest::Client, batch: &[Arc<Event>], failing: &mut bool) {
        let bodies: Vec<(Bytes, u64)> = match self.settings.log_format {
            LogFormat::JsonArray => vec![(body_json_array(batch), batch.len() as u64)],
            LogFormat::Ndjson => vec![(body_ndjson(batch), batch.len() as u64)],
            LogFormat::Single => batch
                .iter()
                .map(|e| (Bytes::from(serde_json::to_vec(&**e).unwrap_or_default()), 1))
                .collect(),
        };
        let results: Vec<(Result<(), String>, u64)> = stream::iter(bodies)
            .map(|(body, n)| async move { (self.post_with_retries(client, body).await, n) })
            .buffer_unordered(SINGLE_CONCURRENCY)
            .collect()
            .await;
        let mut first_error = None;
        for (r, n) in results {
            match r {
                Ok(()) => {
                    self.counters.sent.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    self.counters.dropped.fetch_add(n, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        }
        self.in_flight
            .fetch_sub(batch.len() as u64, Ordering::Relaxed);
        match first_error {
            // Once per outage, not once per batch.
            Some(e) if !*failing => {
                *failing = true;
                tracing::warn!(
                    webhook = %self.settings.name,
                    endpoint = %self.settings.origin,
                    error = %e,
                    "webhook delivery failed; events are dropped until the receiver answers"
                );
            }
            None if *failing => {
                *failing = false;
                tracing::info!(
                    webhook = %self.settings.name,
                    endpoint = %self.settings.origin,
                    dropped_so_far = self.counters.dropped.load(Ordering::Relaxed),
                    "webhook delivery works again"
                );
            }
            _ => {}
        }
    }

    /// One POST, attempted until it is delivered, fails for good, or the
    /// retries are spent. At shutdown: one attempt.
    async fn post_with_retries(&self, client: &reqwest::Client, body: Bytes) -> Result<(), String> {
        let mut closed = self.closing.subscribe();
        let mut delay = self.settings.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.post(client, body.clone()).await {
                Ok(()) => return Ok(()),
                Err(f) => f,
            };
            self.counters.failed_posts.fetch_add(1, Ordering::Relaxed);
            let (message, retry_after) = match failure {
                Failure::Final(m) => return Err(m),
                Failure::Retry(m, after) => (m, after),
            };
            if attempt > self.settings.max_retries || self.is_closing() {
                return Err(message);
            }
            let wait = retry_after.map_or(delay, |a| a.max(delay)).min(MAX_BACKOFF);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // Shutdown: one last attempt now rather than a wait.
                _ = closed.wait_for(|c| *c) => {}
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    async fn post(&self, client: &reqwest::Client, body: Bytes) -> Result<(), Failure> {
        let mut req = client
            .post(self.settings.endpoint.expose())
            .timeout(self.settings.timeout);
        if !self
            .settings
            .headers
            .iter()
            .any(|(k, _)| *k == http::header::CONTENT_TYPE)
        {
            // LiteLLM's default, for every log format.
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (k, v) in &self.settings.headers {
            let Ok(mut value) = http::HeaderValue::from_str(v.expose()) else {
                continue;
            };
            value.set_sensitive(true);
            req = req.header(k.clone(), value);
        }
        let resp = req.body(body).send().await.map_err(|e| {
            // The innermost cause, without the URL reqwest puts in its text
            // (it may carry a token).
            let e = e.without_url();
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            Failure::Retry(msg, None)
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!("the receiver answered {status}");
        if status.is_server_error()
            || status == http::StatusCode::TOO_MANY_REQUESTS
            || status == http::StatusCode::REQUEST_TIMEOUT
        {
            let after = resp
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Err(Failure::Retry(message, after))
        } else {
            Err(Failure::Final(message))
        }
    }

    /// Send what is queued and stop, waiting at most `limit`; what is left
    /// then is dropped and counted.
    pub(crate) async fn shutdown(&self, limit: Duration) {
        self.closing.send_replace(true);
        self.wake.notify_one();
        let task = lock(&self.task).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(limit, &mut task).await.is_err() {
                task.abort();
                let left = lock(&self.queue).drain(..).count() as u64
                    + self.in_flight.swap(0, Ordering::Relaxed);
                self.counters.dropped.fetch_add(left, Ordering::Relaxed);
                tracing::warn!(
                    webhook = %self.settings.name,
                    "webhook delivery did not finish within {limit:?}"
                );
            }
        }
        let dropped = self.counters.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                webhook = %self.settings.name,
                dropped,
                sent = self.counters.sent.load(Ordering::Relaxed),
                "webhook events were dropped over this run (queue full or receiver unreachable)"
            );
        }
    }
}

fn body_json_array(batch: &[Arc<Event>]) -> Bytes {
    let events: Vec<&Event> = batch.iter().map(|e| &**e).collect();
    Bytes::from(serde_json::to_vec(&events).unwrap_or_default())
}

fn body_ndjson(batch: &[Arc<Event>]) -> Bytes {
    let mut out = Vec::with_capacity(batch.len() * 512);
    for (i, e) in batch.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        // Serializing these plain structs cannot fail; an empty line if it did.
        let _ = serde_json::to_writer(&mut out, &**e);
    }
    Bytes::from(out)
}
