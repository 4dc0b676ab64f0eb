//! Building OpenAI-shaped upstream bodies without copying the request: the
//! body is serialized from borrowed views, with the upstream model id in place
//! of the group name and deployment defaults filled in where the client left
//! a parameter unset.

use std::borrow::Cow;

use bytes::Bytes;
use ferrolite_types::openai::{
    ChatMessage, ChatRequest, CompletionRequest, EmbeddingRequest, StreamOptions,
};
use ferrolite_types::JsonMap;
use serde::Serialize;
use serde_json::Value;

use crate::params::merged;
use crate::{BuildOptions, Target, TranslateError, UpstreamRequest};

#[derive(Serialize)]
struct Outbound<'a, B: Serialize> {
    model: &'a str,
    #[serde(flatten)]
    body: B,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<Cow<'a, StreamOptions>>,
    #[serde(flatten)]
    extra: Cow<'a, JsonMap>,
}

#[derive(Serialize)]
struct Messages<'a> {
    messages: &'a [ChatMessage],
}

#[derive(Serialize)]
struct Prompt<'a> {
    prompt: &'a Value,
}

#[derive(Serialize)]
struct Input<'a> {
    input: &'a Value,
}

/// `stream_options` for the upstream: with `include_usage` forced on when the
/// gateway wants usage and the upstream accepts the option.
fn stream_options<'a>(
    stream: Option<bool>,
    client: Option<&'a StreamOptions>,
    target: &Target,
    opts: BuildOptions<'_>,
) -> Option<Cow<'a, StreamOptions>> {
    let streaming = stream.unwrap_or(false);
    // OpenAI rejects stream_options without stream; some compatible servers
    // reject it altogether (catalog `stream_usage: false`), as LiteLLM knows.
    if !streaming || !target.stream_usage {
        return None;
    }
    if opts.stream_usage {
        let mut o = client.cloned().unwrap_or_default();
        o.include_usage = Some(true);
        return Some(Cow::Owned(o));
    }
    client.map(Cow::Borrowed)
}

pub(super) fn chat_body(
    req: &ChatRequest,
    target: &Target,
    opts: BuildOptions<'_>,
) -> Result<Bytes, TranslateError> {
    crate::params::encode(&Outbound {
        model: &target.model,
        body: Messages {
            messages: &req.messages,
        },
        stream: req.stream,
        stream_options: stream_options(req.stream, req.stream_options.as_ref(), target, opts),
        extra: merged(&req.extra, opts.defaults),
    })
}

pub(super) fn completion_body(
    req: &CompletionRequest,
    target: &Target,
    opts: BuildOptions<'_>,
) -> Result<Bytes, TranslateError> {
    crate::params::encode(&Outbound {
        model: &target.model,
        body: Prompt {
            prompt: &req.prompt,
        },
        stream: req.stream,
        stream_options: stream_options(req.stream, req.stream_options.as_ref(), target, opts),
        extra: merged(&req.extra, opts.defaults),
    })
}

pub(super) fn embedding_body(
    req: &EmbeddingRequest,
    target: &Target,
    opts: BuildOptions<'_>,
) -> Result<Bytes, TranslateError> {
    crate::params::encode(&Outbound {
        model: &target.model,
        body: Input { input: &req.input },
        stream: None,
        stream_options: None,
        extra: merged(&req.extra, opts.defaults),
    })
}

pub(super) fn upstream(target: &Target, url: String, body: Bytes) -> UpstreamRequest {
    let mut headers = Vec::with_capacity(target.headers.len() + 1);
    headers.push((
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    ));
    headers.extend(target.headers.iter().cloned());
    UpstreamRequest {
        url,
        headers,
        body,
        auth: target.auth.clone(),
    }
}
