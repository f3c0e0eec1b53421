//! Delivery of the sandbox's notifications, as WeChat does it: POST the body
//! to the order's `notify_url`, and again after growing pauses until the
//! merchant answers with the success reply or the attempts run out. Each
//! attempt is counted in the ledger's record of the notification; a
//! delivery whose record was cleared (`POST /sandbox/reset`) stops.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;

/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    /// A payment succeeded.
    Payment,
    /// A refund succeeded.
    Refund,
}

impl Event {
    /// `payment` or `refund`, as the notification records name it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Event::Payment => "payment",
            Event::Refund => "refund",
        }
    }
}

/// How a notification is written, which also says how the merchant
/// acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// XML (2014 flow and API v2): acknowledged by the SUCCESS XML or a
    /// plain `success`, with a 2xx status.
    Xml,
    /// JSON (API v3): acknowledged by any 2xx status.
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "text/xml; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// A notification to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outgoing {
    /// What it is about.
    pub(super) event: Event,
    /// The order's trade number.
    pub(super) out_trade_no: String,
    /// Where to POST it.
    pub(super) url: String,
    /// The body, exactly as signed.
    pub(super) body: String,
    /// How the body is written.
    pub(super) format: Format,
    /// Further headers (v3's `Wechatpay-*` signature).
    pub(super) headers: Vec<(String, String)>,
}

impl Outgoing {
    /// A notification with no further headers.
    pub(super) fn new(
        event: Event,
        out_trade_no: &str,
        url: &str,
        format: Format,
        body: String,
    ) -> Outgoing {
        Outgoing {
            event,
            out_trade_no: out_trade_no.to_owned(),
            url: url.to_owned(),
            body,
            format,
            headers: Vec::new(),
        }
    }

    /// True when `status` and `reply` acknowledge this notification.
    pub(super) fn acknowledged_by(&self, status: u16, reply: &[u8]) -> bool {
        if !(200..300).contains(&status) {
            return false;
        }
        match self.format {
            Format::Json => true,
            Format::Xml => {
                reply.trim_ascii().eq_ignore_ascii_case(b"success")
                    || crate::api::v2::xml::parse(reply)
                        .is_ok_and(|f| f.get("return_code").map(String::as_str) == Some("SUCCESS"))
            }
        }
    }
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
        let kind = outgoing.event.as_str();
        let id = shared
            .ledger
            .record_notification(kind, &outgoing.out_trade_no, &outgoing.url);
        let http = self.http.clone();
        let attempts = shared.config.notify_attempts.max(1);
        let pause = Duration::from_millis(shared.config.notify_retry_ms);
        self.runtime.spawn(async move {
            let what = format!(
                "sandbox: {kind} notification for {} to {}",
                outgoing.out_trade_no,
                without_query(&outgoing.url)
            );
            for attempt in 0..attempts {
                if attempt > 0 {
                    tokio::time::sleep(pause * attempt).await;
                }
                if !shared.ledger.count_attempt(id) {
                    log::debug!("{what}: its record was cleared, delivery stopped");
                    return;
                }
                let mut post = http
                    .post(&outgoing.url)
                    .header("content-type", outgoing.format.content_type())
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
                    shared.ledger.acknowledge(id);
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

    fn outgoing(format: Format) -> Outgoing {
        Outgoing::new(
            Event::Payment,
            "A",
            "http://127.0.0.1/",
            format,
            String::new(),
        )
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
        let v2 = outgoing(Format::Xml);
        assert!(v2.acknowledged_by(200, crate::api::v2::notify::V2_SUCCESS_REPLY.as_bytes()));
        assert!(v2.acknowledged_by(200, b"success\n"));
        assert!(!v2.acknowledged_by(
            200,
            crate::api::v2::notify::v2_failure_reply("no").as_bytes()
        ));
        assert!(!v2.acknowledged_by(200, b"<html>500</html>"));
        assert!(!v2.acknowledged_by(500, crate::api::v2::notify::V2_SUCCESS_REPLY.as_bytes()));
        let v3 = outgoing(Format::Json);
        assert!(v3.acknowledged_by(204, b""));
        assert!(v3.acknowledged_by(200, b""));
        assert!(!v3.acknowledged_by(500, b"{\"code\":\"FAIL\"}"));
    }
}
