//! One request through Polar's layers, outermost first: version header,
//! (injected faults), rate limit, body size, token check (and the
//! `Polar-Organization` header), routing, handler; then Polar's response
//! headers, counters and the request log. A `commit_delay` fault runs the
//! handler on a task of its own, so that it outlives a client that leaves.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use tokio::sync::oneshot;

use crate::auth::{self, Auth, Principal, Tokens};
use crate::controls;
use crate::faults::{self, FaultAction, FaultPlan, Faults, Target};
use crate::http::{self, MAX_BODY_SIZE, Resp};
use crate::log::{Counters, RequestLog, RequestLogEntry};
use crate::model::timestamp;
use crate::rate_limit::RateLimiter;
use crate::router::{self, RouteKind, RouteResult};
use crate::routes::{self, Ctx};
use crate::seed::Seed;
use crate::state::Store;
use crate::sync::Locked;
use crate::validate::query::{self, Query};
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
    shared: Arc<Shared>,
    started: Instant,
    method: Method,
    path: String,
    query: Option<String>,
    route: Option<&'static str>,
    organization_id: Option<String>,
    user_id: Option<String>,
    /// The fault that decided the answer (the last one noted).
    fault: Option<&'static str>,
    /// Every fault that applied, in the order they did.
    faults: Vec<&'static str>,
    body: Option<String>,
    polar_version: Option<String>,
    polar_organization: Option<String>,
    logged: bool,
}

impl Draft {
    fn note(&mut self, fault: &'static str) {
        self.fault = Some(fault);
        self.faults.push(fault);
    }

    fn finish(mut self, status: u16, client_gone: bool) {
        self.log(status, client_gone);
    }

    fn log(&mut self, status: u16, client_gone: bool) {
        if std::mem::replace(&mut self.logged, true) {
            return;
        }
        tracing::debug!(method = %self.method, path = %self.path, status, client_gone, "request");
        self.shared.log.push(RequestLogEntry {
            method: self.method.to_string(),
            path: std::mem::take(&mut self.path),
            query: self.query.take(),
            route: self.route.map(str::to_string),
            status,
            organization_id: self.organization_id.take(),
            user_id: self.user_id.take(),
            fault: self.fault.map(str::to_string),
            faults: self.faults.iter().map(|f| f.to_string()).collect(),
            client_gone,
            timestamp: timestamp(&Utc::now()),
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            body: self.body.take(),
            polar_version: self.polar_version.take(),
            polar_organization: self.polar_organization.take(),
        });
    }
}

/// A request whose future is dropped before it was answered (the client
/// closed the connection, or the emulator stopped) is logged with status 0.
impl Drop for Draft {
    fn drop(&mut self) {
        self.log(0, true);
    }
}

/// The route handler's part of a request, owned, so that it can run on a task
/// of its own (the `commit_delay` fault).
struct Handler {
    kind: RouteKind,
    principal: Option<Arc<Principal>>,
    query: Option<String>,
    param: Option<String>,
    body: Bytes,
    content_type: Option<String>,
    host: Option<String>,
    shape: Shape,
    list_shift: i64,
}

impl Handler {
    fn run(&self, shared: &Shared) -> Resp {
        let ctx = Ctx {
            shared,
            principal: self.principal.as_deref(),
            query: Query::parse(self.query.as_deref()),
            raw_query: self.query.as_deref(),
            param: self.param.as_deref(),
            body: &self.body,
            content_type: self.content_type.as_deref(),
            host: self.host.as_deref(),
            shape: self.shape,
            list_shift: self.list_shift,
        };
        routes::dispatch(self.kind, &ctx)
    }
}

/// Early answers: logged as they are, no Polar headers added here.
fn respond(draft: Draft, resp: Resp) -> Outcome {
    draft.finish(resp.status().as_u16(), false);
    Outcome::Respond(resp)
}

