//! The spend writer: finished calls become spend rows in a bounded
//! in-memory queue, written in batches by one background task. The request
//! path only pushes onto the queue; it never waits on the database.
//!
//! Guarantees:
//! - a batch is written when `batch_size` rows are waiting or every
//!   `interval`, whichever comes first;
//! - a failed write is retried with exponential backoff (up to
//!   `max_backoff`); the rows stay queued meanwhile;
//! - when more than `capacity` rows wait, the oldest are appended to the
//!   spill file (JSON lines) and read back once the database answers again;
//! - on shutdown ([`SpendWriter::close`]) everything queued is written, or
//!   spilled when the database does not answer;
//! - every row is counted in [`WriterStats`]: written, spilled, replayed
//!   from the spill file, and dropped (only when the queue is at twice its
//!   capacity and no spill file can be written — logged as an error). Rows
//!   are spilled by the task, or by the caller of [`SpendWriter::push`]
//!   when the queue reaches twice its capacity while the task backs off.
//!
//! Writes are idempotent per `request_id` (the backend's contract), so a
//! batch replayed after a failure that actually committed is harmless.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use super::entry::SpendEntry;
use crate::meter::{CallRecord, CallSink};

/// Where spend rows go (the store, through the server's glue).
pub trait SpendBackend: Send + Sync + 'static {
    /// Store `batch` and add each row's cost to its key, user and team, in
    /// one transaction, idempotently per `request_id`. With `store_rows`
    /// false (`disable_spend_logs`) only the spend counters move.
    fn write<'a>(
        &'a self,
        batch: &'a [SpendEntry],
        store_rows: bool,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Called with every batch once it is stored.
pub type OnWritten = Arc<dyn Fn(&[SpendEntry]) + Send + Sync>;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub batch_size: usize,
    /// Longest a row waits before a batch is written.
    pub interval: Duration,
    /// Rows kept in memory; older ones beyond this are spilled.
    pub capacity: usize,
    /// The spill file (JSON lines). `None`: rows beyond twice the capacity
    /// are dropped (and counted).
    pub spill_path: Option<PathBuf>,
    /// `false` with `disable_spend_logs`.
    pub store_rows: bool,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            interval: Duration::from_secs(1),
            capacity: 20_000,
            spill_path: None,
            store_rows: true,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Counters, ready to export as metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Rows handed to the writer.
    pub queued: AtomicU64,
    /// Rows written by the backend (replays included).
    pub written: AtomicU64,
    /// Batch writes that failed (each is retried).
    pub failed_writes: AtomicU64,
    /// Rows appended to the spill file.
    pub spilled: AtomicU64,
    /// Rows read back from the spill file and written.
    pub replayed: AtomicU64,
    /// Rows lost: the queue was over capacity and no spill file could be
    /// written (or a spilled line was unreadable). Logged as errors.
    pub dropped: AtomicU64,
}

