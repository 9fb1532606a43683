//! Credentials: which Secret a CheckoutLink uses, and reading it (Kubernetes IO).
//!
//! Secrets are watched by metadata only: no Secret's data reaches the process but the ones
//! CheckoutLinks use, read with one GET when their `resourceVersion` changes and cached, parsed,
//! under that version. What a link depends on is the credentials' [`identity`] (server and
//! token fingerprint), so an edit of a Secret's labels re-reconciles nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::crd::CheckoutLink;
use crate::error::{CredentialsError, Error};
use crate::polar::{Credentials, Server, Token};

pub use crate::config::SecretName;

/// The finalizer the operator puts on a credentials Secret that CheckoutLinks of its own
/// namespace use (`spec.credentialsSecretRef`), and takes off once none uses it: deleting a
/// namespace deletes its Secrets and its CheckoutLinks together, and without it the Secret
/// would be gone before the links' Polar links could be deleted with it.
pub const CREDENTIALS_FINALIZER: &str = "polar.sh/credentials-in-use";

/// The key of a credentials Secret that holds the token, unless the reference names another.
pub const TOKEN_KEY: &str = "token";
/// The optional key that names the server: `production`, `sandbox` or a base URL.
pub const SERVER_KEY: &str = "server";

/// The Secret and key a CheckoutLink takes its token from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredentialsRef {
    /// The Secret.
    pub secret: SecretName,
    /// The key holding the token.
    pub key: String,
}

/// `spec.credentialsSecretRef` in the link's own namespace, else the operator's default.
pub fn credentials_ref(
    link: &CheckoutLink,
    default: Option<&SecretName>,
) -> Result<CredentialsRef, CredentialsError> {
    match &link.spec.credentials_secret_ref {
        Some(r) => Ok(CredentialsRef {
            secret: SecretName {
                namespace: link.metadata.namespace.clone().unwrap_or_default(),
                name: r.name.clone(),
            },
            key: r
                .key
                .clone()
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| TOKEN_KEY.to_owned()),
        }),
        None => default
            .map(|secret| CredentialsRef {
                secret: secret.clone(),
                key: TOKEN_KEY.to_owned(),
            })
            .ok_or(CredentialsError::NotConfigured),
    }
}

/// Whether `link` takes its credentials from `secret`.
pub fn uses_secret(link: &CheckoutLink, secret: &SecretName, default: Option<&SecretName>) -> bool {
    credentials_ref(link, default).is_ok_and(|r| &r.secret == secret)
}

/// What credentials stand for in a reconcile's inputs: the server and the token's fingerprint
/// (never the token), or why there are none.
pub fn identity(credentials: &Result<Credentials, CredentialsError>) -> String {
    match credentials {
        Ok(c) => format!("{} {}", c.server, c.token.fingerprint()),
        Err(e) => format!("error: {e}"),
    }
}

/// Reads the token and server from a Secret's data; a plain `http://` server other than
/// loopback is refused unless `allow_insecure`.
pub fn parse_secret(
    r: &CredentialsRef,
    data: Option<&BTreeMap<String, ByteString>>,
    allow_insecure: bool,
) -> Result<Credentials, CredentialsError> {
    let get = |key: &str| {
        data.and_then(|d| d.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    let token = get(&r.key)
        .map(Token::new)
        .filter(|t| !t.expose().is_empty())
        .ok_or_else(|| CredentialsError::KeyMissing {
            namespace: r.secret.namespace.clone(),
            name: r.secret.name.clone(),
            key: r.key.clone(),
        })?;
    let bad = |message| CredentialsError::BadServer {
        namespace: r.secret.namespace.clone(),
        name: r.secret.name.clone(),
        message,
    };
    let server = match get(SERVER_KEY) {
        None => Server::Production,
        Some(s) => Server::parse(&s).map_err(bad)?,
    };
    server.ensure_secure(allow_insecure).map_err(bad)?;
    Ok(Credentials { token, server })
}

fn has_finalizer(meta: &PartialObjectMeta<Secret>) -> bool {
    meta.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == CREDENTIALS_FINALIZER))
}

/// The Secrets of [`CREDENTIALS_FINALIZER`] that no link in `links` names any more.
pub fn unused<'a>(
    guarded: Vec<SecretName>,
    links: impl IntoIterator<Item = &'a CheckoutLink>,
) -> Vec<SecretName> {
    let used: std::collections::HashSet<SecretName> = links
        .into_iter()
        .filter(|l| l.spec.credentials_secret_ref.is_some())
        .filter_map(|l| credentials_ref(l, None).ok().map(|r| r.secret))
        .collect();
    guarded.into_iter().filter(|s| !used.contains(s)).collect()
}

