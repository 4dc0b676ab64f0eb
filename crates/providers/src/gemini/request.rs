//! OpenAI chat request → Gemini `GenerateContentRequest` body. The body is
//! the same for AI Studio and Vertex AI; only the URL and auth differ.

use bytes::Bytes;
use ferrolite_types::openai::chat::{ContentPart, MessageContent, ToolCall};
use ferrolite_types::openai::{ChatMessage, ChatRequest};
use ferrolite_types::JsonMap;
use serde_json::{json, Map, Value};

use super::thought;
use crate::{BuildOptions, TranslateError};

fn bad(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadRequest(msg.into())
}

/// Request parameters: the client's, then deployment defaults for keys the
/// client did not send. A `null` counts as unset.
struct Params<'a> {
    client: &'a JsonMap,
    defaults: Option<&'a JsonMap>,
}

impl<'a> Params<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        match self.client.get(key) {
            Some(v) => Some(v),
            None => self.defaults.and_then(|d| d.get(key)),
        }
        .filter(|v| !v.is_null())
    }

    /// The first of `keys` that is set.
    fn any(&self, keys: &[&str]) -> Option<&'a Value> {
        keys.iter().find_map(|k| self.get(k))
    }
}

/// The Gemini body for `req`, as JSON bytes. `model` is the upstream model
/// id, used for model-specific mappings (Gemini 3 thinking levels and
/// signatures).
pub(crate) fn chat_body(
    req: &ChatRequest,
    model: &str,
    opts: BuildOptions<'_>,
) -> Result<Bytes, TranslateError> {
    let body = chat_value(req, model, opts)?;
    crate::params::encode(&body)
}

pub(crate) fn chat_value(
    req: &ChatRequest,
    model: &str,
    opts: BuildOptions<'_>,
) -> Result<Value, TranslateError> {
    let params = Params {
        client: &req.extra,
        defaults: opts.defaults,
    };
    let mut body = Map::new();

    let (system, contents) = convert_messages(&req.messages, model)?;
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }

    let tools = tools(&params)?;
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = params.get("tool_choice") {
        body.insert("toolConfig".into(), tool_config(choice)?);
    }

    let config = generation_config(&params, model)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }

    // Gemini-native parameters LiteLLM also forwards.
    if let Some(s) = params.any(&["safety_settings", "safetySettings"]) {
        body.insert("safetySettings".into(), s.clone());
    }
    if let Some(c) = params.any(&["cached_content", "cachedContent"]) {
        body.insert("cachedContent".into(), c.clone());
    }
    Ok(Value::Object(body))
}

// ---------------------------------------------------------------- messages

struct Turn {
    role: &'static str,
    parts: Vec<Value>,
}

/// `(systemInstruction parts, contents)`.
fn convert_messages(
    messages: &[ChatMessage],
    model: &str,
) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    // (id without signature, function name) of every tool call seen so far.
    let mut calls: Vec<(&str, &str)> = Vec::new();

    for (i, m) in messages.iter().enumerate() {
        let (role, parts) = match m.role.as_str() {
            "system" | "developer" => {
                if let Some(c) = &m.content {
                    system.extend(text_parts(c));
                }
                continue;
            }
            "user" => ("user", user_parts(m, i)?),
            "assistant" => ("model", assistant_parts(m, i, &mut calls)?),
            "tool" | "function" => ("user", vec![tool_result(m, i, &calls)?]),
            other => {
                return Err(bad(format!(
                    "messages[{i}]: role '{other}' is not supported by gemini"
                )))
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.parts.extend(parts),
            _ => turns.push(Turn { role, parts }),
        }
    }

    let contents = turns
        .into_iter()
        .map(|mut t| {
            if t.role == "model" {
                thought::sign_first_call(&mut t.parts, model);
            }
            json!({ "role": t.role, "parts": t.parts })
        })
        .collect();
    Ok((system, contents))
}

