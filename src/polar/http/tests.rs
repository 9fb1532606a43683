//! [`HttpClient`] against a tiny axum server that answers with Polar's exact bodies.

use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::*;
use crate::polar::wire::fixtures::LINK;
use crate::polar::{MetaValue, Metadata, Server, Trial};

const TOKEN: &str = "polar_oat_SeCrEtSeCrEtSeCrEtSeCrEtSeCrEtSeCrEt1a2b3c";
const ID: &str = "8a3f5c1e-2b4d-4e6f-9a8b-1c2d3e4f5a6b";
const INVALID_TOKEN: &str = r#"{"error":"invalid_token","error_description":"The access token provided is expired, revoked, malformed, or invalid for other reasons."}"#;
const INSUFFICIENT_SCOPE: &str = r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token."}"#;

/// What the server saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the server answers next.
#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn canned(status: u16, body: &str) -> Canned {
    let json = body.starts_with('{');
    let headers = if json {
        vec![("content-type", "application/json".to_owned())]
    } else {
        vec![]
    };
    Canned {
        status,
        headers,
        body: body.to_owned(),
        delay: Duration::ZERO,
    }
}

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    next: Arc<Mutex<Canned>>,
}

async fn answer(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    shared.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers,
        body,
    });
    let canned = shared.next.lock().unwrap().clone();
    if !canned.delay.is_zero() {
        tokio::time::sleep(canned.delay).await;
    }
    let mut response = Response::builder().status(canned.status);
    for (k, v) in canned.headers {
        response = response.header(k, v);
    }
    response.body(Body::from(canned.body)).unwrap()
}

struct Fixture {
    client: HttpClient,
    shared: Shared,
    observed: Arc<Mutex<Vec<(&'static str, &'static str)>>>,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(DEFAULT_TIMEOUT, "").await
    }

    async fn with(timeout: Duration, path_prefix: &str) -> Fixture {
        let shared = Shared {
            seen: Arc::default(),
            next: Arc::new(Mutex::new(canned(200, LINK))),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let server = Server::parse(&format!("http://{addr}{path_prefix}")).unwrap();
        let observed: Arc<Mutex<Vec<(&'static str, &'static str)>>> = Arc::default();
        let sink = observed.clone();
        let client = HttpClient::new(
            Credentials {
                token: Token::new(TOKEN),
                server,
            },
            API_VERSION,
            timeout,
        )
        .unwrap()
        .with_observer(Arc::new(move |verb, class, _| {
            sink.lock().unwrap().push((verb, class))
        }));
        Fixture {
            client,
            shared,
            observed,
        }
    }

    fn answer(&self, canned: Canned) {
        *self.shared.next.lock().unwrap() = canned;
    }

    fn last(&self) -> Seen {
        self.shared
            .seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no request reached the server")
    }

    fn requests(&self) -> usize {
        self.shared.seen.lock().unwrap().len()
    }
}

fn fields() -> LinkFields {
    LinkFields {
        products: vec!["d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d".into()],
        label: Some("Launch".into()),
        allow_discount_codes: true,
        metadata: Metadata::from([("n".to_owned(), MetaValue::Int(2))]),
        success_url: Some("https://example.com/thanks?checkout_id={CHECKOUT_ID}".into()),
        trial: Some(Trial {
            interval: "month".into(),
            count: 1,
        }),
        ..Default::default()
    }
}

fn assert_sized_json_body(seen: &Seen) {
    let length = seen
        .header("content-length")
        .expect("Content-Length missing");
    assert_eq!(length.parse::<usize>().unwrap(), seen.body.len());
    assert_eq!(seen.header("transfer-encoding"), None);
    assert_eq!(seen.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn create_posts_every_field_with_a_length_and_reads_201() {
    let f = Fixture::new().await;
    f.answer(canned(201, LINK));
    let link = f.client.create(&fields()).await.unwrap();
    assert_eq!(link.id, ID);
    assert_eq!(link.fields.units, Some(3));

    let seen = f.last();
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("POST", "/v1/checkout-links/")
    );
    assert_sized_json_body(&seen);
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(
        seen.header("user-agent")
            .unwrap()
            .starts_with("checkout-link-operator/")
    );
    let body = seen.json();
    assert_eq!(body["payment_processor"], "stripe");
    assert_eq!(body["trial_interval"], "month");
    for key in [
        "label",
        "discount_id",
        "return_url",
        "seats",
        "units",
        "require_billing_address",
    ] {
        assert!(
            body.as_object().unwrap().contains_key(key),
            "create body lacks {key}"
        );
    }
    assert_eq!(*f.observed.lock().unwrap(), [("create", "2xx")]);
}

#[tokio::test]
async fn get_reads_200_from_the_item_path() {
    let f = Fixture::new().await;
    let link = f.client.get(ID).await.unwrap();
    assert_eq!(link.fields.products.len(), 2);
    let seen = f.last();
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("GET", format!("/v1/checkout-links/{ID}").as_str())
    );
}

