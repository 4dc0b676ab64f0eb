//! Relaying an upstream SSE stream to the client, frame by frame.
//!
//! The relay never buffers the whole answer: each network read is parsed,
//! translated and forwarded. Before the first frame, a failure is returned as
//! an ordinary error (so the attempt can be retried and the client gets a
//! proper HTTP status); after it, a failure becomes an SSE error frame
//! followed by `[DONE]` — never a silent truncation. Dropping the stream (the
//! client hung up) drops the upstream body, which closes that connection and
//! so cancels the upstream request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrolite_providers::{EventDecoder, StreamTranslator, TranslateError, UpstreamError};
use ferrolite_types::sse::{data_frame, SseEvent, DONE_FRAME};
use ferrolite_types::Usage;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::value::RawValue;

use super::raw::{member_range, span_of, write_edited, Head};
use super::FrameStream;
use crate::error::error_body;
use crate::meter::Meter;
use crate::router::usage::InFlight;
use crate::upstream::TransportError;
use crate::GatewayError;

/// Why a stream stopped early.
#[derive(Debug, Clone)]
pub enum StreamFailure {
    Upstream(Box<UpstreamError>),
    Invalid(String),
    Transport(TransportError),
    /// The upstream closed the connection before finishing.
    Truncated,
}

impl StreamFailure {
    pub fn into_error(self, group: &str, idle: Duration) -> GatewayError {
        match self {
            StreamFailure::Upstream(error) => GatewayError::Upstream {
                error,
                group: group.to_owned(),
                retries: 0,
            },
            StreamFailure::Invalid(m) => GatewayError::BadUpstreamResponse(m),
            StreamFailure::Transport(TransportError::Timeout) => GatewayError::Timeout {
                group: group.to_owned(),
                after: idle,
                retries: 0,
            },
            StreamFailure::Transport(TransportError::Connect(message)) => GatewayError::Connect {
                message,
                group: group.to_owned(),
                retries: 0,
            },
            StreamFailure::Transport(TransportError::Credentials(message)) => {
                GatewayError::Internal(message)
            }
            StreamFailure::Truncated => GatewayError::Connect {
                message: "upstream closed the stream before it finished".into(),
                group: group.to_owned(),
                retries: 0,
            },
        }
    }
}

fn from_translate(e: TranslateError) -> StreamFailure {
    match e {
        TranslateError::Upstream(u) => StreamFailure::Upstream(u),
        other => StreamFailure::Invalid(other.to_string()),
    }
}

/// Turns upstream events into client frames.
pub(crate) trait FrameSource: Send {
    /// Handle one event, appending frames to `out`. `Ok(false)`: the upstream
    /// signalled the end (the `[DONE]` frame is already in `out`).
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<bool, StreamFailure>;

    /// Whether an end of connection without an end marker is a clean end.
    fn clean_eof(&self) -> bool;

    /// Close a stream that ended cleanly without an end marker. The OpenAI
    /// dialect ends with `[DONE]`; other dialects write their own end.
    fn write_end(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(DONE_FRAME);
    }

    /// Tell the client the stream failed after its first byte. The OpenAI
    /// dialect sends an error data frame, then `[DONE]`.
    fn write_error(&mut self, err: &GatewayError, out: &mut Vec<u8>) {
        let body = error_body(err);
        out.extend_from_slice(&data_frame(&serde_json::to_vec(&body).unwrap_or_default()));
        out.extend_from_slice(DONE_FRAME);
    }

    fn usage(&self) -> Option<Usage>;

    /// Bytes of answer relayed so far (text, tool arguments), for estimating
    /// the output tokens of a stream that ends before its usage arrives.
    fn relayed_bytes(&self) -> u64 {
        0
    }
}

fn push_frame<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) -> Result<(), StreamFailure> {
    let json = serde_json::to_vec(v).map_err(|e| StreamFailure::Invalid(e.to_string()))?;
    out.extend_from_slice(&data_frame(&json));
    Ok(())
}

/// Chat chunks through a provider's translator: renamed to the requested
/// model, with the usage chunk removed unless the client asked for it.
pub(crate) struct ChatFrames {
    translator: Box<dyn StreamTranslator>,
    model: Arc<str>,
    wants_usage: bool,
    finished: bool,
    relayed: u64,
}

impl ChatFrames {
    pub fn new(translator: Box<dyn StreamTranslator>, model: Arc<str>, wants_usage: bool) -> Self {
        Self {
            translator,
            model,
            wants_usage,
            finished: false,
            relayed: 0,
        }
    }
}

impl FrameSource for ChatFrames {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<bool, StreamFailure> {
        let Some(chunks) = self.translator.on_event(ev).map_err(from_translate)? else {
            out.extend_from_slice(DONE_FRAME);
            return Ok(false);
        };
        for mut chunk in chunks {
            for c in &chunk.choices {
                if c.finish_reason.is_some() {
                    self.finished = true;
                }
                self.relayed += c.delta.content.as_ref().map_or(0, |t| t.len() as u64);
                for call in c.delta.tool_calls.iter().flatten() {
                    self.relayed += call
                        .call
                        .function
                        .as_ref()
                        .and_then(|f| f.arguments.as_ref())
                        .map_or(0, |a| a.len() as u64);
                }
            }
            if !self.wants_usage && chunk.usage.is_some() {
                if chunk.choices.is_empty() {
                    continue;
                }
                chunk.usage = None;
            }
            chunk.model.clear();
            chunk.model.push_str(&self.model);
            push_frame(out, &chunk)?;
        }
        Ok(true)
    }

