//! Request coalescing ("single flight"): while one request for a cache key
//! is upstream, identical requests wait for its answer instead of going
//! upstream too. If the leader fails (or its client goes away), the waiters
//! are released at once and each proceeds on its own; a waiter never waits
//! longer than its bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

type Slot = Option<Bytes>;

#[derive(Default)]
pub struct Flights {
    map: Mutex<HashMap<String, watch::Receiver<Slot>>>,
}

/// What a request does about a key.
pub enum Role {
    /// Nobody is upstream for this key: go, and [`Leader::finish`] after.
    Leader(Leader),
    /// Someone is: wait with [`Waiter::wait`].
    Waiter(Waiter),
}

pub struct Leader {
    flights: Arc<Flights>,
    key: String,
    tx: watch::Sender<Slot>,
}

pub struct Waiter {
    rx: watch::Receiver<Slot>,
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Receiver<Slot>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn join(self: &Arc<Self>, key: &str) -> Role {
        let mut map = self.lock();
        if let Some(rx) = map.get(key) {
            if rx.has_changed().is_ok() {
                return Role::Waiter(Waiter { rx: rx.clone() });
            }
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.to_owned(), rx);
        Role::Leader(Leader {
            flights: Arc::clone(self),
            key: key.to_owned(),
            tx,
        })
    }

    /// An existing flight for `key`, to wait on; never starts one.
    pub fn waiter(&self, key: &str) -> Option<Waiter> {
        let map = self.lock();
        let rx = map.get(key)?;
        rx.has_changed().is_ok().then(|| Waiter { rx: rx.clone() })
    }

    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }
}

impl Leader {
    /// Hand the answer to every waiter.
    pub fn finish(self, body: Bytes) {
        let _ = self.tx.send(Some(body));
        // Drop removes the flight.
    }
}

impl Drop for Leader {
    /// Failed, finished or abandoned: the flight is over. Waiters that got
    /// no answer see the channel close and go on their own.
    fn drop(&mut self) {
        let mut map = self.flights.lock();
        if map
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.tx.subscribe()))
        {
            map.remove(&self.key);
        }
    }
}

impl Waiter {
    /// The leader's answer, or `None` if it failed or took longer than `bound`.
    pub async fn wait(mut self, bound: Duration) -> Option<Bytes> {
        match tokio::time::timeout(bound, self.rx.wait_for(Option::is_some)).await {
            Ok(Ok(v)) => v.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_get_the_leaders_answer() {
        let f = Arc::new(Flights::default());
        let Role::Leader(l) = f.join("k") else {
            panic!("first is leader")
        };
        let Role::Waiter(w1) = f.join("k") else {
            panic!("second waits")
        };
        let w2 = f.waiter("k").unwrap();
        assert!(f.waiter("other").is_none());
        let t1 = tokio::spawn(w1.wait(Duration::from_secs(5)));
        let t2 = tokio::spawn(w2.wait(Duration::from_secs(5)));
        l.finish(Bytes::from_static(b"answer"));
        assert_eq!(t1.await.unwrap().as_deref(), Some(&b"answer"[..]));
        assert_eq!(t2.await.unwrap().as_deref(), Some(&b"answer"[..]));
        assert_eq!(f.in_flight(), 0);
        assert!(matches!(f.join("k"), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_failed_leader_releases_its_waiters_at_once() {
        let f = Arc::new(Flights::default());
        let Role::Leader(l) = f.join("k") else {
            panic!()
        };
        let Role::Waiter(w) = f.join("k") else {
            panic!()
        };
        let t = tokio::spawn(w.wait(Duration::from_secs(3600)));
        drop(l);
        assert_eq!(t.await.unwrap(), None);
        assert_eq!(f.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_is_bounded() {
        let f = Arc::new(Flights::default());
        let Role::Leader(_l) = f.join("k") else {
            panic!()
        };
        let Role::Waiter(w) = f.join("k") else {
            panic!()
        };
        assert_eq!(w.wait(Duration::from_secs(2)).await, None);
    }
}