/// Credentials as read from a Secret at one `resourceVersion`.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// What was read (or why nothing usable was).
    pub credentials: Result<Credentials, CredentialsError>,
    /// The Secret's `resourceVersion`; empty when the Secret does not exist.
    pub version: String,
}

/// Parsed credentials, by reference and Secret version.
type Parsed = HashMap<(CredentialsRef, String), Result<Credentials, CredentialsError>>;

/// Secret metadata stores (from the metadata watches) and parsed credentials by version.
pub struct SecretCache {
    stores: Vec<Store<PartialObjectMeta<Secret>>>,
    parsed: Mutex<Parsed>,
    allow_insecure: bool,
}

impl SecretCache {
    /// A cache that looks Secrets up in `stores` (the first one that knows a Secret wins);
    /// `allow_insecure` as in [`parse_secret`].
    pub fn new(stores: Vec<Store<PartialObjectMeta<Secret>>>, allow_insecure: bool) -> Self {
        SecretCache {
            stores,
            parsed: Mutex::new(HashMap::new()),
            allow_insecure,
        }
    }

    /// The Secret's metadata as the watch last saw it.
    pub fn meta(&self, secret: &SecretName) -> Option<std::sync::Arc<PartialObjectMeta<Secret>>> {
        let key = ObjectRef::new(&secret.name).within(&secret.namespace);
        self.stores.iter().find_map(|s| s.get(&key))
    }

    /// The `resourceVersion` of a Secret as the watch last saw it; `None` when it does not exist.
    pub fn version(&self, secret: &SecretName) -> Option<String> {
        self.meta(secret)
            .map(|meta| meta.metadata.resource_version.clone().unwrap_or_default())
    }

    /// The credentials `r` points at. The Secret's data is fetched only when its version is
    /// new to the cache.
    pub async fn resolve(
        &self,
        client: &kube::Client,
        r: &CredentialsRef,
    ) -> Result<Resolved, Error> {
        let Some(version) = self.version(&r.secret) else {
            return Ok(Resolved {
                credentials: Err(CredentialsError::SecretNotFound {
                    namespace: r.secret.namespace.clone(),
                    name: r.secret.name.clone(),
                }),
                version: String::new(),
            });
        };
        let key = (r.clone(), version.clone());
        if let Some(hit) = self.lock().get(&key) {
            return Ok(Resolved {
                credentials: hit.clone(),
                version,
            });
        }
        let api: Api<Secret> = Api::namespaced(client.clone(), &r.secret.namespace);
        let secret = api
            .get_opt(&r.secret.name)
            .await
            .map_err(|source| Error::Kube {
                step: "GetSecret",
                source,
            })?;
        let credentials = match &secret {
            Some(s) => parse_secret(r, s.data.as_ref(), self.allow_insecure),
            None => Err(CredentialsError::SecretNotFound {
                namespace: r.secret.namespace.clone(),
                name: r.secret.name.clone(),
            }),
        };
        let mut parsed = self.lock();
        // Older versions of this Secret are of no further use.
        parsed.retain(|(cached, _), _| cached != r);
        parsed.insert(key, credentials.clone());
        Ok(Resolved {
            credentials,
            version,
        })
    }

    /// Puts [`CREDENTIALS_FINALIZER`] on the Secret unless it carries it. A failure (no
    /// `patch` right, a conflict) is logged and the link carries on: the Secret is then only
    /// less protected.
    pub async fn guard(&self, client: &kube::Client, secret: &SecretName) {
        self.set_finalizer(client, secret, true).await;
    }

    /// Takes [`CREDENTIALS_FINALIZER`] off the Secret.
    pub async fn release(&self, client: &kube::Client, secret: &SecretName) {
        self.set_finalizer(client, secret, false).await;
    }

    /// The Secrets the watches saw carrying [`CREDENTIALS_FINALIZER`].
    pub fn guarded(&self) -> Vec<SecretName> {
        self.stores
            .iter()
            .flat_map(|s| s.state())
            .filter(|m| has_finalizer(m))
            .map(|m| SecretName {
                namespace: m.metadata.namespace.clone().unwrap_or_default(),
                name: m.metadata.name.clone().unwrap_or_default(),
            })
            .collect()
    }

