//! ferrolite's store: virtual keys, users, teams and spend logs, in an
//! embedded SQLite file by default or in PostgreSQL.
//!
//! One [`Store`] type with inherent async methods; inside it, an enum over
//! the two connection pools. Both dialects run the very same SQL text
//! (portable types, `$n` parameters, `ON CONFLICT … DO NOTHING`), and the
//! [`on_db!`] macro expands each query once per backend, so there is one copy
//! of every query and no boxed future per call, which a trait object would
//! need. Another implementation (a test double, say) can be added later
//! behind the same methods without changing callers.
//!
//! Keys are stored hashed ([`hash_key`]); the key itself is never written.
//! Spend is written in batches by [`Store::record_spend`], idempotent per
//! `request_id`.

mod counters;
mod keys;
mod model;
mod retention;
mod rows;
mod spend;
mod teams;
mod time;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use counters::COUNTED_TTL_MS;
pub use model::{
    BudgetResets, DailySpend, Key, KeyFilter, KeySpend, ModelSpend, SpendDimension, SpendLogFilter,
    SpendRow, Team, TeamMember, User,
};
pub use retention::{Pruned, Retention};
pub use time::{format_day, format_rfc3339, now_ms, parse_duration, parse_time, BudgetDuration};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one the store understands.
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    /// The database could not be reached or opened at startup.
    #[error("cannot open the database: {0}")]
    Connect(String),
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// A row with this unique value already exists.
    #[error("{0}")]
    Conflict(String),
    /// A stored value cannot be read back (e.g. invalid JSON in a column).
    #[error("corrupt value in the database: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The two backends. Public only so that [`on_db!`] can name it.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run `$body` with `$pool` bound to the backend's pool (expanded once per
/// backend, so the body is type-checked against each driver).
macro_rules! on_db {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path` (created if missing), `sqlite::memory:`, or
    /// `postgres://…` / `postgresql://…`.
    pub url: String,
    /// Pool size; default 10 for PostgreSQL, 4 for a SQLite file.
    pub max_connections: Option<u32>,
    /// PostgreSQL only: the schema to use (`search_path`); created if missing.
    pub pg_schema: Option<String>,
    /// How long to wait for a connection before failing.
    pub acquire_timeout: Duration,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: None,
            pg_schema: None,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The store: keys, users, teams and spend logs.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

/// The migrations, embedded at compile time (one set for both dialects).
#[derive(Debug)]
struct Embedded;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "spend_counted",
        include_str!("../migrations/0002_spend_counted.sql"),
    ),
    (
        3,
        "spend_content",
        include_str!("../migrations/0003_spend_content.sql"),
    ),
];

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = std::result::Result<Vec<Migration>, sqlx::error::BoxDynError>,
                > + Send
                + 's,
        >,
    > {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(*v, (*d).into(), MigrationType::Simple, (*sql).into(), false)
                })
                .collect())
        })
    }
}

/// A URL with any password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn is_valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

impl Store {
    /// Open (and migrate) the store at `url`.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(&StoreOptions::new(url)).await
    }

    /// Open the store, apply the migrations, and check it answers.
    pub async fn open(opts: &StoreOptions) -> Result<Self> {
        let url = opts.url.trim();
        let shown = redact(url);
        let db = if url.starts_with("sqlite:") {
            let memory = url == "sqlite::memory:" || url.contains("mode=memory");
            let o = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(format!("{shown}: {e}")))?
                .create_if_missing(true)
                .foreign_keys(false)
                .busy_timeout(Duration::from_secs(10))
                .synchronous(SqliteSynchronous::Normal);
            let o = if memory {
                o
            } else {
                o.journal_mode(SqliteJournalMode::Wal)
            };
            // Every in-memory connection is a separate database: keep exactly one, forever.
            let pool = if memory {
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                SqlitePoolOptions::new().max_connections(opts.max_connections.unwrap_or(4))
            };
            // Processes opening a new file at once may find it locked while
            // another switches it to WAL: retry briefly.
            let mut attempt = 0u64;
            let pool = loop {
                match pool
                    .clone()
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(o.clone())
                    .await
                {
                    Ok(p) => break p,
                    Err(e) if attempt < 20 && e.to_string().contains("locked") => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                    }
                    Err(e) => return Err(StoreError::Connect(format!("{shown}: {e}"))),
                }
            };
            Db::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut o = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(format!("{shown}: {e}")))?
                .application_name("ferrolite");
            if let Some(schema) = &opts.pg_schema {
                if !is_valid_schema(schema) {
                    return Err(StoreError::BadUrl(format!(
                        "invalid schema name \"{schema}\": letters, digits and _ only"
                    )));
                }
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(o.clone())
                    .await
                    .map_err(|e| StoreError::Connect(format!("{shown}: {e}")))?;
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                o = o.options([("search_path", schema.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.unwrap_or(10))
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(o)
                .await
                .map_err(|e| StoreError::Connect(format!("{shown}: {e}")))?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl(format!(
                "{shown}: expected sqlite://PATH, sqlite::memory:, postgres://… or postgresql://…"
            )));
        };
        let store = Store { db };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let migrator = Migrator::new(Embedded)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        match &self.db {
            Db::Postgres(p) => migrator
                .run(p)
                .await
                .map_err(|e| StoreError::Migrate(e.to_string())),
            // SQLite has no migration lock: two processes opening a new file
            // at once may race; the loser sees the winner's work on retry.
            // Each migration runs in a transaction, so every failed attempt
            // means another process applied one: one attempt per migration,
            // and one more, always suffice.
            Db::Sqlite(p) => {
                let mut last = None;
                for _ in 0..=MIGRATIONS.len() {
                    match migrator.run(p).await {
                        Ok(()) => return Ok(()),
                        Err(e) => last = Some(e.to_string()),
                    }
                }
                Err(StoreError::Migrate(last.unwrap_or_default()))
            }
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Close every connection; later calls fail.
    pub async fn close(&self) {
        on_db!(self, p => p.close().await)
    }

    /// Check the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_db!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()).map_err(StoreError::from))
    }
}

/// SHA-256 hex of a key: what the store keeps instead of the key
/// (LiteLLM hashes `sk-…` keys the same way).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The display form of a key: `sk-...` and its last four characters.
pub fn key_display_name(key: &str) -> String {
    let tail: String = {
        let chars: Vec<char> = key.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    format!("sk-...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_names() {
        assert_eq!(
            hash_key("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
        assert_eq!(hash_key("x").len(), 64);
        assert_eq!(key_display_name("sk-abcdefgh"), "sk-...efgh");
        assert_eq!(key_display_name("ab"), "sk-...ab");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
