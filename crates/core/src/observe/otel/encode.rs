//! OTLP trace export bodies, written by hand: `http/protobuf` (the
//! `ExportTraceServiceRequest` message of opentelemetry-proto's
//! `collector/trace/v1/trace_service.proto`) and `http/json` (the same
//! message in the protobuf JSON mapping OTLP specifies: lowerCamelCase
//! names, trace and span ids as hex, 64-bit integers as strings, enums as
//! numbers). Only the fields the gateway fills are written.

use serde_json::{json, Value};

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    F64(f64),
    Bool(bool),
    /// For `gen_ai.response.finish_reasons`, once call records carry them.
    #[allow(dead_code)]
    StrArray(Vec<String>),
}

pub type Attr = (&'static str, AttrValue);

/// `Span.SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server = 2,
    Client = 3,
}

/// `Status.StatusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Unset = 0,
    Error = 2,
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct SpanData {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    /// W3C `tracestate` of the parent, passed on unchanged.
    pub trace_state: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attributes: Vec<Attr>,
    pub status: StatusCode,
    pub status_message: String,
    /// W3C trace flags (bit 0: sampled); also marks whether the parent is
    /// remote (bits 8–9, as OTLP 1.1 defines them).
    pub flags: u32,
}

/// What every batch says about where the spans come from.
#[derive(Debug, Clone)]
pub struct Resource {
    pub attributes: Vec<(String, AttrValue)>,
    pub scope_name: &'static str,
    pub scope_version: &'static str,
}

// ---- protobuf ----------------------------------------------------------

const VARINT: u32 = 0;
const I64: u32 = 1;
const LEN: u32 = 2;
const I32: u32 = 5;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from((field << 3) | wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn str_field(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        bytes_field(out, field, s.as_bytes());
    }
}

fn message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    bytes_field(out, field, &inner);
}

fn any_value(out: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => bytes_field(out, 1, s.as_bytes()),
        AttrValue::Bool(b) => {
            tag(out, 2, VARINT);
            varint(out, u64::from(*b));
        }
        AttrValue::Int(i) => {
            tag(out, 3, VARINT);
            varint(out, *i as u64);
        }
        AttrValue::F64(f) => {
            tag(out, 4, I64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        AttrValue::StrArray(items) => message(out, 5, |a| {
            for s in items {
                message(a, 1, |v| bytes_field(v, 1, s.as_bytes()));
            }
        }),
    }
}

fn key_value(out: &mut Vec<u8>, field: u32, key: &str, v: &AttrValue) {
    message(out, field, |kv| {
        str_field(kv, 1, key);
        message(kv, 2, |a| any_value(a, v));
    });
}

fn span_proto(out: &mut Vec<u8>, s: &SpanData) {
    bytes_field(out, 1, &s.trace_id);
    bytes_field(out, 2, &s.span_id);
    if let Some(ts) = &s.trace_state {
        str_field(out, 3, ts);
    }
    if let Some(p) = &s.parent_span_id {
        bytes_field(out, 4, p);
    }
    str_field(out, 5, &s.name);
    tag(out, 6, VARINT);
    varint(out, s.kind as u64);
    tag(out, 7, I64);
    out.extend_from_slice(&s.start_unix_nano.to_le_bytes());
    tag(out, 8, I64);
    out.extend_from_slice(&s.end_unix_nano.to_le_bytes());
    for (k, v) in &s.attributes {
        key_value(out, 9, k, v);
    }
    if s.status != StatusCode::Unset {
        message(out, 15, |st| {
            str_field(st, 2, &s.status_message);
            tag(st, 3, VARINT);
            varint(st, s.status as u64);
        });
    }
    tag(out, 16, I32);
    out.extend_from_slice(&s.flags.to_le_bytes());
}

/// An `ExportTraceServiceRequest` in protobuf.
pub fn protobuf(resource: &Resource, spans: &[SpanData]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + spans.len() * 512);
    message(&mut out, 1, |rs| {
        message(rs, 1, |r| {
            for (k, v) in &resource.attributes {
                key_value(r, 1, k, v);
            }
        });
        message(rs, 2, |ss| {
            message(ss, 1, |scope| {
                str_field(scope, 1, resource.scope_name);
                str_field(scope, 2, resource.scope_version);
            });
            for s in spans {
                message(ss, 2, |sp| span_proto(sp, s));
            }
        });
    });
    out
}

// ---- JSON --------------------------------------------------------------

fn any_json(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        // JSON has no NaN or infinity; OTLP/JSON would spell them as strings.
        AttrValue::F64(f) if f.is_finite() => json!({ "doubleValue": f }),
        AttrValue::F64(f) => json!({ "doubleValue": f.to_string() }),
        AttrValue::StrArray(items) => json!({
            "arrayValue": { "values": items.iter().map(|s| json!({"stringValue": s})).collect::<Vec<_>>() }
        }),
    }
}

fn attrs_json<'a>(attrs: impl Iterator<Item = (&'a str, &'a AttrValue)>) -> Value {
    Value::Array(
        attrs
            .map(|(k, v)| json!({ "key": k, "value": any_json(v) }))
            .collect(),
    )
}