    async fn set_finalizer(&self, client: &kube::Client, secret: &SecretName, on: bool) {
        let Some(meta) = self.meta(secret) else {
            return;
        };
        if has_finalizer(&meta) == on {
            return;
        }
        let mut finalizers: Vec<String> = meta
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f != CREDENTIALS_FINALIZER)
            .collect();
        if on {
            finalizers.push(CREDENTIALS_FINALIZER.to_owned());
        }
        // A merge patch (never creates the Secret), pinned to the version the decision was
        // made on: a concurrent change makes it fail with a conflict, and the next pass decides
        // again.
        let patch = serde_json::json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": meta.metadata.resource_version,
        }});
        let api: Api<Secret> = Api::namespaced(client.clone(), &secret.namespace);
        match api
            .patch_metadata(
                &secret.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => tracing::info!(secret = %secret, on, "credentials finalizer"),
            Err(error) => {
                tracing::warn!(secret = %secret, on, %error, "could not change the credentials finalizer")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parsed> {
        crate::polar::pool::lock(&self.parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CheckoutLinkSpec, SecretKeyRef};

    fn link(reference: Option<SecretKeyRef>) -> CheckoutLink {
        let mut l = CheckoutLink::new(
            "l",
            CheckoutLinkSpec {
                credentials_secret_ref: reference,
                ..Default::default()
            },
        );
        l.metadata.namespace = Some("shop".into());
        l
    }

    fn default() -> SecretName {
        "ops/polar-default".parse().unwrap()
    }

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn secret_names_parse_as_namespace_slash_name() {
        assert_eq!(
            default(),
            SecretName {
                namespace: "ops".into(),
                name: "polar-default".into()
            }
        );
        for bad in ["", "x", "/x", "x/", "a/b/c"] {
            assert!(bad.parse::<SecretName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reference_stays_in_the_links_namespace_and_defaults_the_key() {
        let own = link(Some(SecretKeyRef {
            name: "mine".into(),
            key: None,
            namespace: None,
        }));
        let r = credentials_ref(&own, Some(&default())).unwrap();
        assert_eq!(r.secret.to_string(), "shop/mine");
        assert_eq!(r.key, "token");
        let keyed = link(Some(SecretKeyRef {
            name: "mine".into(),
            key: Some("t2".into()),
            namespace: Some("other".into()),
        }));
        assert_eq!(
            credentials_ref(&keyed, None).unwrap().secret.namespace,
            "shop"
        );
        assert_eq!(credentials_ref(&keyed, None).unwrap().key, "t2");
    }

    #[test]
    fn without_a_reference_the_default_is_used_or_missing() {
        assert_eq!(
            credentials_ref(&link(None), Some(&default()))
                .unwrap()
                .secret,
            default()
        );
        assert_eq!(
            credentials_ref(&link(None), None),
            Err(CredentialsError::NotConfigured)
        );
        assert!(uses_secret(&link(None), &default(), Some(&default())));
        assert!(!uses_secret(
            &link(None),
            &"shop/x".parse().unwrap(),
            Some(&default())
        ));
    }

    #[test]
    fn secrets_parse_into_credentials() {
        let r = CredentialsRef {
            secret: default(),
            key: "token".into(),
        };
        let c = parse_secret(&r, Some(&data(&[("token", "polar_oat_abc\n")])), false).unwrap();
        assert_eq!(
            (c.token.expose(), c.server),
            ("polar_oat_abc", Server::Production)
        );
        let c = parse_secret(
            &r,
            Some(&data(&[
                ("token", "t"),
                ("server", "http://127.0.0.1:8787"),
            ])),
            false,
        )
        .unwrap();
        assert_eq!(c.server.base_url().as_str(), "http://127.0.0.1:8787/");
        assert_eq!(
            parse_secret(
                &r,
                Some(&data(&[("token", "t"), ("server", "sandbox")])),
                false
            )
            .unwrap()
            .server,
            Server::Sandbox
        );
    }

    #[test]
    fn unusable_secrets_say_why_without_the_token() {
        let r = CredentialsRef {
            secret: default(),
            key: "token".into(),
        };
        assert!(matches!(
            parse_secret(&r, None, false),
            Err(CredentialsError::KeyMissing { .. })
        ));
        assert!(matches!(
            parse_secret(&r, Some(&data(&[("token", "  ")])), false),
            Err(CredentialsError::KeyMissing { .. })
        ));
        let bad = parse_secret(
            &r,
            Some(&data(&[
                ("token", "polar_oat_secret"),
                ("server", "staging"),
            ])),
            false,
        )
        .unwrap_err();
        assert!(matches!(bad, CredentialsError::BadServer { .. }));
        assert!(!bad.to_string().contains("polar_oat_secret"));
        let remote = data(&[("token", "t"), ("server", "http://10.0.0.7:8787")]);
        let insecure = parse_secret(&r, Some(&remote), false).unwrap_err();
        assert!(
            matches!(insecure, CredentialsError::BadServer { .. }),
            "{insecure}"
        );
        assert!(parse_secret(&r, Some(&remote), true).is_ok());
    }
}
