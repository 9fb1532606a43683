//! `make demo` end to end: `hack/demo.sh` builds everything, starts a control plane, the
//! emulator and the operator, applies examples/checkoutlinks.yaml and waits for Ready.
//!
//! It runs `cargo build` (a no-op after `cargo test` built the binaries) and its own control
//! plane, on ports picked free for the run.

use std::process::Command;

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").to_string()
}

#[test]
fn the_demo_brings_every_example_link_to_ready_and_cleans_up() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg("hack/demo.sh")
        .current_dir(repo)
        .env("DEMO_EXIT_AFTER_READY", "1")
        .env("DEMO_EMULATOR_ADDR", free_addr())
        .env("DEMO_METRICS_ADDR", free_addr())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for name in [
        "launch-email",
        "ebook-no-codes",
        "team-five-seats",
        "consulting-hour",
    ] {
        assert!(
            stdout.contains(&format!("checkoutlink.polar.sh/{name} condition met")),
            "{name} not Ready:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("launch-email: 2 orders, ")
            && stdout.contains(r#"[{"orders":1,"source":"newsletter"}]"#)
            && stdout.contains("ebook-no-codes: 1 order, "),
        "campaign results:\n{stdout}"
    );
    assert!(
        stdout.contains("?utm_source=newsletter&utm_medium=email&utm_campaign=launch"),
        "{stdout}"
    );
    // One manifest, two organisations: each got its own products.
    assert!(
        stdout.contains("a1000000-0000-4000-8000-000000000001")
            && stdout.contains("a2000000-0000-4000-8000-000000000002"),
        "the two environments' resolved products: {stdout}"
    );
    assert!(
        stdout.contains("EBOOK_CHECKOUT_URL"),
        "the storefront ConfigMap: {stdout}"
    );
    assert!(
        stdout.contains("control plane stopped"),
        "the demo cleaned up:\n{stdout}"
    );
    let pidfile = std::path::Path::new(repo).join(".local/cluster.pid");
    assert!(!pidfile.exists(), "the control plane is still registered");
}
