//! Killing the process that owns a control plane — even with SIGKILL, where no destructor
//! runs — takes etcd, kube-apiserver and kube-controller-manager with it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn alive(pid: u32) -> bool {
    // A zombie has exited; it only waits for its new parent to reap it.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

#[test]
fn a_killed_owner_leaves_no_etcd_or_apiserver_behind() {
    killed_owner_leaves_nothing("plain", &[], &["etcd", "kube-apiserver"]);
}

#[test]
fn a_killed_owner_leaves_no_controller_manager_behind() {
    killed_owner_leaves_nothing(
        "kcm",
        &["--controller-manager"],
        &["etcd", "kube-apiserver", "kube-controller-manager"],
    );
}

/// Starts `testenv ARGS`, checks that exactly `expected` run, SIGKILLs testenv and waits for
/// every one of them to be gone.
fn killed_owner_leaves_nothing(label: &str, args: &[&str], expected: &[&str]) {
    let dir = std::env::temp_dir().join(format!("testenv-orphans-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let kubeconfig = dir.join("kubeconfig-out");
    let mut owner = Command::new(env!("CARGO_BIN_EXE_testenv"))
        .args(args)
        .arg("--dir")
        .arg(&dir)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .spawn()
        .expect("testenv starts");

    let deadline = Instant::now() + testenv::scaled(Duration::from_secs(120));
    while !kubeconfig.exists() {
        assert!(
            owner.try_wait().unwrap().is_none(),
            "testenv exited before it was ready"
        );
        assert!(
            Instant::now() < deadline,
            "the control plane did not start in time"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pids: Vec<(String, u32)> = std::fs::read_to_string(dir.join("pids"))
        .unwrap()
        .lines()
        .map(|line| {
            let (name, pid) = line.split_once(' ').unwrap();
            (name.to_string(), pid.parse().unwrap())
        })
        .collect();
    let names: Vec<&str> = pids.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, expected, "{pids:?}");
    assert!(
        pids.iter().all(|(_, pid)| alive(*pid)),
        "children should run while the owner does"
    );

    owner.kill().unwrap(); // SIGKILL: no Drop, no signal handler
    owner.wait().unwrap();

    let deadline = Instant::now() + testenv::scaled(Duration::from_secs(10));
    while pids.iter().any(|(_, pid)| alive(*pid)) {
        assert!(Instant::now() < deadline, "orphans left behind: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
