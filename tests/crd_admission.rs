//! The CRD against a real kube-apiserver: it is established, documented, printed with its
//! columns, and it rejects every invalid CheckoutLink with a message naming the field.

mod common;

use std::process::Command;

use checkout_link_operator::{CheckoutLink, CheckoutLinkStatus};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use testenv::ControlPlane;

const PRODUCT_A: &str = "3f0c6c4e-1b7a-4d2e-9f3a-2b1c0d9e8f7a";
const PRODUCT_B: &str = "a6f1e2d3-4c5b-4a69-8e7d-6c5b4a392817";

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("polar.sh", "v1alpha1", "CheckoutLink"),
        "checkoutlinks",
    )
}

fn object(name: &str, spec: Value) -> DynamicObject {
    DynamicObject::new(name, &resource()).data(json!({ "spec": spec }))
}

/// Creates the object with a server-side dry run: full validation, nothing stored.
async fn admit(api: &Api<DynamicObject>, spec: Value) -> Result<(), String> {
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&params, &object("probe", spec)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(status.message),
        Err(other) => panic!("unexpected client error: {other}"),
    }
}

fn kubectl(args: &[&str]) -> String {
    let plane = ControlPlane::shared();
    let bin = testenv::tools_dir().expect("tools").join("kubectl");
    let out = Command::new(bin)
        .arg(format!(
            "--kubeconfig={}",
            plane.kubeconfig_path().display()
        ))
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The metadata rules live in a ValidatingAdmissionPolicy, which the apiserver loads
/// asynchronously after it is created: wait until it denies a 41-character key.
async fn wait_for_metadata_policy(api: &Api<DynamicObject>) {
    let probe = json!({"products": [PRODUCT_A], "metadata": {"k".repeat(41): "v"}});
    let what = "the metadata ValidatingAdmissionPolicy to take effect";
    common::eventually(
        what,
        std::time::Duration::from_secs(30),
        async || match admit(api, probe.clone()).await {
            Err(_) => Ok(()),
            Ok(()) => Err("a 41-character key admitted"),
        },
    )
    .await
}

fn metadata_with(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("key{i}"), json!("v"))).collect())
}

#[tokio::test]
async fn the_crd_is_established_and_served() {
    let plane = ControlPlane::shared();
    let client = plane.client().await.unwrap();
    let crd = Api::<CustomResourceDefinition>::all(client)
        .get("checkoutlinks.polar.sh")
        .await
        .unwrap();
    let established = crd
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established, "the CRD is not Established");
}