fn span_json(s: &SpanData) -> Value {
    let mut v = json!({
        "traceId": hex::encode(s.trace_id),
        "spanId": hex::encode(s.span_id),
        "name": s.name,
        "kind": s.kind as u32,
        "startTimeUnixNano": s.start_unix_nano.to_string(),
        "endTimeUnixNano": s.end_unix_nano.to_string(),
        "attributes": attrs_json(s.attributes.iter().map(|(k, v)| (*k, v))),
        "flags": s.flags,
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(p) = &s.parent_span_id {
            o.insert("parentSpanId".into(), hex::encode(p).into());
        }
        if let Some(ts) = &s.trace_state {
            o.insert("traceState".into(), ts.clone().into());
        }
        if s.status != StatusCode::Unset {
            o.insert(
                "status".into(),
                json!({ "code": s.status as u32, "message": s.status_message }),
            );
        }
    }
    v
}

/// An `ExportTraceServiceRequest` in OTLP/JSON.
pub fn json(resource: &Resource, spans: &[SpanData]) -> Vec<u8> {
    let body = json!({
        "resourceSpans": [{
            "resource": {
                "attributes": attrs_json(resource.attributes.iter().map(|(k, v)| (k.as_str(), v))),
            },
            "scopeSpans": [{
                "scope": { "name": resource.scope_name, "version": resource.scope_version },
                "spans": spans.iter().map(span_json).collect::<Vec<_>>(),
            }],
        }],
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span() -> SpanData {
        SpanData {
            trace_id: [0x4b; 16],
            span_id: [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
            parent_span_id: Some([1; 8]),
            trace_state: None,
            name: "chat gpt-4o".into(),
            kind: SpanKind::Server,
            start_unix_nano: 1_000,
            end_unix_nano: 2_000,
            attributes: vec![
                ("gen_ai.request.model", AttrValue::Str("gpt-4o".into())),
                ("gen_ai.usage.input_tokens", AttrValue::Int(-1)),
                ("cost", AttrValue::F64(0.5)),
                ("hit", AttrValue::Bool(true)),
                (
                    "gen_ai.response.finish_reasons",
                    AttrValue::StrArray(vec!["stop".into()]),
                ),
            ],
            status: StatusCode::Error,
            status_message: "boom".into(),
            flags: 0x301,
        }
    }

    fn resource() -> Resource {
        Resource {
            attributes: vec![("service.name".into(), AttrValue::Str("ferrolite".into()))],
            scope_name: "ferrolite",
            scope_version: "0.1.0",
        }
    }

    /// A minimal protobuf reader: (field, wire type, payload) triples.
    fn fields(mut b: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
        fn read_varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = read_varint(&mut b) as u32;
            let (field, wire) = (key >> 3, key & 7);
            let payload = match wire {
                0 => read_varint(&mut b).to_le_bytes().to_vec(),
                1 => {
                    let p = b[..8].to_vec();
                    b = &b[8..];
                    p
                }
                5 => {
                    let p = b[..4].to_vec();
                    b = &b[4..];
                    p
                }
                2 => {
                    let n = read_varint(&mut b) as usize;
                    let p = b[..n].to_vec();
                    b = &b[n..];
                    p
                }
                w => panic!("wire type {w}"),
            };
            out.push((field, wire, payload));
        }
        out
    }

    fn field(f: &[(u32, u32, Vec<u8>)], n: u32) -> Vec<u8> {
        f.iter().find(|x| x.0 == n).unwrap().2.clone()
    }

    #[test]
    fn protobuf_has_the_otlp_layout() {
        let body = protobuf(&resource(), &[span()]);
        let top = fields(&body);
        assert_eq!(top.len(), 1);
        let rs = fields(&field(&top, 1));
        let res = fields(&field(&rs, 1));
        let kv = fields(&field(&res, 1));
        assert_eq!(field(&kv, 1), b"service.name");
        assert_eq!(fields(&field(&kv, 2))[0].2, b"ferrolite");
        let ss = fields(&field(&rs, 2));
        let scope = fields(&field(&ss, 1));
        assert_eq!(field(&scope, 1), b"ferrolite");
        let sp = fields(&field(&ss, 2));
        assert_eq!(field(&sp, 1), vec![0x4b; 16]);
        assert_eq!(field(&sp, 2), span().span_id.to_vec());
        assert_eq!(field(&sp, 4), vec![1; 8]);
        assert_eq!(field(&sp, 5), b"chat gpt-4o");
        assert_eq!(field(&sp, 6)[0], 2);
        assert_eq!(field(&sp, 7), 1_000u64.to_le_bytes());
        assert_eq!(field(&sp, 8), 2_000u64.to_le_bytes());
        assert_eq!(field(&sp, 16), 0x301u32.to_le_bytes());
        let attrs: Vec<_> = sp.iter().filter(|x| x.0 == 9).collect();
        assert_eq!(attrs.len(), 5);
        // -1 as int64 is ten bytes of varint; the reader gives it back.
        let int_kv = fields(&attrs[1].2);
        let any = fields(&field(&int_kv, 2));
        assert_eq!(
            (any[0].0, any[0].2.clone()),
            (3, u64::MAX.to_le_bytes().to_vec())
        );
        let dbl = fields(&field(&fields(&attrs[2].2), 2));
        assert_eq!(dbl[0].2, 0.5f64.to_le_bytes());
        let arr = fields(&field(&fields(&attrs[4].2), 2));
        assert_eq!(arr[0].0, 5);
        let status = fields(&field(&sp, 15));
        assert_eq!(field(&status, 2), b"boom");
        assert_eq!(field(&status, 3)[0], 2);
    }

    #[test]
    fn json_uses_the_otlp_mapping() {
        let v: Value = serde_json::from_slice(&json(&resource(), &[span()])).unwrap();
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "4b".repeat(16));
        assert_eq!(s["spanId"], "00f067aa0ba902b7");
        assert_eq!(s["parentSpanId"], "0101010101010101");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["startTimeUnixNano"], "1000");
        assert_eq!(s["attributes"][1]["value"]["intValue"], "-1");
        assert_eq!(s["attributes"][2]["value"]["doubleValue"], 0.5);
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(
            v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "ferrolite"
        );
    }
}
