//! A webhook receiver: records every POST (headers and raw body), answers
//! with scripted statuses (then 200), and lets a test wait for deliveries.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use serde_json::Value;
use tokio::sync::Notify;

use crate::server::lock;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the receiver answered.
    pub status: u16,
}

impl Delivery {
    /// The events in the body: a JSON array's items, each line of NDJSON,
    /// or the one object of a single event.
    pub fn events(&self) -> Vec<Value> {
        if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
            return match v {
                Value::Array(items) => items,
                other => vec![other],
            };
        }
        String::from_utf8_lossy(&self.body)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
            .collect()
    }

    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct Hooks {
    script: Mutex<VecDeque<u16>>,
    got: Mutex<Vec<Delivery>>,
    notify: Notify,
}

/// A running receiver on `127.0.0.1:0`; it stops when dropped.
pub struct MockWebhook {
    pub addr: SocketAddr,
    hooks: Arc<Hooks>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockWebhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(h): State<Arc<Hooks>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = lock(&h.script).pop_front().unwrap_or(200);
    lock(&h.got).push(Delivery {
        path: uri.path().to_owned(),
        headers,
        body,
        status,
    });
    h.notify.notify_waiters();
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

impl MockWebhook {
    pub async fn start() -> Self {
        let hooks = Arc::new(Hooks::default());
        let app = Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&hooks));
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("webhook receiver cannot bind: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("webhook receiver has no address: {e}"),
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, hooks, task }
    }

    /// `http://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answer the next requests with these statuses, in order; then 200.
    pub fn script(&self, statuses: impl IntoIterator<Item = u16>) {
        lock(&self.hooks.script).extend(statuses);
    }

    /// Every request so far, refused ones included.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.hooks.got).clone()
    }

    /// The events of every accepted request, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.deliveries()
            .iter()
            .filter(|d| d.accepted())
            .flat_map(Delivery::events)
            .collect()
    }

    /// Wait (at most `limit`) until `n` events were accepted; returns them
    /// all (possibly fewer than `n` when the time ran out).
    pub async fn wait_events(&self, n: usize, limit: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.hooks.notify.notified();
            let got = self.events();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.events();
            }
        }
    }

    /// Wait (at most `limit`) until `n` requests arrived, accepted or not.
    pub async fn wait_deliveries(&self, n: usize, limit: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.hooks.notify.notified();
            let got = self.deliveries();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.deliveries();
            }
        }
    }
}
