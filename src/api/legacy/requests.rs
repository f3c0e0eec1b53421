//! The 2014 gateway's two calls as data: `GET /cgi-bin/token` and
//! `POST /pay/genprepay`, built as [`HttpRequest`]s and parsed from
//! [`HttpResponse`]s. No I/O happens here.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::api::legacy::token::AccessToken;
use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::util::secret::Secret;

/// The path of the access_token call.
pub const TOKEN_PATH: &str = "/cgi-bin/token";
/// The path of the prepay-id call.
pub const GENPREPAY_PATH: &str = "/pay/genprepay";

/// The errcodes that mean "this access_token is no good" (invalid credential,
/// invalid access_token, expired): refresh once, retry once.
pub const TOKEN_REJECTED_ERRCODES: [i64; 3] = [40001, 40014, 42001];

/// The longest token lifetime believed from a gateway (a day); longer claims
/// are capped so a bad answer cannot pin a token for years.
const MAX_EXPIRES_IN: u64 = 86_400;

/// The JSON body of `POST /pay/genprepay` (PROTOCOL.md 1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepayBody {
    /// The app id.
    pub appid: String,
    /// The merchant's tracking id.
    pub traceid: String,
    /// The request nonce.
    pub noncestr: String,
    /// The signed package.
    pub package: String,
    /// Unix seconds, as a JSON number.
    pub timestamp: u64,
    /// SHA1 over `appid, appkey, noncestr, package, timestamp, traceid`.
    pub app_signature: String,
    /// Always `sha1`.
    pub sign_method: String,
}

/// `GET {api_base}/cgi-bin/token?grant_type=client_credential&appid=..&secret=..`.
pub fn token_request(api_base: &Url, appid: &str, app_secret: &Secret) -> HttpRequest {
    let mut url = endpoint(api_base, TOKEN_PATH);
    url.query_pairs_mut()
        .append_pair("grant_type", "client_credential")
        .append_pair("appid", appid)
        .append_pair("secret", app_secret.expose());
    HttpRequest {
        method: Method::Get,
        url,
        body: Vec::new(),
        content_type: None,
        headers: Vec::new(),
    }
}

/// Reads a token response received at `now`.
pub fn parse_token_response(response: &HttpResponse, now: u64) -> Result<AccessToken> {
    let object = json_object(response)?;
    let token = object
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 1024)
        .ok_or_else(|| Error::MalformedResponse("token response has no access_token".into()))?;
    let expires_in = object
        .get("expires_in")
        .and_then(Value::as_u64)
        .filter(|e| *e > 0)
        .ok_or_else(|| {
            Error::MalformedResponse("token response has no positive expires_in".into())
        })?;
    if expires_in > MAX_EXPIRES_IN {
        log::debug!(
            "token response claims expires_in {expires_in} s: capped to {MAX_EXPIRES_IN} s"
        );
    }
    Ok(AccessToken::new(
        Secret::new(token),
        now,
        expires_in.min(MAX_EXPIRES_IN),
    ))
}

/// `POST {api_base}/pay/genprepay?access_token=..` with `body` as JSON.
pub fn genprepay_request(
    api_base: &Url,
    token: &AccessToken,
    body: &PrepayBody,
) -> Result<HttpRequest> {
    let mut url = endpoint(api_base, GENPREPAY_PATH);
    url.query_pairs_mut()
        .append_pair("access_token", token.value().expose());
    let body = serde_json::to_vec(body)
        .map_err(|e| Error::InvalidArgument(format!("cannot serialize the prepay body: {e}")))?;
    Ok(HttpRequest {
        method: Method::Post,
        url,
        body,
        content_type: Some("application/json"),
        headers: Vec::new(),
    })
}

/// Reads a genprepay response: the `prepayid`.
pub fn parse_genprepay_response(response: &HttpResponse) -> Result<String> {
    let object = json_object(response)?;
    let prepayid = object
        .get("prepayid")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::MalformedResponse("genprepay response has no prepayid".into()))?;
    if prepayid.is_empty()
        || prepayid.len() > 64
        || !prepayid.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(Error::MalformedResponse(
            "genprepay prepayid is not 1 to 64 letters and digits".into(),
        ));
    }
    Ok(prepayid.to_owned())
}

