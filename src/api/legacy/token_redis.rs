//! A [`TokenStore`] in Redis: one access_token for every process of a
//! merchant, refreshed by one process at a time.
//!
//! Keys, namespaced by appid so several apps can share one Redis:
//!
//! - `wxpay:{appid}:access_token`: the token; its TTL ends when the token is
//!   due for refresh, so an absent key means "fetch one".
//! - `wxpay:{appid}:refresh_lock`: held (`SET NX PX`) by the process that
//!   fetches; released only by its owner (compare-and-delete); a crashed
//!   holder's lock expires after the lock TTL.
//! - `wxpay:{appid}:fetch_error`: the gateway error of the last failed fetch,
//!   for a few seconds, so the processes that waited on it share it instead
//!   of each fetching in turn.
//!
//! Each process also keeps the token in memory until it is due, so a warm
//! call costs no Redis round trip. A token rejected with 40001/40014/42001 is
//! deleted from Redis only if it is still the stored one.
//!
//! Every value is stored with an HMAC-SHA256 keyed from the app secret:
//! a token, a lock or an error written by anyone without the secret is
//! ignored (a forged lock is deleted) and logged. `rediss://` URLs speak TLS,
//! verified against the webpki roots or the configured CA file.
//!
//! A hung or unreachable Redis cannot stall callers: calls use connections
//! of a small pool (no lock is held while Redis answers), each exchange is
//! bounded by the timeout, and after a failure Redis is not tried again for
//! a backoff that grows from 1 s to 30 s: calls fail at once, or use the
//! process's own token when the fallback is on.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::api::legacy::token::{AccessToken, FetchToken, MemoryTokenStore, TokenStore};
use crate::error::{Error, Result};
use crate::util::nonce::{NonceSource, RandomNonce};
use crate::util::secret::Secret;

/// Deletes `KEYS[1]` if its value is `ARGV[1]`.
const COMPARE_AND_DELETE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// `KEYS[1]`'s value (false when absent) and its remaining milliseconds.
const GET_WITH_PTTL: &str = "return {redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1])}";

/// How often a waiting process looks for the token another one is fetching.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long a failed fetch's error is shared with the processes that waited.
const FETCH_ERROR_TTL_MS: u64 = 2_000;

/// The first backoff after Redis failed, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Idle connections kept for later calls.
const MAX_IDLE_CONNECTIONS: usize = 8;

/// Where and how to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisSettings<'a> {
    /// `redis://` or `rediss://HOST:PORT/DB`.
    pub url: &'a str,
    /// A PEM file of the CA that signed the server's certificate
    /// (`rediss://`; default: the webpki roots).
    pub ca_file: Option<&'a std::path::Path>,
    /// Bounds every connect and every exchange.
    pub timeout: Duration,
    /// How long a refresh lock lives if its holder never releases it (make
    /// it longer than one token fetch may take).
    pub lock_ttl: Duration,
}

/// The Redis token store.
pub struct RedisTokenStore {
    client: redis::Client,
    /// Connections no call is using.
    idle: Mutex<Vec<redis::Connection>>,
    /// Whether Redis is being left alone after a failure.
    breaker: Mutex<Breaker>,
    /// The HMAC key of stored values, derived from the app secret.
    mac_key: hmac::Key,
    keys: Keys,
    /// Redis connect, read and write timeout.
    timeout: Duration,
    /// How long the refresh lock lives if its holder never releases it.
    lock_ttl: Duration,
    /// This process's copy of the token, until it is due.
    local: Mutex<Option<AccessToken>>,
}

struct Keys {
    token: String,
    lock: String,
    error: String,
}

/// A circuit breaker: after a failure, Redis is not tried until `until`.
#[derive(Default)]
struct Breaker {
    until: Option<Instant>,
    backoff: Duration,
}

#[derive(Serialize, Deserialize)]
struct SharedFetchError {
    errcode: i64,
    errmsg: String,
    at_ms: u64,
    /// The HMAC of the other fields.
    mac: String,
}

impl SharedFetchError {
    fn signed_text(&self) -> String {
        format!("error\n{}\n{}\n{}", self.errcode, self.at_ms, self.errmsg)
    }
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("token_key", &self.keys.token)
            .field("timeout", &self.timeout)
            .field("lock_ttl", &self.lock_ttl)
            .finish_non_exhaustive()
    }
}

