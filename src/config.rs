//! The operator's configuration: one clap-derive [`Config`], every flag with an environment
//! variable fallback (`CHECKOUT_LINK_OPERATOR_<FLAG>`), and the [`Settings`] the controller
//! runs with (what tests build directly).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::leader::{self, Election, Timing};
use crate::telemetry::LogFormat;

/// Command-line flags (each also read from the environment variable shown in `--help`).
#[derive(Parser, Clone, Debug)]
#[command(
    name = "checkout-link-operator",
    version,
    about = "Manages Polar checkout links as CheckoutLink resources"
)]
pub struct Config {
    /// Kubeconfig file to use; without it, the in-cluster config or the default kubeconfig
    /// (`KUBECONFIG`, `~/.kube/config`).
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Default credentials Secret as `namespace/name` (key `token`, optional key `server`:
    /// `production`, `sandbox` or a base URL), used by CheckoutLinks without
    /// `spec.credentialsSecretRef`.
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_DEFAULT_CREDENTIALS_SECRET")]
    pub default_credentials_secret: Option<SecretName>,

    /// How often each organisation's links are listed from Polar to find drift (one call per
    /// 100 links, whatever the number of CheckoutLinks), e.g. `10m`, `30s`.
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// How many CheckoutLinks are reconciled at the same time.
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,

    /// Watch only CheckoutLinks matching this label selector (for sharding), e.g. `shard=a`.
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_LABEL_SELECTOR")]
    pub label_selector: Option<String>,

    /// How long a deletion keeps retrying when the credentials are missing or rejected,
    /// counted from the deletion request; after it, the finalizer is released and the Polar
    /// link is left in place (Warning event `Orphaned`).
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_DELETION_GRACE", default_value = "10m", value_parser = parse_duration)]
    pub deletion_grace: Duration,

    /// Timeout of one request to Polar.
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_POLAR_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub polar_timeout: Duration,

    /// Share of Polar's rate limit the operator may use, in (0, 1].
    #[arg(
        long,
        env = "CHECKOUT_LINK_OPERATOR_POLAR_RATE_SHARE",
        default_value_t = 0.9
    )]
    pub polar_rate_share: f64,

    /// Polar's per-minute limit for the organisations' tokens, when it is not the server's
    /// default (production 500, sandbox 100).
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_POLAR_RATE_LIMIT")]
    pub polar_rate_limit: Option<u32>,

    /// The Polar API version sent as `Polar-Version` on every request (`YYYY-MM`). Change it
    /// only to follow Polar's quarterly version rotation.
    #[arg(
        long,
        env = "CHECKOUT_LINK_OPERATOR_POLAR_API_VERSION",
        default_value = crate::polar::http::API_VERSION,
        value_parser = parse_api_version
    )]
    pub polar_api_version: String,

    /// Accept credentials Secrets whose `server` is a plain `http://` URL of a host other than
    /// the loopback interface. Off by default: the token would travel in clear text, and any
    /// user who can write a Secret could point the operator at an address inside the cluster.
    #[arg(
        long,
        env = "CHECKOUT_LINK_OPERATOR_ALLOW_INSECURE_SERVERS",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_insecure_servers: bool,

    /// Count orders and revenue per link into `status.results` (campaign results): one orders
    /// sweep per organisation per resync interval. Needs the token scope `orders:read`; a
    /// resource opts out with `spec.campaignResults: false`.
    #[arg(
        long,
        env = "CHECKOUT_LINK_OPERATOR_CAMPAIGN_RESULTS",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub campaign_results: bool,

    /// How often campaign results read the last 30 days of orders again, for refunds (Polar
    /// has no filter on an order's last change).
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_RESULTS_RESCAN_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub results_rescan_interval: Duration,

    /// Log format.
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or filter directive, e.g. `info` or `checkout_link_operator=debug,info`.
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Address of the `/healthz`, `/readyz` and `/metrics` endpoints.
    #[arg(
        long,
        env = "CHECKOUT_LINK_OPERATOR_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_addr: SocketAddr,

    /// Reconcile only while holding a Lease, so that of several replicas exactly one acts and
    /// a standby takes over when it stops. Without it, the process always reconciles.
    /// `--leader-election` alone, or `--leader-election=true|false` (also `1`/`0`, `yes`/`no`).
    #[arg(
        long,
        env = "CHECKOUT_LINK_OPERATOR_LEADER_ELECTION",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub leader_election: bool,

    /// Namespace of the Lease; default: `POD_NAMESPACE`, else the pod's service account
    /// namespace.
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the Lease. Shards (Deployments with their own `--namespace` or
    /// `--label-selector`) each need their own.
    #[arg(
        long,
        env = "CHECKOUT_LINK_OPERATOR_LEADER_ELECTION_LEASE_NAME",
        default_value = leader::DEFAULT_LEASE_NAME
    )]
    pub leader_election_lease_name: String,

    /// How long the Lease stays valid after each renewal (whole seconds, at least 2s): a
    /// standby takes over within about this long after the leader dies.
    #[arg(
        long,
        env = "CHECKOUT_LINK_OPERATOR_LEADER_ELECTION_LEASE_DURATION",
        default_value = "15s",
        value_parser = parse_lease_duration
    )]
    pub leader_election_lease_duration: Duration,

    /// This replica's identity in the Lease, unique per replica; default: `POD_NAME`, else
    /// the host name with a random suffix.
    #[arg(long, env = "CHECKOUT_LINK_OPERATOR_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,
}

