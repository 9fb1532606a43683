//! Shared helpers: one emulator per test on 127.0.0.1:0, a small JSON client,
//! and the demo seed's ids and tokens.
#![allow(dead_code)]

use std::time::Duration;

use polar_emulator::{Config, Emulator};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const ACME: &str = "11111111-1111-4111-8111-111111111111";
pub const GLOBEX: &str = "22222222-2222-4222-8222-222222222222";
pub const USER: &str = "33333333-3333-4333-8333-333333333333";

pub const ACME_TOKEN: &str = "polar_oat_AcmeDemoWriteToken00000000000000000013Difp9";
pub const ACME_READ_TOKEN: &str = "polar_oat_AcmeDemoReadOnlyToken000000000000000238RYdr";
pub const GLOBEX_TOKEN: &str = "polar_oat_GlobexDemoWriteToken000000000000000033fE7W1";
pub const USER_TOKEN: &str = "polar_pat_DemoUserPersonalToken00000000000000040CRsYF";
pub const ACME_SHOP_TWO_TOKEN: &str = "polar_oat_AcmeDemoShopTwoToken000000000000000000X8Bo2";
pub const ACME_NO_ORG_TOKEN: &str = "polar_oat_AcmeDemoNoOrgScopeToken000000000000002EowaP";

pub const EBOOK: &str = "a1000000-0000-4000-8000-000000000001";
pub const MONTHLY: &str = "a1000000-0000-4000-8000-000000000002";
pub const YEARLY: &str = "a1000000-0000-4000-8000-000000000003";
pub const TEAM: &str = "a1000000-0000-4000-8000-000000000004";
pub const ARCHIVED: &str = "a1000000-0000-4000-8000-000000000005";
pub const DRAFT: &str = "a1000000-0000-4000-8000-000000000006";
pub const CONSULTING: &str = "a1000000-0000-4000-8000-000000000007";
pub const GLOBEX_WIDGET: &str = "a2000000-0000-4000-8000-000000000001";
pub const CREDITS: &str = "a1000000-0000-4000-8000-000000000008";
pub const GLOBEX_EBOOK: &str = "a2000000-0000-4000-8000-000000000002";
pub const GLOBEX_MONTHLY: &str = "a2000000-0000-4000-8000-000000000003";

pub const EBOOK_PRICE: &str = "b1000000-0000-4000-8000-000000000001";
pub const ARCHIVED_PRICE: &str = "b1000000-0000-4000-8000-000000000005";

pub const LAUNCH20: &str = "d1000000-0000-4000-8000-000000000001";
pub const TEAM5: &str = "d1000000-0000-4000-8000-000000000002";
pub const GLOBEX10: &str = "d2000000-0000-4000-8000-000000000001";
pub const GLOBEX_LAUNCH20: &str = "d2000000-0000-4000-8000-000000000002";

pub const PRODUCTS_TAG: &str =
    "function-after[is_complete_configuration(), CheckoutLinkCreateProducts]";
pub const PRODUCT_TAG: &str =
    "function-after[is_complete_configuration(), CheckoutLinkCreateProduct]";
pub const PRICE_TAG: &str =
    "function-after[is_complete_configuration(), CheckoutLinkCreateProductPrice]";

pub struct Res {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Res {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `detail` items of a 422.
    pub fn detail(&self) -> &Vec<Value> {
        self.body["detail"].as_array().expect("a 422 detail list")
    }
}

pub struct Api {
    pub emu: Emulator,
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    /// The demo seed with rate limiting off.
    pub async fn start() -> Api {
        Api::with(Config {
            rate_limit: 0,
            ..Config::default()
        })
        .await
    }

    pub async fn with(config: Config) -> Api {
        install_crypto();
        let emu = polar_emulator::spawn(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator starts");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let base = emu.base_url();
        Api { emu, client, base }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Res {
        self.send_with(method, path, token, body, &[]).await
    }

    /// `send` with extra request headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Res {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request is answered");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            text,
            body,
        }
    }

    /// GET with a `Polar-Version` header.
    pub async fn get_at(&self, version: &str, path: &str, token: &str) -> Res {
        self.send_with(
            Method::GET,
            path,
            Some(token),
            None,
            &[("polar-version", version)],
        )
        .await
    }

    pub async fn get(&self, path: &str, token: &str) -> Res {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Res {
        self.send(Method::POST, path, Some(token), Some(&body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Res {
        self.send(Method::PATCH, path, Some(token), Some(&body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Res {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a link with the Acme token and returns it (asserting 201).
    pub async fn create(&self, extra: Value) -> Value {
        let mut body = json!({"payment_processor": "stripe", "products": [EBOOK]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self.post("/v1/checkout-links/", ACME_TOKEN, body).await;
        assert_eq!(r.status, 201, "create failed: {}", r.text);
        r.body
    }

    /// Sends raw bytes and returns what came back before the connection closed
    /// (or `None` if nothing came back within `wait`).
    pub async fn raw(&self, request: &[u8], wait: Duration) -> Option<String> {
        let addr = self.emu.local_addr();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(wait, async {
            let mut chunk = [0u8; 4096];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if String::from_utf8_lossy(&buf).contains("\r\n\r\n") {
                            // Headers are in; give the body a moment, then stop.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            if let Ok(Ok(n)) = tokio::time::timeout(
                                Duration::from_millis(50),
                                stream.read(&mut chunk),
                            )
                            .await
                            {
                                buf.extend_from_slice(&chunk[..n]);
                            }
                            break;
                        }
                    }
                }
            }
        })
        .await;
        if read.is_err() && buf.is_empty() {
            return None;
        }
        Some(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// reqwest's rustls needs a process-wide crypto provider.
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The `id`s of a list's items, in order.
pub fn item_ids(r: &Res) -> Vec<String> {
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", r.text))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// `loc` of an error item as strings (indices shown as numbers).
pub fn locs(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["loc"].to_string()).collect()
}
