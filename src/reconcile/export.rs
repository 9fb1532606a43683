//! `spec.export`: the link's URL, share URL and id written into a ConfigMap of the resource's
//! namespace for a website (Kubernetes IO). Each CheckoutLink applies its own keys with its
//! own field manager (`checkout-link-operator/<uid>`), so several links, Helm or a person can
//! share one ConfigMap and nobody's keys are touched but the link's. A ConfigMap the operator
//! created is marked, and deleted when its last key goes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::EventType;

use crate::crd::{CheckoutLink, CheckoutLinkStatus, ExportSpec, MANAGER};
use crate::error::Error;

use super::context::Context;

/// The annotation on a ConfigMap the operator created for an export.
pub const CREATED_ANNOTATION: &str = "polar.sh/created-by";

/// The keys and values `spec.export` asks for, given the status (`None` while the link has no
/// URL yet). Pure.
pub fn wanted(
    name: &str,
    export: &ExportSpec,
    status: &CheckoutLinkStatus,
) -> Option<BTreeMap<String, String>> {
    let keys = export.keys.clone().unwrap_or_default();
    let key =
        |chosen: Option<String>, suffix: &str| chosen.unwrap_or_else(|| format!("{name}.{suffix}"));
    let mut data = BTreeMap::new();
    data.insert(key(keys.url, "url"), status.url.clone()?);
    data.insert(key(keys.share_url, "shareUrl"), status.share_url.clone()?);
    data.insert(key(keys.id, "id"), status.id.clone()?);
    Some(data)
}

fn manager(link: &CheckoutLink) -> String {
    format!("{MANAGER}/{}", link.uid().unwrap_or_default())
}

fn kube(step: &'static str) -> impl Fn(kube::Error) -> Error {
    move |source| Error::Kube { step, source }
}

/// Brings the ConfigMap to hold the link's keys; a write only when they differ.
pub async fn apply(
    client: &kube::Client,
    link: &CheckoutLink,
    export: &ExportSpec,
    data: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let ns = link.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let current = api
        .get_opt(&export.config_map)
        .await
        .map_err(kube("GetConfigMap"))?;
    let held = current.as_ref().and_then(|c| c.data.as_ref());
    if held.is_some_and(|h| data.iter().all(|(k, v)| h.get(k) == Some(v))) {
        return Ok(());
    }
    let mut metadata = serde_json::json!({"name": export.config_map});
    // Created now: marked, so that it is deleted with its last exported key.
    let created = match &current {
        None => true,
        Some(c) => c.annotations().get(CREATED_ANNOTATION).map(String::as_str) == Some(MANAGER),
    };
    if created {
        metadata["annotations"] = serde_json::json!({ CREATED_ANNOTATION: MANAGER });
    }
    let patch = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data,
    });
    api.patch(
        &export.config_map,
        &PatchParams::apply(&manager(link)).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(kube("ApplyConfigMap"))?;
    Ok(())
}

/// Takes the link's keys out of the ConfigMap `name`; deletes the ConfigMap when the operator
/// created it and nothing else is left in it.
pub async fn remove(client: &kube::Client, link: &CheckoutLink, name: &str) -> Result<(), Error> {
    let ns = link.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let Some(current) = api.get_opt(name).await.map_err(kube("GetConfigMap"))? else {
        return Ok(());
    };
    let ours: Vec<String> = link
        .spec
        .export
        .as_ref()
        .filter(|e| e.config_map == name)
        .zip(link.status.as_ref())
        .and_then(|(e, s)| wanted(&link.name_any(), e, s))
        .map(|d| d.into_keys().collect())
        .unwrap_or_default();
    let data = current.data.clone().unwrap_or_default();
    let binary = current.binary_data.as_ref().is_some_and(|b| !b.is_empty());
    let created = current
        .annotations()
        .get(CREATED_ANNOTATION)
        .map(String::as_str)
        == Some(MANAGER);
    if created && !binary && data.keys().all(|k| ours.contains(k)) {
        // Changed since it was read (409): the error retries the removal from a fresh read.
        return delete_unchanged(&api, &current, false).await;
    }
    // Applying nothing drops what this link's manager owned (its keys, its part of the mark).
    let patch = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
    });
    let after = api
        .patch(
            name,
            &PatchParams::apply(&manager(link)).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(kube("ApplyConfigMap"))?;
    // Two links sharing a ConfigMap may be removed at once, each reading the other's keys
    // before either patch: whichever patch leaves it empty deletes it.
    let empty = after.data.as_ref().is_none_or(|d| d.is_empty())
        && after.binary_data.as_ref().is_none_or(|b| b.is_empty());
    if created && empty {
        // Our keys are gone already: if someone wrote to it since, it is theirs now.
        return delete_unchanged(&api, &after, true).await;
    }
    Ok(())
}

