//! Master-key authentication. Keys are compared in constant time and never
//! logged.

use ferrolite_types::Secret;
use subtle::ConstantTimeEq;

use crate::GatewayError;

/// Who is making a request, as far as the gateway's policies care. The
/// master key is an admin with no limits of its own; a virtual key carries
/// its owner's ids (filled in by key authentication).
#[derive(Debug, Clone, Default)]
pub struct Principal {
    /// SHA-256 (hex) of the presented key; `None` for the master key or an
    /// open gateway.
    pub key_hash: Option<String>,
    pub key_alias: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub team_alias: Option<String>,
    /// Allowed to use the management API.
    pub admin: bool,
    /// The model group the key's `aliases` map the requested model to; the
    /// server sends the call there.
    pub model_alias: Option<String>,
    /// What the key check keeps alive for the call (rate-limit slots, a
    /// budget reservation): released when the last copy of the principal
    /// drops, i.e. once the call's record has been emitted.
    pub hold: Option<Hold>,
}

/// Anything held for the duration of a call (see [`Principal::hold`]).
#[derive(Clone)]
pub struct Hold(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hold")
    }
}

impl Principal {
    /// The held value, if it is a `T`.
    pub fn held<T: std::any::Any>(&self) -> Option<&T> {
        self.hold.as_ref().and_then(|h| h.0.downcast_ref::<T>())
    }
}

/// Header names a gateway key is accepted in, besides `Authorization: Bearer`.
pub const KEY_HEADERS: &[&str] = &[
    "x-litellm-api-key",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
];

/// Check a presented key against the master key. With no master key
/// configured every request is allowed (the server warns at startup).
pub fn check(master: Option<&Secret>, presented: Option<&str>) -> Result<(), GatewayError> {
    let Some(master) = master else { return Ok(()) };
    let Some(presented) = presented else {
        return Err(GatewayError::Unauthorized(
            "Authentication Error, No api key passed in.".into(),
        ));
    };
    if bool::from(presented.as_bytes().ct_eq(master.expose().as_bytes())) {
        Ok(())
    } else {
        Err(GatewayError::Unauthorized(
            "Authentication Error, Invalid proxy server token passed. Received API Key = sk-...redacted".into(),
        ))
    }
}

/// Extract the bearer token from an `Authorization` header value.
pub fn bearer(value: &str) -> &str {
    let v = value.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_check() {
        let m = Secret::new("sk-master-1");
        assert!(check(Some(&m), Some("sk-master-1")).is_ok());
        assert_eq!(
            check(Some(&m), Some("sk-master-2")).unwrap_err().status(),
            401
        );
        assert_eq!(
            check(Some(&m), None).unwrap_err().to_string(),
            "Authentication Error, No api key passed in."
        );
        assert!(check(None, None).is_ok());
        assert!(!check(Some(&m), Some("sk-master-2"))
            .unwrap_err()
            .to_string()
            .contains("sk-master"));
    }

    #[test]
    fn bearer_prefix_is_case_insensitive() {
        assert_eq!(bearer("Bearer sk-1"), "sk-1");
        assert_eq!(bearer("bearer  sk-1 "), "sk-1");
        assert_eq!(bearer("sk-1"), "sk-1");
    }
}
