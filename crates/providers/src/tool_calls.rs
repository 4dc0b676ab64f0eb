//! Tool calls of block-based upstreams (Anthropic Messages, Bedrock
//! Converse) in OpenAI terms: a tool-use block's input → a [`ToolCall`], the
//! `response_format` tool's call taken back as the answer, and, in streams,
//! the OpenAI index of every open tool-use block and whether any argument
//! text was sent for it.

use std::collections::HashMap;

use ferrolite_types::openai::chat::{FunctionCall, ToolCall};
use ferrolite_types::openai::chunk::ToolCallDelta;
use ferrolite_types::JsonMap;
use serde_json::{json, Value};

use crate::TranslateError;

/// A complete tool-use block (`id_key` names its id member) → an OpenAI tool
/// call whose arguments are the block's input, encoded.
pub(crate) fn from_block(block: &Value, id_key: &str) -> Result<ToolCall, TranslateError> {
    let field = |k: &str| block.get(k).and_then(Value::as_str).map(str::to_owned);
    let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
    let arguments = serde_json::to_string(&input)
        .map_err(|e| TranslateError::InvalidResponse(e.to_string()))?;
    Ok(ToolCall {
        id: field(id_key),
        kind: Some("function".to_owned()),
        function: Some(FunctionCall {
            name: field("name"),
            arguments: Some(arguments),
            extra: JsonMap::new(),
        }),
        extra: JsonMap::new(),
    })
}

/// When the only call is to `json_tool` (the tool `response_format` was sent
/// as), remove it and return its arguments: they are the answer.
pub(crate) fn take_json_tool(calls: &mut Vec<ToolCall>, json_tool: &str) -> Option<String> {
    let only_json_tool = calls.len() == 1
        && calls[0].function.as_ref().and_then(|f| f.name.as_deref()) == Some(json_tool);
    if !only_json_tool {
        return None;
    }
    Some(
        calls
            .pop()
            .and_then(|c| c.function)
            .and_then(|f| f.arguments)
            .unwrap_or_default(),
    )
}

/// An open tool-use block of a stream.
#[derive(Debug, Clone, Copy)]
enum OpenBlock {
    /// A tool call: its OpenAI index and whether any argument text was sent.
    Call { index: u32, has_args: bool },
    /// The `response_format` tool: its input is streamed as content.
    JsonTool,
}

/// Where a fragment of streamed tool input goes.
pub(crate) enum Input<'a> {
    /// Arguments of an OpenAI tool call.
    Args(ToolCallDelta),
    /// Message content: the `response_format` tool's input is the answer.
    Content(&'a str),
}

/// The tool-use blocks of one stream, by the upstream's block index. Calls
/// are numbered from 0 across the stream, in the order their blocks open.
#[derive(Debug, Default)]
pub(crate) struct ToolBlocks {
    open: HashMap<u64, OpenBlock>,
    next_index: u32,
    json_tool_used: bool,
}

impl ToolBlocks {
    /// A tool call opened at `block`: its first delta (id, name, empty
    /// arguments).
    pub(crate) fn start_call(&mut self, block: u64, id: String, name: String) -> ToolCallDelta {
        let index = self.next_index;
        self.next_index += 1;
        self.open.insert(
            block,
            OpenBlock::Call {
                index,
                has_args: false,
            },
        );
        ToolCallDelta {
            index,
            call: ToolCall {
                id: Some(id),
                kind: Some("function".to_owned()),
                function: Some(FunctionCall {
                    name: Some(name),
                    arguments: Some(String::new()),
                    extra: JsonMap::new(),
                }),
                extra: JsonMap::new(),
            },
        }
    }

    /// The `response_format` tool opened at `block`.
    pub(crate) fn start_json_tool(&mut self, block: u64) {
        self.json_tool_used = true;
        self.open.insert(block, OpenBlock::JsonTool);
    }

    /// A block that is not a tool call opened at `block`.
    pub(crate) fn start_other(&mut self, block: u64) {
        self.open.remove(&block);
    }

    /// A fragment of input for `block`; `None` when it is empty or its block
    /// is not an open tool-use block.
    pub(crate) fn input<'a>(&mut self, block: u64, part: &'a str) -> Option<Input<'a>> {
        if part.is_empty() {
            return None;
        }
        match self.open.get(&block).copied()? {
            OpenBlock::Call { index, .. } => {
                self.open.insert(
                    block,
                    OpenBlock::Call {
                        index,
                        has_args: true,
                    },
                );
                Some(Input::Args(args_delta(index, part)))
            }
            OpenBlock::JsonTool => Some(Input::Content(part)),
        }
    }

    /// `block` closed. A tool called without arguments streams no input:
    /// its arguments are then `{}`, so they still parse (as LiteLLM does).
    pub(crate) fn stop(&mut self, block: u64) -> Option<ToolCallDelta> {
        match self.open.remove(&block) {
            Some(OpenBlock::Call {
                index,
                has_args: false,
            }) => Some(args_delta(index, "{}")),
            _ => None,
        }
    }

    /// The OpenAI finish reason for the upstream's `stop`, mapped by
    /// `finish_reason`, except that a stop for the `response_format` tool is
    /// an ordinary `stop`: its input went out as content.
    pub(crate) fn finish_reason(
        &self,
        stop: Option<&str>,
        finish_reason: impl FnOnce(Option<&str>) -> String,
    ) -> String {
        if self.json_tool_used && stop == Some("tool_use") {
            "stop".to_owned()
        } else {
            finish_reason(stop)
        }
    }
}

fn args_delta(index: u32, args: &str) -> ToolCallDelta {
    ToolCallDelta {
        index,
        call: ToolCall {
            id: None,
            kind: None,
            function: Some(FunctionCall {
                name: None,
                arguments: Some(args.to_owned()),
                extra: JsonMap::new(),
            }),
            extra: JsonMap::new(),
        },
    }
}
