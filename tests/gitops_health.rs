//! How GitOps tools read a CheckoutLink's health, checked with their own engines:
//!
//! - Argo CD: `gitops/argocd/health.lua`, run by Debian's `lua5.4` through
//!   `gitops/argocd/run.lua` (installed by `hack/ensure-lua.sh`), and by gopher-lua the way
//!   Argo CD runs an argocd-cm script (`hack/kstatus`, `argo-lua`);
//! - Flux, kpt, cli-utils: kstatus' `status.Compute` from `sigs.k8s.io/cli-utils` (`hack/kstatus`,
//!   `compute`, built by `hack/build-kstatus.sh`).
//!
//! The objects get their status from the operator's own builder (`reconcile::status`), as the
//! reconciler writes it, so these checks follow the real status contract. `gitops/fixtures/`
//! holds the same objects as JSON, for `argocd admin settings resource-overrides health` and
//! friends; `UPDATE_GITOPS_FILES=1 cargo test --test gitops_health` rewrites it (and the Lua
//! embedded in `gitops/argocd/argocd-cm.yaml`) after a deliberate change.
//!
//! Also here: the container image that GitOps deploys (`Dockerfile`) matches `Cargo.toml` and the
//! operator's defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use checkout_link_operator::crd::{CheckoutLink, CheckoutLinkSpec, CheckoutLinkStatus, FINALIZER};
use checkout_link_operator::error::Error;
use checkout_link_operator::polar::PolarError;
use checkout_link_operator::reconcile::policy;
use checkout_link_operator::reconcile::sellable::{SELLABLE, Sellability};
use checkout_link_operator::reconcile::status::{
    self, Activity, LinkInfo, Outcome, Phase, READY, RECONCILING, STALLED, build_status,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

const UPDATE: &str = "UPDATE_GITOPS_FILES";
const HEALTH_KEY: &str = "resource.customizations.health.polar.sh_CheckoutLink";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn updating() -> bool {
    std::env::var_os(UPDATE).is_some_and(|v| v == "1")
}

// ---------------------------------------------------------------------------------------------
// The objects: one per state a GitOps tool can meet, with the status the operator writes.
// ---------------------------------------------------------------------------------------------

/// A state and what each tool must say about it.
struct Case {
    name: &'static str,
    object: CheckoutLink,
    /// Argo CD's health status.
    argo: &'static str,
    /// kstatus' status.
    kstatus: &'static str,
    /// Why kstatus and Argo CD disagree here, when they do.
    finding: Option<&'static str>,
    /// Written by the operator's builder (and so saved in gitops/fixtures/).
    built: bool,
}

fn time(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).expect("a valid timestamp"))
}

const T0: i64 = 1_795_000_000;

fn link_info() -> LinkInfo {
    LinkInfo {
        id: "0b8a1c0e-5f43-4c1e-9d6a-3f0b6a1f2c11".into(),
        url: "https://buy.polar.sh/polar_cl_8mQ2vXn4TbR7kLp1sWc9".into(),
        client_secret: "polar_cl_8mQ2vXn4TbR7kLp1sWc9".into(),
        organization_id: "5d3e9f4a-2b7c-4e1d-8a6f-0c9b1e2d3f4a".into(),
    }
}

/// A CheckoutLink as the apiserver holds it, at `generation`, without status.
fn object(generation: i64) -> CheckoutLink {
    let spec: CheckoutLinkSpec = serde_json::from_value(serde_json::json!({
        "label": "Launch - email campaign",
        "products": ["3f6c2a9e-8b1d-4c5e-9f0a-7d2b4e6c8a1f"],
        "successUrl": "https://example.com/thanks?checkout_id={CHECKOUT_ID}",
        "urlParameters": {"utmSource": "newsletter", "utmMedium": "email"},
    }))
    .expect("a valid spec");
    let mut link = CheckoutLink::new("launch-email", spec);
    link.metadata.namespace = Some("shop".into());
    link.metadata.uid = Some("9c1f7e2a-4b6d-4f8e-a1c3-5e7d9b2f4a6c".into());
    link.metadata.generation = Some(generation);
    link.metadata.creation_timestamp = Some(time(T0));
    link
}