#[tokio::test]
async fn update_patches_with_explicit_nulls_and_a_length() {
    let f = Fixture::new().await;
    let patch = LinkPatch {
        label: Some(None),
        return_url: Some(None),
        trial: Some(None),
        allow_discount_codes: Some(false),
        ..Default::default()
    };
    f.client.update(ID, &patch).await.unwrap();
    let seen = f.last();
    assert_eq!(seen.method, "PATCH");
    assert_sized_json_body(&seen);
    assert_eq!(
        seen.json(),
        json!({"label": null, "return_url": null, "trial_interval": null, "trial_interval_count": null, "allow_discount_codes": false})
    );
}

#[tokio::test]
async fn delete_accepts_204_and_reports_404_as_not_found() {
    let f = Fixture::new().await;
    f.answer(canned(204, ""));
    f.client.delete(ID).await.unwrap();
    assert_eq!(f.last().method, "DELETE");
    f.answer(canned(
        404,
        r#"{"error":"ResourceNotFound","detail":"Not found"}"#,
    ));
    assert_eq!(f.client.delete(ID).await, Err(PolarError::NotFound));
    assert_eq!(f.client.get(ID).await, Err(PolarError::NotFound));
}

#[tokio::test]
async fn list_sends_page_and_limit_and_reads_the_envelope() {
    let f = Fixture::new().await;
    f.answer(canned(
        200,
        &format!(r#"{{"items":[{LINK}],"pagination":{{"total_count":101,"max_page":2}}}}"#),
    ));
    let query = ListQuery {
        limit: 500,
        ..ListQuery::page(2)
    };
    let page = f.client.list(&query).await.unwrap();
    assert_eq!(
        (page.items.len(), page.total_count, page.max_page),
        (1, 101, 2)
    );
    assert_eq!(
        f.last().uri,
        "/v1/checkout-links/?page=2&limit=100&sorting=created_at"
    );
    let org = ListQuery {
        organization_id: Some("11111111-1111-4111-8111-111111111111".into()),
        ..ListQuery::page(1)
    };
    f.client.list(&org).await.unwrap();
    assert_eq!(
        f.last().uri,
        "/v1/checkout-links/?page=1&limit=100&sorting=created_at&organization_id=11111111-1111-4111-8111-111111111111"
    );
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it() {
    let f = Fixture::with(DEFAULT_TIMEOUT, "/proxy").await;
    f.client.get(ID).await.unwrap();
    assert_eq!(f.last().uri, format!("/proxy/v1/checkout-links/{ID}"));
}

#[tokio::test]
async fn both_401_shapes_are_unauthorized() {
    let f = Fixture::new().await;
    f.answer(canned(
        401,
        r#"{"error":"Unauthorized","detail":"Unauthorized"}"#,
    ));
    assert_eq!(
        f.client.get(ID).await,
        Err(PolarError::Unauthorized {
            message: "Unauthorized".into()
        })
    );
    let mut invalid = canned(401, INVALID_TOKEN);
    invalid.headers.push((
        "www-authenticate",
        r#"Bearer realm="polar", error="invalid_token""#.into(),
    ));
    f.answer(invalid);
    let err = f.client.get(ID).await.unwrap_err();
    assert_eq!(
        err,
        PolarError::Unauthorized {
            message: "invalid_token: The access token provided is expired, revoked, malformed, or invalid for other reasons.".into()
        }
    );
    assert_eq!(err.category(), "credentials");
}

#[tokio::test]
async fn a_missing_scope_is_forbidden_and_named() {
    let f = Fixture::new().await;
    let mut answer = canned(403, INSUFFICIENT_SCOPE);
    answer.headers.push((
        "www-authenticate",
        r#"Bearer realm="polar", scope="checkout_links:write", error="insufficient_scope", error_description="The request requires higher privileges than provided by the access token.""#.into(),
    ));
    f.answer(answer);
    let message = match f.client.create(&fields()).await {
        Err(PolarError::Forbidden { message }) => message,
        other => panic!("{other:?}"),
    };
    assert!(
        message.starts_with("the token lacks the scope checkout_links:write ("),
        "{message}"
    );

    let mut read = canned(403, INSUFFICIENT_SCOPE);
    read.headers.push(("www-authenticate", r#"Bearer realm="polar", scope="checkout_links:write checkout_links:read", error="insufficient_scope""#.into()));
    f.answer(read);
    let Err(PolarError::Forbidden { message }) = f.client.get(ID).await else {
        panic!()
    };
    assert!(
        message.starts_with(
            "the token lacks one of the scopes checkout_links:read, checkout_links:write"
        ),
        "{message}"
    );

    f.answer(canned(
        403,
        r#"{"error":"NotPermitted","detail":"You don't have permission to manage products"}"#,
    ));
    assert_eq!(
        f.client.get(ID).await,
        Err(PolarError::Forbidden {
            message: "NotPermitted: You don't have permission to manage products".into()
        })
    );
}

#[tokio::test]
async fn a_422_becomes_a_validation_message() {
    let f = Fixture::new().await;
    f.answer(canned(
        422,
        r#"{"error":"PolarRequestValidationError","detail":[{"type":"value_error","loc":["body","products",0],"msg":"Product is archived.","input":"d2a1b0c9-8e7f-4a6b-9c5d-4e3f2a1b0c9d"}]}"#,
    ));
    let err = f.client.create(&fields()).await.unwrap_err();
    assert_eq!(
        err,
        PolarError::Validation {
            message: "products[0]: Product is archived.".into(),
            layer: crate::polar::error::ValidationLayer::Service,
            problems: vec![crate::polar::error::Problem {
                location: "products[0]".into(),
                message: "Product is archived.".into()
            }],
        }
    );
    assert_eq!(f.observed.lock().unwrap().last(), Some(&("create", "4xx")));
}

#[tokio::test]
async fn a_429_reports_retry_after() {
    // Holding calls back for it is the account's job (polar::account tests).
    let f = Fixture::new().await;
    let mut limited = canned(429, "");
    limited.headers.push(("retry-after", "60".into()));
    f.answer(limited);
    assert_eq!(
        f.client.get(ID).await,
        Err(PolarError::RateLimited {
            retry_after: Duration::from_secs(60)
        })
    );
    assert_eq!(f.observed.lock().unwrap().last(), Some(&("get", "429")));
}

#[tokio::test]
async fn every_request_carries_the_api_version() {
    let f = Fixture::new().await;
    f.client.get(ID).await.unwrap();
    assert_eq!(f.last().header("polar-version"), Some(API_VERSION));
    assert_eq!(API_VERSION, "2026-10");
    f.client.create(&fields()).await.unwrap();
    assert_eq!(f.last().header("polar-version"), Some("2026-10"));
}

#[tokio::test]
async fn a_refused_version_is_never_a_missing_link() {
    let f = Fixture::new().await;
    // Polar's refusal: Starlette's plain 404, no Polar-Version echoed.
    f.answer(canned(404, r#"{"detail":"Not Found"}"#));
    let refused = f.client.get(ID).await.unwrap_err();
    assert_eq!(
        refused,
        PolarError::VersionRefused {
            version: "2026-10".into()
        }
    );
    assert!(refused.to_string().contains("2026-10"), "{refused}");
    assert_eq!(
        f.client.delete(ID).await.unwrap_err().category(),
        "version_refused"
    );
    // The same body with the version echoed is a route Polar does not have: not "not found"
    // either.
    let mut route = canned(404, r#"{"detail":"Not Found"}"#);
    route.headers.push(("polar-version", "2026-10".into()));
    f.answer(route);
    assert_eq!(f.client.get(ID).await.unwrap_err().category(), "unexpected");
    // Polar's own answer for a missing object is "not found", header or not.
    f.answer(canned(
        404,
        r#"{"error":"ResourceNotFound","detail":"Not found"}"#,
    ));
    assert_eq!(f.client.get(ID).await, Err(PolarError::NotFound));
}

#[test]
fn retry_after_defaults_to_60_and_is_capped() {
    let headers = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, v.parse().unwrap());
        h
    };
    assert_eq!(retry_after(&HeaderMap::new()), Duration::from_secs(60));
    assert_eq!(retry_after(&headers("1")), Duration::from_secs(1));
    assert_eq!(retry_after(&headers("soon")), Duration::from_secs(60));
    assert_eq!(
        retry_after(&headers("Wed, 21 Oct 2026 07:28:00 GMT")),
        Duration::from_secs(60)
    );
    assert_eq!(retry_after(&headers("9999999")), MAX_RETRY_AFTER);
}

#[tokio::test]
async fn a_plain_text_500_is_a_server_error() {
    let f = Fixture::new().await;
    f.answer(Canned {
        headers: vec![("content-type", "text/plain; charset=utf-8".into())],
        ..canned(500, "Internal Server Error")
    });
    let err = f
        .client
        .update(ID, &LinkPatch::default())
        .await
        .unwrap_err();
    assert_eq!(err, PolarError::Server { status: 500 });
    assert_eq!(f.observed.lock().unwrap().last(), Some(&("update", "5xx")));
}

#[tokio::test]
async fn other_statuses_are_unexpected_with_polar_words() {
    let f = Fixture::new().await;
    f.answer(canned(
        411,
        r#"{"error":"LengthRequired","detail":"A Content-Length header is required."}"#,
    ));
    assert_eq!(
        f.client.create(&fields()).await,
        Err(PolarError::Unexpected {
            status: 411,
            message: "LengthRequired: A Content-Length header is required.".into()
        })
    );
    f.answer(Canned {
        headers: vec![("location", "https://elsewhere.example/".into())],
        ..canned(307, "")
    });
    assert!(matches!(
        f.client.get(ID).await,
        Err(PolarError::Unexpected { status: 307, .. })
    ));
    assert_eq!(f.requests(), 2, "the redirect was followed");
}

#[tokio::test]
async fn a_garbled_success_is_a_decode_error() {
    let f = Fixture::new().await;
    f.answer(canned(200, r#"{"id": 1}"#));
    assert_eq!(f.client.get(ID).await.unwrap_err().category(), "decode");
    f.answer(canned(200, "<html>proxy</html>"));
    assert_eq!(
        f.client
            .list(&ListQuery::page(1))
            .await
            .unwrap_err()
            .category(),
        "decode"
    );
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let f = Fixture::with(Duration::from_millis(200), "").await;
    f.answer(Canned {
        delay: Duration::from_secs(5),
        ..canned(200, LINK)
    });
    assert_eq!(f.client.get(ID).await, Err(PolarError::Timeout));
    assert_eq!(*f.observed.lock().unwrap(), [("get", "timeout")]);
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let server = Server::parse(&format!("http://{addr}")).unwrap();
    let client = HttpClient::new(
        Credentials {
            token: Token::new(TOKEN),
            server,
        },
        API_VERSION,
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    let err = client.get(ID).await.unwrap_err();
    assert_eq!(err.category(), "transport", "{err}");
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_malformed_id_never_leaves_the_process() {
    let f = Fixture::new().await;
    for id in ["..", "a/b", "", "not-a-uuid"] {
        assert_eq!(
            f.client.get(id).await.unwrap_err().category(),
            "validation",
            "{id:?}"
        );
        assert_eq!(
            f.client.delete(id).await.unwrap_err().category(),
            "validation",
            "{id:?}"
        );
    }
    assert_eq!(f.requests(), 0);
}

#[tokio::test]
async fn the_token_is_only_ever_in_the_authorization_header() {
    let f = Fixture::new().await;
    f.answer(canned(201, LINK));
    f.client.create(&fields()).await.unwrap();
    f.answer(canned(200, LINK));
    f.client
        .update(
            ID,
            &LinkPatch {
                label: Some(Some("x".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.answer(canned(
        200,
        r#"{"items":[],"pagination":{"total_count":0,"max_page":0}}"#,
    ));
    f.client.list(&ListQuery::page(1)).await.unwrap();
    f.answer(canned(204, ""));
    f.client.delete(ID).await.unwrap();
    let seen = f.shared.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    for request in seen {
        assert!(!request.uri.contains(TOKEN));
        assert!(!String::from_utf8_lossy(&request.body).contains(TOKEN));
        for (name, value) in &request.headers {
            if name == "authorization" {
                assert_eq!(value, &format!("Bearer {TOKEN}"));
            } else {
                assert!(!value.contains(TOKEN), "token in header {name}");
            }
        }
    }
}

#[tokio::test]
async fn error_text_never_contains_the_token_even_when_a_server_echoes_it() {
    let f = Fixture::new().await;
    let echoes = [
        canned(
            401,
            &format!(r#"{{"error":"invalid_token","error_description":"bad token {TOKEN}"}}"#),
        ),
        canned(
            403,
            &format!(r#"{{"error":"NotPermitted","detail":"{TOKEN}"}}"#),
        ),
        canned(
            422,
            &format!(
                r#"{{"error":"RequestValidationError","detail":[{{"type":"x","loc":["body","label"],"msg":"no {TOKEN}","input":"{TOKEN}"}}]}}"#
            ),
        ),
        canned(400, &format!("Bearer {TOKEN} rejected")),
        canned(200, &format!(r#"{{"id": "{TOKEN}"}}"#)),
        canned(
            200,
            &format!(
                r#"{{"items": [], "pagination": {{"total_count": "{TOKEN}", "max_page": 0}}}}"#
            ),
        ),
    ];
    for answer in echoes {
        let status = answer.status;
        f.answer(answer);
        let err = if status == 200 {
            f.client.list(&ListQuery::page(1)).await.map(drop)
        } else {
            f.client.get(ID).await.map(drop)
        };
        let err = err.unwrap_err();
        assert!(
            !format!("{err} {err:?}").contains(TOKEN),
            "{status}: {err:?}"
        );
    }
    assert!(!format!("{:?}", f.client).contains(TOKEN));
}
