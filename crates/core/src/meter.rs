//! One record per call, handed to every sink (spend writer, metrics, request
//! log) exactly once, when the call is over.
//!
//! Each request carries an `Arc<Meter>` in its [`RequestContext`]. The
//! pipeline fills it in as it learns things (which deployment answered, the
//! usage, the error); a streamed answer keeps a clone inside the relay. When
//! the last clone is dropped — the JSON answer was written, the stream ended,
//! or the client hung up mid-stream — the record is completed and emitted.
//! Dropping is the one thing every path does, so no path can forget to
//! record a call.
//!
//! [`RequestContext`]: crate::RequestContext

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use ferrolite_types::Usage;

use crate::auth::Principal;
use crate::pipeline::AnswerMeta;

/// What kind of call this was, named as LiteLLM names it in spend logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallType {
    #[default]
    Chat,
    Completion,
    Embedding,
    /// Anthropic `/v1/messages`.
    Messages,
    /// OpenAI `/v1/responses`.
    Responses,
    /// Gemini `generateContent`.
    GenerateContent,
}

impl CallType {
    /// LiteLLM's `call_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Chat => "acompletion",
            CallType::Completion => "atext_completion",
            CallType::Embedding => "aembedding",
            CallType::Messages => "anthropic_messages",
            CallType::Responses => "aresponses",
            CallType::GenerateContent => "agenerate_content",
        }
    }
}

/// Why a call failed, as the client was told.
#[derive(Debug, Clone)]
pub struct CallError {
    pub status: u16,
    /// The error class (`RateLimitError`, `Timeout`, …).
    pub class: &'static str,
    pub message: String,
}

/// Everything known about one finished call.
#[derive(Debug, Clone, Default)]
pub struct CallRecord {
    pub call_id: String,
    pub call_type: CallType,
    /// Wall-clock start, for spend logs.
    pub start_time: Option<SystemTime>,
    /// From arrival to the last byte sent (or the client going away).
    pub latency: Duration,
    /// For streams: from arrival to the first frame sent.
    pub time_to_first_token: Option<Duration>,
    /// The model name the client sent.
    pub requested_model: String,
    /// The deployment that answered, when one did.
    pub meta: AnswerMeta,
    pub stream: bool,
    pub usage: Option<Usage>,
    /// The usage was estimated by the gateway (stream abandoned before the
    /// upstream reported it).
    pub usage_estimated: bool,
    /// The gateway's estimate of the prompt's tokens (streams only), used
    /// when the upstream never reported usage.
    pub prompt_estimate: u64,
    pub error: Option<CallError>,
    pub cache_hit: bool,
    /// Who made the call (virtual key, user, team), when known.
    pub principal: Option<Arc<Principal>>,
    /// `metadata.tags` from the request.
    pub tags: Vec<String>,
    /// The `user` field of the request (LiteLLM's end user).
    pub end_user: Option<String>,
    /// Cost in USD, filled in by the gateway's pricing when the call ends.
    pub cost: f64,
    /// The call's OpenTelemetry trace (`callbacks: ["otel"]` only).
    pub trace: Option<Arc<crate::observe::otel::RequestTrace>>,
    /// What the call sent (`messages`, `prompt`, `input`, …) as JSON text
    /// bounded in size; only with `store_prompts_in_spend_logs`
    /// (`crate::spend::content`).
    pub messages: Option<String>,
    /// The answer as sent (a stream: assembled), likewise.
    pub response: Option<String>,
}

impl CallRecord {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// Prompt, completion and total tokens (0s without usage); the total is
    /// the upstream's, or the sum when it sent none.
    pub fn tokens(&self) -> (u64, u64, u64) {
        self.usage.as_ref().map_or((0, 0, 0), |u| {
            let total = if u.total_tokens > 0 {
                u.total_tokens
            } else {
                u.prompt_tokens + u.completion_tokens
            };
            (u.prompt_tokens, u.completion_tokens, total)
        })
    }
}

/// Something that wants every finished call.
pub trait CallSink: Send + Sync + 'static {
    fn record(&self, rec: &CallRecord);
}

/// Completes a record before the sinks see it (pricing fills in `cost`).
pub type Finisher = Arc<dyn Fn(&mut CallRecord) + Send + Sync>;

