//! Test doubles for ferrolite: mock upstreams that speak a provider's real
#![allow(clippy::panic)]
//! wire format (headers, SSE framing, error bodies) on `127.0.0.1:0`, with
//! scripted replies and a record of every call.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod openai;
pub mod openai_responses;
mod server;
pub mod vertex;
pub mod webhook;

pub use anthropic::MockAnthropic;
pub use bedrock::MockBedrock;
pub use gemini::MockGemini;
pub use openai::{MockOpenAi, Recorded, Reply};
pub use vertex::MockVertex;
pub use webhook::MockWebhook;
