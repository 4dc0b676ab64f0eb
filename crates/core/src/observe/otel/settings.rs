//! The standard `OTEL_*` variables, read once when the config is loaded
//! (through the config's environment overlay, so `environment_variables:`
//! in the config counts as it does for every other variable).

use std::fmt;
use std::time::Duration;

use crate::config::Env;

/// How spans are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf` (the OTLP default).
    Protobuf,
    /// `http/json`.
    Json,
}

impl Protocol {
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Protobuf => "application/x-protobuf",
            Protocol::Json => "application/json",
        }
    }
}

/// Where and how traces are exported.
#[derive(Clone)]
pub struct OtelSettings {
    /// The full traces URL (`…/v1/traces`).
    pub endpoint: String,
    pub protocol: Protocol,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: may carry an API key.
    pub headers: Vec<(String, String)>,
    pub service_name: String,
    /// Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`).
    pub resource: Vec<(String, String)>,
    /// One export request's time limit (`OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub timeout: Duration,
    /// `OTEL_BSP_*`: queue bound, batch size, how long a span may wait.
    pub max_queue: usize,
    pub max_batch: usize,
    pub schedule_delay: Duration,
}

impl fmt::Debug for OtelSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are credentials: names only.
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtelSettings")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &names)
            .field("service_name", &self.service_name)
            .field("timeout", &self.timeout)
            .field("max_queue", &self.max_queue)
            .field("max_batch", &self.max_batch)
            .field("schedule_delay", &self.schedule_delay)
            .finish()
    }
}

/// The OTLP/HTTP default collector address.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

/// `key=value,key=value` with percent-encoded values (the OTel spec's
/// format for headers and resource attributes); malformed pairs skipped.
fn pairs(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (percent_decode(k), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

fn number<T: std::str::FromStr>(
    env: &Env,
    name: &str,
    default: T,
    warnings: &mut Vec<String>,
) -> T {
    match env.get(name) {
        None => default,
        Some(v) => v.trim().parse().unwrap_or_else(|_| {
            warnings.push(format!("{name}={v}: not a number, using the default"));
            default
        }),
    }
}

/// Read the settings when `callbacks` names `otel`.
pub fn parse(callbacks: &[String], env: &Env, warnings: &mut Vec<String>) -> Option<OtelSettings> {
    if !callbacks.iter().any(|c| c == "otel") {
        return None;
    }
    // The signal-specific URL is used as is; the general one gets the
    // signal's path appended (OTLP exporter spec). LiteLLM's own
    // OTEL_ENDPOINT is honoured after both.
    let endpoint = match env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        Some(url) => url,
        None => traces_url(
            &env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .or_else(|| env.get("OTEL_ENDPOINT"))
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
        ),
    };
    let protocol_var = env
        .get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env.get("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let protocol = match protocol_var.as_deref().map(str::trim) {
        None | Some("http/protobuf") => Protocol::Protobuf,
        Some("http/json") => Protocol::Json,
        Some(other) => {
            warnings.push(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported (http/protobuf and http/json are): exporting with http/protobuf"
            ));
            Protocol::Protobuf
        }
    };
    if let Some(e) = env.get("OTEL_EXPORTER") {
        if !matches!(e.as_str(), "otlp_http" | "otlp" | "http") {
            warnings.push(format!(
                "OTEL_EXPORTER={e} is not supported: traces are exported over OTLP/HTTP"
            ));
        }
    }
    let mut headers = env
        .get("OTEL_EXPORTER_OTLP_HEADERS")
        .or_else(|| env.get("OTEL_HEADERS"))
        .map(|h| pairs(&h))
        .unwrap_or_default();
    if let Some(h) = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") {
        for (k, v) in pairs(&h) {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
    }
    let resource = env
        .get("OTEL_RESOURCE_ATTRIBUTES")
        .map(|r| pairs(&r))
        .unwrap_or_default();
    let service_name = env
        .get("OTEL_SERVICE_NAME")
        .or_else(|| {
            resource
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| "ferrolite".to_owned());
    let timeout_ms = env
        .get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .map(|_| {
            number(
                env,
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                10_000u64,
                warnings,
            )
        })
        .unwrap_or_else(|| number(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000u64, warnings));
    let max_queue = number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048usize, warnings).max(1);
    let max_batch =
        number(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512usize, warnings).clamp(1, max_queue);
    let delay_ms = number(env, "OTEL_BSP_SCHEDULE_DELAY", 5_000u64, warnings);
    Some(OtelSettings {
        endpoint,
        protocol,
        headers,
        service_name,
        resource,
        timeout: Duration::from_millis(timeout_ms.max(1)),
        max_queue,
        max_batch,
        schedule_delay: Duration::from_millis(delay_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> (Option<OtelSettings>, Vec<String>) {
        let env = Env::isolated(vars.iter().map(|(k, v)| (*k, *v)));
        let mut w = Vec::new();
        let s = parse(&["otel".to_owned()], &env, &mut w);
        (s, w)
    }

    #[test]
    fn off_unless_named() {
        let env = Env::isolated([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x")]);
        assert!(parse(&["prometheus".into()], &env, &mut Vec::new()).is_none());
    }

    #[test]
    fn defaults() {
        let (s, w) = read(&[]);
        let s = s.unwrap();
        assert!(w.is_empty());
        assert_eq!(s.endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(s.protocol, Protocol::Protobuf);
        assert_eq!(s.service_name, "ferrolite");
        assert_eq!((s.max_queue, s.max_batch), (2048, 512));
        assert_eq!(s.schedule_delay, Duration::from_secs(5));
        assert_eq!(s.timeout, Duration::from_secs(10));
    }

    #[test]
    fn endpoints_headers_protocol() {
        let (s, _) = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=a%20b, x-team = t1,bad",
            ),
            ("OTEL_SERVICE_NAME", "gw"),
        ]);
        let s = s.unwrap();
        assert_eq!(s.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(s.protocol, Protocol::Json);
        assert_eq!(
            s.headers,
            vec![
                ("api-key".to_owned(), "a b".to_owned()),
                ("x-team".to_owned(), "t1".to_owned())
            ]
        );
        assert_eq!(s.service_name, "gw");
        assert!(!format!("{s:?}").contains("a b"));
        let (s, _) = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other/custom"),
        ]);
        assert_eq!(s.unwrap().endpoint, "http://other/custom");
        let (s, w) = read(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert_eq!(s.unwrap().protocol, Protocol::Protobuf);
        assert_eq!(w.len(), 1);
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
    }
}