/// `link` with the status the reconciler writes for `phase` (as `apply.rs` and `cleanup.rs`
/// call the builder: the object's generation, its URL parameters, the previous status).
fn reconciled(
    mut link: CheckoutLink,
    phase: Phase,
    info: Option<LinkInfo>,
    at: i64,
) -> CheckoutLink {
    link.metadata.finalizers = Some(vec![FINALIZER.into()]);
    // As apply.rs does: a link seen in sync is assessed; a failure keeps what was said.
    let sellable = matches!(phase, Phase::Ready).then(|| Sellability {
        sellable: true,
        reason: "Sellable",
        message: String::new(),
    });
    let outcome = Outcome {
        generation: link.metadata.generation,
        link: info,
        url_parameters: link.spec.url_parameters.as_ref(),
        phase,
        sellable,
        resolved: None,
        exported_to: None,
        results: None,
        sync_request: None,
    };
    link.status = Some(build_status(link.status.as_ref(), &outcome, &time(at)));
    link
}

fn polar(step: &'static str, source: PolarError) -> Error {
    Error::Polar { step, source }
}

/// Polar's 422 for a product that does not exist (REFERENCE.md §6), parsed as the HTTP client
/// parses it.
fn unknown_product() -> Error {
    let body = r#"{"error":"RequestValidationError","detail":[{"type":"value_error","loc":["body","products",0],"msg":"Product does not exist.","input":"3f6c2a9e-8b1d-4c5e-9f0a-7d2b4e6c8a1f"}]}"#;
    polar("create", PolarError::from_422_body(body))
}

/// Polar's 401 for a revoked token (REFERENCE.md §6), as the HTTP client words it.
fn revoked_token() -> Error {
    polar(
        "list",
        PolarError::Unauthorized {
            message: "invalid_token: The access token provided is expired, revoked, malformed, or invalid for other reasons.".into(),
        },
    )
}

/// The phase the failure policy gives `error` while doing `activity`.
fn phase_of(activity: Activity, error: &Error) -> Phase {
    policy::decide(policy::Situation {
        activity,
        error,
        failures: 0,
        deleting_for: None,
        grace: std::time::Duration::from_secs(600),
        state_retry: std::time::Duration::from_secs(600),
    })
    .phase
}

fn cases() -> Vec<Case> {
    let ready =
        |generation| reconciled(object(generation), Phase::Ready, Some(link_info()), T0 + 10);
    let stalled_422 = |generation| {
        reconciled(
            object(generation),
            phase_of(Activity::Creating, &unknown_product()),
            None,
            T0 + 10,
        )
    };
    let older = |mut link: CheckoutLink, generation| {
        // The spec changed (kubectl apply, a Git commit) and the operator has not run yet.
        link.metadata.generation = Some(generation);
        link
    };

    let reconciling = reconciled(
        object(1),
        phase_of(
            Activity::Creating,
            &polar("create", PolarError::Server { status: 503 }),
        ),
        None,
        T0 + 5,
    );
    let credentials_invalid = reconciled(
        ready(2),
        phase_of(Activity::Observing, &revoked_token()),
        None,
        T0 + 600,
    );
    // A Polar blip while the link is Ready at its generation: only Synced says so.
    let ready_unsynced = reconciled(
        ready(2),
        phase_of(
            Activity::Updating,
            &polar("update", PolarError::Server { status: 503 }),
        ),
        None,
        T0 + 700,
    );
    // In sync, but Polar would send buyers to its home page: every product archived.
    let mut cannot_sell = ready(2);
    let outcome = Outcome {
        generation: Some(2),
        link: Some(link_info()),
        url_parameters: cannot_sell.spec.url_parameters.as_ref(),
        phase: Phase::Ready,
        sellable: Some(Sellability {
            sellable: false,
            reason: "ProductsUnavailable",
            message: "no product can be bought: Pro (3f6c2a9e-8b1d-4c5e-9f0a-7d2b4e6c8a1f) is a draft; buyers are sent to Polar's home page".into(),
        }),
        resolved: None,
        exported_to: None,
        results: None,
        sync_request: None,
    };
    cannot_sell.status = Some(build_status(
        cannot_sell.status.as_ref(),
        &outcome,
        &time(T0 + 800),
    ));
    let mut deleting = ready(2);
    deleting.metadata.deletion_timestamp = Some(time(T0 + 900));
    // As the apiserver returns a new CheckoutLink: the CRD defaults its status (see
    // tests/crd_admission.rs); without it kstatus would read the object as Current.
    let mut new = object(1);
    new.status = Some(CheckoutLinkStatus::unobserved());
    let mut ready_false_only = stalled_422(1);
    if let Some(s) = ready_false_only.status.as_mut() {
        s.conditions.retain(|c| c.type_ == READY);
    }

    // Name, object, Argo CD's health, kstatus' status, why they disagree (if they do).
    #[rustfmt::skip]
    let table = [
        ("new", new, "Progressing", "InProgress", None),
        ("reconciling", reconciling, "Progressing", "InProgress", None),
        ("ready-current", ready(2), "Healthy", "Current", None),
        ("ready-stale-generation", older(ready(2), 3), "Progressing", "InProgress", None),
        ("ready-polar-unavailable", ready_unsynced, "Healthy", "Current", None),
        ("ready-cannot-sell", cannot_sell, "Degraded", "Current", Some(SELLING_IS_NOT_KSTATUS)),
        ("stalled-polar-422", stalled_422(1), "Degraded", "Failed", None),
        ("stalled-stale-generation", older(stalled_422(1), 2), "Progressing", "InProgress", None),
        ("credentials-invalid", credentials_invalid, "Degraded", "Failed", None),
        ("deleting", deleting, "Progressing", "Terminating", None),
        // Not written by this operator: its builder sets Stalled with every terminal reason.
        // An object edited by hand, or by a tool that only knows Ready.
        (HAND_EDITED, ready_false_only, "Degraded", "InProgress", Some(READY_NEVER_FAILS)),
    ];
    table
        .into_iter()
        .map(|(name, object, argo, kstatus, finding)| Case {
            built: name != HAND_EDITED,
            name,
            object,
            argo,
            kstatus,
            finding,
        })
        .collect()
}

