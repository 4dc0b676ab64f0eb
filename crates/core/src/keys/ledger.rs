//! Budget accounting between the database and the requests in flight.
//!
//! Amounts are integer nano-dollars, so that reserving and settling many
//! small amounts never drifts. For every budget holder (a key, user, team,
//! or the whole proxy) the ledger keeps three numbers:
//! - `reserved`: estimates of calls admitted and not yet settled;
//! - `settled`: every cost settled by this instance, ever;
//! - `written`: the part of `settled` the spend writer has stored.
//!
//! Before reading a holder's spend from the database, its `written` mark is
//! taken. The holder's spend is then at most `db_spend + settled - mark`:
//! everything counted in the mark was committed before the read, so it is
//! in `db_spend`; anything settled and not yet written is in
//! `settled - mark`. The bound can only over-count (a write committed
//! during the read), so a budget is never overshot by stale data; the
//! over-count disappears at the next cache refresh.
//!
//! A call is admitted while `spend + reserved < max_budget`, and reserves
//! its estimate; so N parallel calls cannot together spend more than the
//! budget plus one call's estimate (when their actual cost stays within
//! their estimates).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// USD → nano-dollars (saturating; negative and NaN become 0).
pub fn to_nano(usd: f64) -> i64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).round().min(i64::MAX as f64) as i64
    } else {
        0
    }
}

fn to_usd(nano: i64) -> f64 {
    nano as f64 / 1e9
}

#[derive(Debug, Default, Clone, Copy)]
struct Account {
    reserved: i64,
    settled: i64,
    written: i64,
}

/// One budget to check: the holder, what the database said, and the mark
/// taken before reading it.
#[derive(Debug, Clone)]
pub struct Budgeted {
    pub id: String,
    pub db_spend: f64,
    pub mark: i64,
    pub max_budget: Option<f64>,
}

/// Why a reservation was refused: which budget, and its spend.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    pub index: usize,
    pub spend: f64,
    pub max_budget: f64,
}

#[derive(Debug, Default)]
pub struct Ledger {
    accounts: Mutex<HashMap<String, Account>>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Account>> {
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `written` mark to take before reading `id`'s spend.
    pub fn mark(&self, id: &str) -> i64 {
        self.lock().get(id).map_or(0, |a| a.written)
    }

    /// The spend of `b` as far as this instance knows (stored + unwritten).
    pub fn spend(&self, b: &Budgeted) -> f64 {
        let a = self.lock().get(&b.id).copied().unwrap_or_default();
        to_usd(to_nano(b.db_spend) + (a.settled - b.mark).max(0))
    }

    /// Admit a call against every budget in `items` at once, reserving
    /// `estimate` (nano-USD) on each holder in `holders` (which includes
    /// holders without a budget, so their settled spend is tracked).
    pub fn reserve(
        &self,
        items: &[Budgeted],
        holders: &[String],
        estimate: i64,
    ) -> Result<(), Exceeded> {
        let mut m = self.lock();
        for (index, b) in items.iter().enumerate() {
            let Some(max) = b.max_budget else { continue };
            let a = m.get(&b.id).copied().unwrap_or_default();
            let spend = to_nano(b.db_spend) + (a.settled - b.mark).max(0);
            if spend + a.reserved >= to_nano(max) {
                return Err(Exceeded {
                    index,
                    spend: to_usd(spend),
                    max_budget: max,
                });
            }
        }
        for id in holders {
            m.entry(id.clone()).or_default().reserved += estimate;
        }
        Ok(())
    }

    /// Reserve `estimate` on every holder without checking (the call was
    /// admitted by Redis; this instance's ledger stays ready to take over).
    pub fn hold(&self, holders: &[String], estimate: i64) {
        let mut m = self.lock();
        for id in holders {
            m.entry(id.clone()).or_default().reserved += estimate;
        }
    }

    /// The call ended: drop its reservation and count its cost.
    pub fn settle(&self, holders: &[String], estimate: i64, cost: i64) {
        let mut m = self.lock();
        for id in holders {
            let a = m.entry(id.clone()).or_default();
            a.reserved -= estimate;
            a.settled += cost;
        }
    }

    /// The call never ran (or never reported): drop its reservation.
    pub fn release(&self, holders: &[String], estimate: i64) {
        self.settle(holders, estimate, 0);
    }

    /// The spend writer stored `cost` for `id`.
    pub fn written(&self, id: &str, cost: i64) {
        self.lock().entry(id.to_owned()).or_default().written += cost;
    }

    /// Reserved on `id` right now (tests, metrics).
    pub fn reserved(&self, id: &str) -> f64 {
        to_usd(self.lock().get(id).map_or(0, |a| a.reserved))
    }
}
