//! The chart's RBAC as data: the verbs its roles grant (read from `helm template`), the
//! objects with one verb taken out, RBAC.md's narrowing recipe, and the SelfSubjectAccessReviews
//! that show what a ServiceAccount may do.

use std::collections::BTreeSet;
use std::fmt;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use serde_json::{Value, json};

use crate::common::helm;
pub use RoleKind::{ClusterRole, Role};

/// The API group of RBAC.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The default credentials Secret, in the release namespace.
pub const DEFAULT_SECRET: &str = "polar";

/// Which role of the chart a rule belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleKind {
    /// The operator's rights, cluster-wide.
    ClusterRole,
    /// The leader-election Role, in the release namespace.
    Role,
}

impl RoleKind {
    pub fn kind(self) -> &'static str {
        match self {
            ClusterRole => "ClusterRole",
            Role => "Role",
        }
    }
}

/// One verb on one resource of one role: what a case takes away.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Verb {
    pub role: RoleKind,
    pub group: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub verb: String,
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

/// A rule's verbs, expanded: (group, resource, resourceNames, verb).
pub fn expand(rule: &PolicyRule) -> Vec<(String, String, Vec<String>, String)> {
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
pub struct Rendered {
    /// The ServiceAccount and the RBAC objects (of any template), in order.
    pub objects: Vec<Value>,
    /// The operator container's arguments.
    pub args: Vec<String>,
}

impl Rendered {
    /// `helm template` of the chart for this release and namespace, with `--set` values.
    pub async fn new(release: &str, namespace: &str, set: &[&str]) -> anyhow::Result<Rendered> {
        let (release, namespace) = (release.to_owned(), namespace.to_owned());
        let set: Vec<String> = set
            .iter()
            .flat_map(|v| ["--set", v])
            .map(Into::into)
            .collect();
        // helm runs synchronously: off the runtime's threads, for the runs go on at once.
        let yaml = tokio::task::spawn_blocking(move || {
            let set: Vec<&str> = set.iter().map(String::as_str).collect();
            helm::render(&release, &namespace, &set)
        })
        .await?
        .map_err(|e| anyhow::anyhow!("helm template failed: {e}"))?;
        let mut objects = Vec::new();
        let mut args = None;
        for value in helm::documents(&yaml) {
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
    pub fn find(&self, kind: &str) -> anyhow::Result<Option<&Value>> {
        let mut found = self.objects.iter().filter(|o| o["kind"] == kind);
        let one = found.next();
        ensure!(found.next().is_none(), "the chart renders several {kind}s");
        Ok(one)
    }

    pub fn one(&self, kind: &str) -> anyhow::Result<&Value> {
        self.find(kind)?
            .with_context(|| format!("the chart renders no {kind}"))
    }

    pub fn service_account(&self) -> anyhow::Result<String> {
        Ok(name(self.one("ServiceAccount")?))
    }

    /// The rules of a role (none when the chart renders no such role).
    pub fn rules(&self, role: RoleKind) -> anyhow::Result<Vec<PolicyRule>> {
        match self.find(role.kind())? {
            Some(object) => Ok(serde_json::from_value(object["rules"].clone())?),
            None => Ok(Vec::new()),
        }
    }

    /// Every verb the chart's roles grant, with the resource names it is limited to.
    pub fn grants(&self) -> anyhow::Result<Vec<(Verb, Vec<String>)>> {
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

    pub fn verbs(&self) -> anyhow::Result<BTreeSet<Verb>> {
        Ok(self.grants()?.into_iter().map(|(v, _)| v).collect())
    }

    /// Each role is bound to the chart's ServiceAccount only, in the release namespace.
    pub fn check_bindings(&self, namespace: &str) -> anyhow::Result<()> {
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
    pub fn without(&self, taken: &Verb) -> anyhow::Result<Vec<Value>> {
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
pub fn narrowing_recipe(ns: &str, app: &str) -> anyhow::Result<Vec<Value>> {
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
pub fn check_recipe(recipe: &[Value], chart: &Rendered, ns: &str, app: &str) -> anyhow::Result<()> {
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
pub async fn apply_all(client: &kube::Client, objects: &[Value]) -> anyhow::Result<()> {
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
pub struct Access {
    pub group: String,
    pub resource: String,
    pub verb: String,
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub allowed: bool,
}

impl Access {
    pub fn of(v: &Verb, namespace: Option<&str>, name: Option<&str>, allowed: bool) -> Access {
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
    pub async fn granted(&self, client: &kube::Client) -> anyhow::Result<bool> {
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
/// What the ServiceAccount may do with the chart's RBAC (without `taken`), and may not.
pub fn accesses(chart: &Rendered, ns: &str, taken: Option<&Verb>) -> anyhow::Result<Vec<Access>> {
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
pub fn narrowed_accesses(chart: &Rendered, ns: &str, app: &str) -> anyhow::Result<Vec<Access>> {
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
pub fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