/// Deletes the ConfigMap if it is still exactly `current` (nobody wrote to it since); a
/// change since counts as done when `changed_is_done`.
async fn delete_unchanged(
    api: &Api<ConfigMap>,
    current: &ConfigMap,
    changed_is_done: bool,
) -> Result<(), Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: current.resource_version(),
            uid: current.uid(),
        }),
        ..Default::default()
    };
    match api.delete(&current.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || (e.code == 409 && changed_is_done) => Ok(()),
        Err(e) => Err(kube("DeleteConfigMap")(e)),
    }
}

/// Writes the export (moving it when its ConfigMap changed); the ConfigMap now holding the
/// keys, or `None` when nothing changed. A failure is reported (log, Warning event), not
/// retried in a loop: the next reconcile tries again.
pub(super) async fn exported(
    ctx: &Context,
    link: &CheckoutLink,
    status: &CheckoutLinkStatus,
) -> Option<Option<String>> {
    let before = link.status.as_ref().and_then(|s| s.exported_to.clone());
    let target = link.spec.export.as_ref().map(|e| e.config_map.clone());
    let mut result = Ok(());
    if let Some(old) = before.as_ref().filter(|old| Some(*old) != target.as_ref()) {
        result = remove(&ctx.client, link, old).await;
    }
    if let (Ok(()), Some(spec)) = (&result, &link.spec.export)
        && let Some(data) = wanted(&link.name_any(), spec, status)
    {
        result = apply(&ctx.client, link, spec, &data).await;
    }
    let uid = link.uid().unwrap_or_default();
    match result {
        Ok(()) => {
            ctx.remember(&uid, |m| m.export_error = None);
            (before != target).then_some(target)
        }
        Err(error) => {
            let note = format!("could not write the export: {error}");
            let new = ctx.remember(&uid, |m| {
                let new = m.export_error.as_deref() != Some(note.as_str());
                m.export_error = Some(note.clone());
                new
            });
            if new {
                ctx.publish(link, EventType::Warning, "ExportFailed", "Export", note)
                    .await;
            } else {
                tracing::debug!(%note, "export still failing");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ExportKeys;

    #[test]
    fn keys_default_to_the_resource_name_and_wait_for_the_url() {
        let export = ExportSpec {
            config_map: "site".into(),
            keys: Some(ExportKeys {
                url: Some("LAUNCH_URL".into()),
                ..Default::default()
            }),
        };
        let status = CheckoutLinkStatus {
            id: Some("i".into()),
            url: Some("u".into()),
            share_url: Some("s".into()),
            ..Default::default()
        };
        let data = wanted("launch", &export, &status).unwrap();
        assert_eq!(
            data,
            BTreeMap::from([
                ("LAUNCH_URL".to_owned(), "u".to_owned()),
                ("launch.shareUrl".to_owned(), "s".to_owned()),
                ("launch.id".to_owned(), "i".to_owned()),
            ])
        );
        assert_eq!(
            wanted("launch", &export, &CheckoutLinkStatus::default()),
            None
        );
    }
}
