//! The `polar-emulator` binary: flags, startup line, graceful shutdown.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_polar-emulator");

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--seed",
        "--rate-limit",
        "--rate-limit-window",
        "--cold-token-limit",
        "--url-template",
        "--log-format",
        "--api-versions",
        "--default-api-version",
        "POLAR_EMULATOR_API_VERSIONS",
        "POLAR_EMULATOR_DEFAULT_API_VERSION",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn a_bad_seed_file_fails_at_startup() {
    let dir = std::env::temp_dir().join(format!("polar-emulator-seed-{}", std::process::id()));
    std::fs::write(&dir, "tokens:\n  - token: nope_123\n").unwrap();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--seed"])
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("token prefix"));
}

#[tokio::test]
async fn the_binary_prints_its_address_serves_and_stops_on_sigterm() {
    common::install_crypto();
    let seed = format!(
        "{}/../examples/emulator-seed.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "0",
            "--rate-limit-window",
            "60s",
            "--log-format",
            "json",
            "--seed",
            &seed,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("polar-emulator listening on ")
        .expect(&line)
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/checkout-links/"))
        .bearer_auth(common::ACME_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn api_versions_whose_default_is_not_served_fail_at_startup() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--api-versions", "2027-01"])
        .env_remove("POLAR_EMULATOR_DEFAULT_API_VERSION")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the default API version 2026-10 is not one of the supported versions"),
        "{err}"
    );
}

#[tokio::test]
async fn the_api_versions_come_from_the_environment_too() {
    common::install_crypto();
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--rate-limit", "0"])
        .env("POLAR_EMULATOR_API_VERSIONS", "2027-01, 2027-04")
        .env("POLAR_EMULATOR_DEFAULT_API_VERSION", "2027-01")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("polar-emulator listening on ")
        .expect(&line)
        .to_string();
    let client = reqwest::Client::new();
    let get = |version: Option<&'static str>| {
        let mut req = client
            .get(format!("{base}/v1/checkout-links/"))
            .bearer_auth(common::ACME_TOKEN);
        if let Some(v) = version {
            req = req.header("polar-version", v);
        }
        req.send()
    };
    let r = get(None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["polar-version"], "2027-01");
    let r = get(Some("2027-04")).await.unwrap();
    assert_eq!(r.headers()["polar-version"], "2027-04");
    let r = get(Some("2026-10")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().get("polar-version").is_none());
    let _ = child.kill();
    let _ = child.wait();
}
