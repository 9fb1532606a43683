//! Logging: `tracing` to stderr, as JSON lines or text, filtered by a level or an
//! `EnvFilter` directive (`info`, `checkout_link_operator=debug,kube=info`, ...).
//!
//! Nothing the operator logs holds the Polar token: [`crate::polar::Token`] prints as
//! `Token(***)`, and no request headers are ever logged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    #[default]
    Text,
}

/// The filter for `level`: a level name or any `EnvFilter` directive.
pub fn filter(level: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(level).map_err(|e| format!("invalid log level {level:?}: {e}"))
}

/// Installs the global subscriber.
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let filter = filter(level)?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_ansi(false)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))
}
