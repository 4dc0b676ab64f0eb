//! The Redis side of shared state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::ConnectionManager;
use ::redis::Script;

/// How long the hot path waits for Redis before deciding on local state.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// Counter keys outlive their minute by this much.
const COUNTER_TTL_SECS: u64 = 120;

/// Where Redis is (`router_settings.redis_*` or `REDIS_*`).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// A `redis://` URL, password included.
    /// May carry the password: a secret, never printed.
    pub url: ferrolite_types::Secret,
    /// Key prefix, so several gateways can share one Redis.
    pub prefix: String,
}

/// Check both counters and take one request if the limits allow it.
const ACQUIRE: &str = r"
local r = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = tonumber(redis.call('GET', KEYS[2]) or '0')
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
if (rpm >= 0 and r >= rpm) or (tpm >= 0 and t >= tpm) then
  return 0
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
";

pub struct RedisShared {
    client: ::redis::Client,
    prefix: String,
    conn: Mutex<Option<ConnectionManager>>,
    /// Logged once per outage.
    down: AtomicBool,
    acquire: Script,
}

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 60)
        .unwrap_or(0)
}

impl RedisShared {
    pub fn new(settings: &RedisSettings) -> Result<Arc<Self>, String> {
        let client = ::redis::Client::open(settings.url.expose()).map_err(|_| {
            "invalid Redis settings: redis_url / redis_host cannot be used as a Redis address"
                .to_owned()
        })?;
        Ok(Arc::new(Self {
            client,
            prefix: settings.prefix.clone(),
            conn: Mutex::new(None),
            down: AtomicBool::new(false),
            acquire: Script::new(ACQUIRE),
        }))
    }

    pub(crate) fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.prefix)
    }

    fn counter_keys(&self, id: &str) -> (String, String) {
        let m = minute();
        (
            self.key(&format!("rpm:{m}"), id),
            self.key(&format!("tpm:{m}"), id),
        )
    }

    pub(crate) fn outage(&self, what: &str, err: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!("Redis unavailable ({what}: {err}): routing on this instance's own state until it is back");
        }
    }

    fn recovered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis is back: limits and cooldowns are shared again");
        }
    }

    /// A connection, opening one if needed (bounded by [`REDIS_TIMEOUT`]).
    pub(crate) async fn conn(&self) -> Option<ConnectionManager> {
        let existing = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(c) = existing {
            return Some(c);
        }
        let config = ::redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            REDIS_TIMEOUT * 5,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        {
            Ok(Ok(c)) => {
                *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.outage("connect", &e);
                None
            }
            Err(_) => {
                self.outage("connect", &"timed out");
                None
            }
        }
    }

    /// Take one request against `id`'s shared `rpm`/`tpm` for this minute.
    /// `Some(false)`: the limit is reached; `None`: Redis could not answer.
    pub async fn acquire(&self, id: &str, rpm: Option<u64>, tpm: Option<u64>) -> Option<bool> {
        let mut c = self.conn().await?;
        let (rk, tk) = self.counter_keys(id);
        let lim = |v: Option<u64>| v.map_or(-1i64, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut inv = self.acquire.prepare_invoke();
        inv.key(rk)
            .key(tk)
            .arg(lim(rpm))
            .arg(lim(tpm))
            .arg(COUNTER_TTL_SECS);
        match tokio::time::timeout(REDIS_TIMEOUT, inv.invoke_async::<i64>(&mut c)).await {
            Ok(Ok(r)) => {
                self.recovered();
                Some(r == 1)
            }
            Ok(Err(e)) => {
                self.outage("acquire", &e);
                None
            }
            Err(_) => {
                self.outage("acquire", &"timed out");
                None
            }
        }
    }

    /// Add `tokens` to `id`'s shared token count for this minute.
    pub async fn add_tokens(&self, id: &str, tokens: u64) {
        let Some(mut c) = self.conn().await else {
            return;
        };
        let (_, tk) = self.counter_keys(id);
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .incr(&tk, tokens)
            .ignore()
            .expire(&tk, COUNTER_TTL_SECS as i64)
            .ignore();
        if let Err(e) = tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(&mut c))
            .await
            .unwrap_or(Ok(()))
        {
            self.outage("add tokens", &e);
        }
    }

    /// Tell every instance that `id` cools down for `dur`.
    pub async fn set_cooldown(&self, id: &str, dur: Duration) {
        let Some(mut c) = self.conn().await else {
            return;
        };
        let ms = u64::try_from(dur.as_millis()).unwrap_or(u64::MAX).max(1);
        let cmd = ::redis::cmd("SET")
            .arg(self.key("cooldown", id))
            .arg(1)
            .arg("PX")
            .arg(ms)
            .clone();
        if let Err(e) = tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<()>(&mut c))
            .await
            .unwrap_or(Ok(()))
        {
            self.outage("set cooldown", &e);
        }
    }

    /// The remaining cooldown of each of `ids` (`None`: not cooling).
    pub async fn cooldowns(&self, ids: &[String]) -> Option<Vec<Option<Duration>>> {
        if ids.is_empty() {
            return Some(Vec::new());
        }
        let mut c = self.conn().await?;
        let mut pipe = ::redis::pipe();
        for id in ids {
            pipe.cmd("PTTL").arg(self.key("cooldown", id));
        }
        match tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<Vec<i64>>(&mut c)).await {
            Ok(Ok(ttls)) => {
                self.recovered();
                Some(
                    ttls.into_iter()
                        .map(|ms| {
                            u64::try_from(ms)
                                .ok()
                                .filter(|m| *m > 0)
                                .map(Duration::from_millis)
                        })
                        .collect(),
                )
            }
            Ok(Err(e)) => {
                self.outage("read cooldowns", &e);
                None
            }
            Err(_) => {
                self.outage("read cooldowns", &"timed out");
                None
            }
        }
    }
}
