//! Which model groups to try after a group fails: `fallbacks`,
//! `context_window_fallbacks`, `content_policy_fallbacks`,
//! `default_fallbacks` and the request's own `fallbacks`, picked by the kind
//! of failure as LiteLLM picks them.

use std::collections::BTreeMap;

use ferrolite_providers::ErrorClass;

use crate::GatewayError;

/// Default `max_fallbacks`, as LiteLLM's.
pub const DEFAULT_MAX_FALLBACKS: usize = 5;

/// The configured fallback lists, by model group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fallbacks {
    pub general: BTreeMap<String, Vec<String>>,
    pub context_window: BTreeMap<String, Vec<String>>,
    pub content_policy: BTreeMap<String, Vec<String>>,
    /// For groups with no rule of their own.
    pub default: Vec<String>,
    pub max: Option<usize>,
}

impl Fallbacks {
    pub fn is_empty(&self) -> bool {
        self.general.is_empty()
            && self.context_window.is_empty()
            && self.content_policy.is_empty()
            && self.default.is_empty()
    }
}

/// Whether a failure may be answered by another model group. A request the
/// upstream rejected as malformed (400/422 other than an over-long prompt or
/// refused content) would fail the same way anywhere, so it does not fall back.
pub fn may_fall_back(e: &GatewayError) -> bool {
    match e {
        GatewayError::Upstream { error, .. } => match error.class() {
            ErrorClass::ContextWindow
            | ErrorClass::ContentPolicy
            | ErrorClass::RateLimit
            | ErrorClass::Credentials => true,
            ErrorClass::Other => !matches!(error.status, 400 | 413 | 422),
        },
        GatewayError::Timeout { .. }
        | GatewayError::Connect { .. }
        | GatewayError::BadUpstreamResponse(_)
        | GatewayError::NoDeployments { .. }
        | GatewayError::ContextWindow { .. } => true,
        GatewayError::Internal(_) => true,
        _ => false,
    }
}

/// The groups to try after `group` failed with `e`, in order, at most `max`.
/// The request's own list, when given, replaces the configured ones.
pub fn plan<'a>(
    fb: &'a Fallbacks,
    group: &str,
    e: &GatewayError,
    request: Option<&'a [String]>,
) -> Vec<&'a str> {
    let max = fb.max.unwrap_or(DEFAULT_MAX_FALLBACKS);
    let class = match e {
        GatewayError::Upstream { error, .. } => error.class(),
        GatewayError::ContextWindow { .. } => ErrorClass::ContextWindow,
        _ => ErrorClass::Other,
    };
    let list: &[String] = if let Some(r) = request {
        r
    } else {
        let specific = match class {
            ErrorClass::ContextWindow => fb.context_window.get(group),
            ErrorClass::ContentPolicy => fb.content_policy.get(group),
            _ => None,
        };
        match specific.or_else(|| fb.general.get(group)) {
            Some(l) => l,
            None => &fb.default,
        }
    };
    list.iter()
        .map(String::as_str)
        .filter(|g| *g != group)
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolite_providers::UpstreamError;

    fn upstream(status: u16, message: &str) -> GatewayError {
        GatewayError::Upstream {
            error: Box::new(UpstreamError {
                status,
                message: message.into(),
                kind: None,
                param: None,
                code: None,
                provider_label: "OpenAIException".into(),
            }),
            group: "g".into(),
            retries: 0,
        }
    }

    fn fb() -> Fallbacks {
        let mut f = Fallbacks::default();
        f.general
            .insert("gpt-4o".into(), vec!["claude".into(), "gemini".into()]);
        f.context_window
            .insert("gpt-4o".into(), vec!["gpt-4o-long".into()]);
        f.default = vec!["cheap".into()];
        f
    }

    #[test]
    fn the_error_picks_the_list() {
        let f = fb();
        assert_eq!(
            plan(&f, "gpt-4o", &upstream(500, "boom"), None),
            ["claude", "gemini"]
        );
        assert_eq!(
            plan(
                &f,
                "gpt-4o",
                &upstream(400, "This model's maximum context length is 8192 tokens"),
                None
            ),
            ["gpt-4o-long"]
        );
        assert_eq!(plan(&f, "other", &upstream(500, "boom"), None), ["cheap"]);
        let req = vec!["x".to_owned(), "gpt-4o".to_owned()];
        assert_eq!(
            plan(&f, "gpt-4o", &upstream(500, "boom"), Some(&req)),
            ["x"],
            "the request's list wins; a group never falls back to itself"
        );
    }

    #[test]
    fn max_fallbacks_caps_the_list() {
        let mut f = fb();
        f.max = Some(1);
        assert_eq!(plan(&f, "gpt-4o", &upstream(500, "boom"), None), ["claude"]);
    }

    #[test]
    fn malformed_requests_do_not_fall_back() {
        assert!(!may_fall_back(&upstream(400, "bad temperature")));
        assert!(!may_fall_back(&upstream(422, "bad")));
        assert!(may_fall_back(&upstream(
            400,
            "prompt is too long: 300000 tokens > 200000 maximum"
        )));
        assert!(may_fall_back(&upstream(429, "slow down")));
        assert!(may_fall_back(&upstream(401, "bad key")));
        assert!(may_fall_back(&upstream(404, "no such model")));
        assert!(!may_fall_back(&GatewayError::bad_request("x")));
        assert!(!may_fall_back(&GatewayError::UnknownModel("x".into())));
    }
}
