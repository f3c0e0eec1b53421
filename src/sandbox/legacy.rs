//! The simulated 2014 gateway: the merchant account, the tokens it issued,
//! and every check a real gateway makes on `/cgi-bin/token` and
//! `/pay/genprepay`; the orders it accepts go to the ledger. Pure: HTTP lives
//! in `server.rs`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::api::legacy::package::{PackageError, ParsedPackage};
use crate::crypto::sign::{sign_sha1, signatures_match, Fields};
use crate::util::charset::Charset;
use crate::util::nonce::{NonceSource, RandomNonce};

use super::ledger::{positive_fen, Generation, Ledger, Order};
use super::SandboxConfig;

/// A reply of the simulated gateway: always HTTP 200 with a JSON body, as the
/// real one answers errors too.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply(pub Value);

impl Reply {
    fn error(errcode: i64, errmsg: impl Into<String>) -> Reply {
        Reply(json!({ "errcode": errcode, "errmsg": errmsg.into() }))
    }

    /// The `errcode` of the reply (0 for success).
    #[cfg(test)]
    pub fn errcode(&self) -> i64 {
        self.0.get("errcode").and_then(Value::as_i64).unwrap_or(0)
    }
}

/// An order the sandbox accepted, as tests read it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedOrder {
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// The amount in fen.
    pub total_fee: u32,
    /// The product description, decoded from the package's charset.
    pub body: String,
    /// The prepay id the sandbox issued.
    pub prepayid: String,
    /// The `traceid` of the request.
    pub traceid: String,
    /// Every decoded package field (without `sign`).
    pub package_fields: BTreeMap<String, String>,
}

#[derive(Debug)]
struct IssuedToken {
    value: String,
    expires_at: u64,
}

