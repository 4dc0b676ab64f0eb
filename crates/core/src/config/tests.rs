use std::path::Path;

use super::*;

fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    load_str(
        yaml,
        Path::new("."),
        &Env::isolated(env.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
    )
}

fn paths(e: &ConfigErrors) -> Vec<&str> {
    e.0.iter().map(|i| i.path.as_str()).collect()
}

#[test]
fn os_environ_is_resolved_everywhere_including_nested_values() {
    let cfg = load(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_key: os.environ/KEY\n      extra_headers: {X-A: os.environ/HDR}\n      rpm: os.environ/RPM\ngeneral_settings:\n  master_key: os.environ/MASTER\n",
        &[("KEY", "sk-up"), ("HDR", "h1"), ("RPM", "600"), ("MASTER", "sk-m")],
    )
    .unwrap();
    let d = &cfg.deployments[0];
    assert_eq!(d.api_key.as_ref().unwrap().expose(), "sk-up");
    assert_eq!(
        d.rpm,
        Some(600.0),
        "numbers may come from the environment as strings"
    );
    let t = d.target.as_ref().unwrap();
    assert!(t.headers.iter().any(|(k, v)| k == "x-a" && v == "h1"));
    assert_eq!(cfg.general.master_key.as_ref().unwrap().expose(), "sk-m");
    assert!(
        !format!("{cfg:?}").contains("sk-up"),
        "secrets never appear in Debug output"
    );
}

#[test]
fn a_missing_required_variable_names_the_variable_and_the_path() {
    let e = load(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_key: os.environ/NOPE_KEY\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(paths(&e), vec!["model_list[0].litellm_params.api_key"]);
    assert!(
        e.to_string()
            .contains("environment variable NOPE_KEY is not set"),
        "{e}"
    );
    let e = load(
        "general_settings:\n  master_key: os.environ/NO_MASTER\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(paths(&e), vec!["general_settings.master_key"]);
}

#[test]
fn a_missing_optional_variable_is_a_warning() {
    let cfg = load(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_key: k\n      organization: os.environ/NO_ORG\nrouter_settings:\n  redis_password: os.environ/NO_REDIS\n",
        &[],
    )
    .unwrap();
    assert_eq!(cfg.warnings.len(), 2, "{:?}", cfg.warnings);
    assert!(cfg.warnings[0].contains("NO_ORG") || cfg.warnings[1].contains("NO_ORG"));
}

#[test]
fn environment_variables_are_seen_by_os_environ_lookups() {
    let cfg = load(
        "environment_variables:\n  MY_KEY: from-config\nmodel_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_key: os.environ/MY_KEY\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        cfg.deployments[0].api_key.as_ref().unwrap().expose(),
        "from-config"
    );
}

#[test]
fn provider_keys_and_bases_come_from_the_environment_when_absent() {
    let cfg = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/gpt-4o}\n  - model_name: b\n    litellm_params: {model: openrouter/deepseek/deepseek-chat}\n  - model_name: c\n    litellm_params: {model: azure/dep}\n",
        &[("OPENAI_API_KEY", "sk-oa"), ("OPENROUTER_API_KEY", "sk-or"), ("AZURE_API_BASE", "https://x.openai.azure.com/"), ("AZURE_API_KEY", "az")],
    )
    .unwrap();
    let d = &cfg.deployments;
    assert_eq!(d[0].api_key.as_ref().unwrap().expose(), "sk-oa");
    assert_eq!(
        d[0].target.as_ref().unwrap().api_base,
        "https://api.openai.com/v1"
    );
    assert_eq!(d[1].api_key.as_ref().unwrap().expose(), "sk-or");
    assert_eq!(
        d[1].target.as_ref().unwrap().model,
        "deepseek/deepseek-chat"
    );
    assert!(d[1]
        .target
        .as_ref()
        .unwrap()
        .api_base
        .starts_with("https://openrouter.ai/api/v1"));
    let az = d[2].target.as_ref().unwrap();
    assert_eq!(az.api_base, "https://x.openai.azure.com");
    assert!(az.api_version.is_some(), "azure gets a default api-version");
    assert_eq!(
        az.auth,
        ferrolite_providers::AuthScheme::Header(http::HeaderName::from_static("api-key"))
    );
}

