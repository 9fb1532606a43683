//! Everything that speaks HTTP to Polar: the domain types of a checkout link, the
//! [`CheckoutLinks`] trait the reconciler talks to, and its reqwest implementation.
//!
//! - [`fields`]: the managed fields, declared once: [`LinkFields`], [`LinkPatch`], `diff`,
//!   the create and update bodies.
//! - [`compare`]: Polar-aware comparison (URL normalisation, typed metadata, ids), tested
//!   with Polar's vectors; [`validate`]: Polar's limits, checked before sending.
//! - [`wire`]: serde types of Polar's list envelope and error bodies.
//! - [`error`]: [`PolarError`], one variant per class of failure, with a bounded `category()`.
//! - [`http`]: [`http::HttpClient`], the reqwest implementation of [`CheckoutLinks`].
//! - [`governor`]: per-organisation pacing and `Retry-After`.
//! - [`mirror`]: an organisation's links as the last sweep saw them (pure).
//! - [`account`]: one account per token: paced calls, the organisation learned from Polar's
//!   answers, writes recorded in the mirror; [`org`]: one organisation per (server, id), its
//!   mirror and its sweeps; [`pool`]: hands both out.
//!
//! Nothing here depends on Kubernetes.

pub mod account;
pub mod catalog;
pub mod compare;
pub mod error;
#[cfg(test)]
pub(crate) mod fake;
pub mod fields;
pub mod governor;
pub mod http;
pub mod mirror;
pub mod orders;
pub mod org;
pub mod pool;
pub mod validate;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use error::PolarError;
pub use fields::{LinkFields, LinkPatch};

/// A Polar access token. Debug and Display print `Token(***)`; `expose()` is the only way out.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token read from a Secret. Surrounding whitespace (a trailing newline from
    /// `echo token > file`) is removed, since Polar tokens never contain any.
    pub fn new(s: impl Into<String>) -> Self {
        let s: String = s.into();
        let trimmed = s.trim();
        if trimmed.len() == s.len() {
            Token(s)
        } else {
            Token(trimmed.to_owned())
        }
    }

    /// The secret itself, for the `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits of the token's SHA-256: stable, short, and safe to log.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Which Polar API a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Server {
    /// `https://api.polar.sh`.
    Production,
    /// `https://sandbox-api.polar.sh`.
    Sandbox,
    /// Any other base URL, such as the emulator's `http://127.0.0.1:8787/`. Its path always
    /// ends with `/`, so that `v1/...` can be joined onto it.
    Custom(url::Url),
}

impl Server {
    /// Reads the `server` key of a credentials Secret: `production`, `sandbox`, empty
    /// (production) or an `http`/`https` base URL without query or fragment.
    pub fn parse(s: &str) -> Result<Server, String> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("production") {
            return Ok(Server::Production);
        }
        if s.eq_ignore_ascii_case("sandbox") {
            return Ok(Server::Sandbox);
        }
        const EXPECTED: &str = "the server must be \"production\", \"sandbox\" or an http(s) base URL such as http://127.0.0.1:8787";
        let mut url =
            url::Url::parse(s).map_err(|e| format!("{EXPECTED}; it is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{EXPECTED}; the scheme {:?} is not http or https",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{EXPECTED}; the URL has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{EXPECTED}; a base URL cannot have a query or a fragment"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{EXPECTED}; a base URL cannot hold a user name or password"
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Server::Custom(url))
    }

    /// Refuses a plain `http://` server other than the loopback interface, unless
    /// `allow_insecure`: the token would cross the network in clear text, and anyone who can
    /// write a Secret could make the operator call an address inside the cluster.
    pub fn ensure_secure(&self, allow_insecure: bool) -> Result<(), String> {
        let Server::Custom(url) = self else {
            return Ok(());
        };
        if url.scheme() == "https" || allow_insecure {
            return Ok(());
        }
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        if loopback {
            Ok(())
        } else {
            Err(format!(
                "the server {url} is plain http:// to a host other than this machine; use https:// (or start the operator with --allow-insecure-servers)"
            ))
        }
    }

    /// The base URL that `v1/checkout-links/` is joined onto.
    pub fn base_url(&self) -> url::Url {
        match self {
            // Both literals are valid absolute URLs; a test pins them.
            Server::Production => {
                url::Url::parse("https://api.polar.sh/").unwrap_or_else(|_| unreachable!())
            }
            Server::Sandbox => {
                url::Url::parse("https://sandbox-api.polar.sh/").unwrap_or_else(|_| unreachable!())
            }
            Server::Custom(url) => url.clone(),
        }
    }

