//! Which config keys this version acts on. Everything else found in a config
//! is collected and reported in one startup warning: real LiteLLM configs
//! carry many keys, and silently ignoring one would hide a behaviour the
//! user expects, while refusing to start would block the switch.

use serde_json::{Map, Value};

pub(crate) const TOP_LEVEL: &[&str] = &[
    "model_list",
    "litellm_settings",
    "general_settings",
    "router_settings",
    "environment_variables",
    "include",
    "callback_settings",
];

pub(crate) const LITELLM_IMPL: &[&str] = &[
    "drop_params",
    "num_retries",
    "request_timeout",
    "json_logs",
    "set_verbose",
    "max_budget",
    "budget_duration",
    "include_cost_in_streaming_usage",
    "callbacks",
    "success_callback",
    "failure_callback",
    "callback_settings",
    "generic_logger_headers",
    "require_auth_for_metrics_endpoint",
    "turn_off_message_logging",
    "cache",
    "cache_params",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "default_fallbacks",
    "max_fallbacks",
];

pub(crate) const GENERAL_IMPL: &[&str] = &[
    "master_key",
    "max_request_size_mb",
    "max_parallel_requests",
    "global_max_parallel_requests",
    "database_url",
    "disable_spend_logs",
    "allow_requests_on_db_unavailable",
    "proxy_batch_write_at",
    "user_api_key_cache_ttl",
    "spend_spill_path",
    "store_prompts_in_spend_logs",
    "maximum_spend_logs_retention_period",
    "maximum_spend_logs_retention_interval",
    "maximum_spend_logs_rows",
    "maximum_spend_logs_content_bytes",
];

pub(crate) const ROUTER_IMPL: &[&str] = &[
    "routing_strategy",
    "model_group_alias",
    "num_retries",
    "timeout",
    "stream_timeout",
    "retry_after",
    "retry_policy",
    "model_group_retry_policy",
    "routing_strategy_args",
    "optional_pre_call_checks",
    "enable_pre_call_checks",
    "default_max_parallel_requests",
    "redis_host",
    "redis_port",
    "redis_password",
    "redis_url",
    "allowed_fails_policy",
    "cooldown_time",
    "allowed_fails",
    "disable_cooldowns",
    "enable_mid_stream_fallback_continuation",
    "enable_tag_filtering",
    "tag_filtering_match_any",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "default_fallbacks",
    "max_fallbacks",
];

/// `litellm_params` keys the gateway acts on.
pub(crate) const PARAMS_IMPL: &[&str] = &[
    "model",
    "custom_llm_provider",
    "api_key",
    "api_base",
    "api_version",
    "organization",
    "timeout",
    "stream_timeout",
    "max_retries",
    "extra_headers",
    "headers",
    "rpm",
    "tpm",
    "weight",
    "order",
    "tags",
    "mock_response",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "aws_bedrock_runtime_endpoint",
    "drop_params",
    "additional_drop_params",
    "max_parallel_requests",
    "input_cost_per_token",
    "output_cost_per_token",
];

/// `litellm_params` keys that configure LiteLLM itself rather than the model
/// call: never forwarded upstream as request parameters. Those not in
/// [`PARAMS_IMPL`] are reported as not implemented.
pub(crate) const PARAMS_INTERNAL: &[&str] = &[
    "responses_api_version",
    "use_chat_completions_api",
    "litellm_credential_name",
    "itpm",
    "otpm",
    "tpd",
    "rpd",
    "daily_reset_time",
    "max_parallel_requests",
    "tag_regex",
    "region_name",
    "default_api_key_tpm_limit",
    "default_api_key_rpm_limit",
    "max_budget",
    "budget_duration",
    "timeout_by_service_tier",
    "stream_timeout_by_service_tier",
    "keepalive_seconds",
    "drop_params",
    "additional_drop_params",
    "merge_reasoning_content_in_choices",
    "thought_signature_in_tool_call_id",
    "configurable_clientside_auth_params",
    "tenant_id",
    "client_id",
    "client_secret",
    "azure_ad_token",
    "azure_scope",
    "azure_username",
    "azure_password",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "aws_role_name",
    "aws_session_name",
    "aws_profile_name",
    "aws_web_identity_token",
    "aws_sts_endpoint",
    "aws_bedrock_runtime_endpoint",
    "watsonx_region_name",
    "input_cost_per_token",
    "output_cost_per_token",
    "input_cost_per_second",
    "output_cost_per_second",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "mock_timeout",
    "auto_router_config",
    "complexity_router_config",
    "adaptive_router_config",
    "quality_router_config",
    "use_in_pass_through",
    "use_litellm_proxy",
    "litellm_trace_id",
];

