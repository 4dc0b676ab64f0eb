//! Budgets, rate limits and key changes shared by every instance through
//! Redis (when `router_settings.redis_*` / `REDIS_*` is configured).
//!
//! For every budget holder (`key:<hash>`, `user:<id>`, `team:<id>`,
//! `proxy`) Redis keeps, in nano-dollars:
//! - `kres:<holder>`: a sorted set of the reservations in flight (member
//!   `<call id>:<amount>`, scored by when the lease ends, so a crashed
//!   instance's reservations expire) and `ksum:<holder>`, their total;
//! - `kset:<holder>`: every cost settled, by any instance (monotonic);
//! - `kwrit:<holder>`: the part of it the spend writers have stored
//!   (incremented after the rows are committed, never above `kset`).
//!
//! An instance takes the `kwrit` mark of a holder before reading its spend
//! from the database; the holder's spend is then at most
//! `db_spend + kset - mark`, whichever instance settled the calls and
//! however stale its own key cache is. Admitting a call is ONE Lua script:
//! for each budget check `spend + reserved < max_budget`, then each
//! `rpm_limit` / `tpm_limit` / `max_parallel_requests`, and only when all
//! pass add the reservation, count the request and take a parallel slot
//! (a lease, as `shared/slots.rs` does). Settling is one script too:
//! remove the reservation, add the cost to `kset`, the tokens to this
//! minute's count, and give the slot back.
//!
//! Redis down: the caller enforces on this instance's own ledger and
//! counters (logged once per outage). Writes that could not reach Redis
//! (settlements, stored spend) are queued, bounded, and replayed every
//! second once Redis answers, so the counters do not drift.
//!
//! Key changes are published on `<prefix>:keys:invalidate` (a key hash, or
//! `*` for all); every instance's subscriber forgets its cached copy.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::Script;

use super::limits::{LimitKind, Limited};
use crate::shared::{RedisSettings, RedisShared};