    /// Polar's per-minute limit for an ordinary token (REFERENCE.md §7): production 500,
    /// sandbox 100. A custom server is assumed to behave like production.
    pub fn default_rate_per_minute(&self) -> u32 {
        match self {
            Server::Production | Server::Custom(_) => 500,
            Server::Sandbox => 100,
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Server::Production => f.write_str("production"),
            Server::Sandbox => f.write_str("sandbox"),
            Server::Custom(url) => f.write_str(url.as_str()),
        }
    }
}

/// A token and the server it belongs to, as read from a credentials Secret.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The access token (an organisation access token, `polar_oat_…`, is recommended).
    pub token: Token,
    /// The Polar API the token belongs to.
    pub server: Server,
}

/// A metadata value: Polar accepts strings, integers, floats and booleans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetaValue {
    /// `true` / `false`.
    Bool(bool),
    /// A JSON integer.
    Int(i64),
    /// A JSON number with a fraction or exponent (`2.0` stays a float in Polar).
    Float(f64),
    /// A string of 1 to 500 characters.
    Str(String),
}

/// A link's metadata, keyed by name. Compare with [`compare::same_metadata`], not `==`.
pub type Metadata = BTreeMap<String, MetaValue>;

/// A free trial: `count` times `interval`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trial {
    /// `day`, `week`, `month` or `year`.
    pub interval: String,
    /// 1 to 1000.
    pub count: i32,
}

/// A link as Polar returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The link's UUID.
    pub id: String,
    /// The organisation that owns the link (taken from its products).
    pub organization_id: String,
    /// `polar_cl_…`: part of the public URL, not a credential.
    pub client_secret: String,
    /// The public checkout URL.
    pub url: String,
    /// Creation time, as Polar writes it.
    pub created_at: String,
    /// Last update time; `None` until the first update.
    pub modified_at: Option<String>,
    /// The managed fields.
    pub fields: LinkFields,
    /// What buyers would meet: the products' and the preset discount's state, as the link's
    /// JSON embeds them.
    pub availability: Availability,
}

/// The state of what a link sells, as Polar embeds it in the link (REFERENCE.md §4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Availability {
    /// The link's products, in order.
    pub products: Vec<ProductState>,
    /// The preset discount, if the link has one.
    pub discount: Option<DiscountState>,
}

/// A product of a link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductState {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `is_archived`.
    pub archived: bool,
    /// `visibility == "draft"`.
    pub draft: bool,
}

/// The preset discount of a link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscountState {
    /// Its id.
    pub id: String,
    /// Its code, if it has one.
    pub code: Option<String>,
    /// `starts_at`, as Polar writes it.
    pub starts_at: Option<String>,
    /// `ends_at`, as Polar writes it.
    pub ends_at: Option<String>,
    /// `max_redemptions`.
    pub max_redemptions: Option<i64>,
    /// `redemptions_count`.
    pub redemptions_count: i64,
}