impl From<&Order> for RecordedOrder {
    fn from(order: &Order) -> RecordedOrder {
        RecordedOrder {
            out_trade_no: order.out_trade_no.clone(),
            total_fee: order.total_fee,
            body: order.body.clone(),
            prepayid: order.prepay_id.clone(),
            traceid: order.traceid.clone().unwrap_or_default(),
            package_fields: order.terms.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct Tokens {
    current: Option<IssuedToken>,
    fetches: u64,
}

/// The 2014 gateway: the merchant account and the tokens issued.
#[derive(Debug)]
pub struct Gateway {
    config: SandboxConfig,
    tokens: Mutex<Tokens>,
}

impl Gateway {
    /// A gateway for the merchant in `config`, with no token issued yet.
    pub fn new(config: SandboxConfig) -> Gateway {
        Gateway {
            config,
            tokens: Mutex::default(),
        }
    }

    fn tokens(&self) -> MutexGuard<'_, Tokens> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many tokens were issued.
    pub fn token_fetches(&self) -> u64 {
        self.tokens().fetches
    }

    /// Makes the current token expired: the next call with it gets 42001.
    pub fn expire_token(&self) {
        if let Some(token) = &mut self.tokens().current {
            token.expires_at = 0;
        }
    }

    /// `GET /cgi-bin/token` with the decoded query pairs, at `now`.
    pub fn issue_token(&self, query: &[(String, String)], now: u64) -> Reply {
        let get = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        if get("grant_type") != Some("client_credential") {
            return Reply::error(40002, "invalid grant_type");
        }
        let Some(appid) = get("appid") else {
            return Reply::error(41002, "appid missing");
        };
        if appid != self.config.appid {
            return Reply::error(40013, "invalid appid");
        }
        let Some(secret) = get("secret") else {
            return Reply::error(41004, "appsecret missing");
        };
        if !signatures_match(self.config.app_secret.expose(), secret) {
            return Reply::error(40001, "invalid credential, appsecret is wrong");
        }
        // A new token replaces the previous one at once, as the real gateway
        // does after its short overlap: processes that each fetch their own
        // token break each other's calls.
        // Recognisable (`sandboxtoken` and 64 random hex digits), so a scan of
        // logs and output finds any that leaks.
        let value = format!(
            "{}{}{}",
            super::defaults::ACCESS_TOKEN_PREFIX,
            RandomNonce.nonce(),
            RandomNonce.nonce()
        );
        let ttl = self.config.token_ttl_secs;
        let fetches = {
            let mut tokens = self.tokens();
            tokens.current = Some(IssuedToken {
                value: value.clone(),
                expires_at: now + ttl,
            });
            tokens.fetches += 1;
            tokens.fetches
        };
        log::debug!(
            "sandbox: issued access_token #{fetches} (lives {ttl} s); the previous one is void"
        );
        Reply(json!({ "access_token": value, "expires_in": ttl }))
    }

    /// `POST /pay/genprepay?access_token=..` with the raw body, at `now`:
    /// the order goes to `ledger`.
    pub fn genprepay(
        &self,
        ledger: &Ledger,
        access_token: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Reply {
        if let Err(reply) = self.check_token(access_token, now) {
            return reply;
        }
        let order = match self.check_prepay(body) {
            Ok(order) => order,
            Err(reply) => return reply,
        };
        // A retried identical order gets its prepay id again; the same
        // number with other terms is a merchant bug the gateway refuses (a
        // 2014 order is never paid or closed).
        match ledger.open(order, now) {
            Ok(order) => {
                Reply(json!({ "prepayid": order.prepay_id, "errcode": 0, "errmsg": "Success" }))
            }
            Err(_) => Reply::error(
                47001,
                "data format error: out_trade_no already used with different order parameters",
            ),
        }
    }

    fn check_token(&self, access_token: Option<&str>, now: u64) -> Result<(), Reply> {
        let token = match access_token {
            None | Some("") => return Err(Reply::error(41001, "access_token missing")),
            Some(token) => token,
        };
        match &self.tokens().current {
            Some(current) if signatures_match(&current.value, token) => {
                if now >= current.expires_at {
                    return Err(Reply::error(42001, "access_token expired"));
                }
                Ok(())
            }
            _ => Err(Reply::error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )),
        }
    }

    /// Every check on the genprepay body; the order to open, or the error reply.
    fn check_prepay(&self, body: &[u8]) -> Result<Order, Reply> {
        let format_error = |what: &str| Reply::error(47001, format!("data format error: {what}"));
        let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
            return Err(format_error("body is not a JSON object"));
        };
        if request.contains_key("appkey") {
            return Err(format_error("appkey must never be sent"));
        }
        let text = |k: &str| -> Result<String, Reply> {
            match request.get(k) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(format_error(&format!("{k} missing or not a string"))),
            }
        };
        let appid = text("appid")?;
        let traceid = text("traceid")?;
        let noncestr = text("noncestr")?;
        let package = text("package")?;
        let app_signature = text("app_signature")?;
        let sign_method = text("sign_method")?;
        let timestamp = timestamp_of(&request)
            .ok_or_else(|| format_error("timestamp missing or not Unix seconds"))?;
        if appid != self.config.appid {
            return Err(Reply::error(49001, "appid does not match access_token"));
        }
        if sign_method != "sha1" {
            return Err(format_error("sign_method must be sha1"));
        }
        if noncestr.len() > 32 {
            return Err(format_error("noncestr longer than 32 characters"));
        }
        let signed: Fields = [
            ("appid", appid),
            ("noncestr", noncestr),
            ("package", package.clone()),
            ("timestamp", timestamp),
            ("traceid", traceid.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let expected = sign_sha1(&signed, &self.config.app_key)
            .map_err(|_| format_error("unsignable request"))?;
        if !signatures_match(expected.signature(), &app_signature) {
            return Err(Reply::error(49004, "app_signature does not match"));
        }
        let parsed = ParsedPackage::parse(&package).map_err(|e| match e {
            PackageError::UnsupportedCharset => {
                format_error("package input_charset must be UTF-8 or GBK")
            }
            other => format_error(&format!("package: {other}")),
        })?;
        let fields = &parsed.fields;
        if fields.get("partner").map(String::as_str) != Some(self.config.partner_id.as_str()) {
            return Err(Reply::error(49010, "invalid partner id"));
        }
        parsed
            .verify(&self.config.partner_key)
            .map_err(|_| Reply::error(49004, "package sign does not match"))?;
        let total_fee = check_package_fields(fields)
            .map_err(|what| format_error(&format!("package {what}")))?;
        let mut order = Order::new(
            Generation::Legacy,
            &fields["out_trade_no"],
            total_fee,
            &fields["body"],
            &fields["notify_url"],
            fields.clone(),
        );
        order.traceid = Some(traceid);
        Ok(order)
    }
}

/// The request's `timestamp`: a JSON integer (as documented) or a string of
/// digits, as text.
fn timestamp_of(request: &Map<String, Value>) -> Option<String> {
    match request.get("timestamp")? {
        Value::Number(n) => n.as_u64().map(|t| t.to_string()),
        Value::String(s)
            if !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(s.clone())
        }
        _ => None,
    }
}

/// The package's required fields and their formats; the amount in fen.
fn check_package_fields(fields: &Fields) -> Result<u32, String> {
    let get = |k: &str| fields.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let require = |k: &str| get(k).ok_or_else(|| format!("{k} missing"));
    if require("bank_type")? != "WX" {
        return Err("bank_type must be WX".into());
    }
    if require("fee_type")? != "1" {
        return Err("fee_type must be 1".into());
    }
    if Charset::from_name(require("input_charset")?).is_none() {
        return Err("input_charset must be UTF-8 or GBK".into());
    }
    if require("body")?.len() > 128 {
        return Err("body longer than 128 bytes".into());
    }
    if require("notify_url")?.len() > 255 {
        return Err("notify_url longer than 255 bytes".into());
    }
    if require("out_trade_no")?.len() > 32 {
        return Err("out_trade_no longer than 32 characters".into());
    }
    if require("spbill_create_ip")?.parse::<Ipv4Addr>().is_err() {
        return Err("spbill_create_ip is not an IPv4 address".into());
    }
    for k in ["time_start", "time_expire"] {
        if let Some(t) = get(k) {
            if t.len() != 14 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{k} must be yyyyMMddHHmmss"));
            }
        }
    }
    positive_fen(require("total_fee")?)
        .ok_or_else(|| "total_fee must be a positive integer of fen".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn token_query() -> Vec<(String, String)> {
        let c = SandboxConfig::default();
        pairs(&[
            ("grant_type", "client_credential"),
            ("appid", &c.appid),
            ("secret", c.app_secret.expose()),
        ])
    }

    #[test]
    fn token_checks() {
        let gw = Gateway::new(SandboxConfig::default());
        let c = SandboxConfig::default();
        let cases: [(Vec<(String, String)>, i64); 5] = [
            (pairs(&[("appid", &c.appid)]), 40002),
            (pairs(&[("grant_type", "client_credential")]), 41002),
            (
                pairs(&[("grant_type", "client_credential"), ("appid", "wx0")]),
                40013,
            ),
            (
                pairs(&[("grant_type", "client_credential"), ("appid", &c.appid)]),
                41004,
            ),
            (
                pairs(&[
                    ("grant_type", "client_credential"),
                    ("appid", &c.appid),
                    ("secret", "x"),
                ]),
                40001,
            ),
        ];
        for (query, errcode) in cases {
            assert_eq!(gw.issue_token(&query, 0).errcode(), errcode, "{query:?}");
        }
        assert_eq!(gw.token_fetches(), 0);
        let reply = gw.issue_token(&token_query(), 0);
        assert_eq!(reply.errcode(), 0);
        assert_eq!(reply.0["expires_in"], 7200);
        assert_eq!(gw.token_fetches(), 1);
        let token = reply.0["access_token"].as_str().expect("a token");
        let random = token
            .strip_prefix(crate::sandbox::defaults::ACCESS_TOKEN_PREFIX)
            .expect("the sandbox prefix");
        assert_eq!(random.len(), 64, "{token}");
        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    }

    #[test]
    fn genprepay_token_checks() {
        let gw = Gateway::new(SandboxConfig::default());
        let ledger = Ledger::default();
        let genprepay = |token: Option<&str>, now| gw.genprepay(&ledger, token, b"{}", now);
        assert_eq!(genprepay(None, 0).errcode(), 41001);
        assert_eq!(genprepay(Some("nope"), 0).errcode(), 40001);
        let first = gw.issue_token(&token_query(), 0).0["access_token"]
            .as_str()
            .map(str::to_owned);
        let second = gw.issue_token(&token_query(), 0).0["access_token"]
            .as_str()
            .map(str::to_owned);
        // A new token replaces the previous one.
        assert_eq!(genprepay(first.as_deref(), 0).errcode(), 40001);
        // The current one passes the token check and fails on the body.
        assert_eq!(genprepay(second.as_deref(), 0).errcode(), 47001);
        // Past its lifetime, or expired on purpose: 42001.
        assert_eq!(genprepay(second.as_deref(), 7200).errcode(), 42001);
        gw.expire_token();
        assert_eq!(genprepay(second.as_deref(), 1).errcode(), 42001);
    }

    #[test]
    fn package_field_rules() {
        let base: Fields = [
            ("bank_type", "WX"),
            ("body", "b"),
            ("fee_type", "1"),
            ("input_charset", "UTF-8"),
            ("notify_url", "http://x"),
            ("out_trade_no", "A"),
            ("partner", "1900000109"),
            ("spbill_create_ip", "1.2.3.4"),
            ("total_fee", "1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(check_package_fields(&base), Ok(1));
        for (k, v) in [
            ("total_fee", "0"),
            ("total_fee", "01"),
            ("total_fee", "-1"),
            ("total_fee", "1.5"),
            ("total_fee", "2147483648"),
            ("bank_type", "CMB"),
            ("spbill_create_ip", "::1"),
            ("time_start", "1399514976"),
            ("body", ""),
        ] {
            let mut f = base.clone();
            f.insert(k.into(), v.into());
            assert!(check_package_fields(&f).is_err(), "{k}={v}");
        }
    }
}
