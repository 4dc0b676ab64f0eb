//! The parameters a request is built from: the client's own (`extra`), with
//! the deployment defaults filled in where the client set nothing.

use std::borrow::Cow;

use ferrolite_types::JsonMap;
use serde_json::Value;

/// The client's parameters plus any deployment default it did not set.
pub(crate) fn merged<'a>(extra: &'a JsonMap, defaults: Option<&JsonMap>) -> Cow<'a, JsonMap> {
    match defaults {
        Some(d) if d.keys().any(|k| !extra.contains_key(k)) => {
            let mut m = extra.clone();
            for (k, v) in d {
                if !m.contains_key(k) {
                    m.insert(k.clone(), v.clone());
                }
            }
            Cow::Owned(m)
        }
        _ => Cow::Borrowed(extra),
    }
}

/// A parameter, with JSON `null` treated as absent.
pub(crate) fn param<'a>(params: &'a JsonMap, key: &str) -> Option<&'a Value> {
    params.get(key).filter(|v| !v.is_null())
}

/// Encode an upstream request body.
pub(crate) fn encode<T: serde::Serialize>(body: &T) -> Result<bytes::Bytes, crate::TranslateError> {
    serde_json::to_vec(body)
        .map(bytes::Bytes::from)
        .map_err(|e| crate::TranslateError::BadRequest(format!("cannot encode request: {e}")))
}