impl RedisTokenStore {
    /// A store at `settings.url` for `appid`, its values authenticated with
    /// a key derived from `app_secret`. Connects lazily.
    pub fn new(
        settings: &RedisSettings<'_>,
        appid: &str,
        app_secret: &Secret,
    ) -> Result<RedisTokenStore> {
        let unusable = |e: redis::RedisError| {
            Error::config(
                "token_store",
                format!("is not a usable Redis URL ({})", e.category()),
            )
        };
        // No CLIENT SETINFO after connecting: one exchange less on each new
        // connection, and none that a hung server can stall.
        let info =
            redis::IntoConnectionInfo::into_connection_info(settings.url).map_err(unusable)?;
        let handshake = info.redis_settings().clone().set_skip_set_lib_name();
        let info = info.set_redis_settings(handshake);
        let client = match settings.ca_file {
            None => redis::Client::open(info).map_err(unusable)?,
            Some(path) => {
                let root_cert = crate::util::key_file::read_bytes(
                    "token_store_ca_file",
                    path,
                    "token_store_ca_file",
                )?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    // A CA certificate: public, nothing to wipe.
                    root_cert: Some(root_cert.to_vec()),
                };
                redis::Client::build_with_tls(info, certificates).map_err(unusable)?
            }
        };
        let prefix = format!("wxpay:{appid}:");
        let derivation = hmac::Key::new(hmac::HMAC_SHA256, app_secret.expose().as_bytes());
        let derived = hmac::sign(
            &derivation,
            format!("wxpay token store\n{appid}").as_bytes(),
        );
        Ok(RedisTokenStore {
            client,
            idle: Mutex::new(Vec::new()),
            breaker: Mutex::new(Breaker::default()),
            mac_key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            keys: Keys {
                token: format!("{prefix}access_token"),
                lock: format!("{prefix}refresh_lock"),
                error: format!("{prefix}fetch_error"),
            },
            timeout: settings.timeout,
            lock_ttl: settings.lock_ttl,
            local: Mutex::new(None),
        })
    }

    /// `text` with its HMAC: `v1:MAC:text`.
    fn seal(&self, text: &str) -> String {
        format!("v1:{}:{text}", self.mac(text))
    }

    /// The text of a value [`seal`](Self::seal) made, or `None` (logged)
    /// when someone without the key wrote it.
    fn open<'v>(&self, what: &str, value: &'v str) -> Option<&'v str> {
        let opened = value
            .strip_prefix("v1:")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(mac, text)| self.verify(text, mac))
            .map(|(_, text)| text);
        if opened.is_none() {
            log::warn!("ignoring a {what} in Redis that this merchant's processes did not write");
        }
        opened
    }

    fn mac(&self, text: &str) -> String {
        hex::encode(hmac::sign(&self.mac_key, text.as_bytes()))
    }

    fn verify(&self, text: &str, mac_hex: &str) -> bool {
        hex::decode(mac_hex)
            .is_ok_and(|mac| hmac::verify(&self.mac_key, text.as_bytes(), &mac).is_ok())
    }

    /// Checks that Redis answers (`PING`), for failing early at client build.
    pub fn ping(&self) -> Result<()> {
        self.run(|con| redis::cmd("PING").query::<String>(con))
            .map(|_| ())
    }

    fn local(&self) -> MutexGuard<'_, Option<AccessToken>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `op` on a connection of the pool (a new one when none is idle),
    /// holding no lock while Redis answers. While the breaker is open it
    /// fails at once; a connection that failed is dropped and opens it.
    fn run<T>(
        &self,
        op: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        if let Some(left) = self.backing_off() {
            return Err(store_error(format!(
                "Redis unavailable: not tried again for {} ms after a failure",
                left.as_millis()
            )));
        }
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (mut con, fresh) = match pooled {
            Some(con) => (con, false),
            None => (self.connect().map_err(|e| self.failed(e))?, true),
        };
        match op(&mut con) {
            Ok(value) => {
                self.breaker().backoff = Duration::ZERO;
                if fresh && self.set_timeouts(&con, self.timeout).is_err() {
                    return Ok(value);
                }
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < MAX_IDLE_CONNECTIONS {
                    idle.push(con);
                }
                Ok(value)
            }
            // A broken connection is dropped (the next call connects anew);
            // after an answer that is an error, it is still good.
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                Err(self.failed(e))
            }
            Err(e) => {
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(con);
                Err(redis_error(e))
            }
        }
    }

    /// A new connection whose first exchange must end within what is left
    /// of the timeout after connecting (the handshake counts): a call on a
    /// new connection is bounded by the timeout as a whole.
    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let started = Instant::now();
        let con = self.client.get_connection_with_timeout(self.timeout)?;
        let left = self
            .timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        self.set_timeouts(&con, left)?;
        Ok(con)
    }

    fn set_timeouts(&self, con: &redis::Connection, timeout: Duration) -> redis::RedisResult<()> {
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))
    }

    fn breaker(&self) -> MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long Redis is still left alone, if it is.
    fn backing_off(&self) -> Option<Duration> {
        let breaker = self.breaker();
        let left = breaker.until?.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    /// Opens the breaker after a connection-level failure: 1 s, then twice
    /// as long after each failure in a row, at most 30 s.
    fn failed(&self, err: redis::RedisError) -> Error {
        let mut breaker = self.breaker();
        breaker.backoff = (breaker.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
        breaker.until = Some(Instant::now() + breaker.backoff);
        log::warn!(
            "Redis failed ({}): not tried again for {} ms",
            redis_error_kind(&err),
            breaker.backoff.as_millis()
        );
        redis_error(err)
    }

    /// The stored token and its remaining milliseconds, if any.
    fn read_token(&self, now: u64) -> Result<Option<AccessToken>> {
        // One command, not a pipeline of two: a pipeline waits out the
        // timeout once per command when Redis does not answer.
        let (value, pttl): (Option<String>, i64) = self.run(|con| {
            redis::cmd("EVAL")
                .arg(GET_WITH_PTTL)
                .arg(1)
                .arg(&self.keys.token)
                .query(con)
        })?;
        let token = value.as_deref().and_then(|v| self.open("token", v));
        Ok(match token {
            // Round the remaining time down to whole seconds: refreshing a
            // moment early is harmless, a moment late is not.
            Some(token) if pttl > 0 => Some(AccessToken::due_at(
                Secret::new(token),
                now.saturating_add(u64::try_from(pttl).unwrap_or(0) / 1000),
            )),
            _ => None,
        })
    }

    fn write_token(&self, token: &AccessToken, now: u64) -> Result<()> {
        let ttl_ms = token
            .refresh_after()
            .saturating_sub(now)
            .saturating_mul(1000);
        if ttl_ms == 0 {
            return Ok(());
        }
        self.run(|con| {
            redis::cmd("SET")
                .arg(&self.keys.token)
                .arg(self.seal(token.value().expose()))
                .arg("PX")
                .arg(ttl_ms)
                .query::<()>(con)
        })
    }

    /// Takes the refresh lock for `owner` (a sealed nonce). A lock that
    /// someone without the key planted is deleted and taken.
    fn try_lock(&self, owner: &str) -> Result<bool> {
        let ttl_ms = u64::try_from(self.lock_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let set = || -> Result<bool> {
            let answer: Option<String> = self.run(|con| {
                redis::cmd("SET")
                    .arg(&self.keys.lock)
                    .arg(owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query(con)
            })?;
            Ok(answer.is_some())
        };
        if set()? {
            return Ok(true);
        }
        let holder: Option<String> =
            self.run(|con| redis::cmd("GET").arg(&self.keys.lock).query(con))?;
        match holder {
            Some(holder) if self.open("refresh lock", &holder).is_none() => {
                self.compare_and_delete(&self.keys.lock, &holder)?;
                set()
            }
            _ => Ok(false),
        }
    }

    fn unlock(&self, owner: &str) {
        let released = self.compare_and_delete(&self.keys.lock, owner);
        if let Err(e) = released {
            // The lock expires on its own; say so and go on.
            log::warn!("could not release the access_token refresh lock: {e}");
        }
    }

    fn compare_and_delete(&self, key: &str, expected: &str) -> Result<()> {
        self.run(|con| {
            redis::cmd("EVAL")
                .arg(COMPARE_AND_DELETE)
                .arg(1)
                .arg(key)
                .arg(expected)
                .query::<i64>(con)
        })
        .map(|_| ())
    }

    fn share_error(&self, err: &Error) {
        let Error::Gateway { errcode, errmsg } = err else {
            return;
        };
        let mut shared = SharedFetchError {
            errcode: *errcode,
            errmsg: errmsg.clone(),
            at_ms: unix_ms(),
            mac: String::new(),
        };
        shared.mac = self.mac(&shared.signed_text());
        let Ok(json) = serde_json::to_string(&shared) else {
            return;
        };
        let _ = self.run(|con| {
            redis::cmd("SET")
                .arg(&self.keys.error)
                .arg(json)
                .arg("PX")
                .arg(FETCH_ERROR_TTL_MS)
                .query::<()>(con)
        });
    }

    /// The error of a fetch that failed after `since_ms`, if one did.
    fn shared_error_since(&self, since_ms: u64) -> Result<Option<Error>> {
        let value: Option<String> =
            self.run(|con| redis::cmd("GET").arg(&self.keys.error).query(con))?;
        Ok(value
            .and_then(|v| serde_json::from_str::<SharedFetchError>(&v).ok())
            .filter(|e| {
                let genuine = self.verify(&e.signed_text(), &e.mac);
                if !genuine {
                    log::warn!(
                        "ignoring a fetch error in Redis that this merchant's processes did not write"
                    );
                }
                genuine
            })
            .filter(|e| e.at_ms >= since_ms)
            .map(|e| Error::Gateway {
                errcode: e.errcode,
                errmsg: e.errmsg,
            }))
    }

    /// Fetches under the refresh lock, unless another process stored a token
    /// since we looked.
    fn fetch_locked(&self, now: u64, fetch: FetchToken<'_>) -> Result<AccessToken> {
        if let Some(token) = self.read_token(now)? {
            log::debug!(
                "access_token stored by another process before the lock was ours: using it"
            );
            return Ok(token);
        }
        log::debug!("holding the Redis refresh lock: fetching an access_token");
        match fetch() {
            Ok(token) => {
                // The gateway has replaced the old token already: hand the
                // new one out even if Redis fails to keep it.
                if let Err(e) = self.write_token(&token, now) {
                    log::warn!("could not store the new access_token in Redis: {e}");
                }
                Ok(token)
            }
            Err(err) => {
                self.share_error(&err);
                Err(err)
            }
        }
    }
}

impl TokenStore for RedisTokenStore {
    fn get_or_fetch(&self, now: u64, fetch: FetchToken<'_>) -> Result<AccessToken> {
        if let Some(token) = self.local().as_ref().filter(|t| t.is_fresh(now)) {
            log::trace!("access_token cache hit in this process");
            return Ok(token.clone());
        }
        let owner = self.seal(&RandomNonce.nonce());
        let started = Instant::now();
        let started_ms = unix_ms();
        let deadline = started + self.lock_ttl + self.timeout;
        let mut waited = false;
        let token = loop {
            if let Some(token) = self.read_token(now)? {
                log::trace!(
                    "access_token read from Redis{}",
                    if waited {
                        " after another process refreshed it"
                    } else {
                        ""
                    }
                );
                break token;
            }
            // A fetch that failed while we waited: take its error rather
            // than fetch again behind it.
            if let Some(err) = self.shared_error_since(started_ms)? {
                log::debug!("another process's access_token fetch failed: {err}");
                return Err(err);
            }
            if !waited {
                log::trace!("no fresh access_token in Redis: trying the refresh lock");
            }
            if self.try_lock(&owner)? {
                let result = self.fetch_locked(now, fetch);
                self.unlock(&owner);
                break result?;
            }
            if Instant::now() >= deadline {
                return Err(store_error(format!(
                    "no access_token appeared within {} ms while another process held the refresh lock",
                    (deadline - started).as_millis()
                )));
            }
            if !waited {
                log::debug!("another process holds the refresh lock: waiting for its access_token");
                waited = true;
            }
            thread::sleep(POLL_INTERVAL);
        };
        *self.local() = Some(token.clone());
        Ok(token)
    }

    fn invalidate(&self, stale: &AccessToken) {
        {
            let mut local = self.local();
            if local.as_ref().is_some_and(|t| t.same_value(stale)) {
                *local = None;
            }
        }
        let stored = self.seal(stale.value().expose());
        if let Err(e) = self.compare_and_delete(&self.keys.token, &stored) {
            log::warn!("could not invalidate the stored access_token: {e}");
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A Redis error as a token-store error. Redis error texts carry no secret
/// (the URL's password is not part of them), but keep them short.
fn redis_error(err: redis::RedisError) -> Error {
    store_error(format!("Redis {}", redis_error_kind(&err)))
}

fn redis_error_kind(err: &redis::RedisError) -> &str {
    if err.is_timeout() {
        "timed out"
    } else if err.is_connection_refusal() {
        "connection refused"
    } else if err.is_io_error() || err.is_connection_dropped() {
        "connection failed"
    } else {
        err.category()
    }
}

/// An error of the shared store: the caller may retry later.
fn store_error(message: String) -> Error {
    Error::TokenStore(message)
}

/// A primary store that falls back to an in-process one, with a warning
/// through the `log` facade, whenever the primary cannot be reached.
#[derive(Debug)]
pub struct FallbackTokenStore<P> {
    primary: P,
    fallback: MemoryTokenStore,
}

impl<P: TokenStore> FallbackTokenStore<P> {
    /// `primary`, backed by a fresh in-process store.
    pub fn new(primary: P) -> Self {
        FallbackTokenStore {
            primary,
            fallback: MemoryTokenStore::new(),
        }
    }
}

impl<P: TokenStore> TokenStore for FallbackTokenStore<P> {
    fn get_or_fetch(&self, now: u64, fetch: FetchToken<'_>) -> Result<AccessToken> {
        // Tell the gateway's errors (from `fetch`) from the store's own.
        let fetched = std::cell::Cell::new(false);
        let tracked = || {
            fetched.set(true);
            fetch()
        };
        match self.primary.get_or_fetch(now, &tracked) {
            Err(err) if !fetched.get() => {
                log::warn!(
                    "shared token store unavailable ({err}); using this process's own access_token"
                );
                self.fallback.get_or_fetch(now, fetch)
            }
            other => other,
        }
    }

    fn invalidate(&self, stale: &AccessToken) {
        self.primary.invalidate(stale);
        self.fallback.invalidate(stale);
    }
}
