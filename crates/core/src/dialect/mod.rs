//! Client dialects other than OpenAI chat: each translates its wire format
//! to the canonical chat request, runs the pipeline, and translates the
//! answer (JSON or stream) back. Where the chosen upstream speaks the same
//! dialect, the body is passed through instead.

pub mod anthropic;
pub mod gemini;
pub mod responses;