/// Every sink a gateway feeds, and the step that completes a record first.
#[derive(Clone, Default)]
pub struct Sinks {
    sinks: Vec<Arc<dyn CallSink>>,
    /// Called once on each record before the sinks see it (pricing).
    finisher: Option<Finisher>,
}

impl Sinks {
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    pub fn add(&mut self, sink: Arc<dyn CallSink>) {
        self.sinks.push(sink);
    }

    pub fn set_finisher(&mut self, f: Finisher) {
        self.finisher = Some(f);
    }

    fn emit(&self, rec: &mut CallRecord) {
        if let Some(f) = &self.finisher {
            f(rec);
        }
        for s in &self.sinks {
            s.record(rec);
        }
    }
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

/// A call being recorded. See the module documentation.
#[derive(Debug)]
pub struct Meter {
    started: Instant,
    rec: Mutex<CallRecord>,
    sinks: OnceLock<Arc<Sinks>>,
    /// Bytes of answer text relayed so far, for estimating the usage of a
    /// stream the client abandoned.
    relayed_text: AtomicU64,
}

impl Meter {
    pub fn new(call_id: &str, started: Instant) -> Self {
        Self {
            started,
            rec: Mutex::new(CallRecord {
                call_id: call_id.to_owned(),
                start_time: Some(SystemTime::now()),
                ..Default::default()
            }),
            sinks: OnceLock::new(),
            relayed_text: AtomicU64::new(0),
        }
    }

    /// Start recording into `sinks`. A meter never bound emits nothing (no
    /// sink configured, or a request that never reached the pipeline).
    pub fn bind(&self, sinks: &Arc<Sinks>) {
        if !sinks.is_empty() {
            let _ = self.sinks.set(Arc::clone(sinks));
        }
    }

    /// Attach the call's trace (before the meter is bound, unlike `update`).
    pub fn set_trace(&self, trace: Arc<crate::observe::otel::RequestTrace>) {
        self.lock().trace = Some(trace);
    }

    /// Whether anything will read this record (skip costly bookkeeping if not).
    pub fn active(&self) -> bool {
        self.sinks.get().is_some()
    }

    fn lock(&self) -> MutexGuard<'_, CallRecord> {
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Update the record; a no-op when nothing reads it.
    pub fn update(&self, f: impl FnOnce(&mut CallRecord)) {
        if self.active() {
            f(&mut self.lock());
        }
    }

    /// What the call has cost so far, priced by the finisher (`None` when
    /// nothing records this call). For the `x-litellm-response-cost` header
    /// of a JSON answer, whose usage is known before it is sent.
    pub fn cost_so_far(&self) -> Option<f64> {
        let sinks = self.sinks.get()?;
        let f = sinks.finisher.as_ref()?;
        // Price the record in place (the finisher only sets `cost`) rather
        // than on a clone of every field; the call's final price is set
        // again when it ends.
        let mut rec = self.lock();
        let before = rec.cost;
        f(&mut rec);
        let cost = rec.cost;
        rec.cost = before;
        Some(cost)
    }

    /// A snapshot of the record so far.
    pub fn snapshot(&self) -> CallRecord {
        self.lock().clone()
    }

    pub fn first_token(&self) {
        let at = self.started.elapsed();
        self.update(|r| {
            r.time_to_first_token.get_or_insert(at);
        });
    }

    pub fn add_relayed_text(&self, bytes: usize) {
        self.relayed_text.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn fail(&self, status: u16, class: &'static str, message: String) {
        self.update(|r| {
            r.error = Some(CallError {
                status,
                class,
                message,
            })
        });
    }
}

/// Roughly four characters per token, as OpenAI's guidance for English.
pub fn estimate_tokens(chars: u64) -> u64 {
    chars.div_ceil(4)
}

impl Drop for Meter {
    fn drop(&mut self) {
        let Some(sinks) = self.sinks.get() else {
            return;
        };
        let rec = self.rec.get_mut().unwrap_or_else(|e| e.into_inner());
        rec.latency = self.started.elapsed();
        if rec.usage.is_none() && rec.stream && !rec.meta.model_id.is_empty() {
            // The stream ended before the upstream reported usage (the client
            // went away, or it failed): bill what was relayed.
            let text = *self.relayed_text.get_mut();
            let prompt = rec.prompt_estimate;
            rec.usage = Some(Usage::new(prompt, estimate_tokens(text)));
            rec.usage_estimated = true;
        }
        sinks.emit(rec);
    }
}
