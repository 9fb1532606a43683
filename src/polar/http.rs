//! [`HttpClient`]: the reqwest implementation of [`CheckoutLinks`], one HTTP request per call.
//!
//! Every request carries `Polar-Version` (the API version the operator was built for,
//! [`API_VERSION`], unless configured otherwise). Status codes become [`PolarError`]s as
//! REFERENCE.md §6 describes them; Polar's refusal of the version (a 404 without the
//! `Polar-Version` header) is [`PolarError::VersionRefused`], never "not found". Pacing and
//! `Retry-After` are the caller's (see `polar::account`). The token goes into the
//! `Authorization` header and nowhere else: not into spans, logs, or error messages (which
//! are scrubbed of it in case a server echoes it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use super::wire::{ListDto, OrganizationsDto, create_body, patch_body};
use super::{
    CheckoutLinks, Credentials, Link, LinkFields, LinkPatch, ListQuery, Page, PolarError, Token,
    catalog, install_crypto_provider, orders,
};

/// The Polar API version the operator is built for, sent as `Polar-Version` on every request
/// (REFERENCE.md §1): without the header, Polar would change the version under the operator at
/// each quarterly rotation.
pub const API_VERSION: &str = "2026-10";
/// The header that carries it (and that Polar echoes on every response it accepted).
pub const VERSION_HEADER: &str = "polar-version";

/// Sent as `User-Agent` on every request.
pub const USER_AGENT: &str = concat!("checkout-link-operator/", env!("CARGO_PKG_VERSION"));
/// The request timeout when the operator is not configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Polar sends `retry-after: 60` for its per-minute rules; used when the header is missing.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A `Retry-After` longer than this is taken as this: a broken proxy must not stall an
/// organisation for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Called once per HTTP request with the verb (`create`, `get`, `update`, `delete`, `list`),
/// the status class (`2xx`, `3xx`, `4xx`, `5xx`, `429`, `timeout`, `transport`) and the time the
/// request took, not counting the wait for the governor. For metrics.
pub type Observer = Arc<dyn Fn(&'static str, &'static str, Duration) + Send + Sync>;