#[tokio::test]
async fn a_new_checkout_link_reads_as_not_yet_observed() {
    let plane = ControlPlane::shared();
    let (client, ns) = plane.namespace("crd-default-status").await.unwrap();
    let api: Api<CheckoutLink> = Api::namespaced(client, &ns);
    let link: CheckoutLink = serde_json::from_value(json!({
        "apiVersion": "polar.sh/v1alpha1",
        "kind": "CheckoutLink",
        "metadata": {"name": "fresh"},
        "spec": {"products": [PRODUCT_A]}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &link).await.unwrap();
    // kstatus reads this as InProgress (observedGeneration behind generation), not Current.
    assert_eq!(created.status, Some(CheckoutLinkStatus::unobserved()));
    let read = api.get("fresh").await.unwrap();
    assert_eq!(read.status, Some(CheckoutLinkStatus::unobserved()));
    assert_eq!(read.metadata.generation, Some(1));
}

#[tokio::test]
async fn kubectl_explain_shows_the_field_descriptions() {
    let _ = ControlPlane::shared();
    let out = tokio::task::spawn_blocking(|| kubectl(&["explain", "checkoutlink.spec.products"]))
        .await
        .unwrap();
    assert!(
        out.contains("The Polar products offered by this link"),
        "explain output: {out}"
    );
    let out = tokio::task::spawn_blocking(|| kubectl(&["explain", "cl.spec.deletionPolicy"]))
        .await
        .unwrap();
    assert!(
        out.contains("`Orphan` leaves it in place"),
        "explain output: {out}"
    );
    // kubectl wraps each description to the terminal; the line breaks of the `///` comments in
    // src/crd.rs must not show through as short, ragged lines.
    let out = tokio::task::spawn_blocking(|| kubectl(&["explain", "checkoutlink.spec"]))
        .await
        .unwrap();
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(
            "keeps it equal to this spec, and writes its URL and client secret to `.status`."
        ),
        "explain output: {out}"
    );
    for source_break in ["writes its URL and\n", "access token (`token`\n"] {
        assert!(
            !out.contains(source_break),
            "the source's line break {source_break:?} shows in: {out}"
        );
    }
}

#[tokio::test]
async fn kubectl_get_prints_ready_url_and_age_and_the_id_when_wide() {
    let plane = ControlPlane::shared();
    let (client, ns) = plane.namespace("printer-columns").await.unwrap();
    let api: Api<CheckoutLink> = Api::namespaced(client, &ns);
    let link: CheckoutLink = serde_json::from_value(json!({
        "apiVersion": "polar.sh/v1alpha1", "kind": "CheckoutLink",
        "metadata": {"name": "launch"},
        "spec": {"products": [PRODUCT_A]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &link).await.unwrap();
    let status = json!({"status": {
        "id": "0b7e4a8e-8d59-4d0c-9a43-1b9f0e0c8d11",
        "url": "https://buy.polar.sh/polar_cl_example",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "message": "in sync",
                        "lastTransitionTime": "2026-11-21T00:00:00Z"}]
    }});
    api.patch_status("launch", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    let ns2 = ns.clone();
    let out = tokio::task::spawn_blocking(move || kubectl(&["get", "cl", "-n", &ns2]))
        .await
        .unwrap();
    let header = out.lines().next().unwrap_or_default();
    for column in ["NAME", "READY", "URL", "AGE"] {
        assert!(header.contains(column), "missing column {column} in: {out}");
    }
    assert!(
        !header.contains("POLAR ID"),
        "the id is only for -o wide: {out}"
    );
    assert!(
        out.contains("True") && out.contains("https://buy.polar.sh/polar_cl_example"),
        "{out}"
    );

    let wide = tokio::task::spawn_blocking(move || {
        kubectl(&["get", "checkoutlinks", "-n", &ns, "-o", "wide"])
    })
    .await
    .unwrap();
    assert!(
        wide.lines().next().unwrap_or_default().contains("POLAR ID"),
        "{wide}"
    );
    assert!(
        wide.contains("0b7e4a8e-8d59-4d0c-9a43-1b9f0e0c8d11"),
        "{wide}"
    );
}

#[tokio::test]
async fn invalid_checkout_links_are_rejected_with_a_message_naming_the_field() {
    let plane = ControlPlane::shared();
    let (client, ns) = plane.namespace("invalid-links").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource());
    let p = |extra: Value| {
        let mut spec = json!({"products": [PRODUCT_A]});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    wait_for_metadata_policy(&api).await;
    let long_url = format!("https://example.com/{}", "a".repeat(2084));
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "no products",
            json!({}),
            &["spec.products", "Required value"],
        ),
        (
            "empty products",
            json!({"products": []}),
            &["spec.products", "at least 1"],
        ),
        (
            "a non-UUID product",
            json!({"products": ["abc"]}),
            &["spec.products[0]"],
        ),
        (
            "a UUID v1 product",
            json!({"products": ["6ba7b810-9dad-11d1-80b4-00c04fd430c8"]}),
            &["spec.products[0]"],
        ),
        (
            "duplicate products",
            json!({"products": [PRODUCT_A, PRODUCT_B, PRODUCT_A]}),
            &["spec.products", "same product twice"],
        ),
        (
            "duplicates differing in case",
            json!({"products": [PRODUCT_A, PRODUCT_A.to_uppercase()]}),
            &["spec.products", "same product twice"],
        ),
        (
            "a product named two ways",
            json!({"products": [PRODUCT_A, {"name": "Pro", "metadata": {"sku": "pro"}}]}),
            &["spec.products[1]", "exactly one way"],
        ),
        (
            "a product named no way",
            json!({"products": [{}]}),
            &["spec.products[0]", "exactly one way"],
        ),
        (
            "a product named by an unknown field",
            json!({"products": [{"sku": "pro"}]}),
            &["spec.products[0]", "exactly one way"],
        ),
        (
            "a product entry of the wrong type",
            json!({"products": [7]}),
            &["spec.products[0]", "a product id or an object"],
        ),
        (
            "empty product metadata",
            json!({"products": [{"metadata": {}}]}),
            &["spec.products[0]", "metadata must be a non-empty map"],
        ),
        (
            "product metadata that is not a string",
            json!({"products": [{"metadata": {"tier": 1}}]}),
            &["spec.products[0]", "metadata must be a non-empty map"],
        ),
        (
            "an id that is not a UUID in an object",
            json!({"products": [{"id": "abc"}]}),
            &["spec.products[0]", "id must be a UUID v4"],
        ),
        (
            "an empty product name",
            json!({"products": [{"name": ""}]}),
            &["spec.products[0]", "name must be a non-empty string"],
        ),
        (
            "a preset discount named by id and by code",
            p(
                json!({"discount": {"presetId": "0b7e4a8e-8d59-4d0c-9a43-1b9f0e0c8d11", "presetCode": "LAUNCH20"}}),
            ),
            &["presetId or by presetCode, not both"],
        ),
        (
            "a utm_source Polar would ignore",
            p(
                json!({"metadata": {"utm_source": "email"}, "urlParameters": {"utmSource": "newsletter"}}),
            ),
            &[
                "spec.urlParameters.utmSource",
                "spec.metadata has the key utm_source",
            ],
        ),
        (
            "a reference_id Polar would ignore",
            p(json!({"metadata": {"reference_id": "a"}, "urlParameters": {"referenceId": "b"}})),
            &["spec.urlParameters.referenceId", "reference_id"],
        ),
        (
            "50 metadata keys",
            p(json!({"metadata": metadata_with(50)})),
            &["spec.metadata", "49"],
        ),
        (
            "51 metadata keys",
            p(json!({"metadata": metadata_with(51)})),
            &["spec.metadata", "49"],
        ),
        (
            "a 41-character metadata key",
            p(json!({"metadata": {"k".repeat(41): "v"}})),
            &["spec.metadata", "1 to 40 characters"],
        ),
        (
            "an empty metadata key",
            p(json!({"metadata": {"": "v"}})),
            &["spec.metadata", "1 to 40 characters"],
        ),
        (
            "a 501-character metadata value",
            p(json!({"metadata": {"k": "v".repeat(501)}})),
            &["spec.metadata", "1 to 500 characters"],
        ),
        (
            "an empty metadata value",
            p(json!({"metadata": {"k": ""}})),
            &["spec.metadata", "1 to 500 characters"],
        ),
        (
            "an object as a metadata value",
            p(json!({"metadata": {"k": {"nested": 1}}})),
            &["spec.metadata", "no objects"],
        ),
        (
            "a list as a metadata value",
            p(json!({"metadata": {"k": [1, 2]}})),
            &["spec.metadata", "no objects"],
        ),
        (
            "the reserved metadata key",
            p(json!({"metadata": {"k8s_checkout_link_uid": "x"}})),
            &["spec.metadata", "reserved"],
        ),
        (
            "an ftp: successUrl",
            p(json!({"successUrl": "ftp://example.com/"})),
            &["spec.successUrl", "http"],
        ),
        (
            "a relative successUrl",
            p(json!({"successUrl": "/thanks"})),
            &["spec.successUrl", "http"],
        ),
        (
            "a successUrl without a host",
            p(json!({"successUrl": "http://:80/"})),
            &["spec.successUrl", "host"],
        ),
        (
            "a mailto: returnUrl",
            p(json!({"returnUrl": "mailto:a@example.com"})),
            &["spec.returnUrl", "http"],
        ),
        (
            "a successUrl over 2083 characters",
            p(json!({"successUrl": long_url})),
            &["spec.successUrl", "2083"],
        ),
        (
            "a trial interval without a count",
            p(json!({"trial": {"interval": "month"}})),
            &["spec.trial.count", "Required value"],
        ),
        (
            "a trial count without an interval",
            p(json!({"trial": {"count": 1}})),
            &["spec.trial.interval", "Required value"],
        ),
        (
            "an unknown trial interval",
            p(json!({"trial": {"interval": "fortnight", "count": 1}})),
            &["spec.trial.interval", "Unsupported value"],
        ),
        (
            "a trial of 0 intervals",
            p(json!({"trial": {"interval": "day", "count": 0}})),
            &["spec.trial.count"],
        ),
        (
            "a trial of 1001 intervals",
            p(json!({"trial": {"interval": "day", "count": 1001}})),
            &["spec.trial.count"],
        ),
        ("seats 0", p(json!({"seats": 0})), &["spec.seats"]),
        ("seats 10001", p(json!({"seats": 10001})), &["spec.seats"]),
        ("units 0", p(json!({"units": 0})), &["spec.units"]),
        (
            "a credentials reference into another namespace",
            p(json!({"credentialsSecretRef": {"name": "polar", "namespace": "other"}})),
            &["spec.credentialsSecretRef", "own namespace"],
        ),
        (
            "a credentials reference without a name",
            p(json!({"credentialsSecretRef": {"key": "token"}})),
            &["spec.credentialsSecretRef.name", "Required value"],
        ),
        (
            "an unknown deletionPolicy",
            p(json!({"deletionPolicy": "Retain"})),
            &["spec.deletionPolicy", "Unsupported value"],
        ),
        (
            "a non-UUID preset discount",
            p(json!({"discount": {"presetId": "SUMMER"}})),
            &["spec.discount.presetId"],
        ),
        (
            "an amount that is not whole cents",
            p(json!({"urlParameters": {"amount": "15.00"}})),
            &["spec.urlParameters.amount"],
        ),
        (
            "a customer email without @",
            p(json!({"urlParameters": {"customerEmail": "nobody"}})),
            &["spec.urlParameters.customerEmail"],
        ),
        (
            "a custom field slug with a space",
            p(json!({"urlParameters": {"customFieldData": {"a b": "x"}}})),
            &["spec.urlParameters.customFieldData", "slug"],
        ),
        (
            "a label with a NUL character",
            p(json!({"label": "a\u{0}b"})),
            &["spec.label", "NUL"],
        ),
        (
            "a metadata value with a NUL character",
            p(json!({"metadata": {"k": "a\u{0}b"}})),
            &["spec.metadata", "NUL"],
        ),
    ];
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for (name, spec, expected) in cases {
        match admit(&api, spec).await {
            Ok(()) => failures.push(format!("{name}: was accepted")),
            Err(message) => {
                let missing: Vec<_> = expected.iter().filter(|e| !message.contains(*e)).collect();
                if !missing.is_empty() {
                    failures.push(format!("{name}: message {message:?} lacks {missing:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn valid_checkout_links_are_accepted() {
    let plane = ControlPlane::shared();
    let (client, ns) = plane.namespace("valid-links").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource());
    let cases: Vec<(&str, Value)> = vec![
        ("one product", json!({"products": [PRODUCT_A]})),
        (
            "products named by id, metadata and name",
            json!({"products": [
                PRODUCT_A,
                {"id": PRODUCT_B},
                {"metadata": {"sku": "pro-monthly", "tier": "1"}},
                {"name": "Pro Yearly"}
            ]}),
        ),
        (
            "a preset discount named by code",
            json!({"products": [PRODUCT_A], "discount": {"presetCode": "LAUNCH20"}}),
        ),
        (
            "utm parameters beside other metadata keys",
            json!({"products": [PRODUCT_A], "metadata": {"source": "email"},
                "urlParameters": {"utmSource": "newsletter"}}),
        ),
        (
            "an export",
            json!({"products": [PRODUCT_A], "export": {"configMap": "site-links",
                "keys": {"url": "LAUNCH_URL", "shareUrl": "launch.share-url"}}}),
        ),
        (
            "every field",
            json!({
                "label": "Launch - email campaign",
                "products": [PRODUCT_A, PRODUCT_B],
                "discount": {"allowCodes": false, "presetId": "0b7e4a8e-8d59-4d0c-9a43-1b9f0e0c8d11"},
                "metadata": {"source": "email", "n": 1, "f": 1.5, "t": true},
                "successUrl": "https://example.com/thanks?checkout_id={CHECKOUT_ID}",
                "returnUrl": "https://example.com/",
                "requireBillingAddress": true,
                "trial": {"interval": "month", "count": 1},
                "seats": 5,
                "units": 3,
                "urlParameters": {"customerEmail": "jane@example.com", "customerName": "Jane Doe",
                    "discountCode": "LAUNCH", "amount": "1500", "customFieldData": {"company-size": "10"},
                    "referenceId": "ref-1", "utmSource": "newsletter", "utmMedium": "email",
                    "utmCampaign": "launch", "utmContent": "hero", "utmTerm": "pricing"},
                "credentialsSecretRef": {"name": "polar", "key": "token"},
                "deletionPolicy": "Orphan"
            }),
        ),
        (
            "49 metadata keys",
            json!({"products": [PRODUCT_A], "metadata": metadata_with(49)}),
        ),
        (
            "a 40-character key and a 500-character value",
            json!({"products": [PRODUCT_A], "metadata": {"k".repeat(40): "v".repeat(500)}}),
        ),
        (
            "seats 10000",
            json!({"products": [PRODUCT_A], "seats": 10000}),
        ),
        (
            "each trial interval",
            json!({"products": [PRODUCT_A], "trial": {"interval": "year", "count": 1000}}),
        ),
        (
            "upper-case UUIDs",
            json!({"products": [PRODUCT_A.to_uppercase()]}),
        ),
        (
            "a credentials reference by name only",
            json!({"products": [PRODUCT_A], "credentialsSecretRef": {"name": "polar"}}),
        ),
    ];
    for (name, spec) in cases {
        if let Err(message) = admit(&api, spec).await {
            panic!("{name} was rejected: {message}");
        }
    }
}

/// An explicit null in an optional string, number or object field is admitted and reads back as
/// "not set", so templates that render empty values as null behave like omitting them.
#[tokio::test]
async fn explicit_nulls_read_as_unset_fields() {
    let plane = ControlPlane::shared();
    let (client, ns) = plane.namespace("null-fields").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource());
    wait_for_metadata_policy(&api).await;
    let spec = json!({
        "products": [PRODUCT_A],
        "label": null, "metadata": null, "successUrl": null, "returnUrl": null,
        "seats": null, "trial": null,
        "discount": {"allowCodes": null, "presetId": null},
        "urlParameters": {"customerEmail": null, "customFieldData": null},
        "credentialsSecretRef": {"name": "polar", "key": null, "namespace": null}
    });
    api.create(&PostParams::default(), &object("nulls", spec))
        .await
        .unwrap_or_else(|e| panic!("explicit nulls were rejected: {e}"));
    let typed: Api<CheckoutLink> = Api::namespaced(client, &ns);
    let read = typed.get("nulls").await.unwrap().spec;
    let expected: checkout_link_operator::CheckoutLinkSpec = serde_json::from_value(json!({
        "products": [PRODUCT_A],
        "discount": {},
        "urlParameters": {},
        "credentialsSecretRef": {"name": "polar"}
    }))
    .unwrap();
    assert_eq!(read, expected);
}

/// Polar's own URL vectors (pydantic 2.13.4): every URL Polar stores is admitted, every URL
/// Polar rejects is rejected at admission, with the field named.
#[tokio::test]
async fn admission_agrees_with_polar_on_every_url_vector() {
    let plane = ControlPlane::shared();
    let (client, ns) = plane.namespace("url-vectors").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource());
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/polar-api/vectors/url-normalization.json"
    );
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut disagreements = Vec::new();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() > 50);
    for case in cases {
        let field = match case["field"].as_str().unwrap() {
            "success_url" => "successUrl",
            _ => "returnUrl",
        };
        let input = case["input"].as_str().unwrap();
        let polar_accepts = case.get("output").is_some();
        let result = admit(&api, json!({"products": [PRODUCT_A], field: input})).await;
        match (polar_accepts, result) {
            (true, Err(message)) => {
                disagreements.push(format!("{field}={input:?} rejected: {message}"))
            }
            (false, Ok(())) => disagreements.push(format!(
                "{field}={input:?} accepted, Polar says {}",
                case["error"]
            )),
            (false, Err(message)) if !message.contains(&format!("spec.{field}")) => disagreements
                .push(format!(
                    "{field}={input:?}: message does not name the field: {message}"
                )),
            _ => {}
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