fn text_part(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

/// The text parts of a system or assistant message.
fn text_parts(content: &MessageContent) -> Vec<Value> {
    match content {
        MessageContent::Text(s) => text_part(s).into_iter().collect(),
        MessageContent::Parts(parts) => parts
            .iter()
            .filter(|p| p.kind == "text")
            .filter_map(|p| p.text.as_deref().and_then(text_part))
            .collect(),
    }
}

fn user_parts(m: &ChatMessage, i: usize) -> Result<Vec<Value>, TranslateError> {
    let Some(content) = &m.content else {
        return Ok(Vec::new());
    };
    let parts = match content {
        MessageContent::Text(s) => return Ok(text_part(s).into_iter().collect()),
        MessageContent::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let at = || format!("messages[{i}].content[{j}]");
        if let Some(part) = content_part(p, &at)? {
            out.push(part);
        }
    }
    Ok(out)
}

/// One user content part. Unknown part types are skipped, as LiteLLM does.
fn content_part(p: &ContentPart, at: &dyn Fn() -> String) -> Result<Option<Value>, TranslateError> {
    match p.kind.as_str() {
        "text" => Ok(p.text.as_deref().and_then(text_part)),
        "image_url" => {
            let (url, format) = match p.extra.get("image_url") {
                Some(Value::String(u)) => (u.as_str(), None),
                Some(Value::Object(o)) => (
                    o.get("url").and_then(Value::as_str).unwrap_or_default(),
                    o.get("format").and_then(Value::as_str),
                ),
                _ => ("", None),
            };
            if url.is_empty() {
                return Err(bad(format!("{}: image_url.url is missing", at())));
            }
            media_part(url, format, Some("image/jpeg"), at).map(Some)
        }
        "input_audio" => {
            let audio = p.extra.get("input_audio");
            let data = audio
                .and_then(|a| a.get("data"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if data.is_empty() {
                return Err(bad(format!("{}: input_audio.data is missing", at())));
            }
            let format = audio
                .and_then(|a| a.get("format"))
                .and_then(Value::as_str)
                .map(|f| {
                    if f.contains('/') {
                        f.to_owned()
                    } else {
                        format!("audio/{f}")
                    }
                });
            if data.starts_with("data:") {
                media_part(data, format.as_deref(), None, at).map(Some)
            } else {
                let mime = format.unwrap_or_else(|| "audio/wav".to_owned());
                Ok(Some(
                    json!({ "inlineData": { "mimeType": mime, "data": data } }),
                ))
            }
        }
        "file" => {
            let file = p.extra.get("file");
            let field = |k: &str| file.and_then(|f| f.get(k)).and_then(Value::as_str);
            let format = field("format");
            match field("file_data").or_else(|| field("file_id")) {
                Some(src) if !src.is_empty() => media_part(src, format, None, at).map(Some),
                _ => Err(bad(format!(
                    "{}: a file part needs file.file_data or file.file_id",
                    at()
                ))),
            }
        }
        _ => Ok(None),
    }
}

/// A data URL becomes `inlineData`; any other URL `fileData`, its MIME type
/// from `format`, else the extension, else `default`.
fn media_part(
    url: &str,
    format: Option<&str>,
    default: Option<&str>,
    at: &dyn Fn() -> String,
) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err(bad(format!("{}: malformed data URL", at())));
        };
        let mut fields = meta.split(';');
        let declared = fields.next().filter(|m| !m.is_empty());
        if !fields.any(|f| f == "base64") {
            return Err(bad(format!(
                "{}: only base64 data URLs are supported",
                at()
            )));
        }
        let mime = format
            .or(declared)
            .or(default)
            .unwrap_or("application/octet-stream");
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    if !url.contains("://") {
        return Err(bad(format!(
            "{}: expected a URL or a base64 data URL, got '{}'",
            at(),
            url.chars().take(64).collect::<String>()
        )));
    }
    match format.or_else(|| guess_mime(url)).or(default) {
        Some(mime) => Ok(json!({ "fileData": { "mimeType": mime, "fileUri": url } })),
        None => Err(bad(format!(
            "{}: cannot tell the MIME type of '{url}'; set its 'format'",
            at()
        ))),
    }
}

/// The MIME type Gemini expects for a URL's extension.
pub(crate) fn guess_mime(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let (_, ext) = path.rsplit_once('.')?;
    if ext.contains('/') {
        return None;
    }
    Some(match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "mpeg" | "mpg" => "video/mpeg",
        "avi" => "video/avi",
        "wmv" => "video/wmv",
        "flv" => "video/flv",
        "webm" => "video/webm",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        _ => return None,
    })
}

