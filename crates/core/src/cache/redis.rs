//! The Redis store, on one server or a Redis Cluster (the same code; only
//! the connection differs). Never in the way of a request: every read is
//! bounded by a short timeout, writes happen off the request path (and are
//! dropped when too many are already waiting), and while Redis is
//! unreachable requests go through uncached. The outage is logged once, and
//! so is the recovery.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::ConnectionManager;
use ::redis::cluster::{ClusterClient, ClusterClientBuilder};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, FromRedisValue, RedisResult};
use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::settings::RedisTarget;

/// After a failed connection, wait this long before trying again (requests
/// in between skip the cache at once).
const RETRY_CONNECT: Duration = Duration::from_secs(1);
/// Longest a connection attempt runs (in the background).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Writes waiting for Redis at once; more are dropped.
const MAX_PENDING_WRITES: usize = 256;

/// How to reach Redis.
enum Client {
    Single(::redis::Client),
    Cluster(Box<ClusterClient>),
}

/// A live connection: both kinds reconnect by themselves (a cluster
/// connection also follows slot moves) and are cheap to clone.
#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Link {
    async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Link::Single(c) => cmd.query_async(c).await,
            Link::Cluster(c) => cmd.query_async(c).await,
        }
    }
}

#[derive(Default)]
struct Conn {
    conn: Option<Link>,
    connecting: bool,
    retry_at: Option<Instant>,
}

pub struct RedisStore {
    client: Client,
    state: Mutex<Conn>,
    connected: Notify,
    /// Bound on every read and write.
    timeout: Duration,
    down: AtomicBool,
    writes: Arc<Semaphore>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A value: when it was stored (Unix milliseconds, big-endian), then the answer.
fn encode(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend_from_slice(&now_ms().to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn decode(v: Vec<u8>) -> Option<(Bytes, Duration)> {
    let stamp: [u8; 8] = v.get(..8)?.try_into().ok()?;
    let age = now_ms().saturating_sub(u64::from_be_bytes(stamp));
    let mut b = Bytes::from(v);
    let body = b.split_off(8);
    Some((body, Duration::from_millis(age)))
}

impl RedisStore {
    pub fn new(target: &RedisTarget, timeout: Duration) -> Result<Arc<Self>, String> {
        let client = match target {
            RedisTarget::Single(url) => {
                Client::Single(::redis::Client::open(url.expose()).map_err(|_| {
                    "invalid cache_params: the Redis host / redis_url is not a usable Redis address"
                        .to_owned()
                })?)
            }
            RedisTarget::Cluster {
                nodes,
                username,
                password,
            } => {
                let mut b = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(timeout.max(Duration::from_secs(1)))
                    .retries(1);
                if let Some(u) = username {
                    b = b.username(u);
                }
                if let Some(p) = password {
                    b = b.password(p.expose());
                }
                Client::Cluster(Box::new(b.build().map_err(|e| {
                    format!("invalid cache_params.redis_startup_nodes: not a usable Redis Cluster ({e})")
                })?))
            }
        };
        Ok(Arc::new(Self {
            client,
            state: Mutex::new(Conn::default()),
            connected: Notify::new(),
            timeout,
            down: AtomicBool::new(false),
            writes: Arc::new(Semaphore::new(MAX_PENDING_WRITES)),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Conn> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn outage(&self, what: &str, err: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "response cache: Redis unavailable ({what}: {err}); requests go through uncached until it is back"
            );
        }
    }

    fn recovered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("response cache: Redis is back; caching again");
        }
    }

    /// A connection, if one is ready or comes up within `wait`. Connecting
    /// runs in the background, so a slow connect is never cut short by the
    /// request's bound, and is tried again at most once a second.
    async fn conn(self: &Arc<Self>, wait: Duration) -> Option<Link> {
        let notified = self.connected.notified();
        {
            let mut s = self.lock();
            if let Some(c) = &s.conn {
                return Some(c.clone());
            }
            if s.retry_at.is_some_and(|t| Instant::now() < t) {
                return None;
            }
            if !s.connecting {
                s.connecting = true;
                let me = Arc::clone(self);
                tokio::spawn(async move { me.connect().await });
            }
        }
        let _ = tokio::time::timeout(wait, notified).await;
        self.lock().conn.clone()
    }

    async fn open(&self) -> RedisResult<Link> {
        match &self.client {
            Client::Single(client) => {
                let config = ::redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(self.timeout.max(Duration::from_secs(1))))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map(Link::Single)
            }
            Client::Cluster(client) => client.get_async_connection().await.map(Link::Cluster),
        }
    }

    async fn connect(self: Arc<Self>) {
        let r = tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await;
        {
            let mut s = self.lock();
            s.connecting = false;
            match r {
                Ok(Ok(c)) => {
                    s.conn = Some(c);
                    s.retry_at = None;
                }
                Ok(Err(e)) => {
                    s.retry_at = Some(Instant::now() + RETRY_CONNECT);
                    drop(s);
                    self.outage("connect", &e);
                }
                Err(_) => {
                    s.retry_at = Some(Instant::now() + RETRY_CONNECT);
                    drop(s);
                    self.outage("connect", &"timed out");
                }
            }
        }
        self.connected.notify_waiters();
    }

    /// The entry under `key` and its age; `None` on a miss, and also when
    /// Redis does not answer within the timeout.
    pub async fn get(self: &Arc<Self>, key: &str) -> Option<(Bytes, Duration)> {
        let started = Instant::now();
        let mut c = self.conn(self.timeout).await?;
        let left = self.timeout.saturating_sub(started.elapsed());
        let cmd = ::redis::cmd("GET").arg(key).clone();
        match tokio::time::timeout(left, c.query::<Option<Vec<u8>>>(&cmd)).await {
            Ok(Ok(v)) => {
                self.recovered();
                decode(v?)
            }
            Ok(Err(e)) => {
                self.outage("read", &e);
                None
            }
            Err(_) => {
                self.outage("read", &"timed out");
                None
            }
        }
    }

    /// Store `body` under `key` in the background.
    pub fn put(self: &Arc<Self>, key: String, body: Bytes, ttl: Option<Duration>) {
        let Ok(permit) = Arc::clone(&self.writes).try_acquire_owned() else {
            tracing::debug!("response cache: too many Redis writes pending; one dropped");
            return;
        };
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let _permit = permit;
            let Some(mut c) = me.conn(CONNECT_TIMEOUT).await else {
                return;
            };
            let mut cmd = ::redis::cmd("SET");
            cmd.arg(&key).arg(encode(&body));
            if let Some(t) = ttl {
                let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1);
                cmd.arg("PX").arg(ms);
            }
            let write_bound = me.timeout.max(Duration::from_secs(1));
            match tokio::time::timeout(write_bound, c.query::<()>(&cmd)).await {
                Ok(Ok(())) => me.recovered(),
                Ok(Err(e)) => me.outage("write", &e),
                Err(_) => me.outage("write", &"timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_age() {
        let v = encode(b"{\"a\":1}");
        let (body, age) = decode(v).unwrap();
        assert_eq!(&body[..], b"{\"a\":1}");
        assert!(age < Duration::from_secs(5));
        assert!(decode(vec![1, 2]).is_none());
    }
}
