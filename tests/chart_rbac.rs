//! The Helm chart's RBAC is exactly what the operator needs: enough for the whole life of a
//! CheckoutLink, and nothing the operator could do without.
//!
//! The chart is rendered by the real helm; its RBAC objects and ServiceAccount are applied to the
//! test apiserver, and the real operator binary runs outside the cluster with the
//! ServiceAccount's identity: a client certificate for the user
//! `system:serviceaccount:<namespace>:<name>` (group `system:serviceaccounts`), which RBAC matches
//! against ServiceAccount subjects by that user name, as it does for a token (checked: a
//! SelfSubjectReview names that user, who may do nothing before the chart's bindings exist and
//! exactly what they grant after).
//!
//! Each run is the chart's default deployment: leader election on (with the Deployment's own
//! `--leader-election*` arguments), all namespaces watched through the ClusterRole, the
//! ServiceAccount, default credentials Secret and Lease in the release namespace, the
//! CheckoutLinks in another namespace. The runs go on at the same time against one apiserver,
//! each with its own release (so its own ClusterRole), namespaces, emulator and operator process;
//! each operator picks its run's links by label (`--label-selector`, the sharding flag).
//!
//! - `full`: the chart's rules. A link is created, updated twice (the second `Updated` event
//!   repeats the first: the recorder patches it), a second link waits for its own Secret until it
//!   is created, both are deleted (DELETE reaches Polar, the finalizers are released); nothing is
//!   forbidden. `no-leader-election` does the same with `leaderElection.enabled=false` (no Role).
//! - `narrowed`: the narrowing RBAC.md describes (`rbac.create=false`, `--namespace`, and its YAML:
//!   the chart's rules bound in the watched namespace only, the default Secret alone by name) is
//!   enough for the same life; the YAML is read from RBAC.md and checked against the chart.
//! - One run per verb of every rule in [`CASES`], with the role lacking just that verb: each shows
//!   its own symptom, and the 403 for that verb and resource in the operator's log.
//! - The cases are matched against the rules read from the rendered chart: a verb the chart
//!   grants without a case here, or a case for a verb it no longer grants, fails the test.

mod common;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use checkout_link_operator::crd::FINALIZER;
use checkout_link_operator::{CheckoutLink, CheckoutLinkStatus};
use common::{DELETE, EBOOK, PATCH, POST, TOKEN, condition};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use polar_emulator::Emulator;
use serde_json::{Value, json};
use testenv::ControlPlane;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use RoleKind::{ClusterRole, Role};
use Symptom::*;

/// How long a step that should succeed may take.
const STEP: Duration = Duration::from_secs(30);
/// How long a run keeps watching, once the 403 showed, for something that must not happen.
const OBSERVE: Duration = Duration::from_secs(4);
/// The API group of RBAC.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The label that assigns a CheckoutLink to one run's operator.
const CASE_LABEL: &str = "chart-rbac.test/case";
/// The default credentials Secret, in the release namespace.
const DEFAULT_SECRET: &str = "polar";
/// A link's own credentials Secret, in the link's namespace.
const OWN_SECRET: &str = "shop-polar";

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/// What breaks when one verb is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Symptom {
    /// A watch cannot list: the operator leads but `/readyz` never answers 200 (its caches never
    /// sync), no status is written and Polar is not called.
    NeverReady,
    /// The first list worked but the watch cannot follow: a CheckoutLink created afterwards is
    /// never seen (the log never names it; no finalizer, no status, Polar not called).
    NewLinksUnseen,
    /// The link is seen (the log names it) but the finalizer cannot be added: no status, Polar
    /// not called.
    NoFinalizer,
    /// The status cannot be written: the link is created in Polar exactly once (despite the
    /// retries) but the resource never shows its id, URL or Ready condition.
    NoStatus,
    /// The credentials Secret's data cannot be read: the finalizer is added, then no status is
    /// written and Polar is not called.
    CredentialsUnreadable,
    /// Secret changes are not seen: a link waiting for its Secret stays `CredentialsMissing`
    /// after the Secret is created (with the full rules it becomes Ready).
    SecretChangesUnseen,
    /// The link becomes Ready but no Event is recorded for it.
    NoEvents,
    /// Events are recorded but a repeated one is not counted: after the second `Updated` the
    /// event has no series (with the full rules its series count is 2).
    RepeatsUncounted,
    /// Leader election never succeeds: the `leader` gauge stays 0, the Lease is not the
    /// operator's, and no finalizer, no status, Polar not called.
    NeverLeads,
}

/// Which role of the chart a rule belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum RoleKind {
    /// The operator's rights, cluster-wide.
    ClusterRole,
    /// The leader-election Role, in the release namespace.
    Role,
}

impl RoleKind {
    fn kind(self) -> &'static str {
        match self {
            ClusterRole => "ClusterRole",
            Role => "Role",
        }
    }
}

/// One verb on one resource of one role: what a case takes away.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Verb {
    role: RoleKind,
    group: String,
    /// `resource` or `resource/subresource`.
    resource: String,
    verb: String,
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        let (role, verb, resource) = (self.role.kind(), &self.verb, &self.resource);
        write!(f, "{role} {verb} {group}/{resource}")
    }
}

/// A verb, and what breaks without it.
#[derive(Clone, Copy, Debug)]
struct Case {
    /// Names the run (its release, namespaces and label).
    id: &'static str,
    role: RoleKind,
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    symptom: Symptom,
}

const fn case(
    id: &'static str,
    role: RoleKind,
    group: &'static str,
    resource: &'static str,
    verb: &'static str,
    symptom: Symptom,
) -> Case {
    Case {
        id,
        role,
        group,
        resource,
        verb,
        symptom,
    }
}

impl Case {
    fn verb(&self) -> Verb {
        Verb {
            role: self.role,
            group: self.group.to_owned(),
            resource: self.resource.to_owned(),
            verb: self.verb.to_owned(),
        }
    }
}

