//! Requests in flight to a deployment, counted exactly across instances for
//! `max_parallel_requests`.
//!
//! Each request holds a lease: a member of the sorted set
//! `<prefix>:slots:<deployment>` scored by when the lease expires. Taking a
//! slot is one Lua script (drop expired leases, count, add if below the
//! limit), so instances can never together exceed the limit; giving it back
//! removes the member in the background. A crashed instance's leases expire
//! on their own.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::Script;

use super::redis::{RedisShared, REDIS_TIMEOUT};

const TAKE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
";

static TAKE_SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(TAKE));

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A slot held at a deployment; dropping it gives the slot back.
pub struct SlotLease {
    shared: Arc<RedisShared>,
    key: String,
    member: String,
}

impl std::fmt::Debug for SlotLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotLease").field("key", &self.key).finish()
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let key = std::mem::take(&mut self.key);
        let member = std::mem::take(&mut self.member);
        rt.spawn(async move {
            let Some(mut c) = shared.conn().await else {
                return;
            };
            let cmd = ::redis::cmd("ZREM").arg(&key).arg(&member).clone();
            if let Ok(Err(e)) =
                tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<()>(&mut c)).await
            {
                shared.outage("release slot", &e);
            }
        });
    }
}

impl RedisShared {
    /// Take one of `limit` slots at deployment `id` for up to `lease`.
    /// `Ok(Some(lease))`: taken; `Ok(None)`: every slot is held;
    /// `Err(())`: Redis could not answer (the caller decides on local state).
    pub async fn take_slot(
        self: &Arc<Self>,
        id: &str,
        member: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Option<SlotLease>, ()> {
        let mut c = self.conn().await.ok_or(())?;
        let key = self.key("slots", id);
        let now = now_ms();
        let until = now.saturating_add(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX));
        let mut inv = TAKE_SCRIPT.prepare_invoke();
        inv.key(&key).arg(now).arg(limit).arg(until).arg(member);
        match tokio::time::timeout(REDIS_TIMEOUT, inv.invoke_async::<i64>(&mut c)).await {
            Ok(Ok(1)) => Ok(Some(SlotLease {
                shared: Arc::clone(self),
                key,
                member: member.to_owned(),
            })),
            Ok(Ok(_)) => Ok(None),
            Ok(Err(e)) => {
                self.outage("take slot", &e);
                Err(())
            }
            Err(_) => {
                self.outage("take slot", &"timed out");
                Err(())
            }
        }
    }
}
