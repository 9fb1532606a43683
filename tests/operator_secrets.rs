//! The Polar token never leaves the Secret: not in the operator's logs (at trace level, every
//! crate included), not in events, not in the status.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

/// Everything logged, in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_appears_in_no_log_event_or_status() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .init();

    let h = Harness::start(
        "token-leak",
        Options {
            resync: Duration::from_secs(1),
            ..Options::default()
        },
    )
    .await;
    h.create(
        "a",
        json!({"products": [EBOOK], "urlParameters": {"utmSource": "x"}}),
    )
    .await;
    h.wait_ready("a").await;
    // A rejected token, then the good one again; an update; a deletion.
    h.put_secret(SECRET, UNKNOWN_TOKEN, None).await;
    h.create("b", json!({"products": [EBOOK]})).await;
    h.wait_condition("b", "Stalled", "True", "CredentialsInvalid")
        .await;
    h.put_secret(SECRET, TOKEN, None).await;
    h.wait_ready("b").await;
    h.patch_spec("a", json!({"label": "changed"})).await;
    h.wait_ready("a").await;
    let statuses: Vec<String> = futures::future::join_all(["a", "b"].map(|n| h.links.get(n)))
        .await
        .into_iter()
        .map(|l| serde_json::to_string(&l.unwrap().status).unwrap())
        .collect();
    let mut events = Vec::new();
    for name in ["a", "b"] {
        events.extend(
            h.events(name)
                .await
                .into_iter()
                .map(|e| serde_json::to_string(&e).unwrap()),
        );
    }
    h.delete("a").await;
    h.wait_gone("a").await;
    h.finish().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.len() > 10_000,
        "trace logging was captured ({} bytes)",
        logs.len()
    );
    assert!(logs.contains("polar_call"), "Polar calls were traced");
    for token in [TOKEN, UNKNOWN_TOKEN] {
        let b64 = base64::engine::general_purpose::STANDARD.encode(token);
        for (what, text) in [
            ("logs", logs.as_str()),
            ("events", &events.join("\n")),
            ("status", &statuses.join("\n")),
        ] {
            assert!(!text.contains(token), "the token appears in the {what}");
            assert!(
                !text.contains(&b64),
                "the base64 token appears in the {what}"
            );
            // The random part alone, in case a prefix was cut.
            assert!(
                !text.contains(&token[10..40]),
                "part of the token appears in the {what}"
            );
        }
    }
}
