pub mod admin;
pub mod anthropic;
pub mod gemini;
pub mod health;
pub mod metrics;
pub mod openai;
pub mod responses;
