//! Per-request facts gathered before the pipeline runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Principal;
use crate::meter::Meter;

/// What the server learned about a request before handing it to the pipeline.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `x-litellm-call-id`: a fresh UUID per request, time-ordered (v7) so
    /// that spend rows, keyed by it, are appended at the end of the
    /// primary-key index instead of at random places: a random (v4) id
    /// dirtied one index page per row, each written to SQLite's WAL.
    pub call_id: String,
    pub started: Instant,
    /// `x-litellm-timeout` header, if sent.
    pub timeout: Option<Duration>,
    /// `x-litellm-stream-timeout` header, if sent.
    pub stream_timeout: Option<Duration>,
    /// `x-litellm-num-retries` header, if sent.
    pub num_retries: Option<u32>,
    /// Never try fallback groups (health checks test one deployment).
    pub no_fallbacks: bool,
    /// Send the request to this deployment only, and leave its health and
    /// usage untouched (health checks).
    pub pin_deployment: Option<String>,
    /// Prefer other deployments than this one (a mid-stream continuation
    /// avoids the deployment whose stream failed).
    pub avoid_deployment: Option<String>,
    /// `x-litellm-tags` header (comma-separated), for tag filtering and spend.
    pub tags: Vec<String>,
    /// Who is calling (set by authentication).
    pub principal: Option<Arc<Principal>>,
    /// The call's record, emitted when the last clone drops.
    pub meter: Arc<Meter>,
    /// The `Cache-Control` request header (response cache controls).
    pub cache_control: Option<String>,
    /// The request's OpenTelemetry trace, when `callbacks` names `otel`.
    pub trace: Option<Arc<crate::observe::otel::RequestTrace>>,
}

impl RequestContext {
    pub fn new() -> Self {
        let call_id = uuid::Uuid::now_v7().to_string();
        let started = Instant::now();
        Self {
            meter: Arc::new(Meter::new(&call_id, started)),
            principal: None,
            call_id,
            started,
            timeout: None,
            stream_timeout: None,
            num_retries: None,
            no_fallbacks: false,
            pin_deployment: None,
            avoid_deployment: None,
            tags: Vec::new(),
            cache_control: None,
            trace: None,
        }
    }
}

impl Default for RequestContext {
    fn default() -> Self {
        Self::new()
    }
}