#[test]
fn api_base_is_completed_per_provider() {
    let cfg = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: hosted_vllm/llama, api_base: \"http://vllm:8000/v1/\"}\n  - model_name: b\n    litellm_params: {model: ollama_chat/llama3, api_base: \"http://localhost:11434\"}\n  - model_name: c\n    litellm_params: {model: openai/x, api_base: \"http://h:1\", api_key: k}\n  - model_name: d\n    litellm_params: {model: mistral/mistral-large, api_base: \"https://api.mistral.ai\", api_key: k}\n",
        &[],
    )
    .unwrap();
    let bases: Vec<&str> = cfg
        .deployments
        .iter()
        .map(|d| d.target.as_ref().unwrap().api_base.as_str())
        .collect();
    assert_eq!(
        bases,
        [
            "http://vllm:8000/v1",
            "http://localhost:11434/v1",
            "http://h:1",
            "https://api.mistral.ai/v1"
        ]
    );
    assert_eq!(
        cfg.deployments[0].target.as_ref().unwrap().auth,
        ferrolite_providers::AuthScheme::None,
        "no key → no auth header"
    );
}

#[test]
fn includes_merge_relative_to_the_including_file() {
    let dir = std::env::temp_dir().join(format!("ferrolite-include-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        "include: [sub/models.yaml]\nmodel_list:\n  - model_name: a\n    litellm_params: {model: openai/a, api_key: k}\nlitellm_settings: {num_retries: 1}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/models.yaml"),
        "include: [more.yaml]\nmodel_list:\n  - model_name: b\n    litellm_params: {model: openai/b, api_key: k}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/more.yaml"),
        "model_list:\n  - model_name: c\n    litellm_params: {model: openai/c, api_key: k}\n",
    )
    .unwrap();
    let cfg = load_file(
        &dir.join("config.yaml"),
        &Env::isolated(Vec::<(String, String)>::new()),
    )
    .unwrap();
    let names: Vec<&str> = cfg
        .deployments
        .iter()
        .map(|d| d.model_name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c"], "lists concatenate");
    assert_eq!(cfg.litellm.num_retries, Some(1));
    std::fs::write(dir.join("bad.yaml"), "include: [missing.yaml]\n").unwrap();
    let e = load_file(
        &dir.join("bad.yaml"),
        &Env::isolated(Vec::<(String, String)>::new()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing.yaml"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let e = load(
        "model_list:\n  - model_name: a\n    litellm_params: {api_key: k}\n  - litellm_params: {model: openai/b, rpm: lots}\n  - model_name: c\n    litellm_params: {model: mystery-model}\n  - model_name: d\n    litellm_params: {model: openai/d, timeout: -1}\nlitellm_settings: {num_retries: -2}\nrouter_settings: {routing_strategy: fastest}\n",
        &[],
    )
    .unwrap_err();
    let p = paths(&e);
    for want in [
        "model_list[0].litellm_params.model",
        "model_list[1].model_name",
        "model_list[1].litellm_params.rpm",
        "model_list[2].litellm_params.model",
        "model_list[3].litellm_params.timeout",
        "litellm_settings.num_retries",
        "router_settings.routing_strategy",
    ] {
        assert!(p.contains(&want), "missing {want} in {p:?}");
    }
    assert!(e.to_string().contains("LLM Provider NOT provided"), "{e}");
}

#[test]
fn keys_not_implemented_are_collected_not_fatal() {
    let cfg = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, api_key: k, tag_regex: [x], region_name: eu, temperature: 0.5}\nlitellm_settings: {cache: true, drop_params: true, callbacks: [langfuse]}\ngeneral_settings: {database_connection_pool_limit: 5, master_key: sk-x}\nrouter_settings: {routing_strategy: lar1, enable_health_check_routing: true}\nguardrails: []\n",
        &[],
    )
    .unwrap();
    for k in [
        "guardrails",
        "litellm_settings.callbacks: langfuse",
        "general_settings.database_connection_pool_limit",
        "router_settings.enable_health_check_routing",
        "model_list[0].litellm_params.tag_regex",
        "model_list[0].litellm_params.region_name",
    ] {
        assert!(
            cfg.not_implemented.iter().any(|n| n == k),
            "{k} not in {:?}",
            cfg.not_implemented
        );
    }
    assert!(cfg
        .not_implemented
        .iter()
        .any(|n| n.starts_with("router_settings.routing_strategy=lar1")));
    assert!(!cfg
        .not_implemented
        .iter()
        .any(|n| n.contains("temperature") || n.contains("drop_params")));
    assert_eq!(
        cfg.deployments[0]
            .defaults
            .as_ref()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["temperature"],
        "LiteLLM-only params are never forwarded"
    );
}

