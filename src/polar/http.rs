//! [`HttpClient`]: the reqwest implementation of [`CheckoutLinks`].
//!
//! Every request first waits for the organisation's [`OrgGovernor`]; a 429 blocks that
//! governor for `Retry-After`. Status codes become [`PolarError`]s as REFERENCE.md §6
//! describes them. The token goes into the `Authorization` header and nowhere else: not into
//! spans, logs, or error messages (which are scrubbed of it in case a server echoes it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use super::error::excerpt;
use super::governor::OrgGovernor;
use super::wire::{CheckoutLinkDto, CreateBody, ErrorBody, ListDto, PatchBody};
use super::{
    CheckoutLinks, Credentials, Link, LinkFields, LinkPatch, Page, PolarError, Token,
    install_crypto_provider,
};

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
    governor: Arc<OrgGovernor>,
    observer: Option<Observer>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
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
    /// A client for `credentials`, paced by `governor`, with a `timeout` per request (connect
    /// timeout 5 s). Redirects are not followed: Polar's API never needs one, and following
    /// could carry the token elsewhere.
    pub fn new(
        credentials: Credentials,
        governor: Arc<OrgGovernor>,
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
            governor,
            observer: None,
        })
    }

    /// Reports every request to `observer` (see [`Observer`]).
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// `<base>v1/checkout-links/` or `<base>v1/checkout-links/<id>`. The id must be a UUID,
    /// as Polar requires, which also keeps it a single safe path segment.
    fn url(&self, id: Option<&str>) -> Result<Url, PolarError> {
        if let Some(id) = id
            && uuid::Uuid::parse_str(id).is_err()
        {
            return Err(PolarError::Validation {
                message: format!("id: {id:?} is not a UUID"),
            });
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| PolarError::Transport {
                message: format!("{} cannot be a base URL", self.base),
            })?
            .pop_if_empty()
            .extend(["v1", "checkout-links", id.unwrap_or("")]);
        Ok(url)
    }

    /// Sends one request (after the governor allows it) and reads the whole answer.
    async fn send(
        &self,
        verb: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Reply, PolarError> {
        self.governor.acquire().await;
        let started = Instant::now();
        let result = async {
            let response = request.bearer_auth(self.token.expose()).send().await?;
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
            Ok(reply) => Err(self.scrub(self.error_of(&reply))),
        }
    }

    /// The error a non-2xx reply stands for; records a 429's `Retry-After` in the governor.
    fn error_of(&self, reply: &Reply) -> PolarError {
        let text = String::from_utf8_lossy(&reply.body);
        let body: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
        match reply.status.as_u16() {
            401 => PolarError::Unauthorized {
                message: described(&body, &text),
            },
            403 => PolarError::Forbidden {
                message: forbidden_message(&reply.headers, &body, &text),
            },
            404 => PolarError::NotFound,
            422 => PolarError::from_422_body(&text),
            429 => {
                let retry_after = retry_after(&reply.headers);
                self.governor.block_for(retry_after);
                PolarError::RateLimited { retry_after }
            }
            status @ 500..=599 => PolarError::Server { status },
            status => PolarError::Unexpected {
                status,
                message: described(&body, &text),
            },
        }
    }

    /// Replaces the token in any message with `***`.
    fn scrub(&self, error: PolarError) -> PolarError {
        let token = self.token.expose();
        if token.is_empty() {
            return error;
        }
        let clean = |m: String| m.replace(token, "***");
        match error {
            PolarError::Validation { message } => PolarError::Validation {
                message: clean(message),
            },
            PolarError::Unauthorized { message } => PolarError::Unauthorized {
                message: clean(message),
            },
            PolarError::Forbidden { message } => PolarError::Forbidden {
                message: clean(message),
            },
            PolarError::Transport { message } => PolarError::Transport {
                message: clean(message),
            },
            PolarError::Decode { message } => PolarError::Decode {
                message: clean(message),
            },
            PolarError::Unexpected { status, message } => PolarError::Unexpected {
                status,
                message: clean(message),
            },
            other => other,
        }
    }

    fn decode<T: DeserializeOwned>(&self, reply: &Reply) -> Result<T, PolarError> {
        serde_json::from_slice(&reply.body).map_err(|e| {
            self.scrub(PolarError::Decode {
                message: e.to_string(),
            })
        })
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
        Ok(self.decode::<CheckoutLinkDto>(&reply)?.into())
    }
}

#[async_trait::async_trait]
impl CheckoutLinks for HttpClient {
    async fn create(&self, fields: &LinkFields) -> Result<Link, PolarError> {
        let body = to_json(&CreateBody::from(fields))?;
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
        let body = to_json(&PatchBody::from(patch))?;
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

    async fn list(&self, page: u32, limit: u32) -> Result<Page, PolarError> {
        let (page, limit) = (page.max(1), limit.clamp(1, 100));
        let span = tracing::debug_span!("polar_call", verb = "list", page, limit);
        async {
            let request = self
                .client
                .get(self.url(None)?)
                .header(header::ACCEPT, "application/json")
                .query(&[("page", page), ("limit", limit)]);
            let reply = self.send("list", request).await?;
            Ok(self.decode::<ListDto>(&reply)?.into())
        }
        .instrument(span)
        .await
    }
}

fn to_json<T: serde::Serialize>(body: &T) -> Result<Vec<u8>, PolarError> {
    serde_json::to_vec(body).map_err(|e| PolarError::Decode {
        message: format!("cannot encode the request: {e}"),
    })
}

/// `2xx`, `3xx`, `4xx`, `5xx` or `429`: a bounded label.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        429 => "429",
        200..=299 => "2xx",
        300..=399 => "3xx",
        500..=599 => "5xx",
        _ => "4xx",
    }
}

/// `Retry-After` in seconds; [`DEFAULT_RETRY_AFTER`] when missing or not a number of seconds.
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, |s| {
            Duration::from_secs(s).min(MAX_RETRY_AFTER)
        })
}

/// `error: description` from either JSON error shape, or an excerpt of a body of any other kind.
fn described(body: &ErrorBody, text: &str) -> String {
    let description = body.error_description.as_deref().or(body.detail_text());
    match (body.error.as_deref(), description) {
        (Some(error), Some(description)) if error == description => error.to_owned(),
        (Some(error), Some(description)) => format!("{error}: {description}"),
        (Some(only), None) | (None, Some(only)) => only.to_owned(),
        (None, None) => excerpt(text),
    }
}

/// For `insufficient_scope`, names the scope(s) Polar asks for in `WWW-Authenticate`.
fn forbidden_message(headers: &HeaderMap, body: &ErrorBody, text: &str) -> String {
    let described = described(body, text);
    if body.error.as_deref() != Some("insufficient_scope") {
        return described;
    }
    let mut scopes: Vec<&str> = headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split("scope=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .flat_map(str::split_whitespace)
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    match scopes.as_slice() {
        [] => described,
        [one] => format!("the token lacks the scope {one} ({described})"),
        many => format!(
            "the token lacks one of the scopes {} ({described})",
            many.join(", ")
        ),
    }
}

/// An error and its sources on one line (reqwest's own text alone says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
