//! LiteLLM durations (`30s`, `30m`, `1h`, `1d`, `1w`, `1mo`, `1y`) and UTC
//! timestamps in milliseconds, formatted without a calendar crate.

use std::time::{SystemTime, UNIX_EPOCH};

const DAY_MS: i64 = 86_400_000;

/// A parsed LiteLLM duration. Months are calendar months (the same day of a
/// later month, clamped to its last day); everything else is a fixed length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetDuration {
    Seconds(u64),
    Months(u32),
}

impl BudgetDuration {
    /// `at` plus this duration (ms).
    pub fn after(self, at: i64) -> i64 {
        match self {
            BudgetDuration::Seconds(s) => at.saturating_add(
                i64::try_from(s)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000),
            ),
            BudgetDuration::Months(n) => add_months(at, n),
        }
    }

    /// An approximate length in seconds (a month counts 30 days).
    pub fn approx_secs(self) -> u64 {
        match self {
            BudgetDuration::Seconds(s) => s,
            BudgetDuration::Months(n) => u64::from(n) * 30 * 86_400,
        }
    }
}

/// Parse a LiteLLM duration: a positive integer followed by `s`, `m`, `h`,
/// `d`, `w`, `mo` or `y` (365 days). A bare number is seconds.
pub fn parse_duration(s: &str) -> Result<BudgetDuration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!(
            "invalid duration \"{s}\": expected a number followed by s, m, h, d, w, mo or y (e.g. 30s, 30m, 1h, 30d, 1mo)"
        )
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!(
            "invalid duration \"{s}\": must be greater than zero"
        ));
    }
    let mult: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        "mo" => {
            return u32::try_from(n)
                .ok()
                .filter(|n| *n <= 12_000)
                .map(BudgetDuration::Months)
                .ok_or_else(bad)
        }
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .filter(|s| *s <= 1_000 * 365 * 86_400)
        .map(BudgetDuration::Seconds)
        .ok_or_else(bad)
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31). Howard Hinnant's
/// civil-from-days algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn add_months(at: i64, n: u32) -> i64 {
    let days = at.div_euclid(DAY_MS);
    let in_day = at.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let months = y * 12 + i64::from(m) - 1 + i64::from(n);
    let (ny, nm) = (months.div_euclid(12), (months.rem_euclid(12) + 1) as u32);
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * DAY_MS + in_day
}

/// `YYYY-MM-DD` of a day number (days since the epoch, UTC).
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 with milliseconds, UTC: `2025-01-31T12:00:00.000Z`.
pub fn format_rfc3339(ms: i64) -> String {
    let day = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{}T{h:02}:{mi:02}:{s:02}.{milli:03}Z", format_day(day))
}

fn num<T: std::str::FromStr>(s: &str, what: &str, input: &str) -> Result<T, String> {
    s.parse().map_err(|_| {
        format!("invalid {what} in \"{input}\": expected YYYY-MM-DD or an RFC 3339 time")
    })
}

/// Parse `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS`, or RFC 3339
/// (`2025-01-31T12:00:00Z`, fractions and `+hh:mm` offsets allowed) into ms.
pub fn parse_time(input: &str) -> Result<i64, String> {
    let s = input.trim();
    let bad = || format!("invalid time \"{input}\": expected YYYY-MM-DD or an RFC 3339 time");
    if s.len() < 10 || !s.is_char_boundary(10) {
        return Err(bad());
    }
    let (date, rest) = s.split_at(10);
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        num(y, "year", input)?,
        num(m, "month", input)?,
        num(d, "day", input)?,
    );
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(bad());
    }
    let mut ms = days_from_civil(y, m, d) * DAY_MS;
    if rest.is_empty() {
        return Ok(ms);
    }
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix(' '))
        .ok_or_else(bad)?;
    // The offset: `Z`, `+hh:mm`, `-hh:mm`, or none (UTC).
    let (clock, offset_min) =
        if let Some(c) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix('z')) {
            (c, 0i64)
        } else if let Some(pos) = rest.rfind(['+', '-']) {
            let (c, off) = rest.split_at(pos);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let mut hm = off[1..].split(':');
            let oh: i64 = num(hm.next().unwrap_or(""), "offset", input)?;
            let om: i64 = num(hm.next().unwrap_or("0"), "offset", input)?;
            (c, sign * (oh * 60 + om))
        } else {
            (rest, 0)
        };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, b)) => (a, b),
        None => (clock, ""),
    };
    let mut f = hms.split(':');
    let h: i64 = num(f.next().unwrap_or(""), "hour", input)?;
    let mi: i64 = num(f.next().unwrap_or("0"), "minute", input)?;
    let sec: i64 = num(f.next().unwrap_or("0"), "second", input)?;
    if f.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let milli: i64 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(3).collect();
        if !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        num::<i64>(&format!("{digits:0<3}"), "fraction", input)?
    };
    ms += ((h * 60 + mi) * 60 + sec) * 1000 + milli - offset_min * 60_000;
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(BudgetDuration::Seconds(30)));
        assert_eq!(parse_duration("30m"), Ok(BudgetDuration::Seconds(1800)));
        assert_eq!(parse_duration("1h"), Ok(BudgetDuration::Seconds(3600)));
        assert_eq!(parse_duration("1d"), Ok(BudgetDuration::Seconds(86_400)));
        assert_eq!(
            parse_duration("30d"),
            Ok(BudgetDuration::Seconds(30 * 86_400))
        );
        assert_eq!(
            parse_duration("2w"),
            Ok(BudgetDuration::Seconds(14 * 86_400))
        );
        assert_eq!(parse_duration("1mo"), Ok(BudgetDuration::Months(1)));
        assert_eq!(parse_duration("45"), Ok(BudgetDuration::Seconds(45)));
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "1x",
            "1.5h",
            "1 mo",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn months_are_calendar_months() {
        let jan31 = parse_time("2025-01-31T10:00:00Z").unwrap();
        assert_eq!(
            format_rfc3339(BudgetDuration::Months(1).after(jan31)),
            "2025-02-28T10:00:00.000Z"
        );
        let dec15 = parse_time("2024-12-15").unwrap();
        assert_eq!(
            format_rfc3339(BudgetDuration::Months(2).after(dec15)),
            "2025-02-15T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339(BudgetDuration::Months(1).after(parse_time("2024-01-31").unwrap())),
            "2024-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_time("1970-01-02").unwrap(), DAY_MS);
        let t = parse_time("2025-03-04T05:06:07.089Z").unwrap();
        assert_eq!(format_rfc3339(t), "2025-03-04T05:06:07.089Z");
        assert_eq!(parse_time("2025-03-04T07:06:07.089+02:00").unwrap(), t);
        assert_eq!(parse_time("2025-03-04 05:06:07.089").unwrap(), t);
        assert_eq!(format_day(t.div_euclid(DAY_MS)), "2025-03-04");
        for bad in [
            "2025-13-01",
            "2025-02-30",
            "yesterday",
            "2025-01-01T25:00:00Z",
            "2025-01-01Tx",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
