//! `polar-emulator`: serve the emulator until SIGTERM or Ctrl-C.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use polar_emulator::{Config, DEFAULT_API_VERSION, PRODUCTION_URL_TEMPLATE, Seed};
use tracing_subscriber::EnvFilter;

/// A faithful, stateful local emulator of Polar's checkout-links API.
///
/// Serves /v1/checkout-links/ (and the product, discount and organization
/// reads) as Polar does, from a YAML seed of organizations, tokens, products
/// and discounts. Test controls live under /__emulator/ (see emulator/README.md).
#[derive(Debug, Parser)]
#[command(
    name = "polar-emulator",
    version,
    after_long_help = "Test controls (no auth): POST /__emulator/products/{id}/archive, \
GET|PATCH|DELETE /__emulator/checkout-links/{id}, GET|PUT|DELETE /__emulator/faults, \
GET|DELETE /__emulator/counters, GET|DELETE /__emulator/requests, \
GET|PUT|DELETE /__emulator/api-versions, POST /__emulator/reset."
)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (printed on startup).
    #[arg(long, env = "POLAR_EMULATOR_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,

    /// Seed file (YAML). Default: the built-in demo seed (examples/emulator-seed.yaml).
    #[arg(long, env = "POLAR_EMULATOR_SEED")]
    seed: Option<PathBuf>,

    /// Requests per window per organization (OAT) or user (PAT); 0 disables rate limiting.
    #[arg(long, env = "POLAR_EMULATOR_RATE_LIMIT", default_value_t = 500)]
    rate_limit: u32,

    /// Length of the fixed rate-limit window (e.g. 60s, 500ms, 1m); retry-after equals it.
    #[arg(long, env = "POLAR_EMULATOR_RATE_LIMIT_WINDOW", default_value = "60s", value_parser = parse_duration)]
    rate_limit_window: Duration,

    /// Also limit tokens not seen in the last 300 s to 60 requests per window (Polar's pending_auth bucket).
    #[arg(long, env = "POLAR_EMULATOR_COLD_TOKEN_LIMIT")]
    cold_token_limit: bool,

    /// Template of a link's `url`; {client_secret} and {base_url} are replaced.
    /// Use '{base_url}/v1/checkout-links/{client_secret}/redirect' for working local links.
    #[arg(long, env = "POLAR_EMULATOR_URL_TEMPLATE", default_value = PRODUCTION_URL_TEMPLATE)]
    url_template: String,

    /// Polar-Version values served, comma-separated (YYYY-MM); any other value gets
    /// Polar's 404 {"detail":"Not Found"}.
    #[arg(
        long,
        env = "POLAR_EMULATOR_API_VERSIONS",
        value_delimiter = ',',
        default_value = "2026-04,2026-10,2027-01"
    )]
    api_versions: Vec<String>,

    /// The version of requests without a Polar-Version header; one of --api-versions.
    #[arg(long, env = "POLAR_EMULATOR_DEFAULT_API_VERSION", default_value = DEFAULT_API_VERSION)]
    default_api_version: String,

    /// Log format on stderr (level from RUST_LOG, default info).
    #[arg(long, env = "POLAR_EMULATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (number, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = number
        .parse()
        .with_context(|| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("invalid duration unit in {s:?} (use ms, s, m or h)"),
    };
    if secs <= 0.0 {
        bail!("the window must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// SIGTERM or Ctrl-C. The SIGTERM handler is installed when this is called, not when the
/// future is first polled, so a SIGTERM sent right after the "listening" line is not lost
/// (it would otherwise kill the process with the default action).
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let seed = match &cli.seed {
        Some(path) => Seed::from_file(path)?,
        None => Seed::demo(),
    };
    let config = Config {
        seed,
        rate_limit: cli.rate_limit,
        rate_limit_window: cli.rate_limit_window,
        cold_token_limit: cli.cold_token_limit,
        url_template: cli.url_template,
        api_versions: cli
            .api_versions
            .iter()
            .map(|v| v.trim().to_string())
            .collect(),
        default_api_version: cli.default_api_version.trim().to_string(),
    };
    let stop = stop_signal();
    let emulator = polar_emulator::spawn(config, cli.listen).await?;
    println!("polar-emulator listening on {}", emulator.base_url());
    std::io::stdout().flush()?;
    let versions = emulator.api_versions();
    tracing::info!(
        address = %emulator.base_url(),
        rate_limit = cli.rate_limit,
        api_versions = %versions.versions.join(","),
        default_api_version = %versions.default,
        "serving"
    );
    stop.await;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}