/// How long a call waits for Redis before deciding on local state.
pub const KEY_REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a reservation or a parallel slot is held at most (a crashed
/// instance's are forgotten after this).
pub const LEASE: Duration = Duration::from_secs(30 * 60);
/// `kset` / `kwrit` counters live this long after their last change.
const COUNTER_TTL_SECS: i64 = 7 * 86_400;
/// Per-minute request and token counters outlive their minute by this much.
const MINUTE_TTL_SECS: i64 = 120;
/// Writes waiting for Redis to return, at most.
const MAX_PENDING: usize = 10_000;

/// Check every budget, then every limit; when all pass, take them all.
/// Returns `{1}`, `{0, index, spend}` (budget `index`, 1-based) or
/// `{0, nb + index, kind}` (limit `index`, kind 1 rpm, 2 tpm, 3 parallel).
const ADMIT: &str = r"
local now = tonumber(ARGV[1])
local untl = ARGV[2]
local member = ARGV[3]
local nb = tonumber(ARGV[5])
local nl = tonumber(ARGV[6])
local a = 7
for i = 1, nb do
  local res, sum, set = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local db, mark, max = tonumber(ARGV[a]), tonumber(ARGV[a+1]), tonumber(ARGV[a+2])
  a = a + 3
  local gone = redis.call('ZRANGEBYSCORE', res, '-inf', now)
  if #gone > 0 then
    local n = 0
    for _, m in ipairs(gone) do n = n + tonumber(string.match(m, ':(%d+)$') or '0') end
    redis.call('ZREMRANGEBYSCORE', res, '-inf', now)
    redis.call('DECRBY', sum, n)
  end
  local unwritten = tonumber(redis.call('GET', set) or '0') - mark
  if unwritten < 0 then unwritten = 0 end
  local spend = db + unwritten
  if spend + tonumber(redis.call('GET', sum) or '0') >= max then
    return {0, i, spend}
  end
end
local b = 3 * nb
for j = 1, nl do
  local rk, tk, sk = KEYS[b+3*j-2], KEYS[b+3*j-1], KEYS[b+3*j]
  local rpm, tpm, par = tonumber(ARGV[a]), tonumber(ARGV[a+1]), tonumber(ARGV[a+2])
  a = a + 3
  if par >= 0 then
    redis.call('ZREMRANGEBYSCORE', sk, '-inf', now)
    if redis.call('ZCARD', sk) >= par then return {0, nb + j, 3} end
  end
  if rpm >= 0 and tonumber(redis.call('GET', rk) or '0') >= rpm then return {0, nb + j, 1} end
  if tpm >= 0 and tonumber(redis.call('GET', tk) or '0') >= tpm then return {0, nb + j, 2} end
end
for i = 1, nb do
  redis.call('ZADD', KEYS[3*i-2], untl, member)
  redis.call('PEXPIREAT', KEYS[3*i-2], untl)
  redis.call('INCRBY', KEYS[3*i-1], ARGV[4])
  redis.call('PEXPIREAT', KEYS[3*i-1], untl)
end
for j = 1, nl do
  redis.call('INCR', KEYS[b+3*j-2])
  redis.call('EXPIRE', KEYS[b+3*j-2], ARGV[a])
  redis.call('ZADD', KEYS[b+3*j], untl, member)
  redis.call('PEXPIREAT', KEYS[b+3*j], untl)
end
return {1}
";

/// Give a call's reservation and slots back and count its cost and tokens.
/// KEYS: (res, sum) per budget, kset per holder, (tpm, slots) per limit.
const SETTLE: &str = r"
local member = ARGV[1]
local cost = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local nb, nh, nl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
for i = 1, nb do
  if redis.call('ZREM', KEYS[2*i-1], member) == 1 then
    redis.call('DECRBY', KEYS[2*i], ARGV[2])
  end
end
local b = 2 * nb
if cost > 0 then
  for h = 1, nh do
    redis.call('INCRBY', KEYS[b+h], ARGV[3])
    redis.call('EXPIRE', KEYS[b+h], ARGV[8])
  end
end
b = b + nh
for j = 1, nl do
  if tokens > 0 then
    redis.call('INCRBY', KEYS[b+2*j-1], ARGV[4])
    redis.call('EXPIRE', KEYS[b+2*j-1], ARGV[9])
  end
  redis.call('ZREM', KEYS[b+2*j], member)
end
return 1
";

/// Count stored spend: `kwrit += amount`, never above `kset`.
/// KEYS: (kset, kwrit) per holder; ARGV: amount per holder, then the TTL.
const WRITTEN: &str = r"
local n = #KEYS / 2
for h = 1, n do
  local w = redis.call('INCRBY', KEYS[2*h], ARGV[h])
  local s = redis.call('GET', KEYS[2*h-1]) or '0'
  if w > tonumber(s) then redis.call('SET', KEYS[2*h], s) end
  redis.call('EXPIRE', KEYS[2*h], ARGV[n+1])
end
return 1
";

static ADMIT_SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(ADMIT));
static SETTLE_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(SETTLE));
static WRITTEN_SCRIPT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(WRITTEN));

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One budget to check in Redis (amounts in nano-USD).
#[derive(Debug, Clone)]
pub(super) struct SharedBudget {
    pub id: String,
    pub db_spend: i64,
    /// The holder's `kwrit` mark, taken before `db_spend` was read.
    pub mark: i64,
    pub max_budget: i64,
}

/// Redis's answer to an admission.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Admission {
    Admitted,
    /// Budget `index` (of those given) is spent: its spend in nano-USD.
    Budget {
        index: usize,
        spend: i64,
    },
    /// Limit `index` (of those given) is reached.
    Limit {
        index: usize,
        kind: LimitKind,
    },
}

/// What a call admitted through Redis holds there.
#[derive(Debug, Clone)]
pub(super) struct SharedHold {
    /// `<call id>:<estimate>`, the member of each sorted set.
    pub member: String,
    /// Holders with a reservation (those with a budget).
    pub budgeted: Vec<String>,
}