#[test]
fn single_model_mode_serves_the_alias_and_any_name() {
    let cfg = single_model(
        "openrouter/deepseek/deepseek-chat",
        Some("ds"),
        None,
        &Env::isolated([("OPENROUTER_API_KEY", "k")]),
    )
    .unwrap();
    let names: Vec<&str> = cfg
        .deployments
        .iter()
        .map(|d| d.model_name.as_str())
        .collect();
    assert_eq!(names, ["ds", "*"]);
    assert_eq!(
        cfg.deployments[1].target.as_ref().unwrap().model,
        "deepseek/deepseek-chat"
    );
}

#[test]
fn ids_are_stable_and_explicit_ids_must_be_unique() {
    let yaml = "model_list:\n  - {model_name: a, litellm_params: {model: openai/a, api_key: k}}\n  - {model_name: a, litellm_params: {model: openai/a, api_key: k}}\n";
    let one = load(yaml, &[]).unwrap();
    let two = load(yaml, &[]).unwrap();
    assert_eq!(one.deployments[0].id, two.deployments[0].id);
    assert_ne!(one.deployments[0].id, one.deployments[1].id);
    let e = load("model_list:\n  - {model_name: a, litellm_params: {model: openai/a}, model_info: {id: x}}\n  - {model_name: b, litellm_params: {model: openai/b}, model_info: {id: x}}\n", &[]).unwrap_err();
    assert!(e.to_string().contains("duplicate deployment id"));
}

#[test]
fn not_yaml_and_wrong_shapes_are_clear_errors() {
    assert!(load("model_list: [", &[])
        .unwrap_err()
        .to_string()
        .contains("not valid YAML"));
    assert!(load("- a\n- b\n", &[])
        .unwrap_err()
        .to_string()
        .contains("mapping at the top level"));
    assert_eq!(
        paths(&load("model_list: 5\n", &[]).unwrap_err()),
        vec!["model_list"]
    );
    assert!(load("", &[]).unwrap().deployments.is_empty());
}

#[test]
fn litellm_only_params_are_never_request_defaults() {
    let cfg = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, api_key: k, num_retries: 3, cooldown_time: 5, aws_external_id: x, s3_bucket_name: b, input_cost_per_token_batches: 1, top_k: 4, seed: 7}\n",
        &[],
    )
    .unwrap();
    let keys: Vec<&String> = cfg.deployments[0]
        .defaults
        .as_ref()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys,
        ["seed", "top_k"],
        "only model parameters are forwarded"
    );
}

#[test]
fn organization_is_one_header_and_unset_optional_headers_are_skipped() {
    let cfg = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, api_key: k, organization: org-cfg, extra_headers: {X-Opt: os.environ/UNSET_HDR, X-Set: v}}\n",
        &[("OPENAI_ORGANIZATION", "org-env")],
    )
    .unwrap();
    let t = cfg.deployments[0].target.as_ref().unwrap();
    let orgs: Vec<_> = t
        .headers
        .iter()
        .filter(|(k, _)| k == "openai-organization")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(orgs, ["org-cfg"]);
    assert!(t.headers.iter().any(|(k, _)| k == "x-set"));
    assert!(!t.headers.iter().any(|(k, _)| k == "x-opt"));
}

