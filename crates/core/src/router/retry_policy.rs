//! `retry_policy` / `model_group_retry_policy`: how many retries each kind of
//! failure gets, overriding `num_retries` for that kind (as LiteLLM's
//! `RetryPolicy`).

use std::collections::BTreeMap;

use ferrolite_providers::ErrorClass;

use crate::GatewayError;

/// The keys LiteLLM's `RetryPolicy` accepts.
pub const KEYS: &[&str] = &[
    "BadRequestErrorRetries",
    "AuthenticationErrorRetries",
    "TimeoutErrorRetries",
    "RateLimitErrorRetries",
    "ContentPolicyViolationErrorRetries",
    "InternalServerErrorRetries",
    "ServiceUnavailableErrorRetries",
    "NotFoundErrorRetries",
    "DefaultRetries",
];

/// Retries per error kind.
pub type RetryPolicy = BTreeMap<String, u32>;

/// The policy key for a failure; `None` for the gateway's own refusals
/// (bad input, unsupported parameters), which no retry can change.
pub fn key_for(e: &GatewayError) -> Option<&'static str> {
    Some(match e {
        GatewayError::Upstream { error, .. } => match (error.class(), error.status) {
            (ErrorClass::ContentPolicy, _) => "ContentPolicyViolationErrorRetries",
            (ErrorClass::RateLimit, _) => "RateLimitErrorRetries",
            (_, 400 | 422) => "BadRequestErrorRetries",
            (_, 401 | 403) => "AuthenticationErrorRetries",
            (_, 404) => "NotFoundErrorRetries",
            (_, 408) => "TimeoutErrorRetries",
            (_, 503) => "ServiceUnavailableErrorRetries",
            (_, s) if s >= 500 => "InternalServerErrorRetries",
            _ => "DefaultRetries",
        },
        GatewayError::Timeout { .. } => "TimeoutErrorRetries",
        GatewayError::Connect { .. } | GatewayError::BadUpstreamResponse(_) => {
            "InternalServerErrorRetries"
        }
        _ => return None,
    })
}

/// The failure's `allowed_fails_policy` key (`RateLimitErrorAllowedFails`, …).
pub fn allowed_fails_key(e: &GatewayError) -> Option<&'static str> {
    Some(match key_for(e)? {
        "BadRequestErrorRetries" => "BadRequestErrorAllowedFails",
        "AuthenticationErrorRetries" => "AuthenticationErrorAllowedFails",
        "TimeoutErrorRetries" => "TimeoutErrorAllowedFails",
        "RateLimitErrorRetries" => "RateLimitErrorAllowedFails",
        "ContentPolicyViolationErrorRetries" => "ContentPolicyViolationErrorAllowedFails",
        "InternalServerErrorRetries" | "ServiceUnavailableErrorRetries" => {
            "InternalServerErrorAllowedFails"
        }
        "NotFoundErrorRetries" => "NotFoundErrorAllowedFails",
        _ => return None,
    })
}

/// How many retries a failure gets: the group's policy, then the global
/// policy (each by kind, then `DefaultRetries`), else `None` (use num_retries).
pub fn retries_for(
    global: &RetryPolicy,
    group: Option<&RetryPolicy>,
    e: &GatewayError,
) -> Option<u32> {
    let key = key_for(e)?;
    let lookup = |p: &RetryPolicy| p.get(key).or_else(|| p.get("DefaultRetries")).copied();
    group.and_then(lookup).or_else(|| lookup(global))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolite_providers::UpstreamError;

    fn up(status: u16) -> GatewayError {
        GatewayError::Upstream {
            error: Box::new(UpstreamError {
                status,
                message: "x".into(),
                kind: None,
                param: None,
                code: None,
                provider_label: "OpenAIException".into(),
            }),
            group: "g".into(),
            retries: 0,
        }
    }

    #[test]
    fn policy_by_kind_group_first() {
        let global: RetryPolicy = [
            ("RateLimitErrorRetries".to_owned(), 4),
            ("DefaultRetries".to_owned(), 1),
        ]
        .into();
        let group: RetryPolicy = [("RateLimitErrorRetries".to_owned(), 0)].into();
        assert_eq!(retries_for(&global, None, &up(429)), Some(4));
        assert_eq!(retries_for(&global, Some(&group), &up(429)), Some(0));
        assert_eq!(
            retries_for(&global, Some(&group), &up(500)),
            Some(1),
            "the group has no rule for it: the global DefaultRetries"
        );
        assert_eq!(retries_for(&RetryPolicy::new(), None, &up(500)), None);
        assert_eq!(key_for(&up(401)), Some("AuthenticationErrorRetries"));
        assert_eq!(key_for(&up(529)), Some("RateLimitErrorRetries"));
        assert_eq!(
            key_for(&GatewayError::Timeout {
                group: "g".into(),
                after: std::time::Duration::from_secs(1),
                retries: 0
            }),
            Some("TimeoutErrorRetries")
        );
        assert_eq!(
            retries_for(&global, None, &GatewayError::bad_request("x")),
            None,
            "own refusals are never retried"
        );
    }
}