/// A settlement (or release) to send to Redis.
#[derive(Debug, Clone)]
struct Settle {
    member: String,
    estimate: i64,
    cost: i64,
    tokens: u64,
    budgeted: Vec<String>,
    holders: Vec<String>,
    limited: Vec<String>,
}

#[derive(Debug)]
enum Pending {
    Settle(Settle),
    Written(Vec<(String, i64)>),
}

/// See the module documentation.
pub struct KeyShare {
    redis: Arc<RedisShared>,
    client: ::redis::Client,
    channel: String,
    /// Enforcing locally because Redis did not answer (logged once).
    local: AtomicBool,
    pending: Mutex<VecDeque<Pending>>,
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyShare")
            .field("channel", &self.channel)
            .finish()
    }
}

fn lim(v: Option<i64>) -> i64 {
    v.unwrap_or(-1)
}

impl KeyShare {
    pub fn new(redis: Arc<RedisShared>, settings: &RedisSettings) -> Result<Arc<Self>, String> {
        let client = ::redis::Client::open(settings.url.expose()).map_err(|_| {
            "invalid Redis settings: redis_url / redis_host cannot be used as a Redis address"
                .to_owned()
        })?;
        Ok(Arc::new(Self {
            channel: format!("{}:keys:invalidate", settings.prefix),
            redis,
            client,
            local: AtomicBool::new(false),
            pending: Mutex::new(VecDeque::new()),
        }))
    }

    fn k(&self, kind: &str, id: &str) -> String {
        self.redis.key(kind, id)
    }

    fn minute_keys(&self, id: &str) -> (String, String) {
        let m = now_ms() / 60_000;
        (
            self.k(&format!("krpm:{m}"), id),
            self.k(&format!("ktpm:{m}"), id),
        )
    }