#[test]
fn vertex_deployments_get_a_project_url_and_oauth() {
    let cfg = load(
        "model_list:\n  - model_name: g\n    litellm_params: {model: vertex_ai/gemini-2.5-flash, vertex_project: p1, vertex_location: europe-west4, vertex_credentials: '{\"type\":\"service_account\",\"project_id\":\"p0\"}'}\n  - model_name: c\n    litellm_params: {model: vertex_ai/claude-sonnet-4-5, vertex_location: global}\n",
        &[("VERTEXAI_PROJECT", "env-project")],
    )
    .unwrap();
    let g = cfg.deployments[0].target.as_ref().unwrap();
    assert_eq!(
        g.api_base,
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4"
    );
    assert_eq!(
        (g.kind, g.auth.clone()),
        (
            ferrolite_providers::ProviderKind::VertexGemini,
            ferrolite_providers::AuthScheme::GcpOAuth
        )
    );
    assert!(
        matches!(&cfg.deployments[0].cloud, Some(CloudAuth::Gcp(a)) if a.credentials.is_some())
    );
    let c = cfg.deployments[1].target.as_ref().unwrap();
    assert_eq!(
        c.api_base,
        "https://aiplatform.googleapis.com/v1/projects/env-project/locations/global"
    );
    assert_eq!(c.kind, ferrolite_providers::ProviderKind::VertexAnthropic);
    assert!(
        !format!("{:?}", cfg.deployments[0]).contains("service_account"),
        "credentials are secret"
    );
    let e = load(
        "model_list:\n  - model_name: g\n    litellm_params: {model: vertex_ai/gemini-2.5-flash}\n",
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("Vertex AI needs a project"), "{e}");
}

#[test]
fn bedrock_deployments_sign_in_their_region_or_are_refused_without_credentials() {
    let cfg = load(
        "model_list:\n  - model_name: b\n    litellm_params: {model: \"bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0\", aws_region_name: us-west-2}\n",
        &[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "secret")],
    )
    .unwrap();
    let t = cfg.deployments[0].target.as_ref().unwrap();
    assert_eq!(
        t.api_base,
        "https://bedrock-runtime.us-west-2.amazonaws.com"
    );
    assert_eq!(t.model, "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert_eq!(
        t.auth,
        ferrolite_providers::AuthScheme::AwsSigV4 {
            region: "us-west-2".into(),
            service: "bedrock"
        }
    );
    assert!(
        matches!(&cfg.deployments[0].cloud, Some(CloudAuth::Aws(a)) if a.access_key_id.expose() == "AKIDEXAMPLE")
    );
    let none = load("model_list:\n  - model_name: b\n    litellm_params: {model: bedrock/x, aws_region_name: us-east-1}\n", &[]).unwrap();
    assert!(none.deployments[0]
        .unsupported
        .as_ref()
        .unwrap()
        .reason
        .contains("no AWS credentials"));
    assert!(
        none.not_implemented.is_empty(),
        "{:?}",
        none.not_implemented
    );
}

#[test]
fn fallbacks_from_both_sections_router_winning() {
    let cfg = load(
        "litellm_settings:\n  fallbacks: [{\"a\": [\"b\"]}, {\"c\": [\"d\", \"e\"]}]\n  default_fallbacks: [\"z\"]\n  max_fallbacks: 3\nrouter_settings:\n  context_window_fallbacks: {\"a\": [\"long\"]}\n  max_fallbacks: 2\n",
        &[],
    )
    .unwrap();
    let f = &cfg.fallbacks;
    assert_eq!(f.general["c"], ["d", "e"]);
    assert_eq!(f.context_window["a"], ["long"]);
    assert_eq!(f.default, ["z"]);
    assert_eq!(f.max, Some(2));
    assert!(cfg.not_implemented.is_empty(), "{:?}", cfg.not_implemented);
    let e = load("litellm_settings:\n  fallbacks: [\"a\"]\n", &[]).unwrap_err();
    assert_eq!(paths(&e), vec!["litellm_settings.fallbacks[0]"]);
}

#[test]
fn redis_settings_from_config_or_env_and_the_password_stays_secret() {
    let cfg = load("router_settings:\n  redis_host: r.example\n  redis_port: 6380\n  redis_password: os.environ/RP\n", &[("RP", "hunter2")]).unwrap();
    let r = cfg.router.redis.as_ref().unwrap();
    assert_eq!(r.url.expose(), "redis://:hunter2@r.example:6380");
    assert!(!format!("{cfg:?}").contains("hunter2"));
    let env_only = load("", &[("REDIS_URL", "redis://10.0.0.1:6379")]).unwrap();
    assert_eq!(
        env_only.router.redis.unwrap().url.expose(),
        "redis://10.0.0.1:6379"
    );
    assert!(load("", &[]).unwrap().router.redis.is_none());
    assert!(load("router_settings:\n  redis_url: http://nope\n", &[]).is_err());
}