/// One case per verb the chart grants (RBAC.md says why each is needed).
#[rustfmt::skip]
const CASES: &[Case] = &[
    case("links-list", ClusterRole, "polar.sh", "checkoutlinks", "list", NeverReady),
    case("links-watch", ClusterRole, "polar.sh", "checkoutlinks", "watch", NewLinksUnseen),
    case("links-patch", ClusterRole, "polar.sh", "checkoutlinks", "patch", NoFinalizer),
    case("status-patch", ClusterRole, "polar.sh", "checkoutlinks/status", "patch", NoStatus),
    case("secrets-get", ClusterRole, "", "secrets", "get", CredentialsUnreadable),
    case("secrets-list", ClusterRole, "", "secrets", "list", NeverReady),
    case("secrets-watch", ClusterRole, "", "secrets", "watch", SecretChangesUnseen),
    case("events-create", ClusterRole, "events.k8s.io", "events", "create", NoEvents),
    case("events-patch", ClusterRole, "events.k8s.io", "events", "patch", RepeatsUncounted),
    case("leases-get", Role, "coordination.k8s.io", "leases", "get", NeverLeads),
    case("leases-create", Role, "coordination.k8s.io", "leases", "create", NeverLeads),
    case("leases-patch", Role, "coordination.k8s.io", "leases", "patch", NeverLeads),
];

