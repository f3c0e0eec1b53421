//! Delivery of the sandbox's notifications, as WeChat does it: POST the body
//! to the order's `notify_url`, and again after growing pauses until the
//! merchant answers with the success reply or the attempts run out.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::v2::Outgoing;
use super::Shared;

/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// What happened to one notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// `payment` or `refund`.
    pub kind: String,
    /// The order's trade number.
    pub out_trade_no: String,
    /// Where it was sent.
    pub url: String,
    /// How many times it was sent so far.
    pub attempts: u32,
    /// True once the merchant answered with the success reply.
    pub acknowledged: bool,
}

/// Sends notifications from the sandbox's runtime.
pub(super) struct Notifier {
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
}

impl Notifier {
    pub(super) fn new(runtime: tokio::runtime::Handle) -> std::io::Result<Notifier> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::http::tls_config().map_err(std::io::Error::other)?)
            .timeout(ATTEMPT_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| std::io::Error::other(e.without_url()))?;
        Ok(Notifier { runtime, http })
    }

    /// Delivers `outgoing` in the background, recording each attempt.
    pub(super) fn deliver(&self, shared: Arc<Shared>, outgoing: Outgoing) {
        let index = {
            let mut records = shared.notifications();
            records.push(NotificationRecord {
                kind: outgoing.kind.to_owned(),
                out_trade_no: outgoing.out_trade_no.clone(),
                url: outgoing.url.clone(),
                attempts: 0,
                acknowledged: false,
            });
            records.len() - 1
        };
        let http = self.http.clone();
        let attempts = shared.config.notify_attempts.max(1);
        let pause = Duration::from_millis(shared.config.notify_retry_ms);
        self.runtime.spawn(async move {
            let what = format!(
                "sandbox: {} notification for {} to {}",
                outgoing.kind,
                outgoing.out_trade_no,
                without_query(&outgoing.url)
            );
            for attempt in 0..attempts {
                if attempt > 0 {
                    tokio::time::sleep(pause * attempt).await;
                }
                shared.notifications_sent.fetch_add(1, Ordering::Relaxed);
                shared.notifications()[index].attempts += 1;
                let mut post = http
                    .post(&outgoing.url)
                    .header("content-type", outgoing.content_type)
                    .body(outgoing.body.clone());
                for (name, value) in &outgoing.headers {
                    post = post.header(name.as_str(), value.as_str());
                }
                let n = attempt + 1;
                let response = match post.send().await {
                    Ok(response) => response,
                    Err(e) => {
                        log::debug!("{what}, attempt {n}/{attempts}: {}", e.without_url());
                        continue;
                    }
                };
                let status = response.status().as_u16();
                let Ok(reply) = response.bytes().await else {
                    log::debug!("{what}, attempt {n}/{attempts}: HTTP {status}, body cut off");
                    continue;
                };
                if outgoing.acknowledged_by(status, &reply) {
                    log::debug!("{what}, attempt {n}/{attempts}: acknowledged (HTTP {status})");
                    shared.notifications()[index].acknowledged = true;
                    return;
                }
                log::debug!("{what}, attempt {n}/{attempts}: HTTP {status}, not acknowledged");
            }
            log::debug!("{what}: not acknowledged after {attempts} attempts, given up");
        });
    }
}

/// `scheme://host:port/path` of a URL, without its query or credentials.
fn without_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "an unparsable URL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(content_type: &'static str) -> Outgoing {
        Outgoing {
            kind: "payment",
            out_trade_no: "A".into(),
            url: "http://127.0.0.1/".into(),
            body: String::new(),
            content_type,
            headers: Vec::new(),
        }
    }

    #[test]
    fn shown_urls_lose_query_and_credentials() {
        assert_eq!(
            without_query("http://u:p@127.0.0.1:8080/notify?token=x#f"),
            "http://127.0.0.1:8080/notify"
        );
        assert_eq!(
            without_query("https://shop.example/wx"),
            "https://shop.example/wx"
        );
    }

    #[test]
    fn success_replies() {
        let v2 = outgoing("text/xml; charset=utf-8");
        assert!(v2.acknowledged_by(200, crate::api::v2::notify::V2_SUCCESS_REPLY.as_bytes()));
        assert!(v2.acknowledged_by(200, b"success\n"));
        assert!(!v2.acknowledged_by(
            200,
            crate::api::v2::notify::v2_failure_reply("no").as_bytes()
        ));
        assert!(!v2.acknowledged_by(200, b"<html>500</html>"));
        assert!(!v2.acknowledged_by(500, crate::api::v2::notify::V2_SUCCESS_REPLY.as_bytes()));
        let v3 = outgoing("application/json");
        assert!(v3.acknowledged_by(204, b""));
        assert!(v3.acknowledged_by(200, b""));
        assert!(!v3.acknowledged_by(500, b"{\"code\":\"FAIL\"}"));
    }
}