fn assistant_parts<'a>(
    m: &'a ChatMessage,
    i: usize,
    calls: &mut Vec<(&'a str, &'a str)>,
) -> Result<Vec<Value>, TranslateError> {
    let mut parts = m.content.as_ref().map(text_parts).unwrap_or_default();
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let part = function_call_part(call, &format!("messages[{i}].tool_calls[{j}]"))?;
        if let (Some(id), Some(name)) = (
            call.id.as_deref(),
            call.function.as_ref().and_then(|f| f.name.as_deref()),
        ) {
            calls.push((thought::base_id(id), name));
        }
        parts.push(part);
    }
    // The deprecated single `function_call`.
    if let Some(fc) = m.extra.get("function_call").filter(|v| v.is_object()) {
        let name = fc.get("name").and_then(Value::as_str).unwrap_or_default();
        let args = fc
            .get("arguments")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut part = json!({ "functionCall": {
            "name": name,
            "args": parse_args(args, &format!("messages[{i}].function_call"))?,
        }});
        if let Some(sig) = fc
            .get("provider_specific_fields")
            .and_then(|f| f.get("thought_signature"))
            .and_then(Value::as_str)
        {
            part["thoughtSignature"] = Value::from(sig);
        }
        parts.push(part);
    }
    Ok(parts)
}

fn parse_args(args: &str, at: &str) -> Result<Value, TranslateError> {
    if args.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(args)
        .map_err(|e| bad(format!("{at}: function arguments are not valid JSON: {e}")))
}

/// An OpenAI tool call → a `functionCall` part, its thought signature
/// reattached. No id goes upstream, so the `__thought__` suffix cannot leak.
fn function_call_part(call: &ToolCall, at: &str) -> Result<Value, TranslateError> {
    let f = call
        .function
        .as_ref()
        .ok_or_else(|| bad(format!("{at}: tool call without a function")))?;
    let name = f
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad(format!("{at}: tool call without a function name")))?;
    let args = parse_args(f.arguments.as_deref().unwrap_or_default(), at)?;
    let mut part = json!({ "functionCall": { "name": name, "args": args } });
    if let Some(sig) = thought::from_tool_call(call) {
        part["thoughtSignature"] = Value::from(sig);
    }
    Ok(part)
}

/// A `tool` (or legacy `function`) message → a `functionResponse` part. The
/// function name comes from the matching earlier tool call.
fn tool_result(m: &ChatMessage, i: usize, calls: &[(&str, &str)]) -> Result<Value, TranslateError> {
    let by_id = m.tool_call_id.as_deref().and_then(|id| {
        let id = thought::base_id(id);
        calls.iter().rev().find(|(c, _)| *c == id).map(|(_, n)| *n)
    });
    let name = by_id
        .or(m.name.as_deref())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            bad(format!(
                "messages[{i}]: no earlier tool call matches tool_call_id '{}'",
                m.tool_call_id.as_deref().unwrap_or_default()
            ))
        })?;
    let text = m
        .content
        .as_ref()
        .map(MessageContent::text)
        .unwrap_or_default();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "content": text }),
    };
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

// ------------------------------------------------------------------- tools

/// Google's own tools, accepted in either spelling and sent camelCase.
const NATIVE_TOOLS: &[(&str, &str)] = &[
    ("googleSearch", "googleSearch"),
    ("google_search", "googleSearch"),
    ("googleSearchRetrieval", "googleSearchRetrieval"),
    ("google_search_retrieval", "googleSearchRetrieval"),
    ("codeExecution", "codeExecution"),
    ("code_execution", "codeExecution"),
    ("urlContext", "urlContext"),
    ("url_context", "urlContext"),
    ("enterpriseWebSearch", "enterpriseWebSearch"),
    ("enterprise_web_search", "enterpriseWebSearch"),
    ("googleMaps", "googleMaps"),
    ("google_maps", "googleMaps"),
];