fn hook<'a>(cfg: &'a Config, name: &str) -> &'a crate::observe::webhook::WebhookSettings {
    cfg.litellm
        .webhooks
        .iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no webhook {name} in {:?}", cfg.litellm.webhooks))
}

fn header_names(w: &crate::observe::webhook::WebhookSettings) -> Vec<(String, String)> {
    w.headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.expose().to_owned()))
        .collect()
}

#[test]
fn a_generic_api_callback_from_callback_settings() {
    use crate::observe::webhook::LogFormat;
    let cfg = load(
        "litellm_settings:\n  callbacks: [\"my_hook\", \"prometheus\"]\ncallback_settings:\n  my_hook:\n    callback_type: generic_api\n    endpoint: os.environ/HOOK_URL\n    headers:\n      Authorization: os.environ/HOOK_AUTH\n      X-Env: prod\n    event_types: [llm_api_failure]\n    log_format: ndjson\n    batch_size: 50\n    flush_interval: 2.5\n    max_retries: 2\n  otel:\n    message_logging: false\n",
        &[
            ("HOOK_URL", "https://logs.example.com/ingest/tok-123"),
            ("HOOK_AUTH", "Bearer hook-secret"),
        ],
    )
    .unwrap();
    assert_eq!(cfg.litellm.callbacks, ["prometheus"]);
    let w = hook(&cfg, "my_hook");
    assert_eq!(
        w.endpoint.expose(),
        "https://logs.example.com/ingest/tok-123"
    );
    assert_eq!(w.origin, "https://logs.example.com");
    assert_eq!(
        header_names(w),
        [
            ("authorization".to_owned(), "Bearer hook-secret".to_owned()),
            ("x-env".to_owned(), "prod".to_owned())
        ]
    );
    assert_eq!((w.success, w.failure), (false, true));
    assert_eq!(w.log_format, LogFormat::Ndjson);
    assert_eq!(w.batch_size, 50);
    assert_eq!(w.flush_interval, std::time::Duration::from_millis(2500));
    assert_eq!(w.max_retries, 2);
    assert!(cfg.not_implemented.is_empty(), "{:?}", cfg.not_implemented);
    let debug = format!("{cfg:?}");
    assert!(
        !debug.contains("hook-secret") && !debug.contains("tok-123"),
        "{debug}"
    );

    // Under litellm_settings too; the top-level entry wins; an entry no
    // list names is on for every event.
    let cfg = load(
        "litellm_settings:\n  callback_settings:\n    a: {callback_type: generic_api, endpoint: \"http://in-litellm/a\"}\n    b: {callback_type: generic_api, endpoint: \"http://in-litellm/b\", log_format: single}\ncallback_settings:\n  b: {callback_type: generic_api, endpoint: \"http://top/b\"}\n",
        &[],
    )
    .unwrap();
    assert_eq!(hook(&cfg, "a").endpoint.expose(), "http://in-litellm/a");
    let b = hook(&cfg, "b");
    assert_eq!(b.endpoint.expose(), "http://top/b");
    assert_eq!(b.log_format, LogFormat::JsonArray);
    assert!(b.success && b.failure);
    assert_eq!(b.batch_size, 512);
    assert_eq!(b.flush_interval, std::time::Duration::from_secs(5));
}

