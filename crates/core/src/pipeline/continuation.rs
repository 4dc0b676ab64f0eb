//! Mid-stream fallback continuation (`enable_mid_stream_fallback_continuation`).
//!
//! A chat stream that fails after its first frame cannot become an HTTP
//! error any more: without this setting it ends with an SSE error frame and
//! `[DONE]`. With it, the gateway keeps the text it has relayed so far, and
//! on the failure asks a fallback (the group's fallbacks, else another
//! deployment of the same group) to continue the answer: the request is sent
//! again with the partial answer as an assistant turn and a short
//! instruction to carry on from there. The client sees one stream: the
//! frames before the failure, then the continuation's frames. If the
//! continuation fails too, the original error frame is sent.
//!
//! Only the text of the answer is carried over. A stream that failed while
//! streaming a tool call is not continued (half a JSON argument cannot be
//! resumed reliably): it ends with the error frame.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use ferrolite_types::openai::chat::{ChatMessage, MessageContent};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use serde::Deserialize;

use super::controls::Controls;
use super::ops::ChatOp;
use super::{fallback, Answer, FrameStream};
use crate::{Gateway, GatewayError, RequestContext};

/// What the continuation request adds after the partial answer.
pub const CONTINUE_PROMPT: &str = "Your previous answer was cut off. Continue it exactly where it stopped, without repeating anything already written and without any preamble.";

/// The fields of a relayed chunk the continuation needs.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    choices: Vec<FrameChoice<'a>>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct FrameChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<FrameDelta<'a>>,
}

#[derive(Deserialize)]
struct FrameDelta<'a> {
    #[serde(borrow, default)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
}

/// Runs the continuation request: given the partial answer, a stream to
/// relay instead of the error, or `None`.
type Continue = Box<dyn FnOnce(String) -> BoxFuture<'static, Option<FrameStream>> + Send>;

struct Watch {
    inner: FrameStream,
    text: String,
    tool_call: bool,
    cont: Option<Continue>,
    /// Frames ready to send.
    out: VecDeque<Bytes>,
    done: bool,
}

/// Read the events of one relayed buffer, collecting the answer's text;
/// return where the error frame starts if the upstream failed.
fn scan(w: &mut Watch, buf: &Bytes) -> Option<usize> {
    let mut at = 0;
    // Events are `data: <json>\n\n`; walk them by their separators.
    while at < buf.len() {
        let rest = &buf[at..];
        let end = rest
            .windows(2)
            .position(|p| p == b"\n\n")
            .map_or(rest.len(), |p| p + 2);
        let event = &rest[..end];
        let data = event
            .strip_prefix(b"data: ")
            .map(|d| d.trim_ascii_end())
            .unwrap_or_default();
        if let Ok(f) = serde_json::from_slice::<Frame<'_>>(data) {
            if f.error.is_some() {
                return Some(at);
            }
            for c in &f.choices {
                if let Some(d) = &c.delta {
                    if let Some(t) = &d.content {
                        w.text.push_str(t);
                    }
                    if d.tool_calls.is_some() {
                        w.tool_call = true;
                    }
                }
            }
        }
        at += end;
    }
    None
}

/// Wrap a chat stream so a failure after the first frame is continued.
/// Where the stream that may need continuing came from.
pub(super) struct Origin {
    pub requested: String,
    pub group: String,
    pub deployment: String,
}

pub(super) fn wrap(
    gw: Arc<Gateway>,
    ctx: &RequestContext,
    op: ChatOp,
    controls: Controls,
    origin: Origin,
    stream: FrameStream,
) -> FrameStream {
    let Origin {
        requested,
        group,
        deployment: failed_deployment,
    } = origin;
    let mut ctx = ctx.clone();
    ctx.avoid_deployment = Some(failed_deployment);
    let cont: Continue = Box::new(move |partial: String| {
        async move {
            let mut req = op.req;
            req.messages.push(ChatMessage::assistant_text(partial));
            let mut user = ChatMessage::assistant_text(CONTINUE_PROMPT);
            user.role = "user".to_owned();
            user.content = Some(MessageContent::Text(CONTINUE_PROMPT.to_owned()));
            req.messages.push(user);
            let op = ChatOp { req };
            match fallback::continue_after(&gw, &ctx, &op, &controls, &requested, &group).await {
                Ok(o) => match o.answer {
                    Answer::Stream(s) => Some(s),
                    _ => None,
                },
                Err(e) => {
                    tracing::warn!(group = %group, error = e.label(), "mid-stream continuation failed: {e}");
                    None
                }
            }
        }
        .boxed()
    });
    let w = Watch {
        inner: stream,
        text: String::new(),
        tool_call: false,
        cont: Some(cont),
        out: VecDeque::new(),
        done: false,
    };
    futures_util::stream::unfold(w, |mut w| async move {
        loop {
            if let Some(b) = w.out.pop_front() {
                return Some((Ok(b), w));
            }
            if w.done {
                return None;
            }
            let buf = match w.inner.next().await {
                Some(Ok(b)) => b,
                Some(Err(e)) => match e {},
                None => return None,
            };
            match scan(&mut w, &buf) {
                None => return Some((Ok(buf), w)),
                Some(at) => {
                    if at > 0 {
                        w.out.push_back(buf.slice(..at));
                    }
                    let cont = if w.tool_call { None } else { w.cont.take() };
                    let next = match cont {
                        Some(c) => c(std::mem::take(&mut w.text)).await,
                        None => None,
                    };
                    match next {
                        Some(s) => {
                            tracing::info!(
                                "stream failed after its first frame; continued on a fallback"
                            );
                            w.inner = s;
                        }
                        None => {
                            w.out.push_back(buf.slice(at..));
                            w.done = true;
                        }
                    }
                }
            }
        }
    })
    .boxed()
}

/// The error a mid-stream failure is planned as: a general failure, which
/// picks the ordinary `fallbacks` list.
pub(super) fn planned_error(group: &str) -> GatewayError {
    GatewayError::Connect {
        message: "the stream failed after its first frame".into(),
        group: group.to_owned(),
        retries: 0,
    }
}