/// Talks to one Polar server with one token.
pub struct HttpClient {
    client: reqwest::Client,
    base: Url,
    token: Token,
    api_version: String,
    observer: Option<Observer>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
            .field("api_version", &self.api_version)
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

/// A response that arrived whole.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl HttpClient {
    /// A client for `credentials` speaking `api_version`, with a `timeout` per request
    /// (connect timeout 5 s). Redirects are not followed: Polar's API never needs one, and
    /// following could carry the token elsewhere.
    pub fn new(
        credentials: Credentials,
        api_version: &str,
        timeout: Duration,
    ) -> Result<Self, PolarError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PolarError::Transport {
                message: format!("cannot build the HTTP client: {}", chain(&e)),
            })?;
        let base = credentials.server.base_url();
        if base.cannot_be_a_base() {
            return Err(PolarError::Transport {
                message: format!("{base} cannot be a base URL"),
            });
        }
        Ok(HttpClient {
            client,
            base,
            token: credentials.token,
            api_version: api_version.to_owned(),
            observer: None,
        })
    }

    /// Reports every request to `observer` (see [`Observer`]).
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// `<base>v1/checkout-links/` or `<base>v1/checkout-links/<id>`.
    fn url(&self, id: Option<&str>) -> Result<Url, PolarError> {
        self.url_of("checkout-links", id)
    }

    /// `<base>v1/<collection>/` or `<base>v1/<collection>/<id>`. The id must be a UUID, as
    /// Polar requires, which also keeps it a single safe path segment.
    fn url_of(&self, collection: &str, id: Option<&str>) -> Result<Url, PolarError> {
        if let Some(id) = id
            && uuid::Uuid::parse_str(id).is_err()
        {
            return Err(PolarError::invalid(format!("id: {id:?} is not a UUID")));
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| PolarError::Transport {
                message: format!("{} cannot be a base URL", self.base),
            })?
            .pop_if_empty()
            .extend(["v1", collection, id.unwrap_or("")]);
        Ok(url)
    }

    /// Sends one request and reads the whole answer.
    async fn send(
        &self,
        verb: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Reply, PolarError> {
        let started = Instant::now();
        let result = async {
            let response = request
                .bearer_auth(self.token.expose())
                .header(VERSION_HEADER, &self.api_version)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Reply {
                status,
                headers,
                body,
            })
        }
        .await;
        let elapsed = started.elapsed();
        let class = match &result {
            Ok(reply) => status_class(reply.status),
            Err(e) if e.is_timeout() => "timeout",
            Err(_) => "transport",
        };
        tracing::debug!(
            class,
            elapsed_ms = elapsed.as_millis() as u64,
            "polar answered"
        );
        if let Some(observer) = &self.observer {
            observer(verb, class, elapsed);
        }
        match result {
            Err(e) if e.is_timeout() => Err(PolarError::Timeout),
            Err(e) => Err(self.scrub(PolarError::Transport { message: chain(&e) })),
            Ok(reply) if reply.status.is_success() => Ok(reply),
            Ok(reply) => Err(self.scrub(error_of(
                reply.status,
                &reply.headers,
                &reply.body,
                &self.api_version,
            ))),
        }
    }

    /// Replaces the token in any message with `***`.
    fn scrub(&self, error: PolarError) -> PolarError {
        scrub(self.token.expose(), error)
    }

    fn decode<T: DeserializeOwned>(&self, reply: &Reply) -> Result<T, PolarError> {
        serde_json::from_slice(&reply.body).map_err(|e| self.decode_error(e.to_string()))
    }

    fn decode_error(&self, message: String) -> PolarError {
        self.scrub(PolarError::Decode { message })
    }

    fn decode_link(&self, reply: &Reply) -> Result<Link, PolarError> {
        let value: serde_json::Value = self.decode(reply)?;
        Link::from_json(&value).map_err(|e| self.decode_error(e))
    }

    /// One page of a list endpoint other than checkout links: its items and `max_page`.
    async fn read_page(
        &self,
        collection: &str,
        verb: &'static str,
        params: &[(&str, String)],
    ) -> Result<(Vec<serde_json::Value>, u64), PolarError> {
        let span = tracing::debug_span!("polar_call", verb);
        async {
            let request = self
                .client
                .get(self.url_of(collection, None)?)
                .header(header::ACCEPT, "application/json")
                .query(params);
            let reply = self.send(verb, request).await?;
            let page: ListDto = self.decode(&reply)?;
            Ok((page.items, page.pagination.max_page))
        }
        .instrument(span)
        .await
    }

    async fn link_call(
        &self,
        verb: &'static str,
        method: Method,
        id: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Link, PolarError> {
        let mut request = self
            .client
            .request(method, self.url(id)?)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            // A complete byte body: reqwest sends Content-Length (Polar answers 411 to chunked).
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let reply = self.send(verb, request).await?;
        self.decode_link(&reply)
    }
}

#[async_trait::async_trait]
impl CheckoutLinks for HttpClient {
    async fn create(&self, fields: &LinkFields) -> Result<Link, PolarError> {
        let body = to_json(&create_body(fields))?;
        let span = tracing::debug_span!(
            "polar_call",
            verb = "create",
            link_id = tracing::field::Empty
        );
        async {
            let link = self
                .link_call("create", Method::POST, None, Some(body))
                .await?;
            tracing::Span::current().record("link_id", link.id.as_str());
            Ok(link)
        }
        .instrument(span)
        .await
    }

    async fn get(&self, id: &str) -> Result<Link, PolarError> {
        let span = tracing::debug_span!("polar_call", verb = "get", link_id = id);
        self.link_call("get", Method::GET, Some(id), None)
            .instrument(span)
            .await
    }

    async fn update(&self, id: &str, patch: &LinkPatch) -> Result<Link, PolarError> {
        let body = to_json(&patch_body(patch))?;
        let span = tracing::debug_span!("polar_call", verb = "update", link_id = id, fields = ?patch.field_names());
        self.link_call("update", Method::PATCH, Some(id), Some(body))
            .instrument(span)
            .await
    }

