//! One run of the chart's RBAC test: a release, its namespace and the links' namespace, the
//! ServiceAccount's identity, an emulator and the operator process; built on tests/common.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use checkout_link_operator::CheckoutLink;
use checkout_link_operator::crd::FINALIZER;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use polar_emulator::Emulator;
use serde_json::{Value, json};
use testenv::ControlPlane;

use crate::Case;
use crate::common::objects::{self, Objects, is_ready, unwritten};
use crate::common::process::Operator;
use crate::common::{self, TOKEN, eventually};
use crate::rbac::{DEFAULT_SECRET, Rendered, accesses, apply_all, check_recipe};
use crate::rbac::{narrowed_accesses, narrowing_recipe};

/// How long a step that should succeed may take (before scaling): the runs go on at once, each
/// with its operator process, on a machine that may have two cores.
pub const STEP: Duration = Duration::from_secs(90);
/// The label that assigns a CheckoutLink to one run's operator.
const CASE_LABEL: &str = "chart-rbac.test/case";

/// What a run applies and checks.
#[derive(Clone, Copy, Debug)]
pub enum Run {
    /// The chart's RBAC as rendered, with the chart's defaults.
    Full,
    /// The same with `leaderElection.enabled=false`.
    NoLeaderElection,
    /// RBAC.md's narrowing (`rbac.create=false` and its YAML), with `--namespace`.
    Narrowed,
    /// The chart's RBAC without one verb.
    Without(Case),
}

impl Run {
    pub fn id(&self) -> &'static str {
        match self {
            Run::Full => "full",
            Run::NoLeaderElection => "no-leader-election",
            Run::Narrowed => "narrowed",
            Run::Without(case) => case.id,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Run::Full => "the chart's RBAC: the whole life of two links".into(),
            Run::NoLeaderElection => "leaderElection.enabled=false: no Role, the same life".into(),
            Run::Narrowed => {
                "--namespace, the rules bound there, the default Secret by name: the same life"
                    .into()
            }
            Run::Without(case) => format!("without {}: {:?}", case.verb(), case.symptom),
        }
    }

    /// The release: named like the recipe of RBAC.md's ServiceAccount and Lease for `narrowed`.
    pub fn release(&self) -> String {
        match self {
            Run::Narrowed => "checkout-link-operator".to_owned(),
            _ => format!("clo-{}", self.id()),
        }
    }

    pub fn helm_values(&self) -> &'static [&'static str] {
        match self {
            Run::Narrowed => &["rbac.create=false"],
            Run::NoLeaderElection => &["leaderElection.enabled=false"],
            _ => &[],
        }
    }
}

/// One run's world.
pub struct World {
    pub id: &'static str,
    admin: kube::Client,
    /// The release namespace: ServiceAccount, default credentials Secret, Lease.
    pub ns: String,
    /// Where the CheckoutLinks live (through the admin's client).
    pub app: String,
    pub objects: Objects,
    /// `system:serviceaccount:<ns>:<sa>`.
    user: String,
    kubeconfig: PathBuf,
    dir: PathBuf,
    /// The Deployment's leader-election arguments, `$(POD_NAME)` replaced.
    election: Vec<String>,
    pub emulator: Emulator,
    operator: Option<Operator>,
}

impl World {
    /// Renders the chart for this run, checks the ServiceAccount's identity and rights, applies
    /// the run's RBAC and starts an emulator with the default credentials Secret.
    pub async fn new(run: &Run) -> anyhow::Result<World> {
        let plane = ControlPlane::shared();
        let id = run.id();
        let (admin, ns) = plane.namespace(&format!("rbac-{id}")).await?;
        let (_, app) = plane.namespace(&format!("rbac-{id}-app")).await?;
        let chart = Rendered::new(&run.release(), &ns, run.helm_values()).await?;
        chart.check_bindings(&ns)?;
        let user = format!("system:serviceaccount:{ns}:{}", chart.service_account()?);
        let identity = format!("chart-rbac-{id}");
        let election: Vec<String> = chart
            .args
            .iter()
            .filter(|a| a.starts_with("--leader-election"))
            .map(|a| a.replace("$(POD_NAME)", &identity))
            .collect();

        let dir = plane.dir().join("chart_rbac").join(id);
        std::fs::create_dir_all(&dir)?;
        let kubeconfig_yaml = plane.kubeconfig_for_user(&user, Some("system:serviceaccounts"))?;
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, &kubeconfig_yaml)?;
        let as_sa = testenv::client_from_yaml(&kubeconfig_yaml).await?;