fn tools(params: &Params<'_>) -> Result<Vec<Value>, TranslateError> {
    let mut declarations = Vec::new();
    let mut native = Vec::new();
    let listed = params.get("tools").and_then(Value::as_array);
    for (i, tool) in listed.into_iter().flatten().enumerate() {
        if let Some(f) = tool.get("function") {
            declarations.push(declaration(f, &format!("tools[{i}]"))?);
        } else if let Some((src, key)) = NATIVE_TOOLS.iter().find(|(k, _)| tool.get(*k).is_some()) {
            let mut t = Map::new();
            t.insert((*key).into(), tool.get(*src).cloned().unwrap_or(json!({})));
            native.push(Value::Object(t));
        } else {
            return Err(bad(format!(
                "tools[{i}]: only function tools and Google's native tools are supported"
            )));
        }
    }
    let legacy = params.get("functions").and_then(Value::as_array);
    for (i, f) in legacy.into_iter().flatten().enumerate() {
        declarations.push(declaration(f, &format!("functions[{i}]"))?);
    }
    let mut out = Vec::new();
    if !declarations.is_empty() {
        out.push(json!({ "functionDeclarations": declarations }));
    }
    out.extend(native);
    Ok(out)
}

fn declaration(f: &Value, at: &str) -> Result<Value, TranslateError> {
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad(format!("{at}: function name is missing")))?;
    let mut d = Map::new();
    d.insert("name".into(), Value::from(name));
    if let Some(desc) = f.get("description").and_then(Value::as_str) {
        d.insert("description".into(), Value::from(desc));
    }
    if let Some(p) = f.get("parameters").filter(|p| p.is_object()) {
        let schema = gemini_schema(p);
        // Gemini rejects an OBJECT with no properties: a function without
        // arguments is declared without parameters.
        let empty_object = schema.get("type").and_then(Value::as_str) == Some("object")
            && schema
                .get("properties")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
        if !empty_object {
            d.insert("parameters".into(), schema);
        }
    }
    Ok(Value::Object(d))
}

fn tool_config(choice: &Value) -> Result<Value, TranslateError> {
    let mode = |m: &str| json!({ "functionCallingConfig": { "mode": m } });
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(mode("AUTO")),
            "none" => Ok(mode("NONE")),
            "required" | "any" => Ok(mode("ANY")),
            other => Err(bad(format!(
                "tool_choice '{other}' is not supported by gemini"
            ))),
        },
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad("tool_choice: function name is missing"))?;
            Ok(json!({ "functionCallingConfig": {
                "mode": "ANY",
                "allowedFunctionNames": [name],
            }}))
        }
        _ => Err(bad("tool_choice must be a string or an object")),
    }
}

// ------------------------------------------------------------------ schema

/// The JSON-schema keywords Gemini's OpenAPI-subset `Schema` accepts; every
/// other keyword (`$schema`, `additionalProperties`, `strict`, `$ref`, …) is
/// dropped after `$ref`s are inlined.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "default",
    "items",
    "minItems",
    "maxItems",
    "enum",
    "properties",
    "propertyOrdering",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "minimum",
    "maximum",
];

/// Deepest nesting followed while inlining `$ref`s (recursive schemas).
const MAX_SCHEMA_DEPTH: usize = 32;

/// An OpenAI (JSON Schema) parameter schema in the form Gemini accepts.
pub(crate) fn gemini_schema(schema: &Value) -> Value {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object);
    clean_schema(schema, defs, 0)
}

fn resolve<'a>(reference: &str, defs: Option<&'a Map<String, Value>>) -> Option<&'a Value> {
    let name = reference
        .strip_prefix("#/$defs/")
        .or_else(|| reference.strip_prefix("#/definitions/"))?;
    defs?.get(name)
}