    /// Redis did not answer `what`: enforce locally (logged once per outage).
    fn unavailable(&self, what: &str, err: &dyn std::fmt::Display) {
        self.redis.outage(what, err);
        if !self.local.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "Redis unavailable ({what}: {err}): key budgets and rate limits are enforced per instance until it is back"
            );
        }
    }

    fn answered(&self) {
        if self.local.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis is back: key budgets and rate limits are shared again");
        }
    }

    /// Whether the last Redis call failed.
    pub fn is_local(&self) -> bool {
        self.local.load(Ordering::Relaxed)
    }

    /// The `kwrit` marks of `ids` (`None`: Redis did not answer).
    pub(super) async fn marks(&self, ids: &[&str]) -> Option<Vec<i64>> {
        if ids.is_empty() {
            return Some(Vec::new());
        }
        let mut c = self.redis.conn().await?;
        let keys: Vec<String> = ids.iter().map(|id| self.k("kwrit", id)).collect();
        let cmd = ::redis::cmd("MGET").arg(&keys).clone();
        match tokio::time::timeout(
            KEY_REDIS_TIMEOUT,
            cmd.query_async::<Vec<Option<i64>>>(&mut c),
        )
        .await
        {
            Ok(Ok(v)) => {
                self.answered();
                Some(v.into_iter().map(Option::unwrap_or_default).collect())
            }
            Ok(Err(e)) => {
                self.unavailable("read spend marks", &e);
                None
            }
            Err(_) => {
                self.unavailable("read spend marks", &"timed out");
                None
            }
        }
    }

    /// Check every budget and limit and take them all, or none.
    /// `Err(())`: Redis did not answer (decide on local state).
    pub(super) async fn admit(
        &self,
        budgets: &[SharedBudget],
        limited: &[Limited],
        estimate: i64,
    ) -> Result<(Admission, SharedHold), ()> {
        let member = format!("{}:{estimate}", uuid::Uuid::new_v4().simple());
        let now = now_ms();
        let until = now.saturating_add(u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX));
        let mut inv = ADMIT_SCRIPT.prepare_invoke();
        for b in budgets {
            inv.key(self.k("kres", &b.id))
                .key(self.k("ksum", &b.id))
                .key(self.k("kset", &b.id));
        }
        for l in limited {
            let (rk, tk) = self.minute_keys(&l.id);
            inv.key(rk).key(tk).key(self.k("kslots", &l.id));
        }
        inv.arg(now)
            .arg(until)
            .arg(&member)
            .arg(estimate)
            .arg(budgets.len())
            .arg(limited.len());
        for b in budgets {
            inv.arg(b.db_spend).arg(b.mark).arg(b.max_budget);
        }
        for l in limited {
            inv.arg(lim(l.rpm)).arg(lim(l.tpm)).arg(lim(l.parallel));
        }
        inv.arg(MINUTE_TTL_SECS);
        let mut c = self.redis.conn().await.ok_or(())?;
        let r = match tokio::time::timeout(KEY_REDIS_TIMEOUT, inv.invoke_async::<Vec<i64>>(&mut c))
            .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.unavailable("admit a key's call", &e);
                return Err(());
            }
            Err(_) => {
                self.unavailable("admit a key's call", &"timed out");
                return Err(());
            }
        };
        self.answered();
        let hold = SharedHold {
            member,
            budgeted: budgets.iter().map(|b| b.id.clone()).collect(),
        };
        let nb = budgets.len();
        let admission = match r.as_slice() {
            [1] => Admission::Admitted,
            [0, i, spend] if (1..=nb as i64).contains(i) => Admission::Budget {
                index: usize::try_from(*i - 1).unwrap_or_default(),
                spend: *spend,
            },
            [0, j, kind] => Admission::Limit {
                index: usize::try_from(*j)
                    .unwrap_or_default()
                    .saturating_sub(nb + 1),
                kind: match kind {
                    1 => LimitKind::Requests,
                    2 => LimitKind::Tokens,
                    _ => LimitKind::Parallel,
                },
            },
            other => {
                self.unavailable(
                    "admit a key's call",
                    &format!("unexpected answer {other:?}"),
                );
                return Err(());
            }
        };
        Ok((admission, hold))
    }

    /// Settle a call held in Redis (`hold`) or count the cost of one that
    /// was not (`hold` `None`), in the background.
    pub(super) fn settle(
        self: &Arc<Self>,
        hold: Option<&SharedHold>,
        holders: &[String],
        limited: &[String],
        cost: i64,
        tokens: u64,
    ) {
        let (member, estimate, budgeted) = match hold {
            Some(h) => (
                h.member.clone(),
                h.member
                    .rsplit(':')
                    .next()
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0),
                h.budgeted.clone(),
            ),
            None => (String::new(), 0, Vec::new()),
        };
        let op = Settle {
            member,
            estimate,
            cost,
            tokens,
            budgeted,
            holders: holders.to_vec(),
            limited: if hold.is_some() {
                limited.to_vec()
            } else {
                Vec::new()
            },
        };
        if op.cost == 0 && op.budgeted.is_empty() && op.limited.is_empty() {
            return;
        }
        self.in_background(Pending::Settle(op));
    }

    /// The spend writer stored these amounts (nano-USD per holder).
    pub(super) fn written(self: &Arc<Self>, amounts: HashMap<String, i64>) {
        let v: Vec<(String, i64)> = amounts.into_iter().filter(|(_, n)| *n > 0).collect();
        if !v.is_empty() {
            self.in_background(Pending::Written(v));
        }
    }

    /// Send `op` now (queued behind earlier failures), from a task.
    fn in_background(self: &Arc<Self>, op: Pending) {
        {
            // Behind earlier failures: keep the order, the replay sends it.
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if !p.is_empty() {
                push_bounded(&mut p, op);
                return;
            }
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = Arc::clone(self);
        rt.spawn(async move {
            if !me.send(&op).await {
                let mut p = me.pending.lock().unwrap_or_else(|e| e.into_inner());
                push_bounded(&mut p, op);
            }
        });
    }

    async fn send(&self, op: &Pending) -> bool {
        let Some(mut c) = self.redis.conn().await else {
            return false;
        };
        let inv = match op {
            Pending::Settle(s) => {
                let mut inv = SETTLE_SCRIPT.prepare_invoke();
                for b in &s.budgeted {
                    inv.key(self.k("kres", b)).key(self.k("ksum", b));
                }
                for h in &s.holders {
                    inv.key(self.k("kset", h));
                }
                for l in &s.limited {
                    let (_, tk) = self.minute_keys(l);
                    inv.key(tk).key(self.k("kslots", l));
                }
                inv.arg(&s.member)
                    .arg(s.estimate)
                    .arg(s.cost)
                    .arg(s.tokens)
                    .arg(s.budgeted.len())
                    .arg(s.holders.len())
                    .arg(s.limited.len())
                    .arg(COUNTER_TTL_SECS)
                    .arg(MINUTE_TTL_SECS);
                inv
            }
            Pending::Written(v) => {
                let mut inv = WRITTEN_SCRIPT.prepare_invoke();
                for (h, _) in v {
                    inv.key(self.k("kset", h)).key(self.k("kwrit", h));
                }
                for (_, n) in v {
                    inv.arg(*n);
                }
                inv.arg(COUNTER_TTL_SECS);
                inv
            }
        };
        let what = match op {
            Pending::Settle(_) => "settle a key's call",
            Pending::Written(_) => "count stored spend",
        };
        match tokio::time::timeout(KEY_REDIS_TIMEOUT, inv.invoke_async::<i64>(&mut c)).await {
            Ok(Ok(_)) => {
                self.answered();
                true
            }
            Ok(Err(e)) => {
                self.unavailable(what, &e);
                false
            }
            Err(_) => {
                self.unavailable(what, &"timed out");
                false
            }
        }
    }

    /// Replay the writes that could not reach Redis, in order; stops at the
    /// first that fails again.
    pub(super) async fn replay(&self) {
        loop {
            let op = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            let Some(op) = op else { return };
            if !self.send(&op).await {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_front(op);
                return;
            }
        }
    }

    /// Tell every instance to forget `hash` (every key when `None`).
    pub(super) fn publish(self: &Arc<Self>, hash: Option<&str>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = Arc::clone(self);
        let msg = hash.unwrap_or("*").to_owned();
        rt.spawn(async move {
            let Some(mut c) = me.redis.conn().await else {
                return;
            };
            let cmd = ::redis::cmd("PUBLISH").arg(&me.channel).arg(&msg).clone();
            match tokio::time::timeout(KEY_REDIS_TIMEOUT, cmd.query_async::<i64>(&mut c)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => me.unavailable("publish a key change", &e),
                Err(_) => me.unavailable("publish a key change", &"timed out"),
            }
        });
    }

    /// Subscribe to key changes; `None` when Redis does not answer.
    pub(super) async fn subscribe(&self) -> Option<::redis::aio::PubSub> {
        let connect = async {
            let mut ps = self.client.get_async_pubsub().await?;
            ps.subscribe(&self.channel).await?;
            Ok::<_, ::redis::RedisError>(ps)
        };
        match tokio::time::timeout(KEY_REDIS_TIMEOUT * 10, connect).await {
            Ok(Ok(ps)) => Some(ps),
            Ok(Err(e)) => {
                self.unavailable("subscribe to key changes", &e);
                None
            }
            Err(_) => {
                self.unavailable("subscribe to key changes", &"timed out");
                None
            }
        }
    }
}

fn push_bounded(p: &mut VecDeque<Pending>, op: Pending) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if p.len() >= MAX_PENDING {
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!("Redis unavailable for long: older key-spend updates for Redis are dropped (each instance still counts its own)");
        }
        p.pop_front();
    }
    p.push_back(op);
}
