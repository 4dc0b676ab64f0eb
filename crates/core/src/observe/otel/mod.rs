//! OpenTelemetry traces (`callbacks: ["otel"]`), exported over OTLP/HTTP.
//!
//! Each request gets a [`RequestTrace`] when it arrives: its trace id (the
//! incoming W3C `traceparent`'s, else a fresh one) and the id of its span.
//! Every upstream attempt is a child span ([`AttemptSpan`]) whose context
//! is sent upstream as `traceparent`. The request span itself is built from
//! the call's [`CallRecord`] when the call ends (start time + latency), by
//! [`OtelSink`]. Spans go to a bounded queue that a background task sends in
//! batches (see `export`). With otel off none of this exists: no trace on
//! the request context, no header, no sink.

mod encode;
mod export;
pub mod settings;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use encode::{AttrValue, SpanData, SpanKind, StatusCode};
pub use settings::OtelSettings;

use crate::meter::{CallRecord, CallSink, CallType};
use crate::GatewayError;

/// The W3C trace-context header.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// OTLP 1.1 span flags: the parent's remoteness is known (bit 8) and it is
/// remote (bit 9).
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// The exporter of a gateway with `callbacks: ["otel"]`.
pub struct Otel {
    exporter: Arc<export::Exporter>,
}

impl std::fmt::Debug for Otel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Otel").finish_non_exhaustive()
    }
}

impl Otel {
    /// Build the exporter and start its task on the current runtime.
    pub fn start(settings: &OtelSettings) -> Arc<Self> {
        let exporter = export::Exporter::new(settings.clone());
        if let Err(e) = exporter.start() {
            tracing::warn!("OpenTelemetry traces will not be exported: {e}");
        }
        Arc::new(Self { exporter })
    }

    /// The trace of a request that just arrived, continuing the caller's
    /// trace when it sent a valid `traceparent`.
    pub fn request(&self, headers: &http::HeaderMap) -> Arc<RequestTrace> {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let (trace_id, parent_span_id, sampled) = match parent {
            Some(p) => (p.trace_id, Some(p.span_id), p.flags & 1 == 1),
            None => (random_trace_id(), None, true),
        };
        let trace_state = parent
            .and(headers.get(TRACESTATE))
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .map(str::to_owned);
        Arc::new(RequestTrace {
            exporter: Arc::clone(&self.exporter),
            trace_id,
            span_id: random_span_id(),
            parent_span_id,
            trace_state,
            sampled,
        })
    }

    /// Send what is queued, waiting at most `limit` (graceful shutdown).
    pub async fn shutdown(&self, limit: Duration) {
        self.exporter.shutdown(limit).await;
    }

    /// Spans the collector accepted so far.
    pub fn exported(&self) -> u64 {
        self.exporter.counters.exported.load(Ordering::Relaxed)
    }

    /// Spans dropped so far (queue full, collector down or refusing).
    pub fn dropped(&self) -> u64 {
        self.exporter.counters.dropped.load(Ordering::Relaxed)
    }
}

/// A parsed `traceparent` (version 00 and forward-compatible versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

/// Parse `00-<32 hex>-<16 hex>-<2 hex>`; `None` for anything invalid (an
/// all-zero id, version ff, upper-case hex), which starts a new trace.
pub fn parse_traceparent(s: &str) -> Option<TraceParent> {
    let s = s.trim();
    let mut parts = s.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lower_hex = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if version.len() != 2 || !lower_hex(version) || version == "ff" {
        return None;
    }
    // Version 00 has exactly four fields; later versions may add more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    if ![trace, span, flags].iter().all(|p| lower_hex(p)) {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut f = [0u8; 1];
    hex::decode_to_slice(trace, &mut trace_id).ok()?;
    hex::decode_to_slice(span, &mut span_id).ok()?;
    hex::decode_to_slice(flags, &mut f).ok()?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(TraceParent {
        trace_id,
        span_id,
        flags: f[0],
    })
}

fn random_trace_id() -> [u8; 16] {
    loop {
        let id = fastrand::u128(..).to_be_bytes();
        if id != [0; 16] {
            return id;
        }
    }
}

