//! `general_settings` keys about what the spend logs keep and for how long:
//! `store_prompts_in_spend_logs`, `maximum_spend_logs_retention_period`,
//! `maximum_spend_logs_retention_interval` (LiteLLM's), and ferrolite's
//! `maximum_spend_logs_rows` and `maximum_spend_logs_content_bytes`.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::env::Env;
use crate::config::{ConfigIssue, LitellmSettings};

const S: &str = "general_settings";

/// Default bound on each stored column (`messages`, `response`): 64 KiB.
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 64 * 1024;
/// The smallest bound accepted (below it the truncation marker would not fit).
pub const MIN_CONTENT_BYTES: usize = 1024;
/// How often retention runs when only a period is set (LiteLLM's default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(86_400);
/// How often retention runs when only a row count is set.
pub const DEFAULT_ROWS_INTERVAL: Duration = Duration::from_secs(3_600);

/// What the spend logs keep, and for how long. Everything is off by
/// default: spend logs are accounting data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendLogSettings {
    /// `store_prompts_in_spend_logs` (or `STORE_PROMPTS_IN_SPEND_LOGS`),
    /// unless `litellm_settings.turn_off_message_logging` is on: each row
    /// also keeps the request's messages and the answer.
    pub store_prompts: bool,
    /// `maximum_spend_logs_content_bytes` (ferrolite): the most bytes of
    /// JSON kept in each of `messages` and `response`.
    pub max_content_bytes: usize,
    /// `maximum_spend_logs_retention_period`: rows older than this are deleted.
    pub retention_period: Option<Duration>,
    /// `maximum_spend_logs_rows` (ferrolite): at most this many rows are kept.
    pub max_rows: Option<u64>,
    /// `maximum_spend_logs_retention_interval`: how often retention runs.
    pub retention_interval: Duration,
}

impl Default for SpendLogSettings {
    fn default() -> Self {
        Self {
            store_prompts: false,
            max_content_bytes: DEFAULT_MAX_CONTENT_BYTES,
            retention_period: None,
            max_rows: None,
            retention_interval: DEFAULT_INTERVAL,
        }
    }
}

impl SpendLogSettings {
    /// Whether a retention task should run.
    pub fn retention_on(&self) -> bool {
        self.retention_period.is_some() || self.max_rows.is_some()
    }
}