#[test]
fn generic_api_from_the_environment_and_urls_in_callbacks() {
    let env = [
        ("GENERIC_LOGGER_ENDPOINT", "http://collector:8080/logs"),
        (
            "GENERIC_LOGGER_HEADERS",
            "Authorization=Bearer env-tok,X-Source=gw",
        ),
        ("DEFAULT_BATCH_SIZE", "7"),
    ];
    let cfg = load(
        "litellm_settings:\n  success_callback: [generic_api]\n",
        &env,
    )
    .unwrap();
    let w = hook(&cfg, "generic_api");
    assert_eq!(w.endpoint.expose(), "http://collector:8080/logs");
    assert_eq!((w.success, w.failure), (true, false));
    assert_eq!(w.batch_size, 7);
    assert_eq!(
        header_names(w),
        [
            ("authorization".to_owned(), "Bearer env-tok".to_owned()),
            ("x-source".to_owned(), "gw".to_owned())
        ]
    );
    assert!(cfg.not_implemented.is_empty(), "{:?}", cfg.not_implemented);

    // Older `generic` and `webhook` are the same webhook; the lists add up.
    let cfg = load(
        "litellm_settings:\n  success_callback: [generic]\n  failure_callback: [webhook]\n",
        &env,
    )
    .unwrap();
    assert_eq!(cfg.litellm.webhooks.len(), 1);
    let w = hook(&cfg, "generic_api");
    assert!(w.success && w.failure);
    let cfg = load("litellm_settings:\n  failure_callback: generic_api\n", &env).unwrap();
    assert_eq!(
        (
            hook(&cfg, "generic_api").success,
            hook(&cfg, "generic_api").failure
        ),
        (false, true)
    );

    // A URL as the name: defaults, plus the environment's headers.
    let cfg = load(
        "litellm_settings:\n  callbacks: [\"https://hooks.example.com/T0/secret-path\"]\n  generic_logger_headers: {X-Source: cfg}\n",
        &env,
    )
    .unwrap();
    let w = hook(&cfg, "https://hooks.example.com");
    assert_eq!(
        w.endpoint.expose(),
        "https://hooks.example.com/T0/secret-path"
    );
    assert!(w.success && w.failure);
    assert_eq!(
        header_names(w)[1],
        ("x-source".to_owned(), "cfg".to_owned())
    );
    assert!(cfg.not_implemented.is_empty(), "{:?}", cfg.not_implemented);
    assert!(!format!("{cfg:?}").contains("secret-path"));
}

#[test]
fn bad_webhook_settings_are_errors_with_their_path() {
    let e = load(
        "litellm_settings:\n  success_callback: [generic_api]\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(paths(&e), vec!["litellm_settings.success_callback"]);
    assert!(e.to_string().contains("GENERIC_LOGGER_ENDPOINT"), "{e}");
    let e = load(
        "litellm_settings:\n  callbacks: [generic_api]\n",
        &[("GENERIC_LOGGER_ENDPOINT", "ftp://x/y")],
    )
    .unwrap_err();
    assert_eq!(paths(&e), vec!["litellm_settings.callbacks"]);

    let e = load(
        "callback_settings:\n  nourl: {callback_type: generic_api}\n  badurl: {callback_type: generic_api, endpoint: \"not a url\"}\n  fmt: {callback_type: generic_api, endpoint: \"http://h/\", log_format: xml, event_types: [llm_api_success, llm_api_stream], batch_size: 0, flush_interval: soon, headers: [a, b], max_retries: -1}\n  listed: {callback_type: generic_api, endpoint: 42}\n",
        &[],
    )
    .unwrap_err();
    let mut p = paths(&e);
    p.sort();
    assert_eq!(
        p,
        vec![
            "callback_settings.badurl.endpoint",
            "callback_settings.fmt.batch_size",
            "callback_settings.fmt.event_types[1]",
            "callback_settings.fmt.flush_interval",
            "callback_settings.fmt.headers",
            "callback_settings.fmt.log_format",
            "callback_settings.fmt.max_retries",
            "callback_settings.listed.endpoint",
            "callback_settings.nourl.endpoint",
        ],
        "{e}"
    );
    let e = load("callback_settings: [a]\n", &[]).unwrap_err();
    assert_eq!(paths(&e), vec!["callback_settings"]);
    let e = load(
        "callback_settings:\n  h: {callback_type: generic_api, endpoint: \"http://h/\", headers: {\"bad header\": x}}\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(paths(&e), vec!["callback_settings.h.headers.bad header"]);

    // Not errors: keys of other callbacks, unknown entry keys.
    let cfg = load(
        "callback_settings:\n  h: {callback_type: generic_api, endpoint: \"http://h/\", retry_jitter: 1}\n  langfuse: {public_key: x}\n",
        &[],
    )
    .unwrap();
    let mut ni = cfg.not_implemented.clone();
    ni.sort();
    assert_eq!(
        ni,
        [
            "callback_settings.h.retry_jitter",
            "callback_settings.langfuse"
        ]
    );
}
