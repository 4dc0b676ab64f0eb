//! Anthropic's Messages API as a client dialect (`POST /v1/messages`,
//! `POST /v1/messages/count_tokens`): Claude Code, the Claude Agent SDK and
//! the `anthropic` SDKs pointed at the gateway.
//!
//! This module is pure translation: Messages → chat ([`request`]), chat
//! answers → Messages answers and gateway errors → Anthropic errors
//! ([`response`]), chat chunks → Anthropic SSE events ([`stream`]). The
//! pipeline side (passthrough to Claude upstreams, the retry loop) is
//! `pipeline::messages`; the server calls [`crate::pipeline::messages`] and
//! [`crate::pipeline::count_tokens`].

pub mod request;
pub mod response;
pub mod stream;
#[cfg(test)]
mod tests;