/// `api_base` with `path` appended to its own path (a base may have a prefix).
fn endpoint(api_base: &Url, path: &str) -> Url {
    let mut url = api_base.clone();
    let joined = format!("{}{}", api_base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

/// The body as a JSON object, after the status and `errcode` checks that every
/// call of this API shares.
fn json_object(response: &HttpResponse) -> Result<serde_json::Map<String, Value>> {
    if response.status != 200 {
        return Err(Error::HttpStatus {
            status: response.status,
        });
    }
    let value: Value = serde_json::from_slice(&response.body)
        .map_err(|e| Error::MalformedResponse(format!("body is not JSON ({e})")))?;
    let Value::Object(object) = value else {
        return Err(Error::MalformedResponse("body is not a JSON object".into()));
    };
    match object.get("errcode") {
        None | Some(Value::Null) => {}
        Some(code) => {
            let errcode = code
                .as_i64()
                .ok_or_else(|| Error::MalformedResponse("errcode is not an integer".into()))?;
            if errcode != 0 {
                let errmsg = object
                    .get("errmsg")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .chars()
                    .take(512)
                    .collect();
                return Err(Error::Gateway { errcode, errmsg });
            }
        }
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> HttpResponse {
        HttpResponse::new(200, body.as_bytes().to_vec())
    }

    #[test]
    fn token_request_shape() {
        let base = Url::parse("https://api.weixin.qq.com").expect("url");
        let req = token_request(&base, "wx1", &Secret::new("s e"));
        assert_eq!(req.method, Method::Get);
        assert_eq!(
            req.url.as_str(),
            "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=s+e"
        );
        let prefixed = Url::parse("http://127.0.0.1:9/gw/").expect("url");
        assert_eq!(
            token_request(&prefixed, "a", &Secret::new("b")).url.path(),
            "/gw/cgi-bin/token"
        );
    }

    #[test]
    fn token_responses() {
        let t = parse_token_response(&ok(r#"{"access_token":"T","expires_in":7200}"#), 100)
            .expect("ok");
        assert_eq!(t.value().expose(), "T");
        assert_eq!(t.refresh_after(), 100 + 7200 - 300);
        let err = parse_token_response(&ok(r#"{"errcode":40013,"errmsg":"invalid appid"}"#), 0)
            .expect_err("gateway");
        assert_eq!(
            err,
            Error::Gateway {
                errcode: 40013,
                errmsg: "invalid appid".into()
            }
        );
        for bad in [
            "not json",
            "[]",
            r#"{"access_token":"","expires_in":7200}"#,
            r#"{"access_token":"T","expires_in":0}"#,
            r#"{"access_token":"T","expires_in":"7200"}"#,
            r#"{"access_token":"T"}"#,
            r#"{"errcode":"x"}"#,
        ] {
            assert!(
                matches!(
                    parse_token_response(&ok(bad), 0),
                    Err(Error::MalformedResponse(_))
                ),
                "{bad}"
            );
        }
        let status = HttpResponse::new(502, Vec::new());
        assert_eq!(
            parse_token_response(&status, 0).expect_err("5xx"),
            Error::HttpStatus { status: 502 }
        );
    }

    #[test]
    fn genprepay_responses() {
        let id = parse_genprepay_response(&ok(
            r#"{"prepayid":"1101000000140429eb40476f8896f4c9","errcode":0,"errmsg":"Success"}"#,
        ))
        .expect("ok");
        assert_eq!(id, "1101000000140429eb40476f8896f4c9");
        let err =
            parse_genprepay_response(&ok(r#"{"errcode":42001,"errmsg":"access_token expired"}"#))
                .expect_err("expired");
        assert_eq!(err.errcode(), Some(42001));
        for bad in [
            r#"{"errcode":0}"#,
            r#"{"prepayid":"a&b"}"#,
            r#"{"prepayid":""}"#,
            r#"{"prepayid":5}"#,
        ] {
            assert!(
                matches!(
                    parse_genprepay_response(&ok(bad)),
                    Err(Error::MalformedResponse(_))
                ),
                "{bad}"
            );
        }
    }
}
