//! `ferrolite`: the command line, compatible with `litellm`'s.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use ferrolite_core::config::{self, Config, Env};
use ferrolite_core::{Gateway, VERSION};
use ferrolite_server::{serve, store_glue, AppState};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than the system allocator: a request allocates and frees
/// a few hundred small blocks across threads (hyper buffers, JSON, headers,
/// the spend row), and glibc's malloc spent ~20% of the gateway's
/// instructions on them (bench/README.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Master keys that LiteLLM's docs and examples use: anyone can guess them.
const WEAK_MASTER_KEYS: &[&str] = &[
    "sk-1234",
    "sk-12345",
    "sk-123456",
    "sk-master",
    "sk-admin",
    "sk-test",
    "sk-password",
];

#[derive(Parser, Debug)]
#[command(
    name = "ferrolite",
    about = "An LLM gateway, drop-in compatible with the LiteLLM Proxy",
    disable_version_flag = true
)]
struct Cli {
    /// Path to a LiteLLM config.yaml.
    #[arg(short = 'c', long = "config", env = "CONFIG_FILE_PATH")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: String,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 4000)]
    port: u16,
    /// Single-model mode: the upstream model, e.g. openrouter/deepseek/deepseek-chat.
    #[arg(short = 'm', long = "model")]
    model: Option<String>,
    /// Single-model mode: the public name of the model.
    #[arg(long = "alias")]
    alias: Option<String>,
    /// Single-model mode: the upstream API base.
    #[arg(long = "api_base")]
    api_base: Option<String>,
    /// Debug logging.
    #[arg(long = "debug", env = "DEBUG", value_parser = clap::builder::FalseyValueParser::new())]
    debug: bool,
    /// Verbose debug logging.
    #[arg(long = "detailed_debug", env = "DETAILED_DEBUG", value_parser = clap::builder::FalseyValueParser::new())]
    detailed_debug: bool,
    /// Check the config, report every problem, and exit (1 on error).
    #[arg(long = "validate_config")]
    validate_config: bool,
    /// Accepted for compatibility: one ferrolite process already uses every core.
    #[arg(long = "num_workers", env = "NUM_WORKERS")]
    num_workers: Option<u32>,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// Drop parameters a provider does not support (litellm_settings.drop_params).
    #[arg(long = "drop_params")]
    drop_params: bool,
    /// Default request timeout in seconds (litellm_settings.request_timeout).
    #[arg(long = "request_timeout")]
    request_timeout: Option<f64>,
    /// Also serve /metrics, without a key, on this port.
    #[arg(long = "prometheus_metrics_port", env = "PROMETHEUS_METRICS_PORT")]
    prometheus_metrics_port: Option<u16>,
    /// LiteLLM server-choice and tuning flags: accepted so existing scripts keep
    /// working; ferrolite has one built-in server and ignores them.
    #[arg(long = "run_gunicorn", hide = true)]
    run_gunicorn: bool,
    #[arg(long = "run_hypercorn", hide = true)]
    run_hypercorn: bool,
    #[arg(long = "run_granian", hide = true)]
    run_granian: bool,
    #[arg(long = "use_queue", hide = true)]
    use_queue: bool,
    #[arg(long = "use_prisma_db_push", hide = true)]
    use_prisma_db_push: bool,
    #[arg(long = "telemetry", hide = true)]
    telemetry: Option<String>,
    #[arg(long = "keepalive_timeout", hide = true)]
    keepalive_timeout: Option<String>,
    #[arg(long = "max_requests_before_restart", hide = true)]
    max_requests_before_restart: Option<String>,
    #[arg(long = "granian_threads", hide = true)]
    granian_threads: Option<String>,
}

