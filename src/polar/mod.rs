//! Everything that speaks HTTP to Polar: the domain types of a checkout link, the
//! [`CheckoutLinks`] trait the reconciler talks to, and its reqwest implementation.
//!
//! - [`wire`]: serde types exactly as Polar's JSON, and conversions to the types below.
//! - [`error`]: [`PolarError`], one variant per class of failure, with a bounded `category()`.
//! - [`http`]: [`http::HttpClient`], the reqwest implementation of [`CheckoutLinks`].
//! - [`normalize`]: Polar-aware comparison (URL normalisation, typed metadata).
//! - [`governor`]: per-organisation pacing and `Retry-After`.
//!
//! Nothing here depends on Kubernetes.

pub mod error;
pub mod governor;
pub mod http;
pub mod normalize;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use error::PolarError;

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

/// A link's metadata, keyed by name. Compare with [`normalize::same_metadata`], not `==`.
pub type Metadata = BTreeMap<String, MetaValue>;

/// A free trial: `count` times `interval`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trial {
    /// `day`, `week`, `month` or `year`.
    pub interval: String,
    /// 1 to 1000.
    pub count: i32,
}

/// Every field of a checkout link that the operator manages, as Polar names them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LinkFields {
    /// Product ids, in checkout-page order.
    pub products: Vec<String>,
    /// Internal name, shown only to the merchant.
    pub label: Option<String>,
    /// Whether customers may enter discount codes (Polar's default is `true`).
    pub allow_discount_codes: bool,
    /// Whether the checkout asks for a full billing address.
    pub require_billing_address: bool,
    /// A discount applied automatically.
    pub discount_id: Option<String>,
    /// Key/value metadata.
    pub metadata: Metadata,
    /// Where the customer lands after paying; may contain `{CHECKOUT_ID}`.
    pub success_url: Option<String>,
    /// Where the "back" button leads.
    pub return_url: Option<String>,
    /// A free trial, for recurring products.
    pub trial: Option<Trial>,
    /// Preset seat count, for seat-based products.
    pub seats: Option<i32>,
    /// Preset unit count, for unit-based products.
    pub units: Option<i32>,
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
}

/// A PATCH body: `None` leaves a field out (Polar keeps it), `Some(None)` sends an explicit null (Polar clears it).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LinkPatch {
    /// Replaces the whole product list, in this order.
    pub products: Option<Vec<String>>,
    /// New label, or `Some(None)` to clear it.
    pub label: Option<Option<String>>,
    /// New value; Polar rejects a null here, so there is no way to send one.
    pub allow_discount_codes: Option<bool>,
    /// New value; Polar rejects a null here, so there is no way to send one.
    pub require_billing_address: Option<bool>,
    /// New discount, or `Some(None)` to remove it.
    pub discount_id: Option<Option<String>>,
    /// Replaces the whole metadata object (`{}` clears it).
    pub metadata: Option<Metadata>,
    /// New success URL, or `Some(None)` to clear it.
    pub success_url: Option<Option<String>>,
    /// New return URL, or `Some(None)` to clear it.
    pub return_url: Option<Option<String>>,
    /// Sends `trial_interval` and `trial_interval_count` together; `Some(None)` clears both.
    pub trial: Option<Option<Trial>>,
    /// New seat count, or `Some(None)` to clear it.
    pub seats: Option<Option<i32>>,
    /// New unit count, or `Some(None)` to clear it.
    pub units: Option<Option<i32>>,
}

impl LinkPatch {
    /// True when the patch carries no field at all (and need not be sent).
    pub fn is_empty(&self) -> bool {
        self.field_names().is_empty()
    }

    /// Polar names of the fields the patch carries, in a fixed order, for events and logs.
    /// A trial counts as its two fields.
    pub fn field_names(&self) -> Vec<&'static str> {
        let carried = [
            ("products", self.products.is_some()),
            ("label", self.label.is_some()),
            ("allow_discount_codes", self.allow_discount_codes.is_some()),
            (
                "require_billing_address",
                self.require_billing_address.is_some(),
            ),
            ("discount_id", self.discount_id.is_some()),
            ("metadata", self.metadata.is_some()),
            ("success_url", self.success_url.is_some()),
            ("return_url", self.return_url.is_some()),
            ("trial_interval", self.trial.is_some()),
            ("trial_interval_count", self.trial.is_some()),
            ("seats", self.seats.is_some()),
            ("units", self.units.is_some()),
        ];
        carried
            .into_iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| name)
            .collect()
    }
}

/// One page of the list endpoint.
#[derive(Clone, Debug)]
pub struct Page {
    /// The links on this page, oldest first.
    pub items: Vec<Link>,
    /// Links in total, across all pages.
    pub total_count: u64,
    /// The last page number (0 when there are no links).
    pub max_page: u64,
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
    /// `GET /v1/checkout-links/?page=&limit=` in Polar's default order (created_at ascending).
    /// `page` starts at 1; `limit` is 1 to 100 (values outside are clamped).
    async fn list(&self, page: u32, limit: u32) -> Result<Page, PolarError>;
}

/// Installs rustls' ring provider as the process default; idempotent. kube uses ring too.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is all this function promises.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
    fn patch_names_its_fields() {
        assert!(LinkPatch::default().is_empty());
        let patch = LinkPatch {
            label: Some(None),
            trial: Some(None),
            units: Some(Some(2)),
            ..Default::default()
        };
        assert!(!patch.is_empty());
        assert_eq!(
            patch.field_names(),
            ["label", "trial_interval", "trial_interval_count", "units"]
        );
    }

    #[test]
    fn crypto_provider_install_is_idempotent() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
