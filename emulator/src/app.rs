//! One request through Polar's layers, outermost first: version header,
//! (injected faults), rate limit, body size, token check (and the
//! `Polar-Organization` header), routing, handler; then Polar's response
//! headers, counters and the request log.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};

use crate::auth::{self, Auth, Tokens};
use crate::controls;
use crate::faults::{FaultAction, Faults};
use crate::http::{self, MAX_BODY_SIZE, Resp};
use crate::log::{Counters, RequestLog, RequestLogEntry};
use crate::model::timestamp;
use crate::rate_limit::RateLimiter;
use crate::router::{self, RouteResult};
use crate::routes::{self, Ctx};
use crate::seed::Seed;
use crate::state::Store;
use crate::sync::Locked;
use crate::validate::query::Query;
use crate::versions::{ApiVersions, Shape};

/// Everything the server shares between requests.
pub struct Shared {
    pub store: Mutex<Store>,
    pub tokens: Tokens,
    pub limiter: RateLimiter,
    pub faults: Faults,
    pub counters: Counters,
    pub log: RequestLog,
    pub seed: Seed,
    pub url_template: String,
    /// The versions served now (test controls can change them).
    pub versions: Mutex<ApiVersions>,
    /// What the configuration said, for resets.
    pub configured_versions: ApiVersions,
}

/// How the connection answers a request.
pub enum Outcome {
    Respond(Resp),
    /// Close the connection without a response.
    Drop,
    /// Never answer (the client times out).
    Hang,
}

struct Draft {
    started: Instant,
    method: Method,
    path: String,
    query: Option<String>,
    route: Option<&'static str>,
    organization_id: Option<String>,
    user_id: Option<String>,
    fault: Option<&'static str>,
    body: Option<String>,
    polar_version: Option<String>,
    polar_organization: Option<String>,
}

impl Draft {
    fn finish(self, shared: &Shared, status: u16) {
        tracing::debug!(method = %self.method, path = %self.path, status, "request");
        shared.log.push(RequestLogEntry {
            method: self.method.to_string(),
            path: self.path,
            query: self.query,
            route: self.route.map(str::to_string),
            status,
            organization_id: self.organization_id,
            user_id: self.user_id,
            fault: self.fault.map(str::to_string),
            timestamp: timestamp(&Utc::now()),
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            body: self.body,
            polar_version: self.polar_version,
            polar_organization: self.polar_organization,
        });
    }
}

fn decode_path(raw: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned();
    match decoded.strip_prefix("/api/v1/") {
        Some(rest) => format!("/v1/{rest}"),
        None => decoded,
    }
}

/// Polar's middleware headers on a response that went through them.
fn decorate(mut resp: Resp, version: &str, cache_control: bool) -> Resp {
    let h = resp.headers_mut();
    if cache_control && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(version) {
        h.insert("polar-version", v);
    }
    resp
}

pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>, peer: SocketAddr) -> Outcome {
    let (parts, body) = req.into_parts();
    let path = decode_path(parts.uri.path());
    if path == "/__emulator" || path.starts_with("/__emulator/") {
        return Outcome::Respond(controls::handle(&shared, &parts.method, &path, body).await);
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let mut draft = Draft {
        polar_version: header("polar-version"),
        polar_organization: header("polar-organization"),
        started: Instant::now(),
        method: parts.method.clone(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_string),
        route: None,
        organization_id: None,
        user_id: None,
        fault: None,
        body: None,
    };
    let respond = |draft: Draft, resp: Resp| {
        draft.finish(&shared, resp.status().as_u16());
        Outcome::Respond(resp)
    };

    // Polar's APIVersionMiddleware: before anything else, and its 404 carries
    // no `Polar-Version`.
    let resolved = shared
        .versions
        .locked()
        .resolve(draft.polar_version.as_deref())
        .map(str::to_string);
    let Some(version) = resolved else {
        return respond(draft, http::route_not_found());
    };

    let routed = router::route(&parts.method, &path);
    let mut plan = Default::default();
    if let RouteResult::Found(m) = &routed {
        draft.route = Some(m.template);
        shared.counters.hit(parts.method.as_str(), m.template);
        plan = shared.faults.plan(parts.method.as_str(), m.template);
    }
    let crate::faults::FaultPlan {
        latency,
        action,
        drop_after,
    } = plan;
    if !latency.is_zero() {
        draft.fault = Some("latency");
        tokio::time::sleep(latency).await;
    }
    match action {
        Some(FaultAction::Timeout) => {
            draft.fault = Some("timeout");
            draft.finish(&shared, 0);
            return Outcome::Hang;
        }
        Some(FaultAction::TooManyRequests) => {
            draft.fault = Some("429");
            let resp = decorate(
                http::rate_limited(shared.limiter.retry_after()),
                &version,
                false,
            );
            return respond(draft, resp);
        }
        Some(FaultAction::Status(s)) => {
            draft.fault = Some("status");
            return respond(draft, http::fault_status(s));
        }
        None => {}
    }

    let token = auth::bearer(parts.headers.get(header::AUTHORIZATION));
    let authn = auth::authenticate(&shared.tokens, token.as_deref());
    if let Auth::Valid(p) = &authn {
        draft.organization_id = p.organization_id().map(|id| id.to_string());
        draft.user_id = p.user_id().map(|id| id.to_string());
    }
    if path.starts_with("/v1/") && !shared.limiter.allow(&authn, token.as_deref(), peer.ip()) {
        let resp = decorate(
            http::rate_limited(shared.limiter.retry_after()),
            &version,
            false,
        );
        return respond(draft, resp);
    }

    let finish = |draft: Draft, resp: Resp| {
        let cache = resp.status() != StatusCode::INTERNAL_SERVER_ERROR;
        let resp = if cache {
            decorate(resp, &version, true)
        } else {
            resp
        };
        let status = resp.status().as_u16();
        if drop_after {
            let mut draft = draft;
            draft.fault = Some("drop");
            draft.finish(&shared, 0);
            return Outcome::Drop;
        }
        draft.finish(&shared, status);
        Outcome::Respond(resp)
    };

    let has_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
    if has_body {
        match parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
        {
            None => return finish(draft, http::length_required()),
            Some(n) if n.trim().parse::<u64>().is_ok_and(|n| n > MAX_BODY_SIZE) => {
                return finish(draft, http::body_too_large());
            }
            Some(_) => {}
        }
    }
    let principal = match authn {
        Auth::Invalid => return finish(draft, http::invalid_token()),
        Auth::Valid(p) => {
            if let Some(t) = &token {
                shared.limiter.authenticated(t);
            }
            Some(auth::for_organization_header(
                p,
                draft.polar_organization.as_deref(),
            ))
        }
        Auth::Anonymous => None,
    };

    let matched = match routed {
        RouteResult::Found(m) => m,
        RouteResult::NotFound => return finish(draft, http::route_not_found()),
        RouteResult::MethodNotAllowed(allow) => {
            return finish(draft, http::method_not_allowed(&allow));
        }
        RouteResult::RedirectSlash(to) => {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            let query = parts
                .uri
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let location = format!("http://{host}{to}{query}");
            return finish(
                draft,
                http::redirect(StatusCode::TEMPORARY_REDIRECT, &location),
            );
        }
    };
    let body: Bytes = if has_body {
        match Limited::new(body, MAX_BODY_SIZE as usize).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return finish(draft, http::body_too_large()),
        }
    } else {
        Bytes::new()
    };
    if has_body {
        draft.body = Some(String::from_utf8_lossy(&body).into_owned());
    }
    let ctx = Ctx {
        shared: &shared,
        principal: principal.as_deref(),
        query: Query::parse(parts.uri.query()),
        raw_query: parts.uri.query(),
        param: matched.param.as_deref(),
        body: &body,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        host: parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok()),
        shape: Shape::of(&version),
    };
    let resp = routes::dispatch(matched.kind, &ctx);
    finish(draft, resp)
}