impl Config {
    /// What the controller runs with.
    pub fn settings(&self) -> Settings {
        Settings {
            namespace: self.namespace.clone(),
            label_selector: self.label_selector.clone(),
            default_credentials: self.default_credentials_secret.clone(),
            resync_interval: self.resync_interval,
            concurrency: self.concurrency,
            deletion_grace: self.deletion_grace,
            polar_timeout: self.polar_timeout,
            polar_rate_share: self.polar_rate_share,
            polar_rate_limit: self.polar_rate_limit,
            polar_api_version: self.polar_api_version.clone(),
            allow_insecure_servers: self.allow_insecure_servers,
            campaign_results: self.campaign_results,
            results_rescan_interval: self.results_rescan_interval,
        }
    }

    /// The leader election to run: `None` without `--leader-election`. Reads `POD_NAMESPACE`,
    /// `POD_NAME`, the service account's namespace file and the host name for the defaults.
    pub fn election(&self) -> Result<Option<Election>, String> {
        if !self.leader_election {
            return Ok(None);
        }
        let env = |name| std::env::var(name).ok();
        let namespace = leader::resolve_namespace(
            self.leader_election_namespace.as_deref(),
            env("POD_NAMESPACE").as_deref(),
            std::fs::read_to_string(leader::SERVICE_ACCOUNT_NAMESPACE)
                .ok()
                .as_deref(),
        )?;
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| env("HOSTNAME"));
        let identity = leader::resolve_identity(
            self.leader_election_identity.as_deref(),
            env("POD_NAME").as_deref(),
            hostname.as_deref(),
            &leader::random_suffix(),
        );
        Ok(Some(Election {
            namespace,
            lease_name: self.leader_election_lease_name.clone(),
            identity,
            timing: Timing::new(self.leader_election_lease_duration),
        }))
    }

    /// The Kubernetes client: `--kubeconfig` when given, else in-cluster or the default.
    pub async fn kube_client(&self) -> Result<kube::Client, String> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| format!("cannot read the kubeconfig {}: {e}", path.display()))?;
                kube::Config::from_custom_kubeconfig(
                    kubeconfig,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await
                .map_err(|e| format!("cannot use the kubeconfig {}: {e}", path.display()))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| format!("no Kubernetes configuration found: {e}"))?,
        };
        kube::Client::try_from(config)
            .map_err(|e| format!("cannot build the Kubernetes client: {e}"))
    }
}

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch one namespace only.
    pub namespace: Option<String>,
    /// Watch only CheckoutLinks with these labels.
    pub label_selector: Option<String>,
    /// The credentials Secret of links without `spec.credentialsSecretRef`.
    pub default_credentials: Option<SecretName>,
    /// How often a settled link is checked against Polar.
    pub resync_interval: Duration,
    /// Reconciles at the same time.
    pub concurrency: u16,
    /// How long a deletion retries when credentials are missing or rejected.
    pub deletion_grace: Duration,
    /// Timeout of one Polar request.
    pub polar_timeout: Duration,
    /// Share of Polar's rate limit to use.
    pub polar_rate_share: f64,
    /// Per-minute limit overriding the server's default.
    pub polar_rate_limit: Option<u32>,
    /// The `Polar-Version` sent on every request.
    pub polar_api_version: String,
    /// Whether `http://` servers other than loopback are accepted.
    pub allow_insecure_servers: bool,
    /// Whether orders are counted into `status.results`.
    pub campaign_results: bool,
    /// Time between two reads of the refund window of orders.
    pub results_rescan_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            namespace: None,
            label_selector: None,
            default_credentials: None,
            resync_interval: Duration::from_secs(600),
            concurrency: 4,
            deletion_grace: Duration::from_secs(600),
            polar_timeout: crate::polar::http::DEFAULT_TIMEOUT,
            polar_rate_share: crate::polar::governor::DEFAULT_SHARE,
            polar_rate_limit: None,
            polar_api_version: crate::polar::http::API_VERSION.to_owned(),
            allow_insecure_servers: false,
            campaign_results: false,
            results_rescan_interval: crate::polar::orders::RESCAN_EVERY,
        }
    }
}