/// Name prefixes of `litellm_params` keys that configure LiteLLM (credentials
/// of cloud SDKs, pricing, capabilities, LiteLLM internals).
const INTERNAL_PREFIXES: &[&str] = &[
    "aws_",
    "vertex_",
    "azure_",
    "s3_",
    "gcs_",
    "litellm_",
    "mock_",
    "input_cost_",
    "output_cost_",
    "cache_read_",
    "cache_creation_",
    "supports_",
    "tpm_",
    "rpm_",
    "max_budget",
    "budget_",
    "default_api_key_",
    "watsonx_",
    "vector_store",
    "router_",
];

/// Further `litellm_params` keys that `litellm.completion` consumes itself
/// (and so never sends upstream), or that only the router reads.
const INTERNAL_EXTRA: &[&str] = &[
    "num_retries",
    "cooldown_time",
    "allowed_fails",
    "retry_policy",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "caching",
    "cache",
    "model_info",
    "base_model",
    "tiered_pricing",
    "max_file_size_mb",
    "allow_client_keepalive_override",
    "max_input_tokens",
    "max_output_tokens",
    "mode",
    "client_id",
    "client_secret",
    "tenant_id",
    "api_type",
    "deployment_id",
    "proxy_server_request",
    "preset_cache_key",
    "no-log",
    "custom_prompt_dict",
    "input_cost_per_pixel",
    "output_cost_per_pixel",
    "access_groups",
    "team_id",
    "model_id",
    "hf_model_name",
    "user_continue_message",
    "assistant_continue_message",
];

/// Whether a `litellm_params` key configures LiteLLM rather than the model
/// call: such keys are never forwarded upstream as request parameters.
pub(crate) fn is_internal_param(key: &str) -> bool {
    PARAMS_INTERNAL.contains(&key)
        || INTERNAL_EXTRA.contains(&key)
        || INTERNAL_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// How a key is handled, for `docs/config.md` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Implemented,
    NotImplemented,
}

/// The implemented keys of each section, by section name.
pub fn implemented_keys() -> [(&'static str, &'static [&'static str]); 5] {
    [
        ("(top level)", TOP_LEVEL),
        ("litellm_settings", LITELLM_IMPL),
        ("general_settings", GENERAL_IMPL),
        ("router_settings", ROUTER_IMPL),
        ("model_list[].litellm_params", PARAMS_IMPL),
    ]
}

/// Record every key of `m` not in `implemented` as `<section>.<key>`.
pub(crate) fn check_section(
    m: &Map<String, Value>,
    section: &str,
    implemented: &[&str],
    out: &mut Vec<String>,
) {
    for k in m.keys() {
        if !implemented.contains(&k.as_str()) {
            out.push(if section.is_empty() {
                k.clone()
            } else {
                format!("{section}.{k}")
            });
        }
    }
}

/// docs/config.md must not call a key "not yet implemented" in the section
/// where the gateway acts on it (the doc fell behind the code before).
#[cfg(test)]
mod doc_tests {
    use super::{GENERAL_IMPL, LITELLM_IMPL, PARAMS_IMPL, ROUTER_IMPL};

    #[test]
    fn config_doc_does_not_call_implemented_keys_unimplemented() {
        let doc = include_str!("../../../../docs/config.md");
        let mut section: Option<(&str, &[&str])> = None;
        let mut wrong = Vec::new();
        for line in doc.lines() {
            if line.starts_with("### ") {
                section = if line.contains("litellm_params") {
                    Some(("litellm_params", PARAMS_IMPL))
                } else if line.contains("`litellm_settings`") {
                    Some(("litellm_settings", LITELLM_IMPL))
                } else if line.contains("`general_settings`") {
                    Some(("general_settings", GENERAL_IMPL))
                } else if line.contains("`router_settings`") {
                    Some(("router_settings", ROUTER_IMPL))
                } else {
                    None
                };
                continue;
            }
            let Some((name, implemented)) = section else {
                continue;
            };
            if !(line.starts_with('|') && line.contains("not yet implemented")) {
                continue;
            }
            let keys_cell = line.split('|').nth(1).unwrap_or_default();
            for key in keys_cell.split('`').skip(1).step_by(2) {
                if implemented.contains(&key) {
                    wrong.push(format!("{name}.{key}"));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "docs/config.md says these are not implemented, but they are: {wrong:?}"
        );
    }
}
