//! `testenv`: runs a local control plane (etcd + kube-apiserver, and kube-controller-manager with
//! `--controller-manager`) until SIGINT/SIGTERM. `make cluster-up` starts it in the background;
//! `make cluster-down` stops it.
//!
//! Usage: testenv [--dir DIR] [--kubeconfig PATH] [--crds DIR] [--controller-manager]
#![forbid(unsafe_code)]

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut options = testenv::Options::default();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--dir" => options.dir = Some(PathBuf::from(value()?)),
            "--kubeconfig" => options.kubeconfig_out = Some(PathBuf::from(value()?)),
            "--controller-manager" => options.controller_manager = true,
            "--crds" => {
                let dir = PathBuf::from(value()?);
                for entry in std::fs::read_dir(&dir)? {
                    let path = entry?.path();
                    if path.extension().is_some_and(|x| x == "yaml") {
                        options.crds.push(path);
                    }
                }
            }
            "-h" | "--help" => {
                println!(
                    "testenv [--dir DIR] [--kubeconfig PATH] [--crds DIR] [--controller-manager]\n\n\
                     Starts etcd and kube-apiserver on loopback (and kube-controller-manager with\n\
                     the namespace and garbage-collector controllers, when asked) and runs until\n\
                     interrupted."
                );
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    if let Some(dir) = &options.dir {
        std::fs::create_dir_all(dir)?;
    }
    let plane = testenv::ControlPlane::start(options)?;
    println!("control plane ready: {}", plane.server());
    println!("kubeconfig: {}", plane.kubeconfig_path().display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    println!("stopping the control plane");
    drop(plane);
    Ok(())
}