impl Availability {
    /// Reads `products[]` and `discount` of a `CheckoutLink` response object; what is
    /// missing reads as available (a product without `is_archived` is not archived).
    pub fn from_json(obj: &serde_json::Map<String, serde_json::Value>) -> Availability {
        use serde_json::Value;
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let products = obj
            .get("products")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter(|p| p.is_object())
                    .map(|p| ProductState {
                        id: text(p, "id").unwrap_or_default(),
                        name: text(p, "name").unwrap_or_default(),
                        archived: p.get("is_archived").and_then(Value::as_bool) == Some(true),
                        draft: text(p, "visibility").as_deref() == Some("draft"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let discount = obj
            .get("discount")
            .filter(|d| d.is_object())
            .map(|d| DiscountState {
                id: text(d, "id").unwrap_or_default(),
                code: text(d, "code"),
                starts_at: text(d, "starts_at"),
                ends_at: text(d, "ends_at"),
                max_redemptions: d.get("max_redemptions").and_then(Value::as_i64),
                redemptions_count: d
                    .get("redemptions_count")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            });
        Availability { products, discount }
    }
}

impl Link {
    /// Reads a `CheckoutLink` response object. Unknown keys are ignored (Polar sends
    /// undocumented deprecated ones such as `product_id` and `product`).
    pub fn from_json(value: &serde_json::Value) -> Result<Link, String> {
        let Some(obj) = value.as_object() else {
            return Err("a checkout link is not a JSON object".to_owned());
        };
        let text = |key: &str| {
            obj.get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{key} is missing or not a string"))
        };
        Ok(Link {
            id: text("id")?,
            organization_id: text("organization_id")?,
            client_secret: text("client_secret")?,
            url: text("url")?,
            created_at: text("created_at")?,
            modified_at: obj
                .get("modified_at")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            fields: LinkFields::from_json(obj)?,
            availability: Availability::from_json(obj),
        })
    }

    /// The resource UID in the owner tag, if the link carries one.
    pub fn owner(&self) -> Option<&str> {
        match self.fields.metadata.get(OWNER_METADATA_KEY) {
            Some(MetaValue::Str(uid)) => Some(uid),
            _ => None,
        }
    }
}

/// The metadata key under which the operator tags every link it creates with the UID of its
/// CheckoutLink, so that a link whose create answer was lost is found again, not duplicated.
pub const OWNER_METADATA_KEY: &str = "k8s_checkout_link_uid";

/// One page of the list endpoint.
#[derive(Clone, Debug)]
pub struct Page {
    /// The links on this page, in the order asked for.
    pub items: Vec<Link>,
    /// Links in total, across all pages.
    pub total_count: u64,
    /// The last page number (0 when there are no links).
    pub max_page: u64,
}

/// Links per page of the list endpoint (Polar's maximum).
pub const PAGE_SIZE: u32 = 100;

/// A list request: `GET /v1/checkout-links/?page=&limit=&sorting=created_at[&organization_id=]`.
/// Sorted by creation time, oldest first, so that links created during a sweep land at its
/// end instead of shifting the pages already read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// From 1.
    pub page: u32,
    /// 1 to 100.
    pub limit: u32,
    /// Only this organisation's links (a personal token may see several).
    pub organization_id: Option<String>,
}

impl ListQuery {
    /// Page `page` of 100 links.
    pub fn page(page: u32) -> Self {
        ListQuery {
            page,
            limit: PAGE_SIZE,
            organization_id: None,
        }
    }
}

/// Polar's checkout-links API, as the reconciler uses it. Every call is one HTTP request.
#[async_trait::async_trait]
pub trait CheckoutLinks: Send + Sync {
    /// `POST /v1/checkout-links/` with `payment_processor: "stripe"` and every field.
    async fn create(&self, fields: &LinkFields) -> Result<Link, PolarError>;
    /// `GET /v1/checkout-links/{id}`.
    async fn get(&self, id: &str) -> Result<Link, PolarError>;
    /// `PATCH /v1/checkout-links/{id}` with only the fields the patch carries.
    async fn update(&self, id: &str, patch: &LinkPatch) -> Result<Link, PolarError>;
    /// `DELETE /v1/checkout-links/{id}` (204). A 404 is returned as [`PolarError::NotFound`];
    /// the caller decides that it counts as done.
    async fn delete(&self, id: &str) -> Result<(), PolarError>;
    /// `GET /v1/checkout-links/` for one page (see [`ListQuery`]).
    async fn list(&self, query: &ListQuery) -> Result<Page, PolarError>;
    /// `GET /v1/organizations/`: the organisations the token can see (an organisation token
    /// sees exactly its own). Needs `organizations:read`; without it the answer is
    /// [`PolarError::Forbidden`], and the operator learns the organisation from the links.
    async fn organizations(&self) -> Result<Vec<String>, PolarError> {
        Err(PolarError::Forbidden {
            message: "organizations are not read by this client".to_owned(),
        })
    }
    /// `GET /v1/products/?is_archived=false` (one page of 100, Polar's default order), for
    /// references; with `organization_id` when given. Needs `products:read`.
    async fn list_products(
        &self,
        page: u32,
        organization_id: Option<&str>,
    ) -> Result<(Vec<catalog::Product>, u64), PolarError> {
        let _ = (page, organization_id);
        Err(PolarError::Forbidden {
            message: "products are not read by this client".to_owned(),
        })
    }
    /// `GET /v1/orders/?sorting=created_at` (one page of 100, oldest first), created after
    /// `created_after` when given, for campaign results. Needs `orders:read`.
    async fn list_orders(
        &self,
        page: u32,
        organization_id: Option<&str>,
        created_after: Option<k8s_openapi::jiff::Timestamp>,
    ) -> Result<(Vec<orders::Order>, u64), PolarError> {
        let _ = (page, organization_id, created_after);
        Err(PolarError::Forbidden {
            message: "orders are not read by this client".to_owned(),
        })
    }
    /// `GET /v1/discounts/` (one page of 100), for references. Needs `discounts:read`.
    async fn list_discounts(
        &self,
        page: u32,
        organization_id: Option<&str>,
    ) -> Result<(Vec<catalog::Discount>, u64), PolarError> {
        let _ = (page, organization_id);
        Err(PolarError::Forbidden {
            message: "discounts are not read by this client".to_owned(),
        })
    }
}

/// Installs rustls' ring provider as the process default; idempotent. kube uses ring too.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is all this function promises.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The cases of one of Polar's vector files in `polar-api/vectors/`.
#[cfg(test)]
pub(crate) fn test_vectors(name: &str) -> Vec<serde_json::Value> {
    let path = format!("{}/polar-api/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_prints_itself() {
        let token = Token::new("polar_oat_secretsecretsecret");
        assert_eq!(format!("{token:?}"), "Token(***)");
        assert_eq!(format!("{token}"), "Token(***)");
        let creds = Credentials {
            token: token.clone(),
            server: Server::Sandbox,
        };
        assert!(!format!("{creds:?}").contains("secretsecret"));
        assert_eq!(token.expose(), "polar_oat_secretsecretsecret");
    }

    #[test]
    fn token_is_trimmed_and_fingerprinted_stably() {
        let a = Token::new("polar_oat_abc\n");
        assert_eq!(a.expose(), "polar_oat_abc");
        assert_eq!(a.fingerprint(), Token::new("polar_oat_abc").fingerprint());
        assert_eq!(a.fingerprint().len(), 12);
        assert_ne!(a.fingerprint(), Token::new("polar_oat_abd").fingerprint());
        assert!(!a.fingerprint().contains("abc"));
    }

    #[test]
    fn server_parses_names_and_base_urls() {
        assert_eq!(Server::parse(""), Ok(Server::Production));
        assert_eq!(Server::parse("production"), Ok(Server::Production));
        assert_eq!(Server::parse(" Sandbox "), Ok(Server::Sandbox));
        let custom = Server::parse("http://127.0.0.1:8787").unwrap();
        assert_eq!(custom.base_url().as_str(), "http://127.0.0.1:8787/");
        let prefixed = Server::parse("https://proxy.example/polar").unwrap();
        assert_eq!(prefixed.base_url().as_str(), "https://proxy.example/polar/");
        assert_eq!(
            Server::Production.base_url().as_str(),
            "https://api.polar.sh/"
        );
        assert_eq!(
            Server::Sandbox.base_url().as_str(),
            "https://sandbox-api.polar.sh/"
        );
    }

    #[test]
    fn server_rejects_what_is_not_a_base_url() {
        for bad in [
            "staging",
            "ftp://example.com",
            "http://example.com/?a=1",
            "https://u:p@example.com",
        ] {
            let err = Server::parse(bad).unwrap_err();
            assert!(err.contains("production"), "{bad}: {err}");
        }
    }

    #[test]
    fn plain_http_is_only_for_this_machine_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8787",
            "http://[::1]:1",
            "http://localhost/x",
            "https://polar.internal",
        ] {
            assert_eq!(
                Server::parse(ok).unwrap().ensure_secure(false),
                Ok(()),
                "{ok}"
            );
        }
        let remote = Server::parse("http://polar-emulator.default.svc:8787").unwrap();
        let err = remote.ensure_secure(false).unwrap_err();
        assert!(err.contains("--allow-insecure-servers"), "{err}");
        assert_eq!(remote.ensure_secure(true), Ok(()));
        assert_eq!(Server::Production.ensure_secure(false), Ok(()));
    }

    #[test]
    fn default_rates_follow_polar_limits() {
        assert_eq!(Server::Production.default_rate_per_minute(), 500);
        assert_eq!(Server::Sandbox.default_rate_per_minute(), 100);
        assert_eq!(
            Server::parse("http://127.0.0.1:1")
                .unwrap()
                .default_rate_per_minute(),
            500
        );
    }

    #[test]
    fn crypto_provider_install_is_idempotent() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
