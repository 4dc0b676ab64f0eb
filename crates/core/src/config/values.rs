//! Reading loosely typed YAML values the way LiteLLM does: numbers may be
//! written as strings (`rpm: "600"`, or an `os.environ/` variable), booleans
//! as `"true"`.

use serde_json::Value;

pub(crate) fn as_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("expected a number, got {n}")),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("expected a number, got \"{s}\"")),
        other => Err(format!("expected a number, got {}", kind(other))),
    }
}

pub(crate) fn as_u32(v: &Value) -> Result<u32, String> {
    let f = as_f64(v)?;
    if f < 0.0 || f.fract() != 0.0 || f > f64::from(u32::MAX) {
        return Err(format!("expected a non-negative integer, got {f}"));
    }
    Ok(f as u32)
}

pub(crate) fn as_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(format!("expected true or false, got \"{s}\"")),
        },
        other => Err(format!("expected true or false, got {}", kind(other))),
    }
}

pub(crate) fn as_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("expected a string, got {}", kind(other))),
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Seconds, positive, as a duration.
pub(crate) fn as_secs(v: &Value) -> Result<std::time::Duration, String> {
    let f = as_f64(v)?;
    if !(f.is_finite() && f > 0.0) {
        return Err(format!("expected a positive number of seconds, got {f}"));
    }
    Ok(std::time::Duration::from_secs_f64(f))
}
