//! The access_token cache: one token shared by every caller of a client,
//! refreshed before it expires, fetched by one caller at a time.
//!
//! [`TokenStore`] is the seam where a store shared between processes can
//! replace the in-process [`MemoryTokenStore`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::config::{Config, TokenStoreSetting};
use crate::error::{Error, Result};
use crate::util::secret::Secret;

/// How long before a token's expiry it is refreshed: five minutes, or a fifth
/// of its lifetime for short-lived tokens.
pub fn refresh_margin(expires_in: u64) -> u64 {
    (expires_in / 5).min(300)
}

/// The store a configuration asks for: in memory, or Redis (with an
/// in-process fallback when `token_store_fallback` is set).
pub fn store_for(config: &Config) -> Result<Arc<dyn TokenStore>> {
    match config.token_store_setting()? {
        TokenStoreSetting::Memory => Ok(Arc::new(MemoryTokenStore::new())),
        #[cfg(feature = "redis")]
        TokenStoreSetting::Redis(url) => {
            use crate::api::legacy::token_redis::{FallbackTokenStore, RedisTokenStore};
            // A fetch is one HTTP exchange bounded by the timeout; a lock
            // outliving that by a margin can only belong to a dead holder.
            let lock_ttl = config.timeout() + std::time::Duration::from_secs(2);
            let settings = crate::api::legacy::token_redis::RedisSettings {
                url: &url,
                ca_file: config.token_store_ca_file.as_deref(),
                timeout: config.timeout(),
                lock_ttl,
            };
            let app_secret = config.app_secret.as_ref().ok_or_else(|| {
                Error::config("app_secret", "is required for a Redis token store")
            })?;
            let redis = RedisTokenStore::new(&settings, &config.appid, app_secret)?;
            if config.token_store_fallback {
                Ok(Arc::new(FallbackTokenStore::new(redis)))
            } else {
                Ok(Arc::new(redis))
            }
        }
        #[cfg(not(feature = "redis"))]
        TokenStoreSetting::Redis(_) => Err(Error::config(
            "token_store",
            "this build of libwxpay has no Redis support (cargo feature `redis`)",
        )),
    }
}

/// An access_token and the times that govern its use.
#[derive(Debug, Clone)]
pub struct AccessToken {
    value: Arc<Secret>,
    refresh_after: u64,
}

impl AccessToken {
    /// A token fetched at `now` that the gateway says lives `expires_in`
    /// seconds; it is refreshed [`refresh_margin`] seconds before that.
    pub fn new(value: Secret, now: u64, expires_in: u64) -> AccessToken {
        AccessToken {
            value: Arc::new(value),
            refresh_after: now.saturating_add(expires_in - refresh_margin(expires_in)),
        }
    }

    /// A token that is due for refresh at Unix time `refresh_after` (for
    /// stores that keep the due time rather than the lifetime).
    pub fn due_at(value: Secret, refresh_after: u64) -> AccessToken {
        AccessToken {
            value: Arc::new(value),
            refresh_after,
        }
    }

    /// The token value, for the request that needs it. Never log it.
    pub fn value(&self) -> &Secret {
        &self.value
    }

    /// The Unix time from which this token is refreshed rather than used.
    pub fn refresh_after(&self) -> u64 {
        self.refresh_after
    }

    /// True while the token may be used at `now`.
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.refresh_after
    }

    /// True when both are the same token value.
    pub fn same_value(&self, other: &AccessToken) -> bool {
        self.value.expose() == other.value.expose()
    }
}

/// A fetch of a new token from the gateway.
pub type FetchToken<'a> = &'a dyn Fn() -> Result<AccessToken>;

