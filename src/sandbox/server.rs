//! The sandbox's HTTP face: axum routes for the gateway calls and for the
//! `/sandbox/*` control endpoints that out-of-process tests use.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::faults::{Endpoint, FaultAction, FaultRule};
use super::legacy::Reply;
use super::{Reset, Shared};
use crate::config::Api;

/// The body of a malformed answer: JSON cut off in the middle.
const MALFORMED_BODY: &str = r#"{"prepayid":"1101000000140429eb40"#;

/// The routes of the sandbox.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/cgi-bin/token", get(token))
        .route("/pay/genprepay", post(genprepay))
        .route("/sandbox/stats", get(stats))
        .route("/sandbox/orders", get(orders))
        .route("/sandbox/config", get(client_config))
        .route("/sandbox/faults", post(push_fault))
        .route("/sandbox/delay", post(set_delay))
        .route("/sandbox/expire-token", post(expire_token))
        .route("/sandbox/reset", post(reset))
        .route("/sandbox/notify", post(notify_sink).get(notify_sink))
        .route("/sandbox/pay", post(pay))
        .route("/sandbox/v2/orders", get(v2_orders))
        .route("/sandbox/notifications", get(notifications))
        .route("/v3/{*path}", post(v3_call).get(v3_call))
        // Every other POST is an API v2 call (`pay/unifiedorder`,
        // `secapi/pay/refund`, `sandboxnew/pay/...`).
        .route("/{*path}", post(v2_call))
        .with_state(shared)
}

async fn token(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    if let Some(faulty) = apply_faults(&shared, Endpoint::Token).await {
        return faulty;
    }
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let now = shared.clock.now_unix();
    json_reply(shared.legacy.issue_token(&pairs, now))
}

async fn genprepay(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(faulty) = apply_faults(&shared, Endpoint::Genprepay).await {
        return faulty;
    }
    let token = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned());
    let now = shared.clock.now_unix();
    json_reply(
        shared
            .legacy
            .genprepay(&shared.ledger, token.as_deref(), &body, now),
    )
}

/// Counts the call, waits any delay, and answers a faulty response if a
/// fault is armed for this call.
async fn apply_faults(shared: &Shared, call: Endpoint) -> Option<Response> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let (delay, action) = {
        let mut faults = shared.faults();
        (faults.delay, faults.take(call))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let action = action?;
    match &action {
        // A test's body may be anything: its length says enough.
        FaultAction::Body(body) => log::debug!(
            "sandbox: an armed fault answers this {call:?} call: a {}-byte body",
            body.len()
        ),
        other => log::debug!("sandbox: an armed fault answers this {call:?} call: {other:?}"),
    }
    match action {
        FaultAction::DelayMs(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        FaultAction::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(status.into_response())
        }
        FaultAction::MalformedJson => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                MALFORMED_BODY,
            )
                .into_response(),
        ),
        FaultAction::Errcode { errcode, errmsg } => {
            Some(Json(json!({ "errcode": errcode, "errmsg": errmsg })).into_response())
        }
        FaultAction::Body(body) => Some((StatusCode::OK, body).into_response()),
        FaultAction::DribbleMs(ms) => {
            let bytes = br#"{"errcode":0,"errmsg":"Success","prepayid":"1101000000140429eb40476f8896f4c9"}"#;
            let pause = Duration::from_millis(ms);
            let stream = futures_util::stream::unfold(0usize, move |i| async move {
                if i >= bytes.len() {
                    return None;
                }
                if i > 0 {
                    tokio::time::sleep(pause).await;
                }
                Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from_static(&bytes[i..=i])),
                    i + 1,
                ))
            });
            Some(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    axum::body::Body::from_stream(stream),
                )
                    .into_response(),
            )
        }
    }
}

fn json_reply(reply: Reply) -> Response {
    Json(reply.0).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.stats()).into_response()
}

async fn orders(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.legacy_orders()).into_response()
}

