//! Starts child processes so that they cannot outlive this process.
//!
//! Linux's parent-death signal fires when the *thread* that forked the child ends, so children
//! are forked by one supervisor thread that lives until the process exits. Each child gets its
//! own process group and `setpriv --pdeathsig KILL` (util-linux), which sets the signal in the
//! child before it execs the real program, without unsafe code here.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// What to start: a program, its arguments, and the file that takes its stdout and stderr.
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: File,
}

type Request = (Spec, Sender<std::io::Result<Child>>);

fn supervisor() -> &'static Mutex<Sender<Request>> {
    static SUPERVISOR: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    SUPERVISOR.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::Builder::new()
            .name("testenv-supervisor".into())
            .spawn(move || {
                for (spec, reply) in rx {
                    let _ = reply.send(spawn_here(spec));
                }
                // The sender lives in a static, so this is reached only if it is dropped;
                // park so the thread (the children's "parent") never ends before the process.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawning the supervisor thread");
        Mutex::new(tx)
    })
}

fn spawn_here(spec: Spec) -> std::io::Result<Child> {
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let mut command = match setpriv {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(&spec.program);
            c
        }
        None => Command::new(&spec.program),
    };
    command
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(spec.log.try_clone()?)
        .stderr(spec.log)
        .process_group(0)
        .spawn()
}

/// Spawns a child on the supervisor thread.
pub fn spawn(spec: Spec) -> std::io::Result<Child> {
    let (tx, rx) = channel();
    supervisor()
        .lock()
        .map_err(|_| std::io::Error::other("supervisor lock poisoned"))?
        .send((spec, tx))
        .map_err(|_| std::io::Error::other("supervisor thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("supervisor thread is gone"))?
}

/// SIGTERM to the child's process group, then SIGKILL after `grace`.
pub fn stop(child: &mut Child, grace: Duration) {
    let pgid = Pid::from_raw(child.id() as i32);
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait();
}
