//! Server-sent events: an incremental parser for upstream streams and an
//! encoder for the frames the gateway sends.
//!
//! The parser follows the WHATWG event-stream rules that matter for LLM APIs:
//! `event:` and `data:` fields, multi-line data joined with `\n`, comments
//! ignored, events dispatched on a blank line, CR, LF and CRLF line endings,
//! and input split at any byte boundary.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Feeds on byte chunks as they arrive and yields complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` at the start of the next one
    /// belongs to the same line ending.
    pending_cr: bool,
}

/// Refuse to buffer a single line beyond this: a broken upstream must not
/// exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTooLong;

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse `chunk`, appending every event it completes to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LineTooLong> {
        let mut rest = chunk;
        if self.pending_cr {
            self.pending_cr = false;
            if let Some(b'\n') = rest.first() {
                rest = &rest[1..];
            }
        }
        while let Some(pos) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let (line, after) = rest.split_at(pos);
            let is_cr = after[0] == b'\r';
            rest = &after[1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.pending_cr = true,
                    _ => {}
                }
            }
            if self.buf.is_empty() {
                self.line(line, out);
            } else {
                self.buf.extend_from_slice(line);
                let full = std::mem::take(&mut self.buf);
                self.line(&full, out);
            }
        }
        if self.buf.len() + rest.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        self.buf.extend_from_slice(rest);
        Ok(())
    }

    /// The stream ended: dispatch an event left without its blank line.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&line, out);
        }
        self.dispatch(out);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(&value);
                }
                None => self.data = Some(value.into_owned()),
            },
            b"event" => self.event = Some(value.into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }
}

/// `data: <payload>\n\n`.
pub fn data_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    out
}

pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        p.finish(&mut out);
        out
    }

    #[test]
    fn events_split_anywhere_parse_the_same() {
        let text = b"event: message_start\ndata: {\"a\":1}\n\n: keepalive\n\ndata: x\ndata: y\n\ndata: [DONE]\n\n";
        let whole = parse_all(&[text]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].event.as_deref(), Some("message_start"));
        assert_eq!(whole[0].data, "{\"a\":1}");
        assert_eq!(whole[1].data, "x\ny");
        assert_eq!(whole[2].data, "[DONE]");
        for split in 1..text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(parse_all(&[a, b]), whole, "split at {split}");
        }
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let crlf = parse_all(&[b"data: a\r\n\r\ndata: b\r", b"\n\r\n"]);
        assert_eq!(
            crlf.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let cr = parse_all(&[b"data: a\r\rdata: b\r\r"]);
        assert_eq!(cr.len(), 2);
    }

    #[test]
    fn unterminated_last_event_is_dispatched_at_finish() {
        let ev = parse_all(&[b"data: tail"]);
        assert_eq!(
            ev,
            vec![SseEvent {
                event: None,
                data: "tail".into()
            }]
        );
    }

    #[test]
    fn no_space_after_colon_and_empty_data() {
        let ev = parse_all(&[b"data:x\n\ndata\n\n"]);
        assert_eq!(ev[0].data, "x");
        assert_eq!(ev[1].data, "");
    }
}