impl WriterStats {
    fn add(c: &AtomicU64, n: usize) {
        c.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

struct Shared {
    cfg: WriterConfig,
    backend: Arc<dyn SpendBackend>,
    on_written: Option<OnWritten>,
    queue: Mutex<VecDeque<SpendEntry>>,
    /// Rows taken by the task and not yet stored.
    in_flight: AtomicU64,
    wake: Notify,
    /// Signalled after every turn of the task (for `flush`).
    turned: Notify,
    flush_now: AtomicBool,
    closing: AtomicBool,
    stats: WriterStats,
    /// Logged once per outage.
    down: AtomicBool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<SpendEntry>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pending(&self) -> usize {
        self.queue().len() + self.in_flight.load(Ordering::Acquire) as usize
    }
}

/// See the module documentation.
pub struct SpendWriter {
    shared: Arc<Shared>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl SpendWriter {
    /// Start the background task (needs a Tokio runtime).
    pub fn start(
        cfg: WriterConfig,
        backend: Arc<dyn SpendBackend>,
        on_written: Option<OnWritten>,
    ) -> Arc<Self> {
        let shared = Arc::new(Shared {
            cfg,
            backend,
            on_written,
            queue: Mutex::new(VecDeque::new()),
            in_flight: AtomicU64::new(0),
            wake: Notify::new(),
            turned: Notify::new(),
            flush_now: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            stats: WriterStats::default(),
            down: AtomicBool::new(false),
        });
        let task = tokio::spawn(run(Arc::clone(&shared)));
        Arc::new(Self {
            shared,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// Rows queued or being written.
    pub fn pending(&self) -> usize {
        self.shared.pending()
    }

    /// Queue one row. Never blocks on I/O.
    pub fn push(&self, entry: SpendEntry) {
        let s = &self.shared;
        WriterStats::add(&s.stats.queued, 1);
        let len = {
            let mut q = s.queue();
            q.push_back(entry);
            q.len()
        };
        if len >= s.cfg.capacity.saturating_mul(2).max(1) {
            // The task has not kept up (it is backing off from a failed
            // write): spill here rather than grow without bound. Rare: the
            // database is down and the queue is at twice its capacity.
            spill_overflow(s);
        }
        if len >= s.cfg.batch_size || len > s.cfg.capacity {
            s.wake.notify_one();
        }
    }

    /// Write everything queued now; `true` once nothing is pending,
    /// `false` if that did not happen within `timeout` (e.g. the database
    /// is down).
    pub async fn flush(&self, timeout: Duration) -> bool {
        let s = &self.shared;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let turned = s.turned.notified();
            if s.pending() == 0 {
                return true;
            }
            s.flush_now.store(true, Ordering::Release);
            s.wake.notify_one();
            if tokio::time::timeout_at(deadline, turned).await.is_err() {
                return s.pending() == 0;
            }
        }
    }

    /// Stop: write what is queued (spilling it if the database does not
    /// answer within `timeout`) and end the task.
    pub async fn close(&self, timeout: Duration) {
        let s = &self.shared;
        s.closing.store(true, Ordering::Release);
        s.wake.notify_one();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(timeout, &mut task).await.is_err() {
                task.abort();
                let rest: Vec<SpendEntry> = s.queue().drain(..).collect();
                spill(s, &rest);
            }
        }
    }
}

impl CallSink for SpendWriter {
    fn record(&self, rec: &CallRecord) {
        self.push(SpendEntry::from_record(rec));
    }
}

impl Drop for SpendWriter {
    fn drop(&mut self) {
        if let Some(t) = self.task.get_mut().ok().and_then(Option::take) {
            t.abort();
        }
    }
}

/// Append rows to the spill file; counted as spilled, or dropped when there
/// is no file or it cannot be written.
fn spill(s: &Shared, rows: &[SpendEntry]) {
    if rows.is_empty() {
        return;
    }
    let result = match &s.cfg.spill_path {
        None => Err("no spill file configured".to_owned()),
        Some(path) => append_lines(path, rows).map_err(|e| format!("{}: {e}", path.display())),
    };
    match result {
        Ok(()) => {
            WriterStats::add(&s.stats.spilled, rows.len());
            tracing::warn!(
                rows = rows.len(),
                "spend rows spilled to a file; they are written when the database answers again"
            );
        }
        Err(e) => {
            WriterStats::add(&s.stats.dropped, rows.len());
            tracing::error!(
                rows = rows.len(),
                "spend rows dropped: cannot spill them ({e})"
            );
        }
    }
}

fn append_lines(path: &std::path::Path, rows: &[SpendEntry]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(rows.len() * 256);
    for r in rows {
        serde_json::to_writer(&mut buf, r)?;
        buf.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&buf)?;
    f.sync_data()
}

/// Move the oldest rows beyond `capacity` to the spill file.
fn spill_overflow(s: &Shared) {
    let excess: Vec<SpendEntry> = {
        let mut q = s.queue();
        let n = q.len().saturating_sub(s.cfg.capacity);
        q.drain(..n).collect()
    };
    spill(s, &excess);
}

async fn write(s: &Shared, batch: &[SpendEntry]) -> bool {
    match s.backend.write(batch, s.cfg.store_rows).await {
        Ok(()) => {
            WriterStats::add(&s.stats.written, batch.len());
            if s.down.swap(false, Ordering::Relaxed) {
                tracing::info!("spend writes succeed again");
            }
            if let Some(f) = &s.on_written {
                f(batch);
            }
            true
        }
        Err(e) => {
            WriterStats::add(&s.stats.failed_writes, 1);
            if !s.down.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    rows = batch.len(),
                    "cannot write spend rows ({e}); keeping them and retrying"
                );
            }
            false
        }
    }
}

/// Write the spill file back in batches; removed once all of it is stored.
/// On a failure the file is kept whole (replays are idempotent).
async fn replay(s: &Shared) -> bool {
    let Some(path) = &s.cfg.spill_path else {
        return true;
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
        Err(e) => {
            tracing::error!("cannot read the spend spill file {}: {e}", path.display());
            return false;
        }
    };
    let mut lines = std::io::BufReader::new(file).lines();
    let mut batch = Vec::with_capacity(s.cfg.batch_size);
    let mut done = 0usize;
    loop {
        let line = lines.next();
        let end = line.is_none();
        match line {
            Some(Ok(l)) if l.trim().is_empty() => {}
            Some(Ok(l)) => match serde_json::from_str::<SpendEntry>(&l) {
                Ok(e) => batch.push(e),
                Err(e) => {
                    // A torn last line from a crash mid-write: counted, skipped.
                    WriterStats::add(&s.stats.dropped, 1);
                    tracing::error!("unreadable line in the spend spill file skipped: {e}");
                }
            },
            Some(Err(e)) => {
                tracing::error!("cannot read the spend spill file {}: {e}", path.display());
                return false;
            }
            None => {}
        }
        if (end && !batch.is_empty()) || batch.len() >= s.cfg.batch_size {
            if !write(s, &batch).await {
                return false;
            }
            done += batch.len();
            batch.clear();
        }
        if end {
            break;
        }
    }
    WriterStats::add(&s.stats.replayed, done);
    if let Err(e) = std::fs::remove_file(path) {
        tracing::error!(
            "cannot remove the replayed spill file {}: {e}",
            path.display()
        );
    } else if done > 0 {
        tracing::info!(rows = done, "spilled spend rows written");
    }
    true
}

async fn run(s: Arc<Shared>) {
    let mut batch: Vec<SpendEntry> = Vec::new();
    let mut backoff = s.cfg.first_backoff;
    let mut spill_pending = s.cfg.spill_path.as_ref().is_some_and(|p| p.exists());
    // A partial batch is written once the interval passed (or on a wake-up).
    let mut due = false;
    loop {
        let closing = s.closing.load(Ordering::Acquire);
        if batch.is_empty() {
            let waiting = s.queue().len();
            let flush = s.flush_now.swap(false, Ordering::AcqRel);
            let idle = waiting == 0 || (waiting < s.cfg.batch_size && !due);
            if idle && !closing && !flush && !spill_pending {
                s.turned.notify_waiters();
                tokio::select! {
                    () = s.wake.notified() => {}
                    () = tokio::time::sleep(s.cfg.interval) => {}
                }
                due = true;
                continue;
            }
            due = false;
            spill_overflow(&s);
            let mut q = s.queue();
            let n = q.len().min(s.cfg.batch_size);
            batch.extend(q.drain(..n));
            s.in_flight.store(batch.len() as u64, Ordering::Release);
        }
        if batch.is_empty() {
            if spill_pending {
                spill_pending = !replay(&s).await;
                if spill_pending && !closing {
                    wait_backoff(&s, &mut backoff).await;
                    continue;
                }
            }
            if closing {
                s.turned.notify_waiters();
                return;
            }
            continue;
        }
        if write(&s, &batch).await {
            batch.clear();
            s.in_flight.store(0, Ordering::Release);
            backoff = s.cfg.first_backoff;
            s.turned.notify_waiters();
            continue;
        }
        if closing {
            // Shutting down with the database unreachable: keep everything on disk.
            let rest: Vec<SpendEntry> = s.queue().drain(..).collect();
            spill(&s, &batch);
            spill(&s, &rest);
            batch.clear();
            s.in_flight.store(0, Ordering::Release);
            s.turned.notify_waiters();
            return;
        }
        spill_overflow(&s);
        spill_pending |= WriterStats::get(&s.stats.spilled) > 0;
        s.turned.notify_waiters();
        wait_backoff(&s, &mut backoff).await;
    }
}

/// Sleep before retrying; woken early by shutdown (or new rows, so that an
/// overflowing queue spills without waiting for the backoff).
async fn wait_backoff(s: &Shared, backoff: &mut Duration) {
    tokio::select! {
        () = s.wake.notified() => {}
        () = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(s.cfg.max_backoff);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A backend that fails while `down` is set and records what it stored.
    #[derive(Default)]
    struct Fake {
        down: AtomicBool,
        rows: Mutex<Vec<SpendEntry>>,
        calls: AtomicU64,
    }

    impl SpendBackend for Fake {
        fn write<'a>(
            &'a self,
            batch: &'a [SpendEntry],
            _store_rows: bool,
        ) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::Relaxed);
                if self.down.load(Ordering::Relaxed) {
                    return Err("connection refused".into());
                }
                let mut rows = self.rows.lock().unwrap();
                for r in batch {
                    if !rows.iter().any(|x| x.request_id == r.request_id) {
                        rows.push(r.clone());
                    }
                }
                Ok(())
            })
        }
    }

    fn entry(i: usize) -> SpendEntry {
        let mut rec = CallRecord {
            call_id: format!("req-{i:04}"),
            cost: 0.001,
            ..Default::default()
        };
        rec.requested_model = "m".into();
        SpendEntry::from_record(&rec)
    }

    fn cfg(spill: Option<PathBuf>) -> WriterConfig {
        WriterConfig {
            batch_size: 10,
            interval: Duration::from_secs(3600),
            capacity: 25,
            spill_path: spill,
            store_rows: true,
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "ferrolite-writer-{name}-{}-{}.jsonl",
            std::process::id(),
            uuid::Uuid::new_v4()
        ))
    }

    #[tokio::test]
    async fn batches_are_written_on_size_and_on_flush() {
        let fake = Arc::new(Fake::default());
        let w = SpendWriter::start(cfg(None), fake.clone(), None);
        for i in 0..23 {
            w.push(entry(i));
        }
        assert!(w.flush(Duration::from_secs(5)).await);
        assert_eq!(fake.rows.lock().unwrap().len(), 23);
        assert_eq!(WriterStats::get(&w.stats().written), 23);
        w.close(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn rows_survive_a_failing_backend_and_are_written_when_it_recovers() {
        let fake = Arc::new(Fake::default());
        fake.down.store(true, Ordering::Relaxed);
        let seen = Arc::new(AtomicU64::new(0));
        let s2 = Arc::clone(&seen);
        let w = SpendWriter::start(
            cfg(None),
            fake.clone(),
            Some(Arc::new(move |b: &[SpendEntry]| {
                s2.fetch_add(b.len() as u64, Ordering::Relaxed);
            })),
        );
        for i in 0..15 {
            w.push(entry(i));
        }
        assert!(!w.flush(Duration::from_millis(200)).await, "db down");
        assert!(WriterStats::get(&w.stats().failed_writes) >= 1);
        assert_eq!(w.pending(), 15, "nothing lost while down");
        fake.down.store(false, Ordering::Relaxed);
        assert!(w.flush(Duration::from_secs(5)).await);
        assert_eq!(fake.rows.lock().unwrap().len(), 15);
        assert_eq!(seen.load(Ordering::Relaxed), 15);
        assert_eq!(WriterStats::get(&w.stats().dropped), 0);
        w.close(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn overflow_spills_to_a_file_that_is_replayed_on_recovery() {
        let path = temp_path("spill");
        let fake = Arc::new(Fake::default());
        fake.down.store(true, Ordering::Relaxed);
        let w = SpendWriter::start(cfg(Some(path.clone())), fake.clone(), None);
        for i in 0..60 {
            w.push(entry(i));
        }
        // 60 rows, capacity 25 (+ one batch in flight): the rest is on disk.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while WriterStats::get(&w.stats().spilled) < 25 {
            assert!(tokio::time::Instant::now() < deadline, "never spilled");
            w.shared.wake.notify_one();
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(path.exists());
        let on_disk = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
        assert_eq!(on_disk, WriterStats::get(&w.stats().spilled));
        fake.down.store(false, Ordering::Relaxed);
        assert!(w.flush(Duration::from_secs(5)).await);
        // The file is replayed after the queue drains.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while path.exists() {
            assert!(tokio::time::Instant::now() < deadline, "never replayed");
            w.shared.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let rows = fake.rows.lock().unwrap().len();
        assert_eq!(rows, 60, "every row written exactly once");
        assert_eq!(
            WriterStats::get(&w.stats().replayed),
            WriterStats::get(&w.stats().spilled)
        );
        assert!(on_disk >= 25);
        assert_eq!(WriterStats::get(&w.stats().dropped), 0);
        w.close(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn close_spills_when_the_database_is_down_and_a_new_writer_replays() {
        let path = temp_path("close");
        let fake = Arc::new(Fake::default());
        fake.down.store(true, Ordering::Relaxed);
        let w = SpendWriter::start(cfg(Some(path.clone())), fake.clone(), None);
        for i in 0..7 {
            w.push(entry(i));
        }
        w.close(Duration::from_secs(5)).await;
        assert_eq!(WriterStats::get(&w.stats().spilled), 7);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 7);
        // The next process start finds the file and writes it.
        fake.down.store(false, Ordering::Relaxed);
        let w2 = SpendWriter::start(cfg(Some(path.clone())), fake.clone(), None);
        w2.close(Duration::from_secs(5)).await;
        assert_eq!(fake.rows.lock().unwrap().len(), 7);
        assert!(!path.exists());
        assert_eq!(WriterStats::get(&w2.stats().replayed), 7);
    }

    #[tokio::test]
    async fn without_a_spill_file_overflow_is_counted_as_dropped() {
        let fake = Arc::new(Fake::default());
        fake.down.store(true, Ordering::Relaxed);
        let mut c = cfg(None);
        c.capacity = 5;
        let w = SpendWriter::start(c, fake.clone(), None);
        for i in 0..30 {
            w.push(entry(i));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while WriterStats::get(&w.stats().dropped) == 0 {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let st = w.stats();
        let kept = w.pending() as u64;
        assert_eq!(
            kept + WriterStats::get(&st.dropped),
            30,
            "every row is either kept or counted as dropped"
        );
        w.close(Duration::from_millis(500)).await;
    }
}
