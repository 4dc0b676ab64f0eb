//! OpenAI wire formats: the gateway's canonical dialect.

pub mod chat;
pub mod chunk;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod models;

pub use chat::{ChatMessage, ChatRequest, ChatResponse, Choice, StreamOptions};
pub use chunk::{ChatChunk, ChunkChoice};
pub use completions::CompletionRequest;
pub use embeddings::EmbeddingRequest;
pub use error::{ErrorBody, ErrorDetail};
pub use models::{ModelCard, ModelList};
