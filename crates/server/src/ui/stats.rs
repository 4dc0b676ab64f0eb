//! Aggregates for the overview: calls counted into time buckets, latency
//! percentiles, totals per group. Pure functions over plain values.

use serde::Serialize;

/// One time bucket's counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// Start of the bucket, ms since the epoch.
    pub t: i64,
    pub requests: i64,
    pub errors: i64,
    pub tokens: i64,
    pub spend: f64,
}

/// Equal buckets covering `[start, start + n × width)`, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub bucket_ms: i64,
    pub buckets: Vec<Bucket>,
    pub totals: Bucket,
    /// Latency percentiles over the calls in the window, when any had one.
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    #[serde(skip)]
    latencies: Vec<i64>,
}

impl Series {
    /// `n` buckets of `width` ms ending at (and including) the bucket that
    /// holds `now`. Buckets are aligned to multiples of `width`.
    pub fn ending_at(now: i64, width: i64, n: usize) -> Self {
        let width = width.max(1);
        let last = now - now.rem_euclid(width);
        let first = last - width * (n as i64 - 1);
        Self {
            bucket_ms: width,
            buckets: (0..n as i64)
                .map(|i| Bucket {
                    t: first + i * width,
                    ..Bucket::default()
                })
                .collect(),
            totals: Bucket {
                t: first,
                ..Bucket::default()
            },
            p50_ms: None,
            p95_ms: None,
            latencies: Vec::new(),
        }
    }

    pub fn start(&self) -> i64 {
        self.buckets.first().map_or(0, |b| b.t)
    }

    fn end(&self) -> i64 {
        self.buckets.last().map_or(0, |b| b.t + self.bucket_ms)
    }

    /// Count one call that started at `t`; calls outside the window are ignored.
    pub fn add(&mut self, t: i64, call: &Bucket, latency_ms: Option<i64>) {
        if t < self.start() || t >= self.end() {
            return;
        }
        let i = ((t - self.start()) / self.bucket_ms) as usize;
        if let Some(b) = self.buckets.get_mut(i) {
            add_into(b, call);
            add_into(&mut self.totals, call);
            if let Some(l) = latency_ms.filter(|l| *l >= 0) {
                self.latencies.push(l);
            }
        }
    }

    /// Fill in the percentiles from the latencies added.
    pub fn finish(mut self) -> Self {
        self.latencies.sort_unstable();
        self.p50_ms = percentile(&self.latencies, 50.0);
        self.p95_ms = percentile(&self.latencies, 95.0);
        self
    }
}

fn add_into(b: &mut Bucket, c: &Bucket) {
    b.requests += c.requests;
    b.errors += c.errors;
    b.tokens += c.tokens;
    b.spend += c.spend;
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// One group's total (a model, key or team).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Top {
    pub id: String,
    pub label: String,
    pub spend: f64,
    pub requests: i64,
}

/// Sum `(group, spend, requests)` items per group, highest spend first, at most `n`.
pub fn top(items: impl IntoIterator<Item = (String, f64, i64)>, n: usize) -> Vec<Top> {
    let mut sums: Vec<Top> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (id, spend, requests) in items {
        match index.get(&id) {
            Some(&i) => {
                let t: &mut Top = &mut sums[i];
                t.spend += spend;
                t.requests += requests;
            }
            None => {
                index.insert(id.clone(), sums.len());
                sums.push(Top {
                    label: id.clone(),
                    id,
                    spend,
                    requests,
                });
            }
        }
    }
    sums.sort_by(|a, b| {
        b.spend
            .total_cmp(&a.spend)
            .then(b.requests.cmp(&a.requests))
            .then(a.id.cmp(&b.id))
    });
    sums.truncate(n);
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(spend: f64, errors: i64) -> Bucket {
        Bucket {
            t: 0,
            requests: 1,
            errors,
            tokens: 10,
            spend,
        }
    }

    #[test]
    fn calls_fall_into_aligned_buckets() {
        let mut s = Series::ending_at(3_600_000 + 125_000, 60_000, 60);
        assert_eq!(s.buckets.len(), 60);
        assert_eq!(s.buckets.last().unwrap().t, 3_600_000 + 120_000);
        assert_eq!(s.start(), 3_600_000 + 120_000 - 59 * 60_000);
        s.add(3_600_000 + 121_000, &call(0.5, 0), Some(100));
        s.add(3_600_000 + 121_500, &call(0.25, 1), Some(300));
        s.add(3_600_000 + 60_000, &call(1.0, 0), Some(200));
        s.add(0, &call(9.0, 0), Some(1)); // before the window
        s.add(3_600_000 + 180_000, &call(9.0, 0), Some(1)); // after it
        let s = s.finish();
        let last = s.buckets.last().unwrap();
        assert_eq!((last.requests, last.errors, last.tokens), (2, 1, 20));
        assert!((last.spend - 0.75).abs() < 1e-9);
        assert_eq!(s.buckets[s.buckets.len() - 2].requests, 1);
        assert_eq!(s.totals.requests, 3);
        assert!((s.totals.spend - 1.75).abs() < 1e-9);
        assert_eq!(s.p50_ms, Some(200));
        assert_eq!(s.p95_ms, Some(300));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn top_sums_and_orders_by_spend() {
        let t = top(
            vec![
                ("a".into(), 1.0, 1),
                ("b".into(), 0.5, 4),
                ("a".into(), 1.0, 2),
                ("c".into(), 3.0, 1),
            ],
            2,
        );
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].id.as_str(), t[0].spend), ("c", 3.0));
        assert_eq!((t[1].id.as_str(), t[1].requests), ("a", 3));
    }
}