#[derive(Deserialize)]
struct ConfigQuery {
    #[serde(default)]
    api: Option<Api>,
}

async fn client_config(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ConfigQuery>,
) -> Response {
    Json(shared.client_config_json(query.api.unwrap_or_default())).into_response()
}

async fn v2_call(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(faulty) = apply_faults(&shared, Endpoint::V2).await {
        return faulty;
    }
    let (simulation, path) = match path.strip_prefix("sandboxnew/") {
        Some(rest) => (true, rest),
        None => (false, path.as_str()),
    };
    let now = shared.clock.now_unix();
    let (answer, outgoing) = shared
        .v2
        .handle(&shared.ledger, path, simulation, &body, now);
    if let Some(outgoing) = outgoing {
        shared.notifier.deliver(Arc::clone(&shared), outgoing);
    }
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], answer).into_response()
}

async fn v3_call(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(faulty) = apply_faults(&shared, Endpoint::V3).await {
        return faulty;
    }
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let now = shared.clock.now_unix();
    let answer = shared.v3.handle(
        &shared.ledger,
        method.as_str(),
        path_and_query,
        authorization,
        &body,
        now,
    );
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, answer.body).into_response();
    let response_headers = response.headers_mut();
    if answer.status != 204 {
        response_headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            header::HeaderValue::from_str(&value),
        ) {
            response_headers.insert(name, value);
        }
    }
    response
}

#[derive(Deserialize)]
struct PayBody {
    out_trade_no: String,
}

async fn pay(State(shared): State<Arc<Shared>>, Json(body): Json<PayBody>) -> Response {
    match shared.pay(&body.out_trade_no) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(reason) => (StatusCode::NOT_FOUND, Json(json!({ "error": reason }))).into_response(),
    }
}

async fn v2_orders(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.v2_orders()).into_response()
}

async fn notifications(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.ledger.notifications()).into_response()
}

async fn push_fault(State(shared): State<Arc<Shared>>, Json(rule): Json<FaultRule>) -> Response {
    shared.faults().push(rule);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct DelayBody {
    ms: u64,
}

async fn set_delay(State(shared): State<Arc<Shared>>, Json(body): Json<DelayBody>) -> Response {
    shared.faults().delay = Duration::from_millis(body.ms);
    StatusCode::NO_CONTENT.into_response()
}

async fn expire_token(State(shared): State<Arc<Shared>>) -> Response {
    shared.legacy.expire_token();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /sandbox/reset`: with no body (or an empty one), clears
/// everything: the fault rules and the delay, the orders of every generation
/// with their refunds and the count of conflicts, and the notification
/// records with the count of deliveries (deliveries still retrying stop).
/// A JSON body names what to clear, each key `true` or `false` (left out:
/// `false`): `{"faults": true}` disarms the faults alone (a bare POST did
/// only that before orders could be cleared), `{"orders": true,
/// "notifications": true}` keeps the faults armed. Tokens, the platform
/// certificate and the traffic counters (`token_fetches`, `requests`,
/// `connections`, `certificate_downloads`) stay. 204, or 400 with
/// `{"error": ".."}` for a body that is not such an object.
async fn reset(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match reset_scope(&body) {
        Ok(what) => {
            shared.reset(what);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            let error = format!("the body must be a JSON object of booleans: {e}");
            (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
        }
    }
}

/// What a reset body asks to clear: everything when there is no body.
fn reset_scope(body: &[u8]) -> Result<Reset, serde_json::Error> {
    if body.trim_ascii().is_empty() {
        return Ok(Reset::ALL);
    }
    match serde_json::from_slice::<serde_json::Value>(body)? {
        value @ serde_json::Value::Object(_) => serde_json::from_value(value),
        _ => Err(serde::de::Error::custom("not an object")),
    }
}

/// The default `notify_url` of sandbox configs: accepts anything, says `success`.
async fn notify_sink() -> &'static str {
    "success"
}