    fn clean_eof(&self) -> bool {
        self.finished
    }

    fn usage(&self) -> Option<Usage> {
        self.translator.usage().cloned()
    }

    fn relayed_bytes(&self) -> u64 {
        self.relayed
    }
}

/// OpenAI-shaped chunks from an upstream that already speaks the canonical
/// format (chat from OpenAI-compatible providers, legacy completions): each
/// chunk is forwarded as it came, with only `model` spliced in, and the usage
/// chunk dropped unless the client asked for it.
pub(crate) struct RawFrames {
    /// The requested model as a JSON string literal.
    name_json: String,
    wants_usage: bool,
    finished: bool,
    usage: Option<Usage>,
    relayed: u64,
}

impl RawFrames {
    pub fn new(model: &str, wants_usage: bool) -> Self {
        Self {
            name_json: serde_json::to_string(model).unwrap_or_else(|_| "\"\"".to_owned()),
            wants_usage,
            finished: false,
            usage: None,
            relayed: 0,
        }
    }

    /// A chunk carrying both choices and usage, when the client did not ask
    /// for usage: rebuilt without it (rare: most upstreams send usage alone).
    fn without_usage(&self, data: &str, out: &mut Vec<u8>) -> Result<(), StreamFailure> {
        let mut v: serde_json::Value = serde_json::from_str(data)
            .map_err(|e| StreamFailure::Invalid(format!("bad stream chunk: {e}")))?;
        if let Some(o) = v.as_object_mut() {
            o.remove("usage");
            let name: serde_json::Value = serde_json::from_str(&self.name_json).unwrap_or_default();
            o.insert("model".into(), name);
        }
        push_frame(out, &v)
    }
}

fn upstream_stream_error(err: &RawValue) -> StreamFailure {
    let v: serde_json::Value = serde_json::from_str(err.get()).unwrap_or_default();
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    StreamFailure::Upstream(Box::new(UpstreamError {
        status: 500,
        message: field("message").unwrap_or_else(|| err.get().to_owned()),
        kind: field("type"),
        param: field("param"),
        code: v.get("code").cloned(),
        provider_label: "OpenAIException".into(),
    }))
}

impl FrameSource for RawFrames {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<bool, StreamFailure> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            out.extend_from_slice(DONE_FRAME);
            return Ok(false);
        }
        if data.is_empty() {
            return Ok(true);
        }
        if !data.starts_with('{') {
            return Err(StreamFailure::Invalid(
                "bad stream chunk: not a JSON object".into(),
            ));
        }
        let head: Head<'_> = serde_json::from_str(data)
            .map_err(|e| StreamFailure::Invalid(format!("bad stream chunk: {e}")))?;
        if let (Some(err), None) = (head.error, &head.choices) {
            return Err(upstream_stream_error(err));
        }
        let choices = head.choices.as_deref().unwrap_or(&[]);
        for c in choices {
            if c.finish_reason.is_some() {
                self.finished = true;
            }
            // The delta's JSON length, less `{"content":""}`-style framing.
            self.relayed += c
                .delta
                .map_or(0, |d| d.get().len().saturating_sub(16) as u64);
        }
        let bytes = data.as_bytes();
        let mut cut = None;
        if let Some(raw_usage) = head.usage {
            let usage = head.usage();
            let present = usage.is_some();
            if present {
                self.usage = usage;
            }
            if !self.wants_usage {
                if present && choices.is_empty() {
                    return Ok(true);
                }
                // Drop the member the gateway asked for, as OpenAI would not
                // have sent it to this client.
                match span_of(bytes, raw_usage).and_then(|r| member_range(bytes, r, "usage")) {
                    Some(r) => cut = Some(r),
                    None => return self.without_usage(data, out).map(|()| true),
                }
            }
        }
        let span =
            match head.model {
                Some(raw) => Some(span_of(bytes, raw).ok_or_else(|| {
                    StreamFailure::Invalid("cannot locate model in a chunk".into())
                })?),
                None => None,
            };
        out.extend_from_slice(b"data: ");
        write_edited(bytes, span, &self.name_json, cut, out).map_err(StreamFailure::Invalid)?;
        out.extend_from_slice(b"\n\n");
        Ok(true)
    }

    fn clean_eof(&self) -> bool {
        self.finished
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }

    fn relayed_bytes(&self) -> u64 {
        self.relayed
    }
}

/// What one step of the relay produced.
pub(crate) enum Step {
    /// Frames to forward; more may follow.
    Frames(Vec<u8>),
    /// The last frames, ending with `[DONE]`.
    End(Vec<u8>),
    /// Frames produced before a failure, then the failure.
    Failed(Vec<u8>, StreamFailure),
}