/// Where a client keeps its access_token.
///
/// Implementations must be single-flight: when the token is missing or due,
/// concurrent callers wait for one fetch and share its result (its error too).
pub trait TokenStore: Send + Sync {
    /// A token fresh at `now`, calling `fetch` when there is none.
    fn get_or_fetch(&self, now: u64, fetch: FetchToken<'_>) -> Result<AccessToken>;

    /// Forgets `stale` if it is still the stored token (compare before
    /// delete), so a burst of failures with one token causes one refresh.
    fn invalidate(&self, stale: &AccessToken);
}

/// The in-process token store: a token shared by every thread of the process
/// that uses the same client.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    state: Mutex<State>,
    /// Held for the duration of a fetch; waiters queue on it.
    fetching: Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    token: Option<AccessToken>,
    /// Incremented after every fetch, success or failure.
    fetches: u64,
    /// The error of the last fetch, if it failed.
    last_error: Option<Error>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave `State` half-written: every write
        // is a single assignment. Keep serving rather than propagate.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TokenStore for MemoryTokenStore {
    fn get_or_fetch(&self, now: u64, fetch: FetchToken<'_>) -> Result<AccessToken> {
        let seen_fetches = {
            let state = self.state();
            if let Some(token) = state.token.as_ref().filter(|t| t.is_fresh(now)) {
                log::trace!(
                    "access_token cache hit (due for refresh in {} s)",
                    token.refresh_after() - now
                );
                return Ok(token.clone());
            }
            log::trace!(
                "access_token cache miss: {}",
                if state.token.is_some() {
                    "the token is due for refresh"
                } else {
                    "no token yet"
                }
            );
            state.fetches
        };
        let _flight = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let state = self.state();
            if let Some(token) = state.token.as_ref().filter(|t| t.is_fresh(now)) {
                log::trace!("access_token fetched by another caller while this one waited");
                return Ok(token.clone());
            }
            // A fetch finished while we waited and failed: share its error
            // rather than start a storm of fetches behind it.
            if state.fetches != seen_fetches {
                if let Some(err) = &state.last_error {
                    log::debug!("access_token fetch failed while this caller waited: {err}");
                    return Err(err.clone());
                }
            }
        }
        let result = fetch();
        let mut state = self.state();
        state.fetches += 1;
        match &result {
            Ok(token) => {
                log::debug!(
                    "access_token stored in memory (fetch #{}, due for refresh at Unix time {})",
                    state.fetches,
                    token.refresh_after()
                );
                state.token = Some(token.clone());
                state.last_error = None;
            }
            Err(err) => {
                log::debug!("access_token fetch #{} failed: {err}", state.fetches);
                state.last_error = Some(err.clone());
            }
        }
        result
    }

    fn invalidate(&self, stale: &AccessToken) {
        let mut state = self.state();
        if state.token.as_ref().is_some_and(|t| t.same_value(stale)) {
            log::debug!("access_token invalidated: the next call fetches a new one");
            state.token = None;
        } else {
            log::trace!(
                "access_token to invalidate is no longer the stored one: kept the newer one"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Barrier;
    use std::thread;
    use std::time::Duration;

    fn token(value: &str, now: u64) -> AccessToken {
        AccessToken::new(Secret::new(value), now, 7200)
    }

    #[test]
    fn refreshes_before_expiry() {
        let store = MemoryTokenStore::new();
        let fetches = AtomicU32::new(0);
        let fetch = || {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            Ok(token(&format!("t{n}"), 1000))
        };
        let t = store.get_or_fetch(1000, &fetch).expect("fetches");
        assert_eq!(t.value().expose(), "t0");
        assert_eq!(t.refresh_after(), 1000 + 7200 - 300);
        let t = store.get_or_fetch(1000 + 6899, &fetch).expect("cached");
        assert_eq!(t.value().expose(), "t0");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let t = store.get_or_fetch(1000 + 6900, &fetch).expect("refreshes");
        assert_eq!(t.value().expose(), "t1");
    }

    #[test]
    fn invalidate_compares_before_delete() {
        let store = MemoryTokenStore::new();
        let current = store
            .get_or_fetch(0, &|| Ok(token("new", 0)))
            .expect("fetches");
        store.invalidate(&token("old", 0));
        let still = store
            .get_or_fetch(1, &|| Ok(token("other", 1)))
            .expect("cached");
        assert_eq!(still.value().expose(), "new");
        store.invalidate(&current);
        let fresh = store
            .get_or_fetch(1, &|| Ok(token("other", 1)))
            .expect("refetched");
        assert_eq!(fresh.value().expose(), "other");
    }

    /// Eight threads ask `store` at once; each fetch takes 50 ms and gives
    /// `answer`. How many fetches ran.
    fn eight_at_once(
        store: &MemoryTokenStore,
        answer: impl Fn() -> Result<AccessToken> + Sync,
        check: impl Fn(Result<AccessToken>) + Sync,
    ) -> u32 {
        let fetches = AtomicU32::new(0);
        let barrier = Barrier::new(8);
        thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    let fetch = || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(50));
                        answer()
                    };
                    check(store.get_or_fetch(0, &fetch));
                });
            }
        });
        fetches.load(Ordering::SeqCst)
    }

    #[test]
    fn concurrent_callers_share_one_fetch() {
        let fetches = eight_at_once(
            &MemoryTokenStore::new(),
            || Ok(token("shared", 0)),
            |got| assert_eq!(got.expect("token").value().expose(), "shared"),
        );
        assert_eq!(fetches, 1);
    }

    #[test]
    fn waiters_share_a_failed_fetch() {
        let quota = || {
            Err(Error::Gateway {
                errcode: 45009,
                errmsg: "reach max api daily quota limit".into(),
            })
        };
        let fetches = eight_at_once(&MemoryTokenStore::new(), quota, |got| {
            assert_eq!(got.expect_err("fails").errcode(), Some(45009));
        });
        // Usually 1; a thread that arrives after the failed fetch has
        // finished may start one more, but never one per waiter.
        assert!(fetches <= 2);
    }

    #[test]
    fn margin() {
        assert_eq!(refresh_margin(7200), 300);
        assert_eq!(refresh_margin(60), 12);
        assert_eq!(refresh_margin(0), 0);
    }
}
