//! The Deployment's arguments are flags the operator parses, every flag is set from a value,
//! and the default credentials Secret comes from the values.

use std::collections::BTreeSet;
use std::time::Duration;

use checkout_link_operator::config::Config;
use checkout_link_operator::telemetry::LogFormat;
use clap::{CommandFactory, Parser};
use serde_json::{Value, json};

use crate::support::*;

const LEADER_ELECTION_FLAGS: [&str; 5] = [
    "--leader-election",
    "--leader-election-namespace",
    "--leader-election-lease-name",
    "--leader-election-lease-duration",
    "--leader-election-identity",
];

/// Parses the container's arguments the way the operator does. `$(POD_NAME)` is expanded by
/// the kubelet from the env var of that name, which the test checks comes from the pod's name.
fn parse_args(objects: &[Value]) -> Config {
    let env = &container(objects)["env"];
    let from_field = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["valueFrom"]["fieldRef"]["fieldPath"].clone())
    };
    assert_eq!(from_field("POD_NAME"), Some(json!("metadata.name")));
    assert_eq!(
        from_field("POD_NAMESPACE"),
        Some(json!("metadata.namespace"))
    );
    let args = args(objects)
        .into_iter()
        .map(|a| a.replace("$(POD_NAME)", "pod-0"));
    Config::try_parse_from(std::iter::once("checkout-link-operator".to_owned()).chain(args))
        .unwrap_or_else(|e| panic!("the operator refuses the chart's arguments: {e}"))
}

#[test]
fn every_operator_flag_is_set_from_the_values() {
    let objects = objects("allon", "ops", &["--values", all_on().to_str().unwrap()]);
    let passed: BTreeSet<String> = args(&objects)
        .iter()
        .map(|a| a.split('=').next().unwrap().to_owned())
        .collect();
    let flags: BTreeSet<String> = Config::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .filter(|f| !["--help", "--version", "--kubeconfig"].contains(&f.as_str()))
        .collect();
    let unmapped: Vec<&String> = flags.difference(&passed).collect();
    assert!(
        unmapped.is_empty(),
        "operator flags the chart never sets: {unmapped:?}"
    );
    for flag in LEADER_ELECTION_FLAGS {
        assert!(flags.contains(flag), "the operator has no {flag}");
    }

    let config = parse_args(&objects);
    let settings = config.settings();
    assert_eq!(settings.namespace.as_deref(), Some("shop"));
    assert_eq!(settings.label_selector.as_deref(), Some("shard in (a,b)"));
    assert_eq!(
        settings
            .default_credentials
            .map(|s| s.to_string())
            .as_deref(),
        Some("ops/allon-clo-credentials")
    );
    assert_eq!(settings.resync_interval, Duration::from_secs(300));
    assert_eq!(settings.concurrency, 8);
    assert_eq!(settings.deletion_grace, Duration::from_secs(5400));
    assert_eq!(settings.polar_timeout, Duration::from_secs(10));
    assert_eq!(settings.polar_rate_share, 0.5);
    assert_eq!(settings.polar_rate_limit, Some(300));
    assert_eq!(settings.polar_api_version, "2027-01");
    assert!(settings.allow_insecure_servers);
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.log_level, "checkout_link_operator=debug,info");
    assert_eq!(config.metrics_addr.to_string(), "0.0.0.0:9090");
    assert!(config.leader_election);
    assert_eq!(config.leader_election_namespace.as_deref(), Some("ops"));
    assert_eq!(
        config.leader_election_lease_name,
        "checkout-link-operator-all-on"
    );
    assert_eq!(
        config.leader_election_lease_duration,
        Duration::from_secs(20)
    );
    assert_eq!(config.leader_election_identity.as_deref(), Some("pod-0"));
}

/// The chart's defaults are the operator's, except the log format (JSON for log collectors)
/// and leader election (on, so that a second replica is safe).
#[test]
fn the_default_values_keep_the_operators_defaults() {
    let chart = parse_args(&objects("clo", "ops", &[]));
    let operator = Config::try_parse_from(["checkout-link-operator"]).unwrap();
    assert_eq!(chart.log_format, LogFormat::Json);
    assert_eq!(operator.log_format, LogFormat::Text);
    assert!(chart.leader_election && !operator.leader_election);
    assert_eq!(chart.leader_election_namespace.as_deref(), Some("ops"));
    assert_eq!(
        chart.leader_election_lease_name,
        "clo-checkout-link-operator"
    );
    assert_eq!(chart.leader_election_identity.as_deref(), Some("pod-0"));
    let (c, o) = (chart.settings(), operator.settings());
    assert_eq!(format!("{c:?}"), format!("{o:?}"));
    assert_eq!(chart.log_level, operator.log_level);
    assert_eq!(chart.metrics_addr, operator.metrics_addr);
    assert_eq!(
        chart.leader_election_lease_duration,
        operator.leader_election_lease_duration
    );

    let off = objects("clo", "ops", &["--set", "leaderElection.enabled=false"]);
    assert!(
        args(&off)
            .iter()
            .all(|a| !a.starts_with("--leader-election")),
        "{:?}",
        args(&off)
    );
    assert!(!parse_args(&off).leader_election);
    let extra = objects("clo", "ops", &["--set", "extraArgs[0]=--concurrency=2"]);
    assert_eq!(
        args(&extra).last().map(String::as_str),
        Some("--concurrency=2")
    );
}

#[test]
fn the_default_credentials_come_from_a_created_or_an_existing_secret() {
    let default_secret = |objects: &[Value]| {
        parse_args(objects)
            .default_credentials_secret
            .map(|s| s.to_string())
    };

    let none = objects("clo", "ops", &[]);
    assert_eq!(default_secret(&none), None);
    assert!(none.iter().all(|o| o["kind"] != "Secret"));

    let created = objects(
        "clo",
        "ops",
        &[
            "--set",
            "credentials.create=true,credentials.token=polar_oat_x,credentials.server=sandbox",
        ],
    );
    let secret = one(&created, "Secret");
    assert_eq!(
        secret["metadata"]["name"],
        "clo-checkout-link-operator-credentials"
    );
    assert_eq!(secret["metadata"]["namespace"], "ops");
    assert_eq!(
        secret["stringData"],
        json!({"token": "polar_oat_x", "server": "sandbox"})
    );
    assert_eq!(
        default_secret(&created).as_deref(),
        Some("ops/clo-checkout-link-operator-credentials")
    );
    let without_server = objects(
        "clo",
        "ops",
        &["--set", "credentials.create=true,credentials.token=t"],
    );
    assert_eq!(
        one(&without_server, "Secret")["stringData"],
        json!({"token": "t"})
    );

    for (existing, expected) in [("polar", "ops/polar"), ("billing/polar", "billing/polar")] {
        let objects = objects(
            "clo",
            "ops",
            &["--set", &format!("credentials.existingSecret={existing}")],
        );
        assert_eq!(default_secret(&objects).as_deref(), Some(expected));
        assert!(objects.iter().all(|o| o["kind"] != "Secret"));
    }
}
