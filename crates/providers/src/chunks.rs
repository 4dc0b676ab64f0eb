//! The `chat.completion.chunk`s of a one-choice stream: the id, model and
//! creation time every chunk repeats, and the assistant role on the first.

use ferrolite_types::openai::chunk::{Delta, ToolCallDelta};
use ferrolite_types::openai::{ChatChunk, ChunkChoice};
use ferrolite_types::{JsonMap, Usage};

pub(crate) struct ChunkWriter {
    pub(crate) id: String,
    pub(crate) model: String,
    created: u64,
    role_sent: bool,
}

impl ChunkWriter {
    pub(crate) fn new(id: String, model: String, created: u64) -> Self {
        Self {
            id,
            model,
            created,
            role_sent: false,
        }
    }

    /// A chunk for choice 0; the first one also carries the role.
    pub(crate) fn chunk(&mut self, mut delta: Delta, finish: Option<String>) -> ChatChunk {
        if !self.role_sent {
            delta.role = Some("assistant".to_owned());
            self.role_sent = true;
        }
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                extra: JsonMap::new(),
            }],
            usage: None,
            extra: JsonMap::new(),
        }
    }

    pub(crate) fn text(&mut self, text: &str) -> ChatChunk {
        self.chunk(
            Delta {
                content: Some(text.to_owned()),
                ..Delta::default()
            },
            None,
        )
    }

    pub(crate) fn tool_delta(&mut self, call: ToolCallDelta) -> ChatChunk {
        self.chunk(
            Delta {
                tool_calls: Some(vec![call]),
                ..Delta::default()
            },
            None,
        )
    }

    /// A chunk whose delta carries only these extra members.
    pub(crate) fn extra_delta(&mut self, extra: JsonMap) -> ChatChunk {
        self.chunk(
            Delta {
                extra,
                ..Delta::default()
            },
            None,
        )
    }

    /// The usage-only chunk (no choices).
    pub(crate) fn usage_chunk(&self, usage: Usage) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: Vec::new(),
            usage: Some(usage),
            extra: JsonMap::new(),
        }
    }
}
