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

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::api::legacy::token::{AccessToken, FetchToken, MemoryTokenStore, TokenStore};
use crate::error::{Error, Result};
use crate::util::nonce::{NonceSource, RandomNonce};
use crate::util::secret::Secret;

/// Deletes `KEYS[1]` if its value is `ARGV[1]`.
const COMPARE_AND_DELETE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// How often a waiting process looks for the token another one is fetching.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long a failed fetch's error is shared with the processes that waited.
const FETCH_ERROR_TTL_MS: u64 = 2_000;

/// The Redis token store.
pub struct RedisTokenStore {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
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

#[derive(Serialize, Deserialize)]
struct SharedFetchError {
    errcode: i64,
    errmsg: String,
    at_ms: u64,
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
    /// A store at `url` (`redis://HOST:PORT/DB`) for `appid`. Every Redis
    /// exchange is bounded by `timeout`; a refresh lock lives `lock_ttl` at
    /// most (make it longer than one token fetch may take). Connects lazily.
    pub fn new(
        url: &str,
        appid: &str,
        timeout: Duration,
        lock_ttl: Duration,
    ) -> Result<RedisTokenStore> {
        let client = redis::Client::open(url).map_err(|e| {
            Error::config(
                "token_store",
                format!("is not a usable Redis URL ({})", e.category()),
            )
        })?;
        let prefix = format!("wxpay:{appid}:");
        Ok(RedisTokenStore {
            client,
            connection: Mutex::new(None),
            keys: Keys {
                token: format!("{prefix}access_token"),
                lock: format!("{prefix}refresh_lock"),
                error: format!("{prefix}fetch_error"),
            },
            timeout,
            lock_ttl,
            local: Mutex::new(None),
        })
    }

    /// Checks that Redis answers (`PING`), for failing early at client build.
    pub fn ping(&self) -> Result<()> {
        self.run(|con| redis::cmd("PING").query::<String>(con))
            .map(|_| ())
    }

    fn local(&self) -> MutexGuard<'_, Option<AccessToken>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `op` on the shared connection, connecting (again) when needed.
    fn run<T>(
        &self,
        op: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            let con = self
                .client
                .get_connection_with_timeout(self.timeout)
                .map_err(redis_error)?;
            con.set_read_timeout(Some(self.timeout))
                .map_err(redis_error)?;
            con.set_write_timeout(Some(self.timeout))
                .map_err(redis_error)?;
            *slot = Some(con);
        }
        let con = slot.as_mut().expect("connected just above");
        let result = op(con);
        if let Err(e) = &result {
            // A broken connection is dropped; the next call reconnects.
            if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                *slot = None;
            }
        }
        result.map_err(redis_error)
    }

    /// The stored token and its remaining milliseconds, if any.
    fn read_token(&self, now: u64) -> Result<Option<AccessToken>> {
        let (value, pttl): (Option<String>, i64) = self.run(|con| {
            redis::pipe()
                .cmd("GET")
                .arg(&self.keys.token)
                .cmd("PTTL")
                .arg(&self.keys.token)
                .query(con)
        })?;
        Ok(match value {
            // Round the remaining time down to whole seconds: refreshing a
            // moment early is harmless, a moment late is not.
            Some(token) if pttl > 0 => Some(AccessToken::due_at(
                Secret::new(token),
                now + u64::try_from(pttl).unwrap_or(0) / 1000,
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
                .arg(token.value().expose())
                .arg("PX")
                .arg(ttl_ms)
                .query::<()>(con)
        })
    }

    fn try_lock(&self, owner: &str) -> Result<bool> {
        let ttl_ms = u64::try_from(self.lock_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
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
        let shared = SharedFetchError {
            errcode: *errcode,
            errmsg: errmsg.clone(),
            at_ms: unix_ms(),
        };
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
        let owner = RandomNonce.nonce();
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
        if let Err(e) = self.compare_and_delete(&self.keys.token, stale.value().expose()) {
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
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connection_refusal() {
        "connection refused"
    } else if err.is_io_error() || err.is_connection_dropped() {
        "connection failed"
    } else {
        err.category()
    };
    store_error(format!("Redis {what}"))
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