fn clean_schema(schema: &Value, defs: Option<&Map<String, Value>>, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    if depth > MAX_SCHEMA_DEPTH {
        return json!({ "type": "object" });
    }
    if let Some(target) = obj
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| resolve(r, defs))
    {
        let mut inlined = clean_schema(target, defs, depth + 1);
        // Sibling annotations on the reference win.
        if let (Some(out), Some(desc)) = (inlined.as_object_mut(), obj.get("description")) {
            out.insert("description".into(), desc.clone());
        }
        return inlined;
    }

    let mut out = Map::new();
    let mut nullable = false;
    for (k, v) in obj {
        match k.as_str() {
            "type" => match v {
                // ["string", "null"] → "string" + nullable.
                Value::Array(types) => {
                    let mut real = types.iter().filter(|t| t.as_str() != Some("null"));
                    nullable |= types.iter().any(|t| t.as_str() == Some("null"));
                    if let Some(t) = real.next() {
                        out.insert("type".into(), t.clone());
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "properties" => {
                if let Some(props) = v.as_object() {
                    let cleaned: Map<String, Value> = props
                        .iter()
                        .map(|(name, s)| (name.clone(), clean_schema(s, defs, depth + 1)))
                        .collect();
                    out.insert("properties".into(), Value::Object(cleaned));
                }
            }
            "items" => {
                out.insert("items".into(), clean_schema(v, defs, depth + 1));
            }
            "anyOf" | "oneOf" => {
                let variants: Vec<&Value> = v.as_array().into_iter().flatten().collect();
                let non_null: Vec<Value> = variants
                    .iter()
                    .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                    .map(|s| clean_schema(s, defs, depth + 1))
                    .collect();
                nullable |= non_null.len() < variants.len();
                match non_null.len() {
                    0 => {}
                    // anyOf [X, null] → X + nullable.
                    1 => {
                        if let Some(single) = non_null.into_iter().next().and_then(|s| match s {
                            Value::Object(m) => Some(m),
                            _ => None,
                        }) {
                            for (sk, sv) in single {
                                out.entry(sk).or_insert(sv);
                            }
                        }
                    }
                    _ => {
                        out.insert("anyOf".into(), Value::Array(non_null));
                    }
                }
            }
            "const" => {
                out.insert("enum".into(), json!([v]));
            }
            "enum" => {
                let values: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|e| !e.is_null())
                    .cloned()
                    .collect();
                nullable |= values.len() < v.as_array().map_or(0, Vec::len);
                out.insert("enum".into(), Value::Array(values));
            }
            key if SCHEMA_KEYS.contains(&key) && !v.is_null() => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    if !out.contains_key("type") && out.contains_key("properties") {
        out.insert("type".into(), Value::from("object"));
    }
    // `required` may only name declared properties.
    if let (Some(Value::Array(req)), Some(Value::Object(props))) =
        (out.get("required"), out.get("properties"))
    {
        let kept: Vec<Value> = req
            .iter()
            .filter(|r| r.as_str().is_some_and(|n| props.contains_key(n)))
            .cloned()
            .collect();
        out.insert("required".into(), Value::Array(kept));
    }
    Value::Object(out)
}

// -------------------------------------------------------- generation config

fn generation_config(
    params: &Params<'_>,
    model: &str,
) -> Result<Map<String, Value>, TranslateError> {
    let mut c = Map::new();
    let copy = |from: &[&str], to: &str, c: &mut Map<String, Value>| {
        if let Some(v) = params.any(from) {
            c.insert(to.into(), v.clone());
        }
    };
    copy(&["temperature"], "temperature", &mut c);
    copy(&["top_p"], "topP", &mut c);
    copy(&["top_k"], "topK", &mut c);
    copy(
        &["max_completion_tokens", "max_tokens"],
        "maxOutputTokens",
        &mut c,
    );
    copy(&["n"], "candidateCount", &mut c);
    copy(&["seed"], "seed", &mut c);
    // Gemini 3 rejects the penalties; LiteLLM drops them there.
    if !thought::is_gemini_3_or_newer(model) {
        copy(&["presence_penalty"], "presencePenalty", &mut c);
        copy(&["frequency_penalty"], "frequencyPenalty", &mut c);
    }
    match params.get("stop") {
        Some(Value::String(s)) => {
            c.insert("stopSequences".into(), json!([s]));
        }
        Some(v @ Value::Array(_)) => {
            c.insert("stopSequences".into(), v.clone());
        }
        _ => {}
    }
    if let Some(rf) = params.get("response_format") {
        response_format(rf, &mut c)?;
    }

    let thinking = match (params.get("reasoning_effort"), params.get("thinking")) {
        (Some(effort), _) => Some(reasoning_effort(effort, model)?),
        (None, Some(t)) => Some(anthropic_thinking(t)),
        (None, None) => None,
    };
    match thinking {
        Some(t) => {
            c.insert("thinkingConfig".into(), t);
        }
        // LiteLLM pins Gemini 3 to the low thinking level unless asked.
        None if thought::is_gemini_3_or_newer(model) => {
            c.insert("thinkingConfig".into(), json!({ "thinkingLevel": "low" }));
        }
        None => {}
    }
    Ok(c)
}

fn response_format(rf: &Value, c: &mut Map<String, Value>) -> Result<(), TranslateError> {
    let kind = rf.get("type").and_then(Value::as_str).unwrap_or_default();
    let schema = rf.get("response_schema").or_else(|| {
        (kind == "json_schema")
            .then(|| rf.get("json_schema").and_then(|j| j.get("schema")))
            .flatten()
    });
    match (kind, schema) {
        (_, Some(schema)) => {
            c.insert("responseMimeType".into(), Value::from("application/json"));
            c.insert("responseSchema".into(), gemini_schema(schema));
        }
        ("json_object" | "json_schema", None) => {
            c.insert("responseMimeType".into(), Value::from("application/json"));
        }
        ("text", None) => {
            c.insert("responseMimeType".into(), Value::from("text/plain"));
        }
        (other, None) => {
            return Err(bad(format!(
                "response_format type '{other}' is not supported by gemini"
            )))
        }
    }
    Ok(())
}

/// LiteLLM's `reasoning_effort` mapping: thinking budgets before Gemini 3,
/// thinking levels from Gemini 3 on; thoughts are returned whenever
/// reasoning is on.
fn reasoning_effort(effort: &Value, model: &str) -> Result<Value, TranslateError> {
    let effort = effort
        .as_str()
        .ok_or_else(|| bad("reasoning_effort must be a string"))?;
    let m = model.to_ascii_lowercase();
    if thought::is_gemini_3_or_newer(&m) {
        let flash = m.contains("flash");
        let (level, include) = match effort {
            "minimal" => (if flash { "minimal" } else { "low" }, true),
            "low" => ("low", true),
            "medium" => (if flash { "medium" } else { "high" }, true),
            "high" => ("high", true),
            // Gemini 3 cannot turn thinking off: lowest level, thoughts hidden.
            "none" | "disable" => (if flash { "minimal" } else { "low" }, false),
            other => return Err(bad(format!("invalid reasoning_effort '{other}'"))),
        };
        return Ok(json!({ "thinkingLevel": level, "includeThoughts": include }));
    }
    let (budget, include) = match effort {
        "minimal" => {
            let budget = if m.contains("gemini-2.5-flash-lite") {
                512
            } else if m.contains("gemini-2.5-pro") {
                128
            } else if m.contains("gemini-2.5-flash") {
                1
            } else {
                128
            };
            (budget, true)
        }
        "low" => (1024, true),
        "medium" => (2048, true),
        "high" => (4096, true),
        "none" | "disable" => (0, false),
        other => return Err(bad(format!("invalid reasoning_effort '{other}'"))),
    };
    Ok(json!({ "thinkingBudget": budget, "includeThoughts": include }))
}

/// Anthropic-style `thinking: {type, budget_tokens}`, which LiteLLM accepts
/// for Gemini too.
fn anthropic_thinking(t: &Value) -> Value {
    let enabled = t.get("type").and_then(Value::as_str) == Some("enabled");
    let budget = t.get("budget_tokens").and_then(Value::as_i64);
    let mut out = Map::new();
    if enabled && budget != Some(0) {
        out.insert("includeThoughts".into(), Value::Bool(true));
    }
    if let Some(b) = budget {
        out.insert("thinkingBudget".into(), Value::from(b));
    }
    Value::Object(out)
}
