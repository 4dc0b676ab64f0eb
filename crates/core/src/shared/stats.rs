//! Live routing statistics shared between instances: each instance publishes
//! its requests in flight and latency per deployment every second, and reads
//! every other live instance's back. `least-busy` and `latency-based-routing`
//! then see the whole fleet, and `max_parallel_requests` counts the requests
//! other instances have in flight (as of their last publication, at most a
//! second old).
//!
//! Layout: `<prefix>:instances` is a sorted set of instance ids scored by the
//! time of their last publication; `<prefix>:stats:<instance>` is a hash
//! `deployment id → "<in flight> <latency ms or ->"` that expires when its
//! instance stops publishing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::redis::{RedisShared, REDIS_TIMEOUT};

/// An instance that has not published for this long is gone.
pub const STATS_TTL: Duration = Duration::from_secs(5);

/// One deployment's numbers as one instance published them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RemoteStats {
    pub in_flight: u32,
    pub latency_ms: Option<f64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(crate) fn encode(s: &RemoteStats) -> String {
    match s.latency_ms {
        Some(l) => format!("{} {l:.3}", s.in_flight),
        None => format!("{} -", s.in_flight),
    }
}

pub(crate) fn decode(v: &str) -> Option<RemoteStats> {
    let mut it = v.split(' ');
    let in_flight = it.next()?.parse().ok()?;
    let latency_ms = match it.next()? {
        "-" => None,
        l => Some(l.parse::<f64>().ok().filter(|x| x.is_finite())?),
    };
    Some(RemoteStats {
        in_flight,
        latency_ms,
    })
}

impl RedisShared {
    /// Publish this instance's numbers and read every other live
    /// instance's: for each of `ids`, the sum of their in-flight counts and
    /// the mean of their latencies. `None` when Redis could not answer.
    pub async fn exchange_stats(
        &self,
        instance: &str,
        ids: &[String],
        mine: &[RemoteStats],
    ) -> Option<Vec<RemoteStats>> {
        let mut c = self.conn().await?;
        let now = now_ms();
        let ttl = u64::try_from(STATS_TTL.as_millis()).unwrap_or(5000);
        let set = self.key("instances", "all");
        let own = self.key("stats", instance);
        let mut pipe = ::redis::pipe();
        if !ids.is_empty() {
            let fields: Vec<(&str, String)> = ids
                .iter()
                .zip(mine)
                .map(|(id, s)| (id.as_str(), encode(s)))
                .collect();
            pipe.hset_multiple(&own, &fields).ignore();
        }
        pipe.pexpire(&own, ttl as i64)
            .ignore()
            .zadd(&set, instance, now)
            .ignore()
            .zrembyscore(&set, 0, now.saturating_sub(ttl))
            .ignore()
            .zrange(&set, 0, -1);
        let listed =
            tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<(Vec<String>,)>(&mut c)).await;
        let others: Vec<String> = match listed {
            Ok(Ok((all,))) => all.into_iter().filter(|i| i != instance).collect(),
            Ok(Err(e)) => {
                self.outage("publish stats", &e);
                return None;
            }
            Err(_) => {
                self.outage("publish stats", &"timed out");
                return None;
            }
        };
        let mut total = vec![RemoteStats::default(); ids.len()];
        if others.is_empty() || ids.is_empty() {
            return Some(total);
        }
        let mut pipe = ::redis::pipe();
        for o in &others {
            pipe.cmd("HMGET").arg(self.key("stats", o)).arg(ids);
        }
        let read = tokio::time::timeout(
            REDIS_TIMEOUT,
            pipe.query_async::<Vec<Vec<Option<String>>>>(&mut c),
        )
        .await;
        let rows = match read {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.outage("read stats", &e);
                return None;
            }
            Err(_) => {
                self.outage("read stats", &"timed out");
                return None;
            }
        };
        let mut latency_n = vec![0u32; ids.len()];
        for row in rows {
            for (i, v) in row.iter().enumerate().take(ids.len()) {
                let Some(s) = v.as_deref().and_then(decode) else {
                    continue;
                };
                total[i].in_flight += s.in_flight;
                if let Some(l) = s.latency_ms {
                    let n = latency_n[i] as f64;
                    let prev = total[i].latency_ms.unwrap_or(0.0);
                    total[i].latency_ms = Some((prev * n + l) / (n + 1.0));
                    latency_n[i] += 1;
                }
            }
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip() {
        for s in [
            RemoteStats {
                in_flight: 3,
                latency_ms: Some(12.5),
            },
            RemoteStats {
                in_flight: 0,
                latency_ms: None,
            },
        ] {
            assert_eq!(decode(&encode(&s)), Some(s));
        }
        assert_eq!(decode("x -"), None);
        assert_eq!(decode("1 NaN"), None);
        assert_eq!(decode("1"), None);
    }
}
