//! Credentials: which Secret a CheckoutLink uses, reading it, and one Polar client per
//! (server, token).
//!
//! Secrets are watched by metadata only (no Secret data sits in the operator's memory beyond
//! the tokens it uses). A Secret's data is read with one GET when its `resourceVersion`
//! changes, and the parsed result is cached under that version.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::crd::CheckoutLink;
use crate::error::{CredentialsError, Error};
use crate::polar::governor::Governors;
use crate::polar::http::{HttpClient, Observer};
use crate::polar::{CheckoutLinks, Credentials, PolarError, Server, Token};

/// The key of a credentials Secret that holds the token, unless the reference names another.
pub const TOKEN_KEY: &str = "token";
/// The optional key that names the server: `production`, `sandbox` or a base URL.
pub const SERVER_KEY: &str = "server";

/// A Secret by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::str::FromStr for SecretName {
    type Err = String;

    /// `namespace/name`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(SecretName {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(format!("{s:?} is not namespace/name")),
        }
    }
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

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

/// Reads the token and server from a Secret's data.
pub fn parse_secret(
    r: &CredentialsRef,
    data: Option<&BTreeMap<String, ByteString>>,
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
    let server = match get(SERVER_KEY) {
        None => Server::Production,
        Some(s) => Server::parse(&s).map_err(|message| CredentialsError::BadServer {
            namespace: r.secret.namespace.clone(),
            name: r.secret.name.clone(),
            message,
        })?,
    };
    Ok(Credentials { token, server })
}

/// Credentials as read from a Secret at one `resourceVersion`.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// What was read (or why nothing usable was).
    pub credentials: Result<Credentials, CredentialsError>,
    /// The Secret's `resourceVersion`; empty when the Secret does not exist.
    pub version: String,
}

/// Secret metadata stores (from the metadata watches) and parsed credentials by version.
pub struct SecretCache {
    stores: Vec<Store<PartialObjectMeta<Secret>>>,
    parsed: Mutex<HashMap<(CredentialsRef, String), Result<Credentials, CredentialsError>>>,
}