fn random_span_id() -> [u8; 8] {
    loop {
        let id = fastrand::u64(..).to_be_bytes();
        if id != [0; 8] {
            return id;
        }
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One request's place in a trace.
pub struct RequestTrace {
    exporter: Arc<export::Exporter>,
    pub trace_id: [u8; 16],
    /// The request span's id: the parent of every attempt span.
    pub span_id: [u8; 8],
    /// The caller's span, from `traceparent`.
    pub parent_span_id: Option<[u8; 8]>,
    trace_state: Option<String>,
    /// The caller's sampled flag (no caller: sampled). Unsampled requests
    /// still propagate their context, but export nothing.
    pub sampled: bool,
}

impl std::fmt::Debug for RequestTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTrace")
            .field("trace_id", &hex::encode(self.trace_id))
            .field("span_id", &hex::encode(self.span_id))
            .finish_non_exhaustive()
    }
}

impl RequestTrace {
    fn flags(&self) -> u32 {
        u32::from(self.sampled)
    }

    /// Start the span of one upstream attempt.
    pub fn attempt(
        self: &Arc<Self>,
        call: CallType,
        deployment: &crate::config::DeploymentConfig,
        group: &str,
    ) -> AttemptSpan {
        let (provider, model) = split_model(&deployment.litellm_model);
        let op = operation(call);
        AttemptSpan {
            trace: Arc::clone(self),
            span_id: random_span_id(),
            name: format!("{op} {model}"),
            start: SystemTime::now(),
            started: Instant::now(),
            attributes: vec![
                ("gen_ai.operation.name", AttrValue::Str(op.to_owned())),
                ("gen_ai.provider.name", AttrValue::Str(provider.to_owned())),
                ("gen_ai.system", AttrValue::Str(provider.to_owned())),
                ("gen_ai.request.model", AttrValue::Str(model.to_owned())),
                ("litellm.model_group", AttrValue::Str(group.to_owned())),
                ("litellm.model_id", AttrValue::Str(deployment.id.clone())),
            ],
        }
    }
}

/// A child span covering one call to an upstream: from sending the request
/// to the complete JSON answer, or to the first event of a stream.
pub struct AttemptSpan {
    trace: Arc<RequestTrace>,
    span_id: [u8; 8],
    name: String,
    start: SystemTime,
    started: Instant,
    attributes: Vec<encode::Attr>,
}

impl AttemptSpan {
    /// The `traceparent` to send upstream: this attempt is the parent.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace.trace_id),
            hex::encode(self.span_id),
            self.trace.flags()
        )
    }

    /// Add the trace-context headers to an upstream request.
    pub fn inject(&self, headers: &mut Vec<(http::HeaderName, http::HeaderValue)>) {
        if let Ok(v) = http::HeaderValue::from_str(&self.traceparent()) {
            headers.push((http::HeaderName::from_static(TRACEPARENT), v));
        }
        if let Some(ts) = &self.trace.trace_state {
            if let Ok(v) = http::HeaderValue::from_str(ts) {
                headers.push((http::HeaderName::from_static(TRACESTATE), v));
            }
        }
    }

    /// End the span: `error` is why the attempt failed, if it did.
    pub fn end(mut self, error: Option<&GatewayError>) {
        if !self.trace.sampled {
            return;
        }
        let (status, message) = match error {
            None => (StatusCode::Unset, String::new()),
            Some(e) => {
                let class = crate::error::exception_class(e.status());
                self.attributes
                    .push(("error.type", AttrValue::Str(class.to_owned())));
                self.attributes
                    .push(("litellm.error_kind", AttrValue::Str(e.label().to_owned())));
                if let GatewayError::Upstream { error, .. } = e {
                    self.attributes.push((
                        "http.response.status_code",
                        AttrValue::Int(i64::from(error.status)),
                    ));
                }
                (StatusCode::Error, e.label().to_owned())
            }
        };
        let end = self.start + self.started.elapsed();
        let span = SpanData {
            trace_id: self.trace.trace_id,
            span_id: self.span_id,
            parent_span_id: Some(self.trace.span_id),
            trace_state: self.trace.trace_state.clone(),
            name: self.name,
            kind: SpanKind::Client,
            start_unix_nano: unix_nanos(self.start),
            end_unix_nano: unix_nanos(end),
            attributes: self.attributes,
            status,
            status_message: message,
            flags: self.trace.flags() | HAS_IS_REMOTE,
        };
        self.trace.exporter.push(span);
    }
}

/// GenAI semantic conventions' `gen_ai.operation.name`.
fn operation(call: CallType) -> &'static str {
    match call {
        CallType::Chat | CallType::Messages | CallType::Responses => "chat",
        CallType::Completion => "text_completion",
        CallType::Embedding => "embeddings",
        CallType::GenerateContent => "generate_content",
    }
}