/// Every case's verb is granted by the chart, and every verb the chart grants has a case.
fn check_coverage(granted: &BTreeSet<Verb>) -> anyhow::Result<()> {
    let covered: BTreeSet<Verb> = CASES.iter().map(Case::verb).collect();
    let ids: BTreeSet<&str> = CASES.iter().map(|c| c.id).collect();
    ensure!(ids.len() == CASES.len(), "two cases share an id");
    let uncovered: Vec<String> = granted
        .difference(&covered)
        .map(|v| v.to_string())
        .collect();
    let stale: Vec<String> = covered.difference(granted).map(|v| v.to_string()).collect();
    ensure!(
        uncovered.is_empty(),
        "the chart grants {uncovered:?} without a case in tests/chart_rbac.rs: add one that shows \
         what breaks without it (or drop the verb from the chart)"
    );
    ensure!(
        stale.is_empty(),
        "tests/chart_rbac.rs has cases for {stale:?}, which the chart no longer grants"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The chart, rendered by helm
// ---------------------------------------------------------------------------------------------

/// The helm binary: in the tools directory, built there first when missing.
fn helm() -> anyhow::Result<PathBuf> {
    let dir = testenv::tools_dir()?;
    if dir.join("helm").is_file() {
        return Ok(dir.join("helm"));
    }
    let script = testenv::repo_root().join("hack/build-tools.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("helm")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(out.status.success(), "{} helm failed", script.display());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let helm = PathBuf::from(stdout.lines().last().unwrap_or_default().trim()).join("helm");
    ensure!(helm.is_file(), "{} built no helm", script.display());
    Ok(helm)
}

/// `KUBERNETES_VERSION` from `hack/versions.env` (our helm defaults to v1.20, below the chart's
/// `kubeVersion`).
fn kube_version() -> anyhow::Result<String> {
    let path = testenv::repo_root().join("hack/versions.env");
    std::fs::read_to_string(&path)?
        .lines()
        .find_map(|l| l.strip_prefix("KUBERNETES_VERSION="))
        .map(|v| v.trim().to_owned())
        .with_context(|| format!("{} has no KUBERNETES_VERSION", path.display()))
}

/// A rule's verbs, expanded: (group, resource, resourceNames, verb).
fn expand(rule: &PolicyRule) -> Vec<(String, String, Vec<String>, String)> {
    let mut out = Vec::new();
    for group in rule.api_groups.iter().flatten() {
        for resource in rule.resources.iter().flatten() {
            for verb in &rule.verbs {
                let names = rule.resource_names.clone().unwrap_or_default();
                out.push((group.clone(), resource.clone(), names, verb.clone()));
            }
        }
    }
    out
}

/// The chart's ServiceAccount, RBAC objects and operator arguments for one release.
struct Rendered {
    /// The ServiceAccount and the RBAC objects (of any template), in order.
    objects: Vec<Value>,
    /// The operator container's arguments.
    args: Vec<String>,
}

impl Rendered {
    async fn new(release: &str, namespace: &str, set: &[&str]) -> anyhow::Result<Rendered> {
        let chart = testenv::repo_root().join("charts/checkout-link-operator");
        let mut command = tokio::process::Command::new(helm()?);
        command.arg("template").arg(release).arg(&chart).args([
            "--namespace",
            namespace,
            "--kube-version",
            &kube_version()?,
        ]);
        for value in set {
            command.args(["--set", value]);
        }
        let out = command.output().await.context("running helm")?;
        ensure!(
            out.status.success(),
            "helm template failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut objects = Vec::new();
        let mut args = None;
        for doc in serde_yaml::Deserializer::from_str(std::str::from_utf8(&out.stdout)?) {
            let value: Value = serde::Deserialize::deserialize(doc)?;
            // The whole chart, so that RBAC from any template counts.
            match value["kind"].as_str().unwrap_or_default() {
                "Deployment" => {
                    let container = &value["spec"]["template"]["spec"]["containers"][0];
                    args = Some(serde_json::from_value(container["args"].clone())?);
                }
                "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role"
                | "RoleBinding" => objects.push(value),
                _ => {}
            }
        }
        let args = args.context("the chart renders no Deployment")?;
        Ok(Rendered { objects, args })
    }

    /// The one object of this kind, if any.
    fn find(&self, kind: &str) -> anyhow::Result<Option<&Value>> {
        let mut found = self.objects.iter().filter(|o| o["kind"] == kind);
        let one = found.next();
        ensure!(found.next().is_none(), "the chart renders several {kind}s");
        Ok(one)
    }

    fn one(&self, kind: &str) -> anyhow::Result<&Value> {
        self.find(kind)?
            .with_context(|| format!("the chart renders no {kind}"))
    }

    fn service_account(&self) -> anyhow::Result<String> {
        Ok(name(self.one("ServiceAccount")?))
    }

    /// The rules of a role (none when the chart renders no such role).
    fn rules(&self, role: RoleKind) -> anyhow::Result<Vec<PolicyRule>> {
        match self.find(role.kind())? {
            Some(object) => Ok(serde_json::from_value(object["rules"].clone())?),
            None => Ok(Vec::new()),
        }
    }

    /// Every verb the chart's roles grant, with the resource names it is limited to.
    fn grants(&self) -> anyhow::Result<Vec<(Verb, Vec<String>)>> {
        let mut all = Vec::new();
        for role in [ClusterRole, Role] {
            for rule in self.rules(role)? {
                ensure!(
                    rule.non_resource_urls.is_none(),
                    "{}: nonResourceURLs are not covered: {rule:?}",
                    role.kind()
                );
                for (group, resource, names, verb) in expand(&rule) {
                    ensure!(
                        ![&group, &resource, &verb].contains(&&"*".to_owned()),
                        "{}: a wildcard is not least privilege: {rule:?}",
                        role.kind()
                    );
                    all.push((
                        Verb {
                            role,
                            group,
                            resource,
                            verb,
                        },
                        names,
                    ));
                }
            }
        }
        Ok(all)
    }

    fn verbs(&self) -> anyhow::Result<BTreeSet<Verb>> {
        Ok(self.grants()?.into_iter().map(|(v, _)| v).collect())
    }

    /// Each role is bound to the chart's ServiceAccount only, in the release namespace.
    fn check_bindings(&self, namespace: &str) -> anyhow::Result<()> {
        let sa = self.service_account()?;
        for (role_kind, binding_kind) in [
            ("ClusterRole", "ClusterRoleBinding"),
            ("Role", "RoleBinding"),
        ] {
            let Some(role) = self.find(role_kind)? else {
                continue;
            };
            let binding = self.one(binding_kind)?;
            let role_ref = json!({"apiGroup": RBAC_GROUP, "kind": role_kind, "name": name(role)});
            ensure!(
                binding["roleRef"] == role_ref,
                "{binding_kind} refers to another role: {binding}"
            );
            let subjects = json!([{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]);
            ensure!(
                binding["subjects"] == subjects,
                "{binding_kind} is not for {namespace}/{sa} only: {binding}"
            );
            if role_kind == "Role" {
                ensure!(
                    role["metadata"]["namespace"] == namespace
                        && binding["metadata"]["namespace"] == namespace,
                    "the Role or RoleBinding is not in the release namespace"
                );
            }
        }
        Ok(())
    }

    /// The objects with one verb taken out of its role (a rule left without verbs goes).
    fn without(&self, taken: &Verb) -> anyhow::Result<Vec<Value>> {
        let mut rules = Vec::new();
        for rule in self.rules(taken.role)? {
            for (group, resource, names, verb) in expand(&rule) {
                if (&group, &resource, &verb) != (&taken.group, &taken.resource, &taken.verb) {
                    rules.push(PolicyRule {
                        api_groups: Some(vec![group]),
                        resources: Some(vec![resource]),
                        resource_names: (!names.is_empty()).then_some(names),
                        verbs: vec![verb],
                        ..PolicyRule::default()
                    });
                }
            }
        }
        let mut objects = self.objects.clone();
        for object in objects
            .iter_mut()
            .filter(|o| o["kind"] == taken.role.kind())
        {
            object["rules"] = serde_json::to_value(&rules)?;
        }
        Ok(objects)
    }
}

/// The narrowing recipe of RBAC.md (its YAML block), for the watched namespace `app` and the
/// release namespace `ns` (the recipe's `shop` and `operators`).
fn narrowing_recipe(ns: &str, app: &str) -> anyhow::Result<Vec<Value>> {
    let path = testenv::repo_root().join("charts/checkout-link-operator/RBAC.md");
    let doc = std::fs::read_to_string(&path)?;
    let (_, after) = doc
        .split_once("## Narrowing it")
        .context("RBAC.md: no narrowing")?;
    let (_, block) = after.split_once("```yaml\n").context("RBAC.md: no YAML")?;
    let (yaml, _) = block
        .split_once("```")
        .context("RBAC.md: unterminated YAML")?;
    let yaml = yaml
        .replace("namespace: shop}", &format!("namespace: {app}}}"))
        .replace("namespace: operators}", &format!("namespace: {ns}}}"));
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&yaml) {
        objects.push(serde::Deserialize::deserialize(doc)?);
    }
    Ok(objects)
}

/// The recipe grants the chart's rules: the ClusterRole's in the watched namespace, the
/// leader-election Role's as they are, and the default Secret by name in the release namespace.
fn check_recipe(recipe: &[Value], chart: &Rendered, ns: &str, app: &str) -> anyhow::Result<()> {
    let rules = |object: &Value| -> anyhow::Result<_> {
        let rules: Vec<PolicyRule> = serde_json::from_value(object["rules"].clone())?;
        let mut all: Vec<_> = rules.iter().flat_map(expand).collect();
        all.sort();
        Ok(all)
    };
    let roles: Vec<&Value> = recipe.iter().filter(|o| o["kind"] == "Role").collect();
    let in_ns = |n: &str| -> Vec<&Value> {
        let in_n = roles.iter().filter(|r| r["metadata"]["namespace"] == n);
        in_n.copied().collect()
    };
    let watched = in_ns(app);
    ensure!(
        watched.len() == 1,
        "RBAC.md: not one Role in the watched namespace"
    );
    ensure!(
        rules(watched[0])? == rules(chart.one("ClusterRole")?)?,
        "RBAC.md: the watched namespace's Role is not the chart's ClusterRole"
    );
    let mut expected = vec![rules(chart.one("Role")?)?, {
        let names = vec![DEFAULT_SECRET.to_owned()];
        let verbs = ["get", "list", "watch"];
        let secret = |v: &str| (String::new(), "secrets".to_owned(), names.clone(), v.into());
        verbs.iter().map(|v| secret(v)).collect()
    }];
    let mut got = in_ns(ns)
        .into_iter()
        .map(rules)
        .collect::<anyhow::Result<Vec<_>>>()?;
    expected.sort();
    got.sort();
    ensure!(
        got == expected,
        "RBAC.md: the release namespace's Roles are not the chart's leader-election Role and \
         the default Secret by name: {got:?}"
    );
    ensure!(
        recipe.iter().all(|o| o["kind"] != "ClusterRoleBinding"),
        "RBAC.md: a ClusterRoleBinding"
    );
    Ok(())
}

/// Creates or updates the objects (server-side apply), in order.
async fn apply_all(client: &kube::Client, objects: &[Value]) -> anyhow::Result<()> {
    let params = PatchParams::apply("chart-rbac-test").force();
    for value in objects {
        let object: DynamicObject = serde_json::from_value(value.clone())?;
        let types = object
            .types
            .clone()
            .context("an object without apiVersion/kind")?;
        let (resource, caps) = pinned_kind(client, &GroupVersionKind::try_from(&types)?).await?;
        let api: Api<DynamicObject> = match (caps.scope, object.metadata.namespace.as_deref()) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
            (Scope::Namespaced, None) => {
                bail!("{} {} has no namespace", types.kind, object.name_any())
            }
            (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
        };
        api.patch(&object.name_any(), &params, &Patch::Apply(&object))
            .await
            .with_context(|| format!("applying {} {}", types.kind, object.name_any()))?;
    }
    Ok(())
}

/// A request the ServiceAccount may or may not make.
#[derive(Clone, Debug)]
struct Access {
    group: String,
    resource: String,
    verb: String,
    /// `None`: all namespaces.
    namespace: Option<String>,
    name: Option<String>,
    allowed: bool,
}

impl Access {
    fn of(v: &Verb, namespace: Option<&str>, name: Option<&str>, allowed: bool) -> Access {
        Access {
            group: v.group.clone(),
            resource: v.resource.clone(),
            verb: v.verb.clone(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            allowed,
        }
    }

    /// Whether the client's user may (a SelfSubjectAccessReview).
    async fn granted(&self, client: &kube::Client) -> anyhow::Result<bool> {
        let (resource, subresource) = match self.resource.split_once('/') {
            Some((r, s)) => (r.to_owned(), Some(s.to_owned())),
            None => (self.resource.clone(), None),
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(self.group.clone()),
                    resource: Some(resource),
                    subresource,
                    verb: Some(self.verb.clone()),
                    namespace: self.namespace.clone(),
                    name: self.name.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

// ---------------------------------------------------------------------------------------------
// The operator process
// ---------------------------------------------------------------------------------------------

/// The operator binary, running until dropped (then killed).
struct Operator {
    child: Mutex<Child>,
    log: PathBuf,
    port: u16,
}

impl Operator {
    fn start(kubeconfig: &Path, log: &Path, args: &[String]) -> anyhow::Result<Operator> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let file = std::fs::File::create(log)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_checkout-link-operator"));
        // Only the arguments given here count.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CHECKOUT_LINK_OPERATOR_") {
                command.env_remove(key);
            }
        }
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--metrics-addr=127.0.0.1:{port}"))
            .args(["--resync-interval=2s", "--polar-timeout=5s"])
            .args(["--log-format=text", "--log-level=info"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = command.spawn().context("starting the operator")?;
        Ok(Operator {
            child: Mutex::new(child),
            log: log.to_owned(),
            port,
        })
    }

    /// Everything it logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails when the process has exited.
    fn check_running(&self) -> anyhow::Result<()> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(status) = child.try_wait()? {
            bail!("the operator exited ({status})");
        }
        Ok(())
    }

    /// An endpoint's status code and body.
    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let request = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            let head = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await?;
            std::io::Result::Ok(response)
        };
        let response = tokio::time::timeout(Duration::from_secs(2), request)
            .await
            .ok()?
            .ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head
            .lines()
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some((status, body.to_owned()))
    }

    /// Whether `/readyz` answers 200.
    async fn ready(&self) -> bool {
        self.get("/readyz")
            .await
            .is_some_and(|(status, _)| status == 200)
    }

    /// The `leader` gauge: whether this process runs the controller.
    async fn leads(&self) -> Option<bool> {
        let (_, metrics) = self.get("/metrics").await?;
        let value = metrics
            .lines()
            .find_map(|l| l.strip_prefix("checkout_link_operator_leader "))?;
        Some(value.trim() == "1")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// One run: a release, two namespaces, an emulator and the operator
// ---------------------------------------------------------------------------------------------

/// What a run applies and checks.
#[derive(Clone, Copy, Debug)]
enum Run {
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
    fn id(&self) -> &'static str {
        match self {
            Run::Full => "full",
            Run::NoLeaderElection => "no-leader-election",
            Run::Narrowed => "narrowed",
            Run::Without(case) => case.id,
        }
    }

    fn describe(&self) -> String {
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
    fn release(&self) -> String {
        match self {
            Run::Narrowed => "checkout-link-operator".to_owned(),
            _ => format!("clo-{}", self.id()),
        }
    }

    fn helm_values(&self) -> &'static [&'static str] {
        match self {
            Run::Narrowed => &["rbac.create=false"],
            Run::NoLeaderElection => &["leaderElection.enabled=false"],
            _ => &[],
        }
    }
}

/// One run's world.
struct World {
    id: &'static str,
    admin: kube::Client,
    /// The release namespace: ServiceAccount, default credentials Secret, Lease.
    ns: String,
    /// Where the CheckoutLinks live.
    app: String,
    /// `system:serviceaccount:<ns>:<sa>`.
    user: String,
    kubeconfig: PathBuf,
    dir: PathBuf,
    /// The Deployment's leader-election arguments, `$(POD_NAME)` replaced.
    election: Vec<String>,
    emulator: Emulator,
    links: Api<CheckoutLink>,
    operator: Option<Operator>,
}

impl World {
    /// Renders the chart for this run, checks the ServiceAccount's identity and rights, applies
    /// the run's RBAC and starts an emulator with the default credentials Secret.
    async fn new(run: &Run) -> anyhow::Result<World> {
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
                if access.granted(&as_sa).await? != access.allowed {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        })
        .await?;

        let listen = "127.0.0.1:0".parse()?;
        let emulator = polar_emulator::spawn(polar_emulator::Config::default(), listen).await?;
        let world = World {
            id,
            links: Api::namespaced(admin.clone(), &app),
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
        world.put_secret(&world.ns, DEFAULT_SECRET).await?;
        Ok(world)
    }

    /// A credentials Secret with the emulator's all-scopes token.
    async fn put_secret(&self, namespace: &str, name: &str) -> anyhow::Result<()> {
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": {"token": TOKEN, "server": self.emulator.base_url()},
        }))?;
        let params = PatchParams::apply("chart-rbac-test").force();
        Api::<Secret>::namespaced(self.admin.clone(), namespace)
            .patch(name, &params, &Patch::Apply(&secret))
            .await?;
        Ok(())
    }

    /// Starts the operator as the ServiceAccount, for this run's links, with the Deployment's
    /// leader-election arguments (and `extra`).
    fn start_operator(&mut self, extra: &[String]) -> anyhow::Result<()> {
        let mut args = vec![
            format!("--default-credentials-secret={}/{DEFAULT_SECRET}", self.ns),
            format!("--label-selector={CASE_LABEL}={}", self.id),
        ];
        args.extend(self.election.iter().cloned());
        args.extend(extra.iter().cloned());
        let log = self.dir.join("operator.log");
        self.operator = Some(Operator::start(&self.kubeconfig, &log, &args)?);
        Ok(())
    }

    fn operator(&self) -> anyhow::Result<&Operator> {
        self.operator
            .as_ref()
            .context("the operator is not running")
    }

    /// The Lease's name and this operator's identity in it (with leader election).
    fn lease(&self) -> Option<(String, String)> {
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
    async fn lease_holder(&self) -> anyhow::Result<Option<String>> {
        let Some((name, _)) = self.lease() else {
            return Ok(None);
        };
        let lease = Api::<Lease>::namespaced(self.admin.clone(), &self.ns)
            .get_opt(&name)
            .await?;
        Ok(lease.and_then(|l| l.spec).and_then(|s| s.holder_identity))
    }

    /// Waits until this process leads and `/readyz` answers 200: its caches are synced (a
    /// standby is ready too, but does not lead).
    async fn wait_synced(&self) -> anyhow::Result<()> {
        let operator = self.operator()?;
        eventually(
            "the leader gauge at 1 and /readyz answering 200",
            STEP,
            async || {
                operator.check_running()?;
                let leads = operator.leads().await == Some(true);
                Ok((leads && operator.ready().await).then_some(()))
            },
        )
        .await
    }

    /// Waits until the log shows the 403 for this verb on this resource.
    async fn wait_forbidden(&self, verb: &str, resource: &str) -> anyhow::Result<()> {
        let operator = self.operator()?;
        let wanted = format!("cannot {verb} resource \"{resource}\"");
        eventually(&format!("a 403 in the log ({wanted})"), STEP, async || {
            operator.check_running()?;
            // kube's own warnings quote the apiserver's message in Debug form.
            let log = operator.log().replace("\\\"", "\"");
            Ok(log
                .lines()
                .any(|l| l.contains("forbidden") && l.contains(&wanted))
                .then_some(()))
        })
        .await
    }

    /// Creates a CheckoutLink for this run's operator.
    async fn create_link(&self, name: &str, spec: Value) -> anyhow::Result<()> {
        let link: CheckoutLink = serde_json::from_value(json!({
            "apiVersion": "polar.sh/v1alpha1",
            "kind": "CheckoutLink",
            "metadata": {"name": name, "labels": {CASE_LABEL: self.id}},
            "spec": spec,
        }))?;
        self.links.create(&PostParams::default(), &link).await?;
        Ok(())
    }

    /// Sets `spec.label`; the new generation.
    async fn set_label(&self, name: &str, label: &str) -> anyhow::Result<Option<i64>> {
        let patch = Patch::Merge(json!({"spec": {"label": label}}));
        let link = self
            .links
            .patch(name, &PatchParams::default(), &patch)
            .await?;
        Ok(link.metadata.generation)
    }

    async fn link(&self, name: &str) -> anyhow::Result<CheckoutLink> {
        let link = self.links.get_opt(name).await?;
        link.with_context(|| format!("{}/{name} does not exist", self.app))
    }

    /// Waits for Ready=True at the current generation, with an id and a URL.
    async fn wait_ready(&self, name: &str) -> anyhow::Result<CheckoutLink> {
        self.wait_link(name, "Ready", |l| {
            let s = l.status.as_ref();
            condition(l, "Ready").is_some_and(|c| c.0 == "True")
                && s.and_then(|s| s.observed_generation) == l.metadata.generation
                && s.is_some_and(|s| s.id.is_some() && s.url.is_some())
        })
        .await
    }

    async fn wait_link(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&CheckoutLink) -> bool,
    ) -> anyhow::Result<CheckoutLink> {
        let operator = self.operator()?;
        eventually(&format!("{name} to be {what}"), STEP, async || {
            operator.check_running()?;
            Ok(self.links.get_opt(name).await?.filter(|l| check(l)))
        })
        .await
    }

    async fn wait_gone(&self, name: &str) -> anyhow::Result<()> {
        eventually(&format!("{name} to be deleted"), STEP, async || {
            Ok(self.links.get_opt(name).await?.is_none().then_some(()))
        })
        .await
    }

    /// The events about a link: (reason, series count).
    async fn events(&self, name: &str) -> anyhow::Result<Vec<(String, Option<i32>)>> {
        let events = Api::<Event>::namespaced(self.admin.clone(), &self.app)
            .list(&ListParams::default())
            .await?;
        Ok(events
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| (e.reason.unwrap_or_default(), e.series.map(|s| s.count)))
            .collect())
    }

    async fn wait_event(&self, name: &str, reason: &str, count: Option<i32>) -> anyhow::Result<()> {
        let what = format!("a {reason} event (series count {count:?}) for {name}");
        eventually(&what, STEP, async || {
            let events = self.events(name).await?;
            Ok(events
                .iter()
                .any(|e| e.0 == reason && e.1 == count)
                .then_some(()))
        })
        .await
    }

    fn count(&self, key: &str) -> u64 {
        self.emulator.counters().get(key).copied().unwrap_or(0)
    }

    /// Every checkout-link call the emulator received.
    fn polar_calls(&self) -> u64 {
        let counters = self.emulator.counters();
        counters
            .iter()
            .filter(|(k, _)| k.contains("/v1/checkout-links/"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Nothing happened to `name`: no status, Polar not called, and the finalizer as expected.
    async fn untouched(&self, name: &str, finalizer: bool) -> anyhow::Result<()> {
        let link = self.link(name).await?;
        ensure!(
            has_finalizer(&link) == finalizer,
            "finalizers: {:?}",
            link.finalizers()
        );
        ensure!(unwritten(&link), "a status was written: {:?}", link.status);
        ensure!(
            self.polar_calls() == 0,
            "Polar was called: {:?}",
            self.emulator.counters()
        );
        Ok(())
    }

    /// A failure report: links, Polar calls and the operator's log.
    async fn report(&self) -> String {
        let links = match self.links.list(&ListParams::default()).await {
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

/// What the ServiceAccount may do with the chart's RBAC (without `taken`), and may not.
fn accesses(chart: &Rendered, ns: &str, taken: Option<&Verb>) -> anyhow::Result<Vec<Access>> {
    let mut all = Vec::new();
    for (verb, names) in chart.grants()? {
        let namespace = (verb.role == Role).then_some(ns);
        let allowed = Some(&verb) != taken;
        all.push(Access::of(
            &verb,
            namespace,
            names.first().map(String::as_str),
            allowed,
        ));
        if let Some(name) = names.first() {
            // Names limit the verb: other objects are out of reach.
            let other = format!("not-{name}");
            all.push(Access::of(&verb, namespace, Some(&other), false));
        }
    }
    // No get on CheckoutLinks: the operator reads them from its watch cache.
    let get_links = Verb {
        role: ClusterRole,
        group: "polar.sh".into(),
        resource: "checkoutlinks".into(),
        verb: "get".into(),
    };
    all.push(Access::of(&get_links, None, None, false));
    Ok(all)
}

/// What the ServiceAccount may do with the narrowing, and may not.
fn narrowed_accesses(chart: &Rendered, ns: &str, app: &str) -> anyhow::Result<Vec<Access>> {
    let mut all = Vec::new();
    for (verb, names) in chart.grants()? {
        let name = names.first().map(String::as_str);
        match verb.role {
            Role => all.push(Access::of(&verb, Some(ns), name, true)),
            ClusterRole => {
                // In the watched namespace only; in the release namespace, only the default
                // Secret, by name (below).
                all.push(Access::of(&verb, Some(app), name, true));
                all.push(Access::of(&verb, None, name, false));
                all.push(Access::of(&verb, Some(ns), name, false));
            }
        }
    }
    let secret = |verb: &str| Verb {
        role: ClusterRole,
        group: String::new(),
        resource: "secrets".into(),
        verb: verb.into(),
    };
    for verb in ["get", "list", "watch"] {
        all.push(Access::of(
            &secret(verb),
            Some(ns),
            Some(DEFAULT_SECRET),
            true,
        ));
        all.push(Access::of(
            &secret(verb),
            Some(ns),
            Some("another-secret"),
            false,
        ));
    }
    Ok(all)
}

/// An object's `metadata.name`.
fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn has_finalizer(link: &CheckoutLink) -> bool {
    link.finalizers().iter().any(|f| f == FINALIZER)
}

/// Polls `probe` until it gives a value, for at most `timeout`.
async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if Instant::now() > deadline {
            return Err(match last {
                Some(e) => e.context(format!("waiting for {what}")),
                None => anyhow::anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------

fn shop_spec() -> Value {
    json!({"label": "v1", "products": [EBOOK]})
}

/// With enough rights: the operator leads (with leader election), and two links live their
/// whole life; nothing is forbidden, the token never logged.
async fn full(w: &mut World, extra: &[String]) -> anyhow::Result<()> {
    w.start_operator(extra)?;
    if let Some((_, identity)) = w.lease() {
        let w = &*w;
        eventually("the operator to hold the Lease", STEP, async || {
            w.operator()?.check_running()?;
            Ok((w.lease_holder().await?.as_deref() == Some(identity.as_str())).then_some(()))
        })
        .await?;
    }
    w.wait_synced().await?;
    lifecycle(w).await?;
    let log = w.operator()?.log();
    ensure!(
        !log.to_lowercase().contains("forbidden"),
        "something was forbidden"
    );
    ensure!(!log.contains(TOKEN), "the Polar token is in the log");
    Ok(())
}

/// Create, update twice, a link waiting for its own Secret, delete.
async fn lifecycle(w: &World) -> anyhow::Result<()> {
    // Create: finalizer, Polar link, status, event.
    w.create_link("shop", shop_spec()).await?;
    let link = w.wait_ready("shop").await?;
    ensure!(has_finalizer(&link), "no finalizer on a Ready link");
    let status = link.status.unwrap_or_default();
    let id = status.id.unwrap_or_default();
    let polar = w
        .emulator
        .link(&id)
        .context("the status' id is not in Polar")?;
    ensure!(
        polar["url"].as_str() == status.url.as_deref(),
        "status.url is not Polar's {}",
        polar["url"]
    );
    ensure!(w.count(POST) == 1, "POSTs: {}", w.count(POST));
    w.wait_event("shop", "Created", None).await?;

    // Update twice: a PATCH each, Ready at each generation; the second Updated event is counted
    // on the first (the recorder patches it).
    for (n, label) in [(1, "v2"), (2, "v3")] {
        let generation = w.set_label("shop", label).await?;
        let link = w.wait_ready("shop").await?;
        ensure!(
            link.metadata.generation == generation,
            "Ready at another generation"
        );
        ensure!(
            w.count(PATCH) == n,
            "PATCHes: {} (want {n})",
            w.count(PATCH)
        );
        let polar = w.emulator.link(&id).context("the link left Polar")?;
        ensure!(
            polar["label"] == label,
            "Polar's label is {}",
            polar["label"]
        );
    }
    w.wait_event("shop", "Updated", Some(2)).await?;

    // A link with its own Secret, in its own namespace: missing, then created.
    own_secret_arrives(w).await?;
    w.wait_ready("own").await?;
    ensure!(w.count(POST) == 2, "POSTs: {}", w.count(POST));

    // Delete: DELETE reaches Polar, the finalizers are released.
    for name in ["shop", "own"] {
        w.links.delete(name, &DeleteParams::default()).await?;
    }
    for name in ["shop", "own"] {
        w.wait_gone(name).await?;
    }
    ensure!(w.count(DELETE) == 2, "DELETEs: {}", w.count(DELETE));
    ensure!(
        w.emulator.link(&id).is_none(),
        "the link is still live in Polar"
    );
    Ok(())
}

/// Creates `own`, which uses the Secret `shop-polar` of its namespace; waits until it says the
/// Secret is missing, then creates the Secret.
async fn own_secret_arrives(w: &World) -> anyhow::Result<()> {
    let mut spec = shop_spec();
    spec["credentialsSecretRef"] = json!({"name": OWN_SECRET});
    w.create_link("own", spec).await?;
    w.wait_link("own", "CredentialsMissing", |l| {
        condition(l, "Ready").is_some_and(|c| c.0 == "False" && c.1 == "CredentialsMissing")
    })
    .await?;
    w.put_secret(&w.app, OWN_SECRET).await
}

/// Without one verb: what the case's symptom says, after the 403 for it showed in the log.
async fn without(w: &mut World, case: &Case) -> anyhow::Result<()> {
    w.start_operator(&[])?;
    let forbidden = async |w: &World| w.wait_forbidden(case.verb, case.resource).await;
    // Create `shop`, see the 403, then give the operator time to do what it should not manage.
    let create_then_observe = async |w: &World| -> anyhow::Result<()> {
        w.create_link("shop", shop_spec()).await?;
        forbidden(w).await?;
        tokio::time::sleep(OBSERVE).await;
        Ok(())
    };
    match case.symptom {
        NeverReady => {
            create_then_observe(w).await?;
            let op = w.operator()?;
            ensure!(op.leads().await == Some(true), "it does not lead");
            ensure!(!op.ready().await, "/readyz answers 200");
            ensure!(unwritten(&w.link("shop").await?), "a status was written");
            ensure!(w.polar_calls() == 0, "Polar was called");
        }
        NewLinksUnseen => {
            w.wait_synced().await?;
            create_then_observe(w).await?;
            w.untouched("shop", false).await?;
            let named = format!("{}/shop", w.app);
            ensure!(
                !w.operator()?.log().contains(&named),
                "the log names {named}"
            );
        }
        NoFinalizer => {
            w.wait_synced().await?;
            create_then_observe(w).await?;
            w.untouched("shop", false).await?;
            // Seen (unlike NewLinksUnseen): its failed reconciles are logged.
            let named = format!("{}/shop", w.app);
            ensure!(
                w.operator()?.log().contains(&named),
                "the log never names {named}"
            );
        }
        NoStatus => {
            w.wait_synced().await?;
            create_then_observe(w).await?;
            let link = w.link("shop").await?;
            ensure!(has_finalizer(&link), "no finalizer");
            ensure!(unwritten(&link), "a status was written");
            let created = (w.count(POST), w.emulator.links().len());
            ensure!(
                created == (1, 1),
                "(POSTs, links in Polar): {created:?}, want one each"
            );
        }
        CredentialsUnreadable => {
            w.wait_synced().await?;
            create_then_observe(w).await?;
            w.untouched("shop", true).await?;
        }
        SecretChangesUnseen => {
            w.wait_synced().await?;
            own_secret_arrives(w).await?;
            forbidden(w).await?;
            tokio::time::sleep(OBSERVE).await;
            let ready = condition(&w.link("own").await?, "Ready");
            let missing = ready
                .as_ref()
                .is_some_and(|c| c.0 == "False" && c.1 == "CredentialsMissing");
            ensure!(missing, "the link saw its Secret: {ready:?}");
            ensure!(w.polar_calls() == 0, "Polar was called");
        }
        NoEvents => {
            w.wait_synced().await?;
            w.create_link("shop", shop_spec()).await?;
            w.wait_ready("shop").await?;
            w.set_label("shop", "v2").await?;
            w.wait_ready("shop").await?;
            forbidden(w).await?;
            tokio::time::sleep(OBSERVE).await;
            let events = w.events("shop").await?;
            ensure!(events.is_empty(), "events were recorded: {events:?}");
        }
        RepeatsUncounted => {
            w.wait_synced().await?;
            w.create_link("shop", shop_spec()).await?;
            w.wait_ready("shop").await?;
            for label in ["v2", "v3"] {
                w.set_label("shop", label).await?;
                w.wait_ready("shop").await?;
            }
            forbidden(w).await?;
            tokio::time::sleep(OBSERVE).await;
            let mut events = w.events("shop").await?;
            events.sort();
            let want = [("Created".to_owned(), None), ("Updated".to_owned(), None)];
            ensure!(events == want, "events: {events:?}, want {want:?}");
        }
        NeverLeads => {
            let (_, identity) = w.lease().context("no leader election in the Deployment")?;
            create_then_observe(w).await?;
            let holder = w.lease_holder().await?;
            ensure!(
                holder.as_deref() != Some(identity.as_str()),
                "the operator holds the Lease"
            );
            let leads = w.operator()?.leads().await;
            ensure!(leads == Some(false), "the leader gauge: {leads:?}");
            w.untouched("shop", false).await?;
        }
    }
    Ok(())
}

/// Sets up and runs one run; on failure, the error with the world's report.
async fn run(run: Run) -> Result<Duration, String> {
    let started = Instant::now();
    let mut world = World::new(&run)
        .await
        .map_err(|e| format!("setting up: {e:#}"))?;
    let result = match &run {
        Run::Full | Run::NoLeaderElection => full(&mut world, &[]).await,
        Run::Narrowed => {
            let namespace = format!("--namespace={}", world.app);
            full(&mut world, &[namespace]).await
        }
        Run::Without(case) => without(&mut world, case).await,
    };
    match result {
        Ok(()) => Ok(started.elapsed()),
        Err(e) => Err(format!("{e:#}\n{}", world.report().await)),
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_verb_the_chart_grants_has_a_case_and_its_roles_bind_the_service_account() {
    let chart = Rendered::new("coverage", "operators", &[]).await.unwrap();
    chart.check_bindings("operators").unwrap();
    let granted = chart.verbs().unwrap();
    check_coverage(&granted).unwrap();

    // The check fails for a verb granted without a case, and for a case without its verb.
    let extra = Verb {
        role: ClusterRole,
        group: String::new(),
        resource: "configmaps".into(),
        verb: "list".into(),
    };
    let mut more = granted.clone();
    more.insert(extra);
    assert!(check_coverage(&more).is_err());
    let mut fewer = granted.clone();
    fewer.remove(&CASES[0].verb());
    assert!(check_coverage(&fewer).is_err());

    // Taking a verb out leaves every other one, with its resource names.
    for case in CASES {
        let reduced = Rendered {
            objects: chart.without(&case.verb()).unwrap(),
            args: Vec::new(),
        };
        let mut expected = chart.grants().unwrap();
        expected.retain(|(v, _)| v != &case.verb());
        let mut got = reduced.grants().unwrap();
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{}", case.id);
    }

    // Without leader election, no Role.
    let no_election = Run::NoLeaderElection.helm_values();
    let no_election = Rendered::new("coverage", "operators", no_election)
        .await
        .unwrap();
    assert!(no_election.find("Role").unwrap().is_none());

    // RBAC.md's narrowing grants the chart's rules (for the names it uses).
    let named = Rendered::new("checkout-link-operator", "operators", &[])
        .await
        .unwrap();
    let recipe = narrowing_recipe("operators", "shop").unwrap();
    check_recipe(&recipe, &named, "operators", "shop").unwrap();

    // The Deployment's Lease is the one the Role names.
    let lease = chart
        .args
        .iter()
        .find_map(|a| a.strip_prefix("--leader-election-lease-name="))
        .expect("the Deployment names its Lease");
    let named: Vec<_> = chart
        .grants()
        .unwrap()
        .into_iter()
        .filter(|(_, n)| !n.is_empty())
        .collect();
    assert!(!named.is_empty(), "no verb is limited to the Lease");
    for (verb, names) in named {
        assert_eq!(verb.resource, "leases", "{verb} is limited to {names:?}");
        assert_eq!(names, [lease], "{verb}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_charts_rbac_is_exactly_what_the_operator_needs() {
    tokio::task::spawn_blocking(ControlPlane::shared)
        .await
        .expect("the control plane");
    let chart = Rendered::new("coverage", "operators", &[]).await.unwrap();
    check_coverage(&chart.verbs().unwrap()).unwrap();

    let mut runs = vec![Run::Full, Run::NoLeaderElection, Run::Narrowed];
    runs.extend(CASES.iter().map(|c| Run::Without(*c)));
    let started = Instant::now();
    // One task: the runs wait on the apiserver, the emulators and the operator processes.
    let results = futures::future::join_all(runs.iter().map(|r| run(*r))).await;
    let mut failures = Vec::new();
    for (r, result) in runs.iter().zip(results) {
        match result {
            Ok(took) => eprintln!(
                "ok   {:20} {:5.1}s  {}",
                r.id(),
                took.as_secs_f64(),
                r.describe()
            ),
            Err(report) => {
                eprintln!("FAIL {:20}         {}", r.id(), r.describe());
                failures.push(format!("=== {}: {}\n{report}", r.id(), r.describe()));
            }
        }
    }
    eprintln!(
        "{} runs in {:.1}s",
        runs.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// No status written by the operator: the apiserver's default (observedGeneration -1) only.
fn unwritten(link: &CheckoutLink) -> bool {
    link.status
        .as_ref()
        .is_none_or(|s| *s == CheckoutLinkStatus::unobserved())
}
