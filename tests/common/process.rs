//! The operator as a process: the built `checkout-link-operator` binary with a kubeconfig,
//! arguments and environment, its log in a file, its metrics/health address on a free port;
//! killed when dropped (and, when the test fails, the end of its log printed).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::eventually::{eventually, eventually_every};

/// The `leader` gauge: 1 while the process runs the controller.
pub const LEADER: &str = "checkout_link_operator_leader";
/// Reconciles, by result.
pub const RECONCILES: &str = "checkout_link_operator_reconciles_total";
/// Requests sent to Polar, by verb and status class.
pub const POLAR_REQUESTS: &str = "checkout_link_operator_polar_requests_total";
/// How long a process may take to reach a state (lead, be ready) on a loaded 2-core machine
/// (before scaling).
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a process may take to exit once it should (before scaling).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// One operator process.
pub struct Operator {
    /// Names it in messages (its leader-election identity, where it has one).
    pub name: String,
    child: Mutex<Child>,
    addr: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Operator {
    /// Starts the binary with `--kubeconfig`, `--metrics-addr` on a free port and `args`, its
    /// output in `log`. Of the environment, only `env` sets operator options: inherited
    /// `CHECKOUT_LINK_OPERATOR_*` variables are removed.
    pub fn spawn<A: AsRef<OsStr>>(
        name: &str,
        kubeconfig: &Path,
        log: &Path,
        args: impl IntoIterator<Item = A>,
        env: &[(&str, &str)],
    ) -> Operator {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let out = std::fs::File::create(log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_checkout-link-operator"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CHECKOUT_LINK_OPERATOR_") {
                command.env_remove(key);
            }
        }
        command
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--metrics-addr", &addr])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        Operator {
            name: name.to_owned(),
            child: Mutex::new(command.spawn().expect("start the operator")),
            addr,
            log: log.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How it exited, if it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.child().try_wait().expect("try_wait")
    }

    /// Panics when the process has exited.
    pub fn assert_running(&self) {
        if let Some(status) = self.exit_status() {
            panic!("{} exited ({status})", self.name);
        }
    }

    /// Status and body of `GET path` on the metrics address, `None` while it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        self.get("/readyz").await.is_some_and(|(s, _)| s == 200)
    }

    /// The sum of a metric's samples (all label sets); 0 without any. `/metrics` must answer.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics").await.expect("/metrics answers");
        samples(&text, name).unwrap_or(0.0)
    }

    /// Requests sent to Polar by this process.
    pub async fn polar_requests(&self) -> f64 {
        self.metric(POLAR_REQUESTS).await
    }

    /// The `leader` gauge, `None` while `/metrics` does not answer or has none.
    pub async fn leads(&self) -> Option<bool> {
        let (_, text) = self.get("/metrics").await?;
        Some(samples(&text, LEADER)? == 1.0)
    }

    /// Waits for `probe` while the process runs (panics at once if it exits).
    pub async fn wait<T>(&self, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
        let what = format!("{}: {what}", self.name);
        eventually(&what, PROCESS_TIMEOUT, async || {
            self.assert_running();
            probe().await.ok_or("not yet")
        })
        .await
    }

    /// Waits until `/healthz` answers 200 and `/readyz` 200 with a body containing `body`.
    pub async fn wait_ready(&self, body: &str) {
        self.wait(&format!("/readyz {body:?}"), async || {
            let healthy = self.get("/healthz").await.is_some_and(|(s, _)| s == 200);
            let ready = self.get("/readyz").await;
            let ready = ready.is_some_and(|(s, b)| s == 200 && b.contains(body));
            (healthy && ready).then_some(())
        })
        .await
    }

    /// Waits until this process leads and `/readyz` answers 200: its caches are synced (a
    /// standby is ready too, but does not lead).
    pub async fn wait_leading_and_ready(&self) {
        let what = "the leader gauge at 1 and /readyz answering 200";
        self.wait(what, async || {
            (self.leads().await == Some(true) && self.ready().await).then_some(())
        })
        .await
    }

    /// Sends a signal with `kill`.
    pub fn signal(&self, signal: &str) {
        let pid = self.child().id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&self) {
        let mut child = self.child();
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    /// Waits for the process to exit (looking often: tests time the exit).
    pub async fn exited(&self) -> ExitStatus {
        let what = format!("{} to exit", self.name);
        let every = Duration::from_millis(20);
        eventually_every(&what, EXIT_TIMEOUT, every, async || {
            self.exit_status().ok_or("still running")
        })
        .await
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "----- {} (last lines of {}) -----",
                self.name,
                self.log.display()
            );
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The sum of the samples of metric `name` in a Prometheus text exposition, `None` without any.
pub fn samples(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}
