//! Process figures under the standard `process_*` names (as Prometheus'
//! client libraries export them), read from `/proc/self` when scraped.
//! On systems without `/proc` they stay at 0, except the start time.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type FloatGauge = Gauge<f64, AtomicU64>;

/// Linux reports CPU time in USER_HZ ticks, 100 a second on every
/// mainstream architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's figures.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub cpu_seconds: f64,
    pub threads: u64,
}

impl ProcessStats {
    pub fn read() -> Self {
        let mut s = Self::default();
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for line in status.lines() {
                let kb = |l: &str| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                if line.starts_with("VmRSS:") {
                    s.resident_bytes = kb(line) * 1024;
                } else if line.starts_with("VmSize:") {
                    s.virtual_bytes = kb(line) * 1024;
                } else if line.starts_with("Threads:") {
                    s.threads = kb(line);
                }
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // Minus the descriptor the listing itself holds open.
            s.open_fds = (dir.count() as u64).saturating_sub(1);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            s.max_fds = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name; utime and stime
            // are the 14th and 15th fields of the line.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                s.cpu_seconds = (ticks(11) + ticks(12)) as f64 / TICKS_PER_SECOND;
            }
        }
        s
    }
}

/// The registered gauges, set from a [`ProcessStats`] at each scrape.
#[derive(Debug, Clone)]
pub struct Gauges {
    resident: Gauge,
    virtual_mem: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    threads: Gauge,
    cpu: FloatGauge,
    start_time: f64,
}

impl Default for Gauges {
    fn default() -> Self {
        Self {
            resident: Gauge::default(),
            virtual_mem: Gauge::default(),
            open_fds: Gauge::default(),
            max_fds: Gauge::default(),
            threads: Gauge::default(),
            cpu: FloatGauge::default(),
            start_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }
}

/// CPU time is a counter whose value is read at scrape time.
#[derive(Debug, Clone)]
struct CpuCounter(FloatGauge);

impl prometheus_client::encoding::EncodeMetric for CpuCounter {
    fn encode(
        &self,
        encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        ConstCounter::new(self.0.get()).encode(encoder)
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Counter
    }
}

fn gauge_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Gauges {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            self.resident.clone(),
        );
        r.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            self.virtual_mem.clone(),
        );
        r.register(
            "process_open_fds",
            "Number of open file descriptors.",
            self.open_fds.clone(),
        );
        r.register(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            self.max_fds.clone(),
        );
        r.register(
            "process_threads",
            "Number of OS threads in the process.",
            self.threads.clone(),
        );
        r.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            CpuCounter(self.cpu.clone()),
        );
        let start: FloatGauge = Gauge::default();
        start.set(self.start_time);
        r.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            start,
        );
    }

    pub fn set(&self, s: &ProcessStats) {
        self.resident.set(gauge_i64(s.resident_bytes));
        self.virtual_mem.set(gauge_i64(s.virtual_bytes));
        self.open_fds.set(gauge_i64(s.open_fds));
        self.max_fds.set(gauge_i64(s.max_fds));
        self.threads.set(gauge_i64(s.threads));
        self.cpu.set(s.cpu_seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read();
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(s.resident_bytes > 1024 * 1024, "{s:?}");
            assert!(s.open_fds >= 3, "{s:?}");
            assert!(s.max_fds >= s.open_fds, "{s:?}");
            assert!(s.threads >= 1, "{s:?}");
        }
    }
}
