//! Stored responses in Redis (`<prefix>:response:<id>`, JSON, with the TTL as
//! the key's expiry), on the router's Redis connection. Redis being down only
//! means a follow-up must reach the instance that produced the response.

use std::sync::Arc;
use std::time::Duration;

use super::store::StoredResponse;
use crate::shared::RedisShared;

/// Longest wait for one Redis command here: stored conversations can be large.
const TIMEOUT: Duration = Duration::from_secs(1);

pub struct RedisResponses {
    shared: Arc<RedisShared>,
    ttl: Duration,
}

impl RedisResponses {
    pub fn new(shared: Arc<RedisShared>, ttl: Duration) -> Self {
        Self { shared, ttl }
    }

    fn key(&self, id: &str) -> String {
        self.shared.key("response", id)
    }

    pub async fn get(&self, id: &str) -> Option<StoredResponse> {
        let mut c = self.shared.conn().await?;
        let cmd = ::redis::cmd("GET").arg(self.key(id)).clone();
        match tokio::time::timeout(TIMEOUT, cmd.query_async::<Option<Vec<u8>>>(&mut c)).await {
            Ok(Ok(Some(bytes))) => serde_json::from_slice(&bytes).ok(),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!("Redis: cannot read a stored response: {e}");
                None
            }
            Err(_) => {
                tracing::warn!("Redis: reading a stored response timed out");
                None
            }
        }
    }

    pub async fn put(&self, id: &str, r: &StoredResponse) {
        let Ok(json) = serde_json::to_vec(r) else {
            return;
        };
        let Some(mut c) = self.shared.conn().await else {
            return;
        };
        let ms = u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let cmd = ::redis::cmd("SET")
            .arg(self.key(id))
            .arg(json)
            .arg("PX")
            .arg(ms)
            .clone();
        match tokio::time::timeout(TIMEOUT, cmd.query_async::<()>(&mut c)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("Redis: cannot store a response: {e}"),
            Err(_) => tracing::warn!("Redis: storing a response timed out"),
        }
    }

    pub async fn delete(&self, id: &str) -> bool {
        let Some(mut c) = self.shared.conn().await else {
            return false;
        };
        let cmd = ::redis::cmd("DEL").arg(self.key(id)).clone();
        matches!(
            tokio::time::timeout(TIMEOUT, cmd.query_async::<i64>(&mut c)).await,
            Ok(Ok(n)) if n > 0
        )
    }
}