/// The one case the operator's builder does not write.
const HAND_EDITED: &str = "ready-false-terminal-without-stalled";
/// Finding: kstatus falls back on Ready only when neither Reconciling nor Stalled is True, and
/// Ready=False is never Failed for it; hence the builder sets Stalled=True with every terminal
/// reason.
const READY_NEVER_FAILS: &str = "kstatus reads Ready only when Reconciling and Stalled are not \
    True, and never derives Failed from it: a Ready=False that no retry fixes waits for a timeout";

/// Finding: kstatus knows only Ready, Reconciling and Stalled; a link that is in sync but
/// cannot sell is Current for Flux (the resource is reconciled) and Degraded for Argo CD, whose
/// health check reads Sellable. Flux users alert on the Sellable condition or the metric.
const SELLING_IS_NOT_KSTATUS: &str = "kstatus reads only Ready, Reconciling and Stalled: a \
    link in sync that cannot sell is Current for Flux and Degraded for Argo CD";

fn condition<'a>(link: &'a CheckoutLink, type_: &str) -> Option<&'a str> {
    status::condition(link.status.as_ref(), type_).map(|c| c.status.as_str())
}

fn message_of(link: &CheckoutLink, type_: &str) -> String {
    status::condition(link.status.as_ref(), type_)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn fixture_json(link: &CheckoutLink) -> String {
    serde_json::to_string_pretty(link).expect("a CheckoutLink serialises") + "\n"
}

/// Writes every case to a fresh directory under the test's temporary dir.
fn write_cases(dir: &str) -> (Vec<Case>, Vec<PathBuf>) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("gitops_health")
        .join(dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the fixture dir");
    let cases = cases();
    let files = cases
        .iter()
        .map(|case| {
            let path = dir.join(format!("{}.json", case.name));
            std::fs::write(&path, fixture_json(&case.object)).expect("write a fixture");
            path
        })
        .collect();
    (cases, files)
}

// ---------------------------------------------------------------------------------------------
// Running the tools.
// ---------------------------------------------------------------------------------------------

/// Runs `hack/<script>` and returns the last line it prints (a path).
fn hack(script: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo().join("hack").join(script))
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run hack/{script}: {e}"));
    assert!(
        out.status.success(),
        "hack/{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let last = stdout.lines().last().unwrap_or_default().trim();
    assert!(!last.is_empty(), "hack/{script} printed no path");
    PathBuf::from(last)
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
struct Verdict {
    file: String,
    status: String,
    message: String,
}

/// Runs a tool that prints one JSON verdict per file; returns them by case name.
fn verdicts(command: &mut Command) -> BTreeMap<String, Verdict> {
    let out = command
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|line| {
            let v: Verdict =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not a verdict: {line}: {e}"));
            let name = Path::new(&v.file)
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a fixture file name")
                .to_owned();
            (name, v)
        })
        .collect()
}

fn argo_under_lua54(files: &[PathBuf]) -> BTreeMap<String, Verdict> {
    let mut lua = Command::new(hack("ensure-lua.sh"));
    lua.arg("gitops/argocd/run.lua")
        .arg("gitops/argocd/health.lua")
        .args(files);
    verdicts(&mut lua)
}

fn kstatus(mode: &str, files: &[PathBuf]) -> BTreeMap<String, Verdict> {
    let mut tool = Command::new(hack("build-kstatus.sh"));
    tool.arg(mode);
    if mode == "argo-lua" {
        tool.arg("gitops/argocd/health.lua");
    }
    verdicts(tool.args(files))
}

/// Checks Argo CD's verdicts: the status of each case, and a message that says why.
fn assert_argo(engine: &str, cases: &[Case], got: &BTreeMap<String, Verdict>) {
    assert_eq!(got.len(), cases.len(), "{engine}: one verdict per case");
    for case in cases {
        let v = &got[case.name];
        assert_eq!(v.status, case.argo, "{engine}, {}: {v:?}", case.name);
        let want = match v.status.as_str() {
            // Degraded carries the operator's words (and so Polar's), as they are.
            "Degraded" if condition(&case.object, STALLED) == Some("True") => {
                message_of(&case.object, STALLED)
            }
            // A link in sync that cannot sell: the Sellable condition says why.
            "Degraded" if condition(&case.object, SELLABLE) == Some("False") => {
                message_of(&case.object, SELLABLE)
            }
            "Degraded" | "Healthy" => message_of(&case.object, READY),
            _ => String::new(),
        };
        if want.is_empty() {
            assert!(!v.message.is_empty(), "{engine}, {}: no message", case.name);
        } else {
            assert_eq!(v.message, want, "{engine}, {}", case.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_state_the_builder_writes_sets_exactly_one_kstatus_condition_true() {
    // This is what makes kstatus agree with Ready: it takes Failed only from Stalled=True and
    // InProgress from Reconciling=True (Ready is its fallback, never Failed), so not ready must
    // mean either Reconciling=True or Stalled=True.
    for case in cases().iter().filter(|c| {
        c.built
            && c.object
                .status
                .as_ref()
                .is_some_and(|s| *s != CheckoutLinkStatus::unobserved())
    }) {
        let trues = [READY, RECONCILING, STALLED]
            .into_iter()
            .filter(|t| condition(&case.object, t) == Some("True"))
            .count();
        assert_eq!(trues, 1, "{}: {:?}", case.name, case.object.status);
    }
}

#[test]
fn the_polar_message_reaches_the_stalled_condition_in_plain_words() {
    let cases = cases();
    let find = |name| &cases.iter().find(|c| c.name == name).unwrap().object;
    assert_eq!(
        message_of(find("stalled-polar-422"), STALLED),
        "Polar rejected the checkout link: products[0]: Product does not exist."
    );
    assert!(
        message_of(find("credentials-invalid"), STALLED).contains("expired, revoked"),
        "{:?}",
        find("credentials-invalid").status
    );
}

#[test]
fn argo_cd_health_under_lua_5_4() {
    let (cases, files) = write_cases("lua54");
    assert_argo("lua5.4", &cases, &argo_under_lua54(&files));
}

#[test]
fn argo_cd_health_under_gopher_lua_as_argo_cd_runs_it() {
    let (cases, files) = write_cases("gopher-lua");
    let gopher = kstatus("argo-lua", &files);
    assert_argo("gopher-lua", &cases, &gopher);
    // Both interpreters read the object the same way, down to the message.
    let lua54 = argo_under_lua54(&files);
    for case in &cases {
        let (a, b) = (&gopher[case.name], &lua54[case.name]);
        assert_eq!(
            (&a.status, &a.message),
            (&b.status, &b.message),
            "{}",
            case.name
        );
    }
}

#[test]
fn kstatus_reads_the_conditions_as_argo_cd_does() {
    let (cases, files) = write_cases("kstatus");
    let got = kstatus("compute", &files);
    assert_eq!(got.len(), cases.len());
    for case in &cases {
        let v = &got[case.name];
        assert_eq!(v.status, case.kstatus, "kstatus, {}: {v:?}", case.name);
        if v.status == "Failed" {
            assert_eq!(
                v.message,
                message_of(&case.object, STALLED),
                "{}",
                case.name
            );
        }
        // Where no finding says otherwise, the two tools tell the same story.
        let same = matches!(
            (case.argo, case.kstatus),
            ("Healthy", "Current")
                | ("Degraded", "Failed")
                | ("Progressing", "InProgress" | "Terminating")
        );
        assert_eq!(
            same,
            case.finding.is_none(),
            "{}: Argo CD {} vs kstatus {} ({:?})",
            case.name,
            case.argo,
            case.kstatus,
            case.finding
        );
    }
}

#[test]
fn the_committed_fixtures_are_what_the_status_builder_writes() {
    let dir = repo().join("gitops/fixtures");
    let cases = cases();
    let built: Vec<&Case> = cases.iter().filter(|c| c.built).collect();
    let mut stale = Vec::new();
    for case in &built {
        let path = dir.join(format!("{}.json", case.name));
        let want = fixture_json(&case.object);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            if updating() {
                std::fs::write(&path, &want).expect("write a fixture");
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale fixtures (run `{UPDATE}=1 cargo test --test gitops_health` after a deliberate \
         change to the status contract): {stale:?}"
    );
    let mut extra: Vec<String> = std::fs::read_dir(&dir)
        .expect("gitops/fixtures exists")
        .map(|e| {
            e.expect("a dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|f| !built.iter().any(|c| format!("{}.json", c.name) == *f))
        .collect();
    extra.retain(|f| f != "README.md");
    assert!(
        extra.is_empty(),
        "files in gitops/fixtures with no case: {extra:?}"
    );
}

/// `gitops/argocd/argocd-cm.yaml` as it must be: the ConfigMap around `health.lua`.
fn argocd_cm(health: &str) -> String {
    let mut out = String::from(
        "# Argo CD health check for polar.sh/CheckoutLink, as an argocd-cm ConfigMap to merge into\n\
         # yours: kubectl -n argocd patch configmap argocd-cm --patch-file gitops/argocd/argocd-cm.yaml\n\
         # (or add the data key to the argocd-cm your Argo CD installation manages; docs/gitops.md).\n\
         # The script is gitops/argocd/health.lua, verbatim; tests/gitops_health.rs keeps them equal.\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n  \
           name: argocd-cm\n  \
           namespace: argocd\n  \
           labels:\n    \
             app.kubernetes.io/name: argocd-cm\n    \
             app.kubernetes.io/part-of: argocd\n\
         data:\n",
    );
    out.push_str(&format!("  {HEALTH_KEY}: |\n"));
    for line in health.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

#[test]
fn argocd_cm_embeds_health_lua_verbatim() {
    let health = std::fs::read_to_string(repo().join("gitops/argocd/health.lua"))
        .expect("gitops/argocd/health.lua exists");
    let path = repo().join("gitops/argocd/argocd-cm.yaml");
    let want = argocd_cm(&health);
    if updating() {
        std::fs::write(&path, &want).expect("write argocd-cm.yaml");
    }
    let committed = std::fs::read_to_string(&path).expect("gitops/argocd/argocd-cm.yaml exists");

    // What Argo CD reads: the ConfigMap's data key, byte for byte the script.
    let cm: serde_yaml::Value = serde_yaml::from_str(&committed).expect("valid YAML");
    assert_eq!(cm["apiVersion"], "v1");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/part-of"],
        "argocd"
    );
    assert_eq!(
        cm["data"][HEALTH_KEY].as_str(),
        Some(health.as_str()),
        "the Lua in argocd-cm.yaml differs from health.lua: run `{UPDATE}=1 cargo test --test gitops_health`"
    );
    assert_eq!(
        committed, want,
        "argocd-cm.yaml is not in its generated form: run `{UPDATE}=1 cargo test --test gitops_health`"
    );
}

// ---------------------------------------------------------------------------------------------
// The container image (it cannot be built here: no Docker engine). Cheap, honest checks that
// the Dockerfile builds and runs what Cargo.toml and the operator define.
// ---------------------------------------------------------------------------------------------

/// `cargo metadata` for this package: (package name, default-run binary, rust-version,
/// workspace member directories relative to the repo).
fn package() -> (String, String, String, Vec<String>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let root = repo().canonicalize().expect("repo path");
    let packages = meta["packages"].as_array().expect("packages");
    let members = packages
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest_path"));
            let dir = manifest
                .parent()
                .expect("a dir")
                .canonicalize()
                .expect("exists");
            dir.strip_prefix(&root)
                .expect("members live in the repo")
                .to_string_lossy()
                .into_owned()
        })
        .filter(|d| !d.is_empty())
        .collect();
    let this = packages
        .iter()
        .find(|p| p["name"] == "checkout-link-operator")
        .expect("the operator package");
    let bin = this["default_run"]
        .as_str()
        .expect("Cargo.toml names a default-run binary");
    assert!(
        this["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .any(|t| t["name"] == bin && t["kind"][0] == "bin"),
        "default-run {bin} is a [[bin]] of the package"
    );
    let rust = this["rust_version"]
        .as_str()
        .expect("rust-version")
        .to_owned();
    (
        "checkout-link-operator".into(),
        bin.to_owned(),
        rust,
        members,
    )
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(start) = trimmed.strip_suffix('\\') {
            current.push_str(start);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let words: Vec<&str> = current.split_whitespace().collect();
        out.push((words[0].to_uppercase(), words[1..].join(" ")));
        current.clear();
    }
    out
}

fn version(v: &str) -> Vec<u64> {
    v.split('.')
        .map(|p| p.parse().expect("a numeric version"))
        .collect()
}

fn default_metrics_port() -> u16 {
    use clap::CommandFactory;
    let command = checkout_link_operator::config::Config::command();
    let arg = command
        .get_arguments()
        .find(|a| a.get_long() == Some("metrics-addr"))
        .expect("the operator has --metrics-addr");
    let default = arg.get_default_values()[0].to_string_lossy().into_owned();
    default
        .parse::<std::net::SocketAddr>()
        .expect("--metrics-addr defaults to an address")
        .port()
}

#[test]
fn the_dockerfile_builds_and_runs_the_operator_binary_as_a_non_root_user() {
    let (package, bin, rust_version, members) = package();
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("a Dockerfile");
    let steps = instructions(&text);
    let all = |word: &str| -> Vec<&str> {
        steps
            .iter()
            .filter(|(w, _)| w == word)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };

    // The build stage compiles the operator binary, static, with the locked dependencies.
    let run = all("RUN").join("\n");
    assert!(run.contains("cargo build --release --locked"), "{run}");
    assert!(run.contains(&format!("--package {package}")), "{run}");
    assert!(run.contains(&format!("--bin {bin}")), "{run}");
    assert!(run.contains("+crt-static"), "{run}");
    assert!(run.contains(&format!("/release/{bin}\" /{bin}")), "{run}");

    // Its toolchain is at least the workspace's rust-version.
    let arg = all("ARG")
        .into_iter()
        .find_map(|a| a.strip_prefix("RUST_VERSION="))
        .expect("ARG RUST_VERSION=<x.y>");
    assert!(
        version(arg) >= version(&rust_version),
        "RUST_VERSION {arg} < rust-version {rust_version}"
    );
    let froms = all("FROM");
    assert_eq!(
        froms.len(),
        2,
        "a build stage and a runtime stage: {froms:?}"
    );
    assert!(
        froms[0].starts_with("rust:${RUST_VERSION}-alpine"),
        "{froms:?}"
    );

    // The runtime image: minimal, the binary, the metrics port, a non-root user.
    let runtime = froms[1];
    assert!(
        runtime == "gcr.io/distroless/static-debian12:nonroot" || runtime == "scratch",
        "{runtime}"
    );
    assert_eq!(
        all("COPY").last(),
        Some(&format!("--from=build /{bin} /{bin}").as_str())
    );
    assert_eq!(all("ENTRYPOINT"), [format!("[\"/{bin}\"]")]);
    assert_eq!(all("EXPOSE"), [default_metrics_port().to_string()]);
    let user = all("USER").last().copied().expect("a USER instruction");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid != 0),
        "USER {user}: a numeric non-root uid, so that runAsNonRoot can check it"
    );

    // The build context keeps what cargo needs and leaves target/ and .git out.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).expect("a .dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('/').trim_end_matches('/'))
        .collect();
    for excluded in ["target", ".git", ".local"] {
        assert!(
            patterns.contains(&excluded),
            ".dockerignore misses {excluded}"
        );
    }
    let needed = ["Cargo.toml", "Cargo.lock", "src"]
        .into_iter()
        .map(str::to_owned)
        .chain(members);
    for path in needed {
        let top = path.split('/').next().unwrap_or_default().to_owned();
        assert!(
            !patterns
                .iter()
                .any(|p| *p == top || *p == path || *p == "*" || *p == "**"),
            ".dockerignore excludes {path}, which the build needs"
        );
        assert!(repo().join(&path).exists(), "{path} exists");
    }
}
