//! The AWS event-stream framing (`application/vnd.amazon.eventstream`) that
//! ConverseStream answers in, decoded into [`SseEvent`]s.
//!
//! A message is: total length (u32 BE), headers length (u32 BE), CRC32 of
//! those 8 bytes, the headers, the payload, and a CRC32 of everything before
//! it. A header is a name (u8 length + bytes), a type byte and a value whose
//! size depends on the type. Both checksums are verified; frames may arrive
//! split across, or packed into, network reads.
//!
//! Every `:message-type: event` frame becomes `SseEvent { event:
//! <:event-type>, data: <payload> }`. Exceptions (`:message-type:
//! exception`, named by `:exception-type`) and errors (`:message-type:
//! error`, `:error-code` / `:error-message`) become an event named
//! [`EXCEPTION_EVENT`] whose data is `{"type": <name>, "message": <text>}`,
//! for the stream translator to raise.

use ferrolite_types::sse::SseEvent;
use serde_json::{json, Value};

use crate::{EventDecoder, TranslateError};

/// The event name under which exceptions and errors are passed on.
pub const EXCEPTION_EVENT: &str = "exception";

/// Prelude (12 bytes) plus the trailing message CRC (4 bytes).
const MIN_FRAME: usize = 16;
/// The service limit is 16 MiB per message; anything larger is corrupt.
const MAX_FRAME: usize = 16 * 1024 * 1024 + MIN_FRAME;

fn invalid(msg: impl Into<String>) -> TranslateError {
    TranslateError::InvalidResponse(msg.into())
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = b.get(at..at + 4) {
        word.copy_from_slice(src);
    }
    u32::from_be_bytes(word)
}

/// One decoded header value; only strings are needed, the rest is skipped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HeaderValue {
    String(String),
    Other,
}

/// Parse the header block of a frame.
pub(crate) fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, TranslateError> {
    let mut out = Vec::new();
    let short = || invalid("truncated event-stream header");
    while !b.is_empty() {
        let name_len = usize::from(*b.first().ok_or_else(short)?);
        let name = b.get(1..1 + name_len).ok_or_else(short)?;
        let name = String::from_utf8_lossy(name).into_owned();
        b = &b[1 + name_len..];
        let kind = *b.first().ok_or_else(short)?;
        b = &b[1..];
        let fixed = |n: usize, b: &mut &[u8]| -> Result<(), TranslateError> {
            if b.len() < n {
                return Err(short());
            }
            *b = &b[n..];
            Ok(())
        };
        let value = match kind {
            // bool true / bool false: no value bytes.
            0 | 1 => HeaderValue::Other,
            2 => fixed(1, &mut b).map(|()| HeaderValue::Other)?,
            3 => fixed(2, &mut b).map(|()| HeaderValue::Other)?,
            4 => fixed(4, &mut b).map(|()| HeaderValue::Other)?,
            5 | 8 => fixed(8, &mut b).map(|()| HeaderValue::Other)?,
            9 => fixed(16, &mut b).map(|()| HeaderValue::Other)?,
            6 | 7 => {
                let len_bytes = b.get(..2).ok_or_else(short)?;
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                let v = b.get(2..2 + len).ok_or_else(short)?;
                let value = if kind == 7 {
                    HeaderValue::String(String::from_utf8_lossy(v).into_owned())
                } else {
                    HeaderValue::Other
                };
                b = &b[2 + len..];
                value
            }
            other => return Err(invalid(format!("unknown event-stream header type {other}"))),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// A checked frame: its headers and payload.
#[derive(Debug)]
pub(crate) struct Frame {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(k, v)| match v {
            HeaderValue::String(s) if k == name => Some(s.as_str()),
            _ => None,
        })
    }

    fn into_event(self) -> SseEvent {
        let message_type = self.header(":message-type").unwrap_or("event");
        match message_type {
            "exception" => {
                let kind = self
                    .header(":exception-type")
                    .unwrap_or("UnknownException")
                    .to_owned();
                let text = String::from_utf8_lossy(&self.payload).into_owned();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| {
                        v.get("message")
                            .or_else(|| v.get("Message"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or(text);
                exception_event(&kind, &message)
            }
            "error" => {
                let kind = self.header(":error-code").unwrap_or("UnknownError");
                let message = self.header(":error-message").unwrap_or("");
                exception_event(kind, message)
            }
            _ => SseEvent {
                event: self.header(":event-type").map(str::to_owned),
                data: String::from_utf8_lossy(&self.payload).into_owned(),
            },
        }
    }
}

fn exception_event(kind: &str, message: &str) -> SseEvent {
    SseEvent {
        event: Some(EXCEPTION_EVENT.to_owned()),
        data: json!({"type": kind, "message": message}).to_string(),
    }
}

/// Check and split one complete frame (`b` is exactly one frame long).
pub(crate) fn parse_frame(b: &[u8]) -> Result<Frame, TranslateError> {
    if b.len() < MIN_FRAME {
        return Err(invalid("event-stream frame shorter than its prelude"));
    }
    let total = be_u32(b, 0) as usize;
    let headers_len = be_u32(b, 4) as usize;
    if total != b.len() {
        return Err(invalid("event-stream frame length mismatch"));
    }
    if crc32fast::hash(&b[..8]) != be_u32(b, 8) {
        return Err(invalid("event-stream prelude checksum mismatch"));
    }
    if crc32fast::hash(&b[..total - 4]) != be_u32(b, total - 4) {
        return Err(invalid("event-stream message checksum mismatch"));
    }
    if headers_len > total - MIN_FRAME {
        return Err(invalid("event-stream headers longer than the frame"));
    }
    let headers = parse_headers(&b[12..12 + headers_len])?;
    let payload = b[12 + headers_len..total - 4].to_vec();
    Ok(Frame { headers, payload })
}

/// Incremental decoder: bytes in, events out.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buf: Vec<u8>,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }
}

impl EventDecoder for EventStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), TranslateError> {
        self.buf.extend_from_slice(chunk);
        let mut at = 0;
        while self.buf.len() - at >= 12 {
            let total = be_u32(&self.buf, at) as usize;
            if !(MIN_FRAME..=MAX_FRAME).contains(&total) {
                return Err(invalid(format!(
                    "event-stream frame of impossible length {total}"
                )));
            }
            // Check the prelude as soon as it is here, so a corrupt length
            // fails now instead of waiting for megabytes that never come.
            if crc32fast::hash(&self.buf[at..at + 8]) != be_u32(&self.buf, at + 8) {
                return Err(invalid("event-stream prelude checksum mismatch"));
            }
            if self.buf.len() - at < total {
                break;
            }
            let frame = parse_frame(&self.buf[at..at + total])?;
            out.push(frame.into_event());
            at += total;
        }
        self.buf.drain(..at);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<SseEvent>) -> Result<(), TranslateError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            let left = self.buf.len();
            self.buf.clear();
            Err(invalid(format!(
                "the stream ended inside an event-stream frame ({left} bytes left over)"
            )))
        }
    }
}