impl Cli {
    /// The accepted-but-ignored LiteLLM flags that were given.
    fn ignored_flags(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (set, name) in [
            (self.run_gunicorn, "--run_gunicorn"),
            (self.run_hypercorn, "--run_hypercorn"),
            (self.run_granian, "--run_granian"),
            (self.use_queue, "--use_queue"),
            (self.use_prisma_db_push, "--use_prisma_db_push"),
            (self.telemetry.is_some(), "--telemetry"),
            (self.keepalive_timeout.is_some(), "--keepalive_timeout"),
            (
                self.max_requests_before_restart.is_some(),
                "--max_requests_before_restart",
            ),
            (self.granian_threads.is_some(), "--granian_threads"),
        ] {
            if set {
                out.push(name);
            }
        }
        out
    }
}

fn load(cli: &Cli) -> Result<Config, String> {
    let env = Env::process();
    match (&cli.config, &cli.model) {
        (Some(path), _) => {
            config::load_file(path, &env).map_err(|e| format!("{}: {e}", path.display()))
        }
        (None, Some(model)) => {
            config::single_model(model, cli.alias.as_deref(), cli.api_base.as_deref(), &env)
                .map_err(|e| e.to_string())
        }
        (None, None) => Ok(Config::default()),
    }
}

fn init_logging(cli: &Cli, json: bool, verbose: bool) {
    let level = if cli.detailed_debug {
        "ferrolite=trace,ferrolite_core=trace,ferrolite_server=trace,ferrolite_providers=trace,info"
    } else if cli.debug || verbose {
        "ferrolite=debug,ferrolite_core=debug,ferrolite_server=debug,info"
    } else {
        match std::env::var("LITELLM_LOG")
            .map(|v| v.to_ascii_uppercase())
            .as_deref()
        {
            Ok("DEBUG") => "ferrolite=debug,ferrolite_core=debug,ferrolite_server=debug,info",
            Ok("ERROR") => "error",
            Ok("WARNING") | Ok("WARN") => "warn",
            _ => "info",
        }
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

fn warn_about(cfg: &Config, cli: &Cli) {
    match cfg.general.master_key.as_ref() {
        None => tracing::warn!(
            "NO MASTER KEY IS SET: every route is open to anyone who can reach this port. Set general_settings.master_key or LITELLM_MASTER_KEY."
        ),
        Some(k) if WEAK_MASTER_KEYS.contains(&k.expose()) || k.expose().len() < 8 => {
            tracing::warn!("the master key is a well-known example value or very short: anyone can guess it; use a long random key")
        }
        Some(k) if !k.expose().starts_with("sk-") => tracing::warn!("the master key does not start with \"sk-\" (LiteLLM requires that prefix)"),
        Some(_) => {}
    }
    let ignored = cli.ignored_flags();
    if !ignored.is_empty() {
        tracing::info!(
            "ignored LiteLLM server flags (ferrolite has one built-in server): {}",
            ignored.join(" ")
        );
    }
    if let Some(n) = cli.num_workers {
        tracing::info!("--num_workers {n} ignored: one ferrolite process already serves requests on every core");
    }
    if !cfg.not_implemented.is_empty() {
        tracing::warn!(
            "{} config key(s) are not implemented by ferrolite {VERSION} and are ignored (see docs/config.md): {}",
            cfg.not_implemented.len(),
            cfg.not_implemented.join(", ")
        );
    }
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
}

/// Where keys, users, teams and spend live: `general_settings.database_url`,
/// else `DATABASE_URL`, else an embedded SQLite file in the working directory.
fn database_url(cfg: &Config) -> String {
    cfg.general
        .database_url
        .as_ref()
        .map(|u| u.expose().to_owned())
        .or_else(|| Env::process().get("DATABASE_URL"))
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "sqlite://ferrolite.db".to_owned())
}

/// `--prometheus_metrics_port`: `/metrics` alone, without a key, on a
/// second port (LiteLLM refuses to start when that port cannot be bound).
async fn serve_metrics_port(host: &str, port: u16, state: &AppState) -> Result<(), ExitCode> {
    let addr = format!("{host}:{port}");
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
        tracing::error!("cannot listen on {addr} for metrics: {e}");
        ExitCode::FAILURE
    })?;
    if state.gw.metrics.is_none() {
        tracing::warn!("--prometheus_metrics_port: /metrics answers 404 until litellm_settings.callbacks includes \"prometheus\"");
    }
    tracing::info!("metrics on http://{addr}/metrics (no key required)");
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = ferrolite_server::routes::metrics::serve_standalone(listener, state).await {
            tracing::error!("metrics server error: {e}");
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    if cli.version {
        println!("ferrolite {VERSION}");
        return ExitCode::SUCCESS;
    }
    let mut cfg = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferrolite: invalid configuration\n{e}");
            return ExitCode::FAILURE;
        }
    };
    if cfg.general.master_key.is_none() {
        if let Some(k) = Env::process().get("LITELLM_MASTER_KEY") {
            cfg.general.master_key = Some(ferrolite_types::Secret::new(k));
        }
    }
    if cli.validate_config {
        println!("config OK: {} deployment(s)", cfg.deployments.len());
        for w in &cfg.warnings {
            println!("warning: {w}");
        }
        if !cfg.not_implemented.is_empty() {
            println!(
                "not implemented (ignored): {}",
                cfg.not_implemented.join(", ")
            );
        }
        return ExitCode::SUCCESS;
    }
    if cli.drop_params {
        cfg.litellm.drop_params = true;
    }
    if let Some(t) = cli.request_timeout.filter(|t| t.is_finite() && *t > 0.0) {
        cfg.litellm.request_timeout = Some(std::time::Duration::from_secs_f64(t));
    }
    // LiteLLM also reads JSON_LOGS from the environment.
    let json_env = std::env::var("JSON_LOGS")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    init_logging(
        &cli,
        cfg.litellm.json_logs || json_env,
        cfg.litellm.set_verbose,
    );
    if cli.prometheus_metrics_port.is_some() && cli.prometheus_metrics_port == Some(cli.port) {
        eprintln!("ferrolite: --prometheus_metrics_port must differ from --port");
        return ExitCode::FAILURE;
    }
    warn_about(&cfg, &cli);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferrolite: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let db_url = database_url(&cfg);
    runtime.block_on(async move {
        let store = match ferrolite_store::Store::connect(&db_url).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let mut gw = match Gateway::new(cfg) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let cost_map = Env::process().get("LITELLM_MODEL_COST_MAP_URL");
        if let Err(e) = store_glue::apply_price_map(&mut gw, cost_map.as_deref()) {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
        let spill = store_glue::spill_path(&gw, &db_url);
        let keys = store_glue::KeysAndSpend::attach(&mut gw, Arc::clone(&store), Some(spill));
        let addr = format!("{}:{}", cli.host, cli.port);
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let local: Option<SocketAddr> = listener.local_addr().ok();
        tracing::info!(
            "ferrolite {VERSION} ready on http://{} with {} deployment(s), {} store, in {:.1} ms",
            local.map(|a| a.to_string()).unwrap_or(addr),
            gw.router.all().len(),
            store.backend(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        let otel = gw.otel.clone();
        let webhooks = gw.webhooks.clone();
        let state = AppState::new(gw).with_store(store);
        if let Some(port) = cli.prometheus_metrics_port {
            if let Err(code) = serve_metrics_port(&cli.host, port, &state).await {
                return code;
            }
        }
        let served = serve(listener, state, shutdown_signal()).await;
        // In-flight requests are done: write the spend queue out.
        keys.shutdown(std::time::Duration::from_secs(10)).await;
        // Then the spans of those requests.
        if let Some(otel) = otel {
            otel.shutdown(std::time::Duration::from_secs(5)).await;
        }
        // And their webhook events.
        ferrolite_core::observe::webhook::shutdown_all(
            &webhooks,
            std::time::Duration::from_secs(10),
        )
        .await;
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("server error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