pub(crate) struct SseRelay {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    /// SSE, or the provider's own framing (AWS event-stream for Bedrock).
    decoder: Box<dyn EventDecoder>,
    source: Box<dyn FrameSource>,
    /// Longest wait for the next upstream bytes once streaming.
    idle: Duration,
    events: Vec<SseEvent>,
    group: Arc<str>,
    /// The request's slot at the deployment, released (with the stream's
    /// tokens) when the stream ends or the client goes away.
    inflight: Option<InFlight>,
    /// The call's record: usage, errors and relayed text go here.
    meter: Option<Arc<Meter>>,
}

impl SseRelay {
    pub fn new(
        resp: reqwest::Response,
        decoder: Box<dyn EventDecoder>,
        source: Box<dyn FrameSource>,
        idle: Duration,
        group: Arc<str>,
    ) -> Self {
        Self {
            body: resp.bytes_stream().boxed(),
            decoder,
            source,
            idle,
            events: Vec::new(),
            group,
            inflight: None,
            meter: None,
        }
    }

    /// Keep the request counted as in flight until the stream is over.
    pub fn hold(&mut self, inflight: InFlight) {
        self.inflight = Some(inflight);
    }

    /// Record the stream's outcome into the call's meter.
    pub fn meter(&mut self, meter: Arc<Meter>) {
        self.meter = Some(meter);
    }

    /// Read until there is something to send, the stream ends, or it fails.
    /// `wait` bounds the whole step: bytes that produce no frame (keep-alive
    /// comments, pings) do not extend it.
    pub async fn step(&mut self, wait: Duration) -> Step {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let next = match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(n) => n,
                Err(_) => {
                    return Step::Failed(out, StreamFailure::Transport(TransportError::Timeout))
                }
            };
            let eof = match next {
                Some(Ok(bytes)) => {
                    if let Err(e) = self.decoder.feed(&bytes, &mut self.events) {
                        return Step::Failed(out, from_translate(e));
                    }
                    false
                }
                Some(Err(e)) => {
                    return Step::Failed(
                        out,
                        StreamFailure::Transport(TransportError::from_reqwest(&e)),
                    )
                }
                None => {
                    if let Err(e) = self.decoder.finish(&mut self.events) {
                        return Step::Failed(out, from_translate(e));
                    }
                    true
                }
            };
            let events = std::mem::take(&mut self.events);
            for ev in &events {
                match self.source.on_event(ev, &mut out) {
                    Ok(true) => {}
                    Ok(false) => return Step::End(out),
                    Err(f) => return Step::Failed(out, f),
                }
            }
            self.events = events;
            self.events.clear();
            if eof {
                if self.source.clean_eof() {
                    self.source.write_end(&mut out);
                    return Step::End(out);
                }
                return Step::Failed(out, StreamFailure::Truncated);
            }
            if !out.is_empty() {
                return Step::Frames(out);
            }
        }
    }

    /// The client-facing stream: `first` (already read), then the rest.
    pub fn into_stream(self, first: Step) -> FrameStream {
        let state = (Some(self), Some(first));
        futures_util::stream::unfold(state, |(relay, pending)| async move {
            let mut relay = relay?;
            let step = match pending {
                Some(s) => s,
                None => relay.step(relay.idle).await,
            };
            match step {
                Step::Frames(f) => Some((Ok(Bytes::from(f)), (Some(relay), None))),
                Step::End(f) => {
                    relay.finish_log(None);
                    Some((Ok(Bytes::from(f)), (None, None)))
                }
                Step::Failed(mut f, failure) => {
                    let err = failure.into_error(&relay.group, relay.idle);
                    relay.finish_log(Some(&err));
                    relay.source.write_error(&err, &mut f);
                    Some((Ok(Bytes::from(f)), (None, None)))
                }
            }
        })
        .boxed()
    }

    fn finish_log(&mut self, err: Option<&GatewayError>) {
        let usage = self.source.usage();
        if let Some(m) = self.meter.take() {
            m.add_relayed_text(self.source.relayed_bytes() as usize);
            m.update(|r| {
                if usage.is_some() {
                    r.usage.clone_from(&usage);
                }
            });
            if let Some(e) = err {
                m.fail(e.status(), e.label(), e.to_string());
            }
        }
        if let (Some(slot), Some(u)) = (self.inflight.as_mut(), usage.as_ref()) {
            slot.add_tokens(u.total_tokens);
        }
        match err {
            None => {
                tracing::debug!(group = %self.group, prompt_tokens = usage.as_ref().map(|u| u.prompt_tokens), completion_tokens = usage.as_ref().map(|u| u.completion_tokens), "stream finished")
            }
            Some(e) => {
                tracing::warn!(group = %self.group, error = e.label(), "stream failed after the first byte: {}", e)
            }
        }
    }
}

impl Drop for SseRelay {
    /// The client went away mid-stream: the meter bills what was relayed.
    fn drop(&mut self) {
        if let Some(m) = self.meter.take() {
            m.add_relayed_text(self.source.relayed_bytes() as usize);
            if let Some(u) = self.source.usage() {
                m.update(|r| r.usage = Some(u));
            }
        }
    }
}
