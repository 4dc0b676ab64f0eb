//! Responses the gateway produced, kept so that `previous_response_id` works
//! whatever the upstream, and so that `GET /v1/responses/{id}` can answer.
//!
//! Entries live for a TTL (an hour by default) in memory, bounded in count
//! and bytes (oldest first out), and also in Redis when the router has Redis,
//! so that another instance can continue the conversation. The database store
//! can implement [`ResponseStore`] later.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::store_redis::RedisResponses;

/// How long a response is kept when nothing else is configured.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// At most this many responses in memory.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// At most this many bytes of responses in memory.
pub const DEFAULT_MAX_BYTES: usize = 128 * 1024 * 1024;

/// One response and the conversation that led to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// The response object as the client received it.
    pub response: Value,
    /// Every input item of the conversation up to this response (earlier
    /// turns' input and output, then this request's input).
    pub input: Vec<Value>,
    /// Whether an upstream's own Responses API produced it (so that upstream
    /// may know the id too).
    pub native: bool,
}

impl StoredResponse {
    /// The items a follow-up request continues from: the input, then the
    /// response's output.
    pub fn conversation(&self) -> Vec<Value> {
        let mut items = self.input.clone();
        if let Some(out) = self.response.get("output").and_then(Value::as_array) {
            items.extend(out.iter().cloned());
        }
        items
    }
}

/// Where responses are kept.
pub trait ResponseStore: Send + Sync {
    fn get(&self, id: &str) -> BoxFuture<'static, Option<StoredResponse>>;

    /// Keep `r` under `id`. Implementations make the entry readable on this
    /// instance before returning the future (a follow-up may arrive as soon
    /// as the client has the answer); the future finishes any remote write.
    fn put(&self, id: String, r: StoredResponse) -> BoxFuture<'static, ()>;

    /// Remove `id`; `true` if it was there.
    fn delete(&self, id: &str) -> BoxFuture<'static, bool>;
}

struct Entry {
    json: Arc<Vec<u8>>,
    expires: Instant,
    /// Distinguishes a re-inserted id from its older queue position.
    generation: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// Ids in insertion order, with the generation they were inserted as.
    order: VecDeque<(String, u64)>,
    bytes: usize,
    generation: u64,
}

/// Responses in this process's memory.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
}

