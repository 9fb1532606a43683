//! `kubectl-polar`: bring existing Polar checkout links under CheckoutLink manifests
//! (`import`), and show what applying manifests would send to Polar (`diff`). Both only read
//! from Polar. As a kubectl plugin: `kubectl polar import`, `kubectl polar diff -f DIR`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use checkout_link_operator::cli::{Change, adopted_id, change, manifest_for, name_for};
use checkout_link_operator::config::parse_duration;
use checkout_link_operator::crd::CheckoutLink;
use checkout_link_operator::polar::http::{API_VERSION, HttpClient};
use checkout_link_operator::polar::{
    CheckoutLinks, Credentials, Link, ListQuery, PolarError, Server, Token,
};

/// Import Polar checkout links as CheckoutLink manifests, and diff manifests against Polar.
#[derive(Parser, Debug)]
#[command(name = "kubectl-polar", version)]
struct Cli {
    #[command(flatten)]
    polar: PolarArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct PolarArgs {
    /// Polar organization access token (read scopes are enough: checkout_links:read).
    #[arg(long, env = "POLAR_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Polar server: `production`, `sandbox` or a base URL.
    #[arg(
        long,
        env = "POLAR_SERVER",
        default_value = "production",
        global = true
    )]
    server: String,
    /// The Polar API version sent as `Polar-Version`.
    #[arg(long, env = "POLAR_API_VERSION", default_value = API_VERSION, global = true)]
    polar_api_version: String,
    /// Timeout of one request to Polar.
    #[arg(long, env = "POLAR_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true)]
    polar_timeout: Duration,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a CheckoutLink manifest for every link of the organisation: adopted by the
    /// annotation polar.sh/checkout-link-id, managementPolicy Observe and deletionPolicy
    /// Orphan, the spec filled from the link, so that applying them changes nothing in Polar.
    Import {
        /// The namespace written into the manifests (none: kubectl's current one).
        #[arg(long, short = 'n', env = "KUBECTL_POLAR_NAMESPACE")]
        namespace: Option<String>,
        /// Write one file per link into this folder (default: every manifest to stdout).
        #[arg(long, short = 'o')]
        output_dir: Option<PathBuf>,
    },
    /// Print what applying the manifests would send to Polar: a create with its body, the
    /// PATCH body of a link adopted by annotation (explicit nulls clear fields), or nothing.
    /// Exit code: 0 nothing to change, 2 changes, 1 an error (like `terraform plan
    /// -detailed-exitcode`).
    Diff {
        /// Manifest files or folders (their *.yaml and *.yml files).
        #[arg(long = "filename", short = 'f', required = true)]
        files: Vec<PathBuf>,
    },
}

fn client(args: &PolarArgs) -> Result<HttpClient, String> {
    let token = args
        .token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or("a Polar token is needed: --token or POLAR_TOKEN")?;
    let server = Server::parse(&args.server)?;
    server.ensure_secure(false)?;
    let credentials = Credentials {
        token: Token::new(token),
        server,
    };
    HttpClient::new(credentials, &args.polar_api_version, args.polar_timeout)
        .map_err(|e| e.to_string())
}

async fn every_link(client: &HttpClient) -> Result<Vec<Link>, PolarError> {
    let mut links = Vec::new();
    let mut page = 1;
    loop {
        let got = client.list(&ListQuery::page(page)).await?;
        links.extend(got.items);
        if u64::from(page) >= got.max_page {
            return Ok(links);
        }
        page += 1;
    }
}

async fn import(
    client: &HttpClient,
    namespace: Option<&str>,
    dir: Option<&Path>,
) -> Result<(), String> {
    let links = every_link(client)
        .await
        .map_err(|e| format!("listing the links: {e}"))?;
    let mut names: Vec<String> = Vec::new();
    let mut out = String::new();
    for link in &links {
        let name = name_for(link, &names);
        names.push(name.clone());
        let yaml = serde_yaml::to_string(&manifest_for(link, &name, namespace))
            .map_err(|e| e.to_string())?;
        match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = dir.join(format!("{name}.yaml"));
                std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            None => {
                out.push_str("---\n");
                out.push_str(&yaml);
            }
        }
    }
    print!("{out}");
    eprintln!("imported {} links", links.len());
    Ok(())
}

fn manifest_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// The CheckoutLinks of a file (other kinds are skipped).
fn checkout_links(path: &Path) -> Result<Vec<CheckoutLink>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut links = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_json::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| format!("{}: {e}", path.display()))?;
        if value.is_null() || value["kind"] != "CheckoutLink" {
            continue;
        }
        let link: CheckoutLink =
            serde_json::from_value(value).map_err(|e| format!("{}: {e}", path.display()))?;
        links.push(link);
    }
    Ok(links)
}

/// Prints each resource's change; whether any would be sent, and whether any failed.
async fn diff(client: &HttpClient, paths: &[PathBuf]) -> (bool, bool) {
    let (mut changes, mut failed) = (false, false);
    let files = match manifest_files(paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return (false, true);
        }
    };
    for file in files {
        let links = match checkout_links(&file) {
            Ok(links) => links,
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
                continue;
            }
        };
        for resource in links {
            let name = resource.metadata.name.clone().unwrap_or_default();
            let observed = match adopted_id(&resource) {
                None => None,
                Some(id) => match client.get(&id).await {
                    Ok(link) => Some(link),
                    Err(e) => {
                        eprintln!("error: {name}: the link {id} it adopts: {e}");
                        failed = true;
                        continue;
                    }
                },
            };
            match change(&resource.spec, observed.as_ref()) {
                Ok(Change::Nothing(id)) => println!("{name}: no change ({id})"),
                Ok(Change::Create(body)) => {
                    changes = true;
                    println!("{name}: create\n  POST /v1/checkout-links/ {body}");
                }
                Ok(Change::Patch(id, body)) => {
                    changes = true;
                    println!("{name}: update\n  PATCH /v1/checkout-links/{id} {body}");
                }
                Err(e) => {
                    eprintln!("error: {name}: {e}");
                    failed = true;
                }
            }
        }
    }
    (changes, failed)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    checkout_link_operator::polar::install_crypto_provider();
    let cli = Cli::parse();
    let client = match client(&cli.polar) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Import {
            namespace,
            output_dir,
        } => match import(&client, namespace.as_deref(), output_dir.as_deref()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Diff { files } => match diff(&client, &files).await {
            (_, true) => ExitCode::from(1),
            (true, false) => ExitCode::from(2),
            (false, false) => ExitCode::SUCCESS,
        },
    }
}