/// A LiteLLM duration as a length of time: a positive integer followed by
/// `s`, `m`, `h`, `d`, `w`, `mo` (30 days) or `y` (365 days); a bare number
/// is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!("invalid duration \"{s}\": expected a number followed by s, m, h, d, w, mo or y (e.g. 3600s, 60m, 24h, 7d)")
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!(
            "invalid duration \"{s}\": must be greater than zero"
        ));
    }
    let unit_secs: u64 = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_secs)
        .filter(|secs| *secs <= 1_000 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

fn issue(issues: &mut Vec<ConfigIssue>, key: &str, message: String) {
    issues.push(ConfigIssue {
        path: format!("{S}.{key}"),
        message,
    });
}

fn duration(m: &Map<String, Value>, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Duration> {
    let text = match m.get(key)? {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            issue(
                issues,
                key,
                "expected a duration such as \"7d\", \"24h\", \"60m\" or \"3600s\"".into(),
            );
            return None;
        }
    };
    parse_duration(&text)
        .map_err(|e| issue(issues, key, e))
        .ok()
}

fn positive(m: &Map<String, Value>, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<u64> {
    let v = m.get(key).filter(|v| !v.is_null())?;
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().replace('_', "").parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n > 0 => Some(n),
        _ => {
            issue(
                issues,
                key,
                format!("expected a positive whole number, got {v}"),
            );
            None
        }
    }
}

fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Read the keys from `general_settings` (`m`). `litellm` is the parsed
/// `litellm_settings` (for `turn_off_message_logging` and the proxy budget).
pub fn parse(
    m: &Map<String, Value>,
    litellm: &LitellmSettings,
    env: &Env,
    issues: &mut Vec<ConfigIssue>,
    warnings: &mut Vec<String>,
) -> SpendLogSettings {
    let mut out = SpendLogSettings::default();
    let asked = match m
        .get("store_prompts_in_spend_logs")
        .filter(|v| !v.is_null())
    {
        Some(v) => flag(v).unwrap_or_else(|| {
            issue(
                issues,
                "store_prompts_in_spend_logs",
                format!("expected true or false, got {v}"),
            );
            false
        }),
        None => env
            .get("STORE_PROMPTS_IN_SPEND_LOGS")
            .and_then(|v| flag(&Value::String(v)))
            .unwrap_or(false),
    };
    if asked && litellm.turn_off_message_logging {
        warnings.push("general_settings.store_prompts_in_spend_logs is on, but litellm_settings.turn_off_message_logging is on too: spend logs keep no messages or answers".into());
    }
    out.store_prompts = asked && !litellm.turn_off_message_logging;
    if let Some(n) = positive(m, "maximum_spend_logs_content_bytes", issues) {
        match usize::try_from(n) {
            Ok(n) if n >= MIN_CONTENT_BYTES => out.max_content_bytes = n,
            _ => issue(
                issues,
                "maximum_spend_logs_content_bytes",
                format!("must be at least {MIN_CONTENT_BYTES}, got {n}"),
            ),
        }
    }
    out.retention_period = duration(m, "maximum_spend_logs_retention_period", issues);
    out.max_rows = positive(m, "maximum_spend_logs_rows", issues);
    let interval = duration(m, "maximum_spend_logs_retention_interval", issues);
    out.retention_interval = match (interval, out.retention_period, out.max_rows) {
        (Some(i), _, _) => i,
        (None, None, Some(_)) => DEFAULT_ROWS_INTERVAL,
        (None, _, _) => DEFAULT_INTERVAL,
    };
    if interval.is_some() && !out.retention_on() {
        warnings.push("general_settings.maximum_spend_logs_retention_interval has no effect without maximum_spend_logs_retention_period or maximum_spend_logs_rows".into());
    }
    // The proxy budget is summed from the spend logs: deleted rows stop
    // counting towards it.
    let budget = &litellm.proxy_budget;
    if budget.max_budget.is_some() && out.retention_on() {
        let window = budget
            .budget_duration
            .as_deref()
            .and_then(|d| parse_duration(d).ok());
        let short = match (out.retention_period, window) {
            (_, None) => true,
            (Some(p), Some(w)) => p < w,
            (None, Some(_)) => false,
        };
        if short || out.max_rows.is_some() {
            warnings.push("litellm_settings.max_budget is summed from the spend logs: rows deleted by maximum_spend_logs_retention_period / maximum_spend_logs_rows stop counting towards it (keep the period at least as long as litellm_settings.budget_duration)".into());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(
        general: Value,
        litellm: LitellmSettings,
        env: &[(&str, &str)],
    ) -> (SpendLogSettings, Vec<ConfigIssue>, Vec<String>) {
        let env = Env::isolated(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (mut issues, mut warnings) = (Vec::new(), Vec::new());
        let s = parse(
            general.as_object().unwrap(),
            &litellm,
            &env,
            &mut issues,
            &mut warnings,
        );
        (s, issues, warnings)
    }

    #[test]
    fn off_by_default() {
        let (s, issues, warnings) = run(json!({}), LitellmSettings::default(), &[]);
        assert_eq!(s, SpendLogSettings::default());
        assert!(!s.store_prompts && !s.retention_on());
        assert!(issues.is_empty() && warnings.is_empty());
    }

    #[test]
    fn durations_as_litellm() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("60m"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("3600s"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1mo"), Ok(Duration::from_secs(30 * 86_400)));
        for bad in [
            "",
            "0d",
            "7 days",
            "-1h",
            "1.5h",
            "d",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retention_keys() {
        let (s, issues, warnings) = run(
            json!({"maximum_spend_logs_retention_period": "7d", "maximum_spend_logs_rows": "1_000_000"}),
            LitellmSettings::default(),
            &[],
        );
        assert!(
            issues.is_empty() && warnings.is_empty(),
            "{issues:?} {warnings:?}"
        );
        assert_eq!(s.retention_period, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(s.max_rows, Some(1_000_000));
        assert_eq!(s.retention_interval, DEFAULT_INTERVAL);
        let (s, _, _) = run(
            json!({"maximum_spend_logs_rows": 10}),
            LitellmSettings::default(),
            &[],
        );
        assert_eq!(s.retention_interval, DEFAULT_ROWS_INTERVAL);
        let (s, _, _) = run(
            json!({"maximum_spend_logs_retention_period": "24h", "maximum_spend_logs_retention_interval": "60m"}),
            LitellmSettings::default(),
            &[],
        );
        assert_eq!(s.retention_interval, Duration::from_secs(3_600));
    }

    #[test]
    fn bad_values_are_issues_with_their_path() {
        let (s, issues, _) = run(
            json!({"maximum_spend_logs_retention_period": "7 days",
                   "maximum_spend_logs_retention_interval": true,
                   "maximum_spend_logs_rows": 0,
                   "maximum_spend_logs_content_bytes": 10,
                   "store_prompts_in_spend_logs": "maybe"}),
            LitellmSettings::default(),
            &[],
        );
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "general_settings.store_prompts_in_spend_logs",
                "general_settings.maximum_spend_logs_content_bytes",
                "general_settings.maximum_spend_logs_retention_period",
                "general_settings.maximum_spend_logs_rows",
                "general_settings.maximum_spend_logs_retention_interval",
            ]
        );
        assert!(
            issues[2].message.contains("7 days"),
            "{}",
            issues[2].message
        );
        assert!(!s.retention_on());
    }

    #[test]
    fn stored_prompts_and_message_logging() {
        let (s, _, w) = run(
            json!({"store_prompts_in_spend_logs": true}),
            LitellmSettings::default(),
            &[],
        );
        assert!(s.store_prompts && w.is_empty());
        let (s, _, _) = run(
            json!({}),
            LitellmSettings::default(),
            &[("STORE_PROMPTS_IN_SPEND_LOGS", "True")],
        );
        assert!(s.store_prompts, "LiteLLM's variable");
        let (s, _, _) = run(
            json!({"store_prompts_in_spend_logs": false}),
            LitellmSettings::default(),
            &[("STORE_PROMPTS_IN_SPEND_LOGS", "true")],
        );
        assert!(!s.store_prompts, "the config wins");
        let quiet = LitellmSettings {
            turn_off_message_logging: true,
            ..Default::default()
        };
        let (s, _, w) = run(json!({"store_prompts_in_spend_logs": true}), quiet, &[]);
        assert!(!s.store_prompts, "turn_off_message_logging wins");
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn the_proxy_budget_is_warned_about() {
        let mut l = LitellmSettings::default();
        l.proxy_budget.max_budget = Some(100.0);
        l.proxy_budget.budget_duration = Some("30d".into());
        let (_, _, w) = run(
            json!({"maximum_spend_logs_retention_period": "7d"}),
            l.clone(),
            &[],
        );
        assert_eq!(w.len(), 1, "{w:?}");
        let (_, _, w) = run(
            json!({"maximum_spend_logs_retention_period": "60d"}),
            l,
            &[],
        );
        assert!(w.is_empty(), "{w:?}");
    }
}