/// Answers that went through Polar's middleware: its headers (none on a
/// 500), the log, and the `drop_response_after_commit` fault.
fn answer(
    mut draft: Draft,
    resp: Resp,
    version: &str,
    drop_after: bool,
    client_gone: bool,
) -> Outcome {
    let resp = if resp.status() != StatusCode::INTERNAL_SERVER_ERROR {
        decorate(resp, version, true)
    } else {
        resp
    };
    if drop_after {
        draft.note("drop");
        draft.finish(0, client_gone);
        return Outcome::Drop;
    }
    draft.finish(resp.status().as_u16(), client_gone);
    Outcome::Respond(resp)
}

/// Whether a request is a `GET /v1/checkout-links/` past its first page.
fn later_page(method: &Method, template: &str, query: Option<&str>) -> bool {
    if method != Method::GET || template != faults::LINKS_LIST {
        return false;
    }
    let mut errors = Vec::new();
    let page = query::pagination(&Query::parse(query), &mut errors);
    errors.is_empty() && page.offset() > 0
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
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let lossy = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let mut draft = Draft {
        shared: shared.clone(),
        polar_version: lossy("polar-version"),
        polar_organization: lossy("polar-organization"),
        started: Instant::now(),
        method: parts.method.clone(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_string),
        route: None,
        organization_id: None,
        user_id: None,
        fault: None,
        faults: Vec::new(),
        body: None,
        logged: false,
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
    let mut plan = FaultPlan::default();
    if let RouteResult::Found(m) = &routed {
        draft.route = Some(m.template);
        shared.counters.hit(parts.method.as_str(), m.template);
        plan = shared.faults.plan(Target {
            method: parts.method.as_str(),
            template: m.template,
            later_page: later_page(&parts.method, m.template, parts.uri.query()),
        });
    }
    let FaultPlan {
        latency,
        commit_delay,
        action,
        drop_after,
        list_shift,
        not_found,
    } = plan;
    if !latency.is_zero() {
        draft.note("latency");
        tokio::time::sleep(latency).await;
    }
    match action {
        Some(FaultAction::Timeout) => {
            draft.note("timeout");
            draft.finish(0, false);
            return Outcome::Hang;
        }
        Some(FaultAction::TooManyRequests) => {
            draft.note("429");
            let resp = decorate(
                http::rate_limited(shared.limiter.retry_after()),
                &version,
                false,
            );
            return respond(draft, resp);
        }
        Some(FaultAction::Status(s)) => {
            draft.note("status");
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

    let finish = |draft: Draft, resp: Resp| answer(draft, resp, &version, drop_after, false);

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
            let host = header(header::HOST.as_str()).unwrap_or_else(|| "127.0.0.1".into());
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

    if !commit_delay.is_zero() {
        draft.note("commit_delay");
    }
    if list_shift != 0 {
        draft.note("shift");
    }
    let principal = match principal {
        Some(p) if not_found => {
            draft.note("not_found");
            Some(Arc::new(auth::of_empty_organization(&p)))
        }
        p => p,
    };
    let handler = Handler {
        kind: matched.kind,
        principal,
        query: parts.uri.query().map(str::to_string),
        param: matched.param,
        body,
        content_type: header(header::CONTENT_TYPE.as_str()),
        host: header(header::HOST.as_str()),
        shape: Shape::of(&version),
        list_shift,
    };
    if commit_delay.is_zero() {
        let resp = handler.run(&shared);
        return finish(draft, resp);
    }
    detached(
        shared.clone(),
        draft,
        handler,
        commit_delay,
        version,
        drop_after,
    )
    .await
}

/// The `commit_delay` fault: the handler runs after `delay` on a task of its
/// own, which the connection only waits for. A client that leaves meanwhile
/// drops the wait, not the task: the write happens and is logged (with
/// `client_gone`), as Polar's server finishes a request whose client gave up.
async fn detached(
    shared: Arc<Shared>,
    draft: Draft,
    handler: Handler,
    delay: Duration,
    version: String,
    drop_after: bool,
) -> Outcome {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let resp = handler.run(&shared);
        let outcome = answer(draft, resp, &version, drop_after, tx.is_closed());
        let _ = tx.send(outcome);
    });
    // The task only fails to answer if it panicked: close the connection.
    rx.await.unwrap_or(Outcome::Drop)
}