/// A Secret by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::str::FromStr for SecretName {
    type Err = String;

    /// `namespace/name`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(SecretName {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(format!("{s:?} is not namespace/name")),
        }
    }
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Polar API version: `YYYY-MM`.
pub fn parse_api_version(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = s.len() == 7
        && s.as_bytes()[4] == b'-'
        && s[..4].bytes().all(|b| b.is_ascii_digit())
        && s[5..].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a Polar API version such as 2026-10 (YYYY-MM)"
        ))
    }
}

/// Parses `500ms`, `30s`, `10m`, `2h`, `1h30m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{s:?} is not a duration such as 30s, 10m or 1h30m"));
        }
        let n: u64 = rest[..digits].parse().map_err(|e| format!("{s:?}: {e}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            other => return Err(format!("{s:?}: unknown unit {other:?} (use ms, s, m or h)")),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A lease duration: [`parse_duration`], at least 2 s (the Lease counts whole seconds, and the
/// leader renews half-way).
pub fn parse_lease_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(2) {
        return Err(format!("{s:?}: a lease lasts at least 2s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let cases = [
            ("10m", 600_000),
            ("30s", 30_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("2h", 7_200_000),
            ("45", 45_000),
        ];
        for (input, ms) in cases {
            assert_eq!(
                parse_duration(input),
                Ok(Duration::from_millis(ms)),
                "{input}"
            );
        }
        for bad in ["", "m", "10x", "1.5s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_match_the_documentation() {
        let config = Config::try_parse_from(["checkout-link-operator"]).unwrap();
        assert_eq!(config.resync_interval, Duration::from_secs(600));
        assert_eq!(config.deletion_grace, Duration::from_secs(600));
        assert_eq!(config.concurrency, 4);
        assert_eq!(config.metrics_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(config.default_credentials_secret.is_none());
        assert!(!config.leader_election);
        assert_eq!(config.election(), Ok(None), "no election without the flag");
        assert_eq!(config.leader_election_lease_name, "checkout-link-operator");
        assert_eq!(
            config.leader_election_lease_duration,
            Duration::from_secs(15)
        );
        assert!(config.leader_election_namespace.is_none());
        assert!(config.leader_election_identity.is_none());
        assert_eq!(config.polar_api_version, "2026-10");
        assert!(!config.allow_insecure_servers);
        assert!(
            !config.campaign_results,
            "results are opt-in: they widen the token"
        );
        assert_eq!(config.results_rescan_interval, Duration::from_secs(3600));
    }

    #[test]
    fn the_api_version_is_a_year_and_a_month() {
        let config = Config::try_parse_from(["x", "--polar-api-version", "2027-01"]).unwrap();
        assert_eq!(config.settings().polar_api_version, "2027-01");
        for bad in ["2027", "2027-13", "27-01", "2027-1", "latest"] {
            assert!(
                Config::try_parse_from(["x", "--polar-api-version", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn leader_election_flags_are_read() {
        let config = Config::try_parse_from([
            "checkout-link-operator",
            "--leader-election",
            "--leader-election-namespace",
            "ops",
            "--leader-election-lease-name",
            "shard-a",
            "--leader-election-lease-duration",
            "4s",
            "--leader-election-identity",
            "pod-1",
        ])
        .unwrap();
        assert_eq!(
            config.election().unwrap(),
            Some(Election {
                namespace: "ops".to_owned(),
                lease_name: "shard-a".to_owned(),
                identity: "pod-1".to_owned(),
                timing: Timing::new(Duration::from_secs(4)),
            })
        );
        for (args, on) in [
            (&["x", "--leader-election=true"][..], true),
            (&["x", "--leader-election=false"], false),
            (&["x", "--leader-election=1"], true),
            (&["x", "--leader-election", "--namespace", "shop"], true),
        ] {
            let config = Config::try_parse_from(args).unwrap();
            assert_eq!(config.leader_election, on, "{args:?}");
        }
        for bad in ["1s", "500ms", "0"] {
            assert!(
                Config::try_parse_from(["x", "--leader-election-lease-duration", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn flags_are_read() {
        let config = Config::try_parse_from([
            "checkout-link-operator",
            "--default-credentials-secret",
            "ops/polar",
            "--resync-interval",
            "1s",
            "--namespace",
            "shop",
            "--label-selector",
            "shard=a",
            "--log-format",
            "json",
            "--concurrency",
            "8",
        ])
        .unwrap();
        let settings = config.settings();
        assert_eq!(
            settings.default_credentials.unwrap().to_string(),
            "ops/polar"
        );
        assert_eq!(settings.resync_interval, Duration::from_secs(1));
        assert_eq!(settings.namespace.as_deref(), Some("shop"));
        assert_eq!(settings.label_selector.as_deref(), Some("shard=a"));
        assert_eq!(settings.concurrency, 8);
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(Config::try_parse_from(["x", "--default-credentials-secret", "no-slash"]).is_err());
        assert!(Config::try_parse_from(["x", "--concurrency", "0"]).is_err());
    }
}