impl SecretCache {
    /// A cache that looks Secrets up in `stores` (the first one that knows a Secret wins).
    pub fn new(stores: Vec<Store<PartialObjectMeta<Secret>>>) -> Self {
        SecretCache {
            stores,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// The `resourceVersion` of a Secret as the watch last saw it; `None` when it does not exist.
    pub fn version(&self, secret: &SecretName) -> Option<String> {
        let key = ObjectRef::new(&secret.name).within(&secret.namespace);
        self.stores
            .iter()
            .find_map(|s| s.get(&key))
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
            Some(s) => parse_secret(r, s.data.as_ref()),
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

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        HashMap<(CredentialsRef, String), Result<Credentials, CredentialsError>>,
    > {
        self.parsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Builds a Polar client for credentials: the reqwest client normally, a fake in unit tests.
pub type ClientFactory =
    Arc<dyn Fn(&Credentials) -> Result<Arc<dyn CheckoutLinks>, PolarError> + Send + Sync>;

/// How long a Polar client may sit unused before it is dropped (a rotated token's client, a
/// Secret no link uses any more). Dropped clients are made again on demand.
pub const CLIENT_IDLE_TTL: Duration = Duration::from_secs(3600);

/// One Polar client per (server, token fingerprint), each paced by its organisation's governor.
pub struct PolarClients {
    factory: ClientFactory,
    clients: Mutex<HashMap<ClientKey, KeptClient>>,
}

/// A client per server and token fingerprint (never the token itself).
type ClientKey = (Server, String);
/// A client and when it was last used.
type KeptClient = (Arc<dyn CheckoutLinks>, Instant);

impl PolarClients {
    /// Clients over HTTP with `timeout` per request, paced by `governors`, each request
    /// reported to `observer`.
    pub fn http(governors: Arc<Governors>, timeout: Duration, observer: Option<Observer>) -> Self {
        let factory: ClientFactory = Arc::new(move |credentials: &Credentials| {
            let governor = governors.for_credentials(credentials);
            let client = HttpClient::new(credentials.clone(), governor, timeout)?;
            let client = match &observer {
                Some(o) => client.with_observer(o.clone()),
                None => client,
            };
            Ok(Arc::new(client) as Arc<dyn CheckoutLinks>)
        });
        Self::with_factory(factory)
    }

    /// Clients made by `factory`.
    pub fn with_factory(factory: ClientFactory) -> Self {
        PolarClients {
            factory,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `credentials`, made on first use. Making one also drops the clients
    /// unused for [`CLIENT_IDLE_TTL`], so rotated tokens do not pile up.
    pub fn get(&self, credentials: &Credentials) -> Result<Arc<dyn CheckoutLinks>, PolarError> {
        let key = (credentials.server.clone(), credentials.token.fingerprint());
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((client, used)) = clients.get_mut(&key) {
            *used = now;
            return Ok(client.clone());
        }
        clients.retain(|_, (_, used)| now.duration_since(*used) < CLIENT_IDLE_TTL);
        let client = (self.factory)(credentials)?;
        clients.insert(key, (client.clone(), now));
        Ok(client)
    }

    /// How many clients are kept.
    pub fn len(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no client is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let c = parse_secret(&r, Some(&data(&[("token", "polar_oat_abc\n")]))).unwrap();
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
        )
        .unwrap();
        assert_eq!(c.server.base_url().as_str(), "http://127.0.0.1:8787/");
        assert_eq!(
            parse_secret(&r, Some(&data(&[("token", "t"), ("server", "sandbox")])))
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
            parse_secret(&r, None),
            Err(CredentialsError::KeyMissing { .. })
        ));
        assert!(matches!(
            parse_secret(&r, Some(&data(&[("token", "  ")]))),
            Err(CredentialsError::KeyMissing { .. })
        ));
        let bad = parse_secret(
            &r,
            Some(&data(&[
                ("token", "polar_oat_secret"),
                ("server", "staging"),
            ])),
        )
        .unwrap_err();
        assert!(matches!(bad, CredentialsError::BadServer { .. }));
        assert!(!bad.to_string().contains("polar_oat_secret"));
    }

    #[tokio::test(start_paused = true)]
    async fn clients_are_reused_and_the_idle_ones_dropped_when_a_new_one_is_made() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let made = Arc::new(AtomicUsize::new(0));
        let http = PolarClients::http(
            Arc::new(Governors::new(0.9, None)),
            Duration::from_secs(5),
            None,
        );
        let counted = made.clone();
        let clients = PolarClients::with_factory(Arc::new(move |c: &Credentials| {
            counted.fetch_add(1, Ordering::SeqCst);
            (http.factory)(c)
        }));
        let credentials = |token: &str| Credentials {
            token: Token::new(token),
            server: Server::Sandbox,
        };
        let old = credentials("polar_oat_old");
        let new = credentials("polar_oat_new");

        clients.get(&old).unwrap();
        clients.get(&old).unwrap();
        assert_eq!(made.load(Ordering::SeqCst), 1, "one client per token");

        tokio::time::advance(CLIENT_IDLE_TTL / 2).await;
        clients.get(&new).unwrap();
        assert_eq!(clients.len(), 2, "the old client was used recently");

        tokio::time::advance(CLIENT_IDLE_TTL).await;
        clients.get(&new).unwrap();
        assert_eq!(clients.len(), 2, "reusing a client drops nothing");
        clients.get(&credentials("polar_oat_newer")).unwrap();
        assert_eq!(clients.len(), 2, "the old token's client is gone");
        clients.get(&old).unwrap();
        assert_eq!(
            made.load(Ordering::SeqCst),
            4,
            "a dropped client is made again"
        );
    }
}