    async fn delete(&self, id: &str) -> Result<(), PolarError> {
        let span = tracing::debug_span!("polar_call", verb = "delete", link_id = id);
        async {
            let request = self.client.delete(self.url(Some(id))?);
            self.send("delete", request).await.map(drop)
        }
        .instrument(span)
        .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, PolarError> {
        let (page, limit) = (query.page.max(1), query.limit.clamp(1, 100));
        let span = tracing::debug_span!("polar_call", verb = "list", page, limit);
        async {
            let mut params = vec![
                ("page", page.to_string()),
                ("limit", limit.to_string()),
                ("sorting", "created_at".to_owned()),
            ];
            if let Some(org) = &query.organization_id {
                params.push(("organization_id", org.clone()));
            }
            let request = self
                .client
                .get(self.url(None)?)
                .header(header::ACCEPT, "application/json")
                .query(&params);
            let reply = self.send("list", request).await?;
            Page::try_from(self.decode::<ListDto>(&reply)?).map_err(|e| self.decode_error(e))
        }
        .instrument(span)
        .await
    }

    async fn list_products(
        &self,
        page: u32,
        organization_id: Option<&str>,
    ) -> Result<(Vec<catalog::Product>, u64), PolarError> {
        let mut params = vec![
            ("page", page.max(1).to_string()),
            ("limit", "100".to_owned()),
            ("is_archived", "false".to_owned()),
        ];
        if let Some(org) = organization_id {
            params.push(("organization_id", org.to_owned()));
        }
        let page = self.read_page("products", "list_products", &params).await?;
        Ok((
            page.0
                .iter()
                .filter_map(catalog::Product::from_json)
                .collect(),
            page.1,
        ))
    }

    async fn list_discounts(
        &self,
        page: u32,
        organization_id: Option<&str>,
    ) -> Result<(Vec<catalog::Discount>, u64), PolarError> {
        let mut params = vec![
            ("page", page.max(1).to_string()),
            ("limit", "100".to_owned()),
        ];
        if let Some(org) = organization_id {
            params.push(("organization_id", org.to_owned()));
        }
        let page = self
            .read_page("discounts", "list_discounts", &params)
            .await?;
        Ok((
            page.0
                .iter()
                .filter_map(catalog::Discount::from_json)
                .collect(),
            page.1,
        ))
    }

    async fn list_orders(
        &self,
        page: u32,
        organization_id: Option<&str>,
        created_after: Option<k8s_openapi::jiff::Timestamp>,
    ) -> Result<(Vec<orders::Order>, u64), PolarError> {
        let mut params = vec![
            ("page", page.max(1).to_string()),
            ("limit", "100".to_owned()),
            ("sorting", "created_at".to_owned()),
        ];
        if let Some(org) = organization_id {
            params.push(("organization_id", org.to_owned()));
        }
        if let Some(after) = created_after {
            params.push(("created_after", after.to_string()));
        }
        let page = self.read_page("orders", "list_orders", &params).await?;
        Ok((
            page.0.iter().filter_map(orders::Order::from_json).collect(),
            page.1,
        ))
    }

    async fn organizations(&self) -> Result<Vec<String>, PolarError> {
        let span = tracing::debug_span!("polar_call", verb = "organizations");
        async {
            let request = self
                .client
                .get(self.url_of("organizations", None)?)
                .header(header::ACCEPT, "application/json")
                .query(&[("limit", "100")]);
            let reply = self.send("organizations", request).await?;
            let orgs: OrganizationsDto = self.decode(&reply)?;
            Ok(orgs.items.into_iter().map(|o| o.id).collect())
        }
        .instrument(span)
        .await
    }
}

fn to_json(body: &serde_json::Value) -> Result<Vec<u8>, PolarError> {
    serde_json::to_vec(body).map_err(|e| PolarError::Decode {
        message: format!("cannot encode the request: {e}"),
    })
}

mod answer;

#[cfg(test)]
use answer::retry_after;
use answer::{chain, error_of, scrub, status_class};

#[cfg(test)]
mod tests;
