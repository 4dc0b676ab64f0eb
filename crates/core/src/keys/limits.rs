//! Per key / user / team `rpm_limit`, `tpm_limit` and
//! `max_parallel_requests`, counted in memory per minute (LiteLLM's 60 s
//! window). Requests are counted when admitted; tokens when the call's
//! record arrives, so a minute's token limit stops the calls after the one
//! that crossed it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
struct Window {
    minute: u64,
    requests: u64,
    tokens: u64,
    in_flight: u64,
}

impl Window {
    fn roll(&mut self, minute: u64) {
        if self.minute != minute {
            self.minute = minute;
            self.requests = 0;
            self.tokens = 0;
        }
    }
}

/// The limits of one holder for one call.
#[derive(Debug, Clone)]
pub struct Limited {
    pub id: String,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub parallel: Option<i64>,
}

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
    Parallel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    pub index: usize,
    pub kind: LimitKind,
    pub limit: i64,
    /// Seconds until the window resets (1 for parallel limits).
    pub retry_after: u64,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Debug, Default)]
pub struct Limits {
    windows: Mutex<HashMap<String, Window>>,
}

impl Limits {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take one request and one parallel slot on every holder, or none.
    pub fn acquire(&self, items: &[Limited]) -> Result<(), LimitHit> {
        let now = now_secs();
        let minute = now / 60;
        let retry_after = 60 - now % 60;
        let mut m = self.lock();
        for (index, l) in items.iter().enumerate() {
            let w = m.entry(l.id.clone()).or_default();
            w.roll(minute);
            let hit = |kind, limit| LimitHit {
                index,
                kind,
                limit,
                retry_after,
            };
            if let Some(p) = l.parallel {
                if w.in_flight as i64 >= p {
                    return Err(LimitHit {
                        retry_after: 1,
                        ..hit(LimitKind::Parallel, p)
                    });
                }
            }
            if let Some(r) = l.rpm {
                if w.requests as i64 >= r {
                    return Err(hit(LimitKind::Requests, r));
                }
            }
            if let Some(t) = l.tpm {
                if w.tokens as i64 >= t {
                    return Err(hit(LimitKind::Tokens, t));
                }
            }
        }
        for l in items {
            let w = m.entry(l.id.clone()).or_default();
            w.requests += 1;
            w.in_flight += 1;
        }
        Ok(())
    }

    /// Count one request and one parallel slot on every holder without
    /// checking (the call was admitted by Redis).
    pub fn take(&self, items: &[Limited]) {
        let minute = now_secs() / 60;
        let mut m = self.lock();
        for l in items {
            let w = m.entry(l.id.clone()).or_default();
            w.roll(minute);
            w.requests += 1;
            w.in_flight += 1;
        }
    }

    /// The call is over: give back its parallel slots.
    pub fn release(&self, ids: &[String]) {
        let mut m = self.lock();
        for id in ids {
            if let Some(w) = m.get_mut(id) {
                w.in_flight = w.in_flight.saturating_sub(1);
            }
        }
    }

    /// Count a finished call's tokens in this minute.
    pub fn add_tokens(&self, ids: &[String], tokens: u64) {
        let minute = now_secs() / 60;
        let mut m = self.lock();
        for id in ids {
            let w = m.entry(id.clone()).or_default();
            w.roll(minute);
            w.tokens += tokens;
        }
    }
}