impl MemoryStore {
    pub fn new(ttl: Duration, max_entries: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            ttl,
            max_entries,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get_now(&self, id: &str) -> Option<StoredResponse> {
        let json = {
            let mut inner = self.lock();
            match inner.map.get(id) {
                Some(e) if e.expires > Instant::now() => Arc::clone(&e.json),
                Some(_) => {
                    if let Some(e) = inner.map.remove(id) {
                        inner.bytes -= e.json.len();
                    }
                    return None;
                }
                None => return None,
            }
        };
        serde_json::from_slice(&json).ok()
    }

    pub fn put_now(&self, id: String, r: &StoredResponse) {
        let Ok(json) = serde_json::to_vec(r) else {
            return;
        };
        if json.len() > self.max_bytes {
            tracing::debug!(id, bytes = json.len(), "response too large to keep");
            return;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(&id) {
            inner.bytes -= old.json.len();
        }
        // Oldest out first: expired ones, then as many as the bounds need.
        while let Some((old_id, generation)) = inner.order.front().cloned() {
            let live = inner
                .map
                .get(&old_id)
                .filter(|e| e.generation == generation);
            let Some(e) = live else {
                inner.order.pop_front();
                continue;
            };
            let full =
                inner.map.len() >= self.max_entries || inner.bytes + json.len() > self.max_bytes;
            if e.expires > now && !full {
                break;
            }
            inner.order.pop_front();
            if let Some(e) = inner.map.remove(&old_id) {
                inner.bytes -= e.json.len();
            }
        }
        inner.generation += 1;
        let generation = inner.generation;
        inner.bytes += json.len();
        inner.order.push_back((id.clone(), generation));
        inner.map.insert(
            id,
            Entry {
                json: Arc::new(json),
                expires: now + self.ttl,
                generation,
            },
        );
    }

    pub fn delete_now(&self, id: &str) -> bool {
        let mut inner = self.lock();
        match inner.map.remove(id) {
            Some(e) => {
                inner.bytes -= e.json.len();
                e.expires > Instant::now()
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Memory first; Redis too when configured.
pub struct TieredStore {
    memory: Arc<MemoryStore>,
    redis: Option<Arc<RedisResponses>>,
}

impl TieredStore {
    pub fn new(memory: MemoryStore, redis: Option<RedisResponses>) -> Self {
        Self {
            memory: Arc::new(memory),
            redis: redis.map(Arc::new),
        }
    }
}

impl ResponseStore for TieredStore {
    fn get(&self, id: &str) -> BoxFuture<'static, Option<StoredResponse>> {
        if let Some(r) = self.memory.get_now(id) {
            return Box::pin(async move { Some(r) });
        }
        let redis = self.redis.clone();
        let id = id.to_owned();
        Box::pin(async move { redis?.get(&id).await })
    }

    fn put(&self, id: String, r: StoredResponse) -> BoxFuture<'static, ()> {
        self.memory.put_now(id.clone(), &r);
        let redis = self.redis.clone();
        Box::pin(async move {
            if let Some(redis) = redis {
                redis.put(&id, &r).await;
            }
        })
    }

    fn delete(&self, id: &str) -> BoxFuture<'static, bool> {
        let here = self.memory.delete_now(id);
        let redis = self.redis.clone();
        let id = id.to_owned();
        Box::pin(async move {
            let there = match redis {
                Some(r) => r.delete(&id).await,
                None => false,
            };
            here || there
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(n: u64) -> StoredResponse {
        StoredResponse {
            response: json!({"id": format!("resp_{n}"), "output": [{"type": "message", "n": n}]}),
            input: vec![json!({"role": "user", "content": "hi"})],
            native: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let s = MemoryStore::new(Duration::from_secs(60), 10, 1 << 20);
        s.put_now("a".into(), &stored(1));
        assert_eq!(s.get_now("a"), Some(stored(1)));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(s.get_now("a"), None);
        assert!(s.is_empty());
    }

    #[tokio::test]
    async fn bounded_in_count_and_bytes_oldest_out() {
        let s = MemoryStore::new(Duration::from_secs(60), 2, 1 << 20);
        for n in 0..3 {
            s.put_now(format!("r{n}"), &stored(n));
        }
        assert_eq!(s.len(), 2);
        assert_eq!(s.get_now("r0"), None);
        assert!(s.get_now("r2").is_some());

        let one = serde_json::to_vec(&stored(1)).unwrap().len();
        let s = MemoryStore::new(Duration::from_secs(60), 100, one * 2 + 1);
        for n in 0..5 {
            s.put_now(format!("r{n}"), &stored(n));
        }
        assert_eq!(s.len(), 2);
        assert!(s.get_now("r4").is_some() && s.get_now("r3").is_some());
        // Re-inserting an id keeps one copy.
        s.put_now("r4".into(), &stored(9));
        assert_eq!(s.len(), 2);
        assert_eq!(s.get_now("r4"), Some(stored(9)));
    }

    #[tokio::test]
    async fn tiered_without_redis_reads_its_writes_at_once() {
        let t = TieredStore::new(MemoryStore::new(DEFAULT_TTL, 10, 1 << 20), None);
        let fut = t.put("x".into(), stored(1));
        // Readable before the write's future has run.
        assert_eq!(t.get("x").await, Some(stored(1)));
        fut.await;
        assert_eq!(stored(1).conversation().len(), 2);
        assert!(t.delete("x").await);
        assert!(!t.delete("x").await);
        assert_eq!(t.get("x").await, None);
    }
}
