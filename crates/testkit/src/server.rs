//! What every mock upstream shares: serving a router on `127.0.0.1:0` until
//! the mock is dropped, the queue of scripted replies, the record of calls,
//! a serial for ids, and the count of hanging streams whose client went away.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Uri};
use axum::Router;
use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use crate::openai::Recorded;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The record of one request.
pub(crate) fn recorded(method: &Method, uri: &Uri, headers: &HeaderMap, body: Value) -> Recorded {
    Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        body,
    }
}

/// A mock's state, shared with its handler: replies of type `R`, and `X`,
/// whatever else the mock keeps.
pub(crate) struct Core<R, X = ()> {
    script: Mutex<VecDeque<R>>,
    calls: Mutex<Vec<Recorded>>,
    serial: AtomicUsize,
    dropped: Arc<DroppedStreams>,
    pub(crate) ext: X,
}

#[derive(Default)]
struct DroppedStreams {
    count: AtomicUsize,
    notify: tokio::sync::Notify,
}

impl<R, X> Core<R, X> {
    fn new(ext: X) -> Self {
        Self {
            script: Mutex::new(VecDeque::new()),
            calls: Mutex::new(Vec::new()),
            serial: AtomicUsize::new(0),
            dropped: Arc::default(),
            ext,
        }
    }

    pub(crate) fn record(&self, call: Recorded) {
        lock(&self.calls).push(call);
    }

    /// Record a request whose body should be JSON (recorded as `null` when it
    /// is not); returns the parsed body.
    pub(crate) fn record_json(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Value> {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let recorded_body = parsed.clone().unwrap_or(Value::Null);
        self.record(recorded(method, uri, headers, recorded_body));
        parsed
    }

    /// The next scripted reply, if any is left.
    pub(crate) fn next_reply(&self) -> Option<R> {
        lock(&self.script).pop_front()
    }

    /// 1, 2, 3, … over the mock's life.
    pub(crate) fn next_serial(&self) -> usize {
        self.serial.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn script(&self, replies: impl IntoIterator<Item = R>) {
        lock(&self.script).extend(replies);
    }

    pub(crate) fn calls(&self) -> Vec<Recorded> {
        lock(&self.calls).clone()
    }

    pub(crate) fn call_count(&self) -> usize {
        lock(&self.calls).len()
    }

    pub(crate) async fn wait_dropped_streams(&self, n: usize, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.dropped.notify.notified();
            let seen = self.dropped_streams();
            if seen >= n {
                return seen;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.dropped_streams();
            }
        }
    }

    pub(crate) fn dropped_streams(&self) -> usize {
        self.dropped.count.load(Ordering::SeqCst)
    }

    /// A body that sends `first`, then `tick` every 20 ms until the client
    /// goes away, which is then counted as a dropped stream.
    pub(crate) fn hanging_body(&self, first: Vec<Bytes>, tick: Bytes) -> Body {
        struct Guard(Arc<DroppedStreams>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.count.fetch_add(1, Ordering::SeqCst);
                self.0.notify.notify_waiters();
            }
        }
        let guard = Guard(self.dropped.clone());
        let first = stream::iter(first.into_iter().map(Ok::<_, Infallible>));
        let ticks = stream::unfold((guard, tick), |(g, tick)| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok(tick.clone()), (g, tick)))
        });
        Body::from_stream(first.chain(ticks))
    }
}

/// A router served on `127.0.0.1:0` with its [`Core`]; it stops when dropped.
pub(crate) struct MockServer<R, X = ()> {
    pub(crate) addr: SocketAddr,
    pub(crate) core: Arc<Core<R, X>>,
    task: tokio::task::JoinHandle<()>,
}

impl<R, X> Drop for MockServer<R, X> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<R, X> MockServer<R, X>
where
    R: Send + 'static,
    X: Send + Sync + 'static,
{
    /// Serve `app` (every route's state is the [`Core`] holding `ext`).
    pub(crate) async fn start(ext: X, app: Router<Arc<Core<R, X>>>) -> Self {
        let core = Arc::new(Core::new(ext));
        let app = app.with_state(core.clone());
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("mock upstream cannot bind: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("mock upstream has no address: {e}"),
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, core, task }
    }
}

/// The public `script`, `calls` and `call_count` of a mock whose
/// [`MockServer`] is its `server` field.
macro_rules! recording_methods {
    ($reply:ty) => {
        /// Queue replies for the next calls, in order; after them, defaults.
        pub fn script(&self, replies: impl IntoIterator<Item = $reply>) {
            self.server.core.script(replies);
        }

        pub fn calls(&self) -> Vec<Recorded> {
            self.server.core.calls()
        }

        pub fn call_count(&self) -> usize {
            self.server.core.call_count()
        }
    };
}

/// The public `wait_dropped_streams` and `dropped_streams` of a mock whose
/// [`MockServer`] is its `server` field.
macro_rules! dropped_stream_methods {
    () => {
        /// Wait (at most `limit`) until `n` hanging streams saw their client go
        /// away; returns how many did.
        pub async fn wait_dropped_streams(&self, n: usize, limit: std::time::Duration) -> usize {
            self.server.core.wait_dropped_streams(n, limit).await
        }

        /// How many hanging streams saw their client disconnect.
        pub fn dropped_streams(&self) -> usize {
            self.server.core.dropped_streams()
        }
    };
}

pub(crate) use {dropped_stream_methods, recording_methods};
