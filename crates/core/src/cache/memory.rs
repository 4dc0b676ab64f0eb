//! The in-process store: least recently used entries go first once the
//! total size passes a byte budget; entries also expire after their TTL.
//!
//! Hand-written rather than `moka`: it is small, and its clock is tokio's,
//! so expiry is testable with paused time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// Bookkeeping bytes counted per entry on top of its key and body.
const OVERHEAD: usize = 96;

struct Slot {
    body: Bytes,
    stored: Instant,
    expires: Option<Instant>,
    /// Position in the recency order.
    seq: u64,
    size: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Slot>,
    /// seq → key, oldest first.
    order: BTreeMap<u64, String>,
    bytes: usize,
    next: u64,
}

pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_bytes: usize,
    max_item_bytes: usize,
}

impl MemoryStore {
    pub fn new(max_bytes: usize, max_item_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_bytes,
            max_item_bytes: max_item_bytes.min(max_bytes),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry under `key` and its age, unless absent or expired.
    pub fn get(&self, key: &str) -> Option<(Bytes, Duration)> {
        let now = Instant::now();
        let mut g = self.lock();
        let inner = &mut *g;
        let slot = inner.map.get_mut(key)?;
        if slot.expires.is_some_and(|e| e <= now) {
            inner.remove(key);
            return None;
        }
        inner.order.remove(&slot.seq);
        slot.seq = inner.next;
        inner.next += 1;
        inner.order.insert(slot.seq, key.to_owned());
        Some((
            slot.body.clone(),
            now.saturating_duration_since(slot.stored),
        ))
    }

    /// Keep `body` under `key` (replacing any entry) for `ttl`. An answer
    /// larger than the per-item limit is not kept.
    pub fn put(&self, key: &str, body: Bytes, ttl: Option<Duration>) {
        let size = key.len() + body.len() + OVERHEAD;
        let mut g = self.lock();
        g.remove(key);
        if size > self.max_item_bytes {
            return;
        }
        let now = Instant::now();
        let seq = g.next;
        g.next += 1;
        g.order.insert(seq, key.to_owned());
        g.map.insert(
            key.to_owned(),
            Slot {
                body,
                stored: now,
                expires: ttl.map(|t| now + t),
                seq,
                size,
            },
        );
        g.bytes += size;
        while g.bytes > self.max_bytes {
            let Some((_, oldest)) = g.order.pop_first() else {
                break;
            };
            if let Some(s) = g.map.remove(&oldest) {
                g.bytes -= s.size;
            }
        }
    }

    /// Bytes held (keys, bodies and bookkeeping).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn remove(&mut self, key: &str) {
        if let Some(s) = self.map.remove(key) {
            self.order.remove(&s.seq);
            self.bytes -= s.size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn the_byte_budget_evicts_least_recently_used_first() {
        // Room for three 1000-byte entries, not four.
        let s = MemoryStore::new(3 * (1000 + 1 + OVERHEAD) + 10, 1 << 20);
        for k in ["a", "b", "c"] {
            s.put(k, body(1000), None);
        }
        assert_eq!(s.len(), 3);
        assert!(s.get("a").is_some()); // a is now the most recent
        s.put("d", body(1000), None);
        assert_eq!(s.len(), 3);
        assert!(s.get("b").is_none(), "b was least recently used");
        assert!(s.get("a").is_some() && s.get("c").is_some() && s.get("d").is_some());
        assert!(s.bytes() <= 3 * (1000 + 1 + OVERHEAD) + 10);
        // One big entry pushes out several small ones.
        s.put("big", body(2500), None);
        assert!(s.bytes() <= 3 * (1000 + 1 + OVERHEAD) + 10);
        assert!(s.get("big").is_some());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn oversized_items_are_not_kept_and_replace_drops_the_old_size() {
        let s = MemoryStore::new(10_000, 500);
        s.put("k", body(100), None);
        let before = s.bytes();
        s.put("k", body(200), None);
        assert_eq!(s.bytes(), before + 100);
        s.put("k", body(1000), None);
        assert!(s.get("k").is_none());
        assert_eq!(s.bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl_and_report_their_age() {
        let s = MemoryStore::new(1 << 20, 1 << 20);
        s.put("k", body(10), Some(Duration::from_secs(60)));
        tokio::time::advance(Duration::from_secs(59)).await;
        let (_, age) = s.get("k").unwrap();
        assert_eq!(age, Duration::from_secs(59));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(s.get("k").is_none());
        assert_eq!(s.bytes(), 0);
    }
}