        // The certificate authenticates as the ServiceAccount's user...
        let review = Api::<SelfSubjectReview>::all(as_sa.clone())
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .context("SelfSubjectReview")?;
        let name = review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username);
        ensure!(
            name.as_deref() == Some(user.as_str()),
            "authenticated as {name:?}, not {user}"
        );
        // ... who may do nothing before the bindings exist, and what they grant after.
        let (objects, accesses) = match run {
            Run::Narrowed => {
                let kinds = chart.objects.iter().map(|o| o["kind"].clone());
                let kinds: Vec<Value> = kinds.collect();
                ensure!(
                    kinds == [json!("ServiceAccount")],
                    "rbac.create=false renders {kinds:?}"
                );
                let defaults = Rendered::new(&run.release(), &ns, &[]).await?;
                let recipe = narrowing_recipe(&ns, &app)?;
                check_recipe(&recipe, &defaults, &ns, &app)?;
                let objects = chart.objects.iter().chain(&recipe).cloned().collect();
                (objects, narrowed_accesses(&defaults, &ns, &app)?)
            }
            Run::Full | Run::NoLeaderElection => {
                (chart.objects.clone(), accesses(&chart, &ns, None)?)
            }
            Run::Without(case) => (
                chart.without(&case.verb())?,
                accesses(&chart, &ns, Some(&case.verb()))?,
            ),
        };
        for access in accesses.iter().filter(|a| a.allowed) {
            ensure!(
                !access.granted(&as_sa).await?,
                "{user} may {access:?} before the RBAC is applied"
            );
        }
        apply_all(&admin, &objects).await?;
        eventually("the RBAC to take effect", STEP, async || {
            for access in &accesses {
                match access.granted(&as_sa).await {
                    Ok(granted) if granted == access.allowed => {}
                    Ok(granted) => return Err(format!("{access:?}: granted {granted}")),
                    Err(e) => return Err(format!("{access:?}: {e:#}")),
                }
            }
            Ok(())
        })
        .await;

        let emulator = common::emulator(polar_emulator::Config::default()).await;
        let world = World {
            id,
            objects: Objects::new(admin.clone(), &app),
            admin,
            ns,
            app,
            user,
            kubeconfig,
            dir,
            election,
            emulator,
            operator: None,
        };
        let release = Objects::new(world.admin.clone(), &world.ns);
        world.put_secret(&release, DEFAULT_SECRET).await;
        Ok(world)
    }

    /// A credentials Secret with the emulator's all-scopes token.
    pub async fn put_secret(&self, objects: &Objects, name: &str) {
        let server = self.emulator.base_url();
        objects.put_secret(name, TOKEN, &server).await
    }

    /// Starts the operator as the ServiceAccount, for this run's links, with the Deployment's
    /// leader-election arguments (and `extra`).
    pub fn start_operator(&mut self, extra: &[String]) {
        let mut args = vec![
            format!("--default-credentials-secret={}/{DEFAULT_SECRET}", self.ns),
            format!("--label-selector={CASE_LABEL}={}", self.id),
            "--resync-interval=2s".to_owned(),
            "--polar-timeout=5s".to_owned(),
            "--log-format=text".to_owned(),
            "--log-level=info".to_owned(),
        ];
        args.extend(self.election.iter().cloned());
        args.extend(extra.iter().cloned());
        let log = self.dir.join("operator.log");
        let operator = Operator::spawn(self.id, &self.kubeconfig, &log, args, &[]);
        self.operator = Some(operator);
    }

    pub fn operator(&self) -> &Operator {
        self.operator.as_ref().expect("the operator is not running")
    }

    /// The Lease's name and this operator's identity in it (with leader election).
    pub fn lease(&self) -> Option<(String, String)> {
        let arg = |flag: &str| {
            self.election
                .iter()
                .find_map(|a| a.strip_prefix(&format!("{flag}=")))
                .map(str::to_owned)
        };
        Some((
            arg("--leader-election-lease-name")?,
            arg("--leader-election-identity")?,
        ))
    }

    /// Who holds the Lease, if it exists.
    pub async fn lease_holder(&self) -> Option<String> {
        let (name, _) = self.lease()?;
        let leases = Api::<Lease>::namespaced(self.admin.clone(), &self.ns);
        objects::lease_holder(&leases, &name).await
    }

    /// Waits until this process leads and `/readyz` answers 200: its caches are synced.
    pub async fn wait_synced(&self) {
        self.operator().wait_leading_and_ready().await
    }

    /// Waits until the log shows the 403 for this verb on this resource.
    pub async fn wait_forbidden(&self, verb: &str, resource: &str) {
        let wanted = format!("cannot {verb} resource \"{resource}\"");
        let operator = self.operator();
        operator
            .wait(&format!("a 403 in the log ({wanted})"), async || {
                // kube's own warnings quote the apiserver's message in Debug form.
                let log = operator.log().replace("\\\"", "\"");
                let lines = log.lines();
                lines
                    .into_iter()
                    .any(|l| l.contains("forbidden") && l.contains(&wanted))
                    .then_some(())
            })
            .await
    }

    /// Creates a CheckoutLink for this run's operator.
    pub async fn create_link(&self, name: &str, spec: Value) {
        let metadata = json!({"labels": {CASE_LABEL: self.id}});
        self.objects.create_with(name, metadata, spec).await;
    }

    /// Sets `spec.label`; the new generation.
    pub async fn set_label(&self, name: &str, label: &str) -> Option<i64> {
        let link = self.objects.patch_spec(name, json!({"label": label})).await;
        link.metadata.generation
    }

    pub async fn link(&self, name: &str) -> CheckoutLink {
        self.objects.get(name).await
    }

    /// Waits for Ready=True at the current generation, with an id and a URL.
    pub async fn wait_ready(&self, name: &str) -> CheckoutLink {
        self.wait_link(name, "Ready", |l| {
            let s = l.status.as_ref();
            is_ready(l) && s.is_some_and(|s| s.id.is_some() && s.url.is_some())
        })
        .await
    }

    /// Waits for `check`, while the operator runs.
    pub async fn wait_link(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&CheckoutLink) -> bool,
    ) -> CheckoutLink {
        let operator = self.operator();
        self.objects
            .wait_for(name, STEP, what, |l| {
                operator.assert_running();
                check(l)
            })
            .await
    }

    /// The events about a link: (reason, series count).
    pub async fn events(&self, name: &str) -> Vec<(String, Option<i32>)> {
        let events = self.objects.events(name).await.into_iter();
        events
            .map(|e| (e.reason.unwrap_or_default(), e.series.map(|s| s.count)))
            .collect()
    }

    pub async fn wait_event(&self, name: &str, reason: &str, count: Option<i32>) {
        let what = format!("a {reason} event (series count {count:?})");
        self.objects
            .wait_event_where(name, &what, |e| {
                e.reason.as_deref() == Some(reason) && e.series.as_ref().map(|s| s.count) == count
            })
            .await;
    }

    pub fn count(&self, key: &str) -> u64 {
        objects::count(&self.emulator, key)
    }

    /// Every checkout-link call the emulator received.
    pub fn polar_calls(&self) -> u64 {
        objects::polar_calls(&self.emulator)
    }

    /// Nothing happened to `name`: no status, Polar not called, and the finalizer as expected.
    pub async fn untouched(&self, name: &str, finalizer: bool) {
        let link = self.link(name).await;
        let finalizers = link.finalizers();
        assert!(
            has_finalizer(&link) == finalizer,
            "finalizers: {finalizers:?}"
        );
        assert!(unwritten(&link), "a status was written: {:?}", link.status);
        let counters = self.emulator.counters();
        assert!(self.polar_calls() == 0, "Polar was called: {counters:?}");
    }

    /// A failure report: links, Polar calls and the operator's log.
    pub async fn report(&self) -> String {
        let links = match self.objects.links.list(&ListParams::default()).await {
            Ok(list) => list
                .items
                .iter()
                .map(|l| {
                    let summary = json!({"name": l.name_any(), "generation": l.metadata.generation,
                                         "finalizers": l.finalizers(), "status": l.status});
                    summary.to_string()
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("(cannot list: {e})"),
        };
        let log = self
            .operator
            .as_ref()
            .map_or_else(|| "(not started)".into(), Operator::log);
        format!(
            "namespaces {} (release) and {} (links); user {}; files in {}\n--- CheckoutLinks ---\n\
             {links}\n--- Polar calls ---\n{:?}\n--- operator log ---\n{log}",
            self.ns,
            self.app,
            self.user,
            self.dir.display(),
            self.emulator.counters()
        )
    }
}

pub fn has_finalizer(link: &CheckoutLink) -> bool {
    link.finalizers().iter().any(|f| f == FINALIZER)
}