/// `openai/gpt-4o` → (`openai`, `gpt-4o`).
fn split_model(m: &str) -> (&str, &str) {
    m.split_once('/').unwrap_or(("", m))
}

/// Emits the request span of every traced call.
pub struct OtelSink;

impl CallSink for OtelSink {
    fn record(&self, rec: &CallRecord) {
        if let Some(t) = rec.trace.as_ref().filter(|t| t.sampled) {
            t.exporter.push(request_span(rec, t));
        }
    }
}

fn request_span(rec: &CallRecord, t: &RequestTrace) -> SpanData {
    let op = operation(rec.call_type);
    let (provider, model) = split_model(&rec.meta.upstream_model);
    let mut a: Vec<encode::Attr> = Vec::with_capacity(24);
    let s = |v: &str| AttrValue::Str(v.to_owned());
    a.push(("gen_ai.operation.name", s(op)));
    a.push(("gen_ai.request.model", s(&rec.requested_model)));
    if !provider.is_empty() {
        a.push(("gen_ai.provider.name", s(provider)));
        a.push(("gen_ai.system", s(provider)));
    }
    if !model.is_empty() {
        a.push(("gen_ai.response.model", s(model)));
    }
    if let Some(u) = &rec.usage {
        let n = |v: u64| AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
        a.push(("gen_ai.usage.input_tokens", n(u.prompt_tokens)));
        a.push(("gen_ai.usage.output_tokens", n(u.completion_tokens)));
    }
    a.push(("litellm.call_id", s(&rec.call_id)));
    a.push(("litellm.call_type", s(rec.call_type.as_str())));
    if !rec.meta.model_group.is_empty() {
        a.push(("litellm.model_group", s(&rec.meta.model_group)));
    }
    if !rec.meta.model_id.is_empty() {
        a.push(("litellm.model_id", s(&rec.meta.model_id)));
    }
    if let Some(base) = &rec.meta.api_base {
        a.push(("litellm.api_base", s(base)));
    }
    a.push(("litellm.response_cost", AttrValue::F64(rec.cost)));
    a.push(("litellm.cache_hit", AttrValue::Bool(rec.cache_hit)));
    a.push(("litellm.stream", AttrValue::Bool(rec.stream)));
    a.push((
        "litellm.retries",
        AttrValue::Int(i64::from(rec.meta.retries)),
    ));
    if rec.usage_estimated {
        a.push(("litellm.usage_estimated", AttrValue::Bool(true)));
    }
    if let Some(ttft) = rec.time_to_first_token {
        a.push((
            "litellm.time_to_first_token_ms",
            AttrValue::F64(ttft.as_secs_f64() * 1000.0),
        ));
    }
    if let Some(p) = &rec.principal {
        if let Some(v) = &p.key_alias {
            a.push(("litellm.key_alias", s(v)));
        }
        if let Some(v) = &p.team_id {
            a.push(("litellm.team_id", s(v)));
        }
        if let Some(v) = &p.user_id {
            a.push(("litellm.user_id", s(v)));
        }
    }
    let status_code = rec.error.as_ref().map_or(200, |e| e.status);
    a.push((
        "http.response.status_code",
        AttrValue::Int(i64::from(status_code)),
    ));
    let (status, message) = match &rec.error {
        None => (StatusCode::Unset, String::new()),
        Some(e) => {
            // LiteLLM's exception class for the status; the gateway's own kind beside it.
            a.push(("error.type", s(crate::error::exception_class(e.status))));
            a.push(("litellm.error_kind", s(e.class)));
            // Bounded: an upstream's error text can be long.
            let mut m = e.message.clone();
            if m.len() > 1024 {
                let mut cut = 1024;
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                m.truncate(cut);
            }
            (StatusCode::Error, m)
        }
    };
    let start = rec
        .start_time
        .unwrap_or_else(|| SystemTime::now() - rec.latency);
    let name = if rec.requested_model.is_empty() {
        op.to_owned()
    } else {
        format!("{op} {}", rec.requested_model)
    };
    let remote = if t.parent_span_id.is_some() {
        HAS_IS_REMOTE | IS_REMOTE
    } else {
        0
    };
    SpanData {
        trace_id: t.trace_id,
        span_id: t.span_id,
        parent_span_id: t.parent_span_id,
        trace_state: t.trace_state.clone(),
        name,
        kind: SpanKind::Server,
        start_unix_nano: unix_nanos(start),
        end_unix_nano: unix_nanos(start + rec.latency),
        attributes: a,
        status,
        status_message: message,
        flags: t.flags() | remote,
    }
}

#[cfg(test)]
mod tests;
