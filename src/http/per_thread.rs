//! Each calling thread's own runtime and client, per transport, and what
//! becomes of them across `fork()`.
//!
//! A connection's I/O task lives on the tokio runtime that opened it and runs
//! only while that runtime is driven. So every thread that calls a transport
//! gets, on its first call, a current-thread runtime and a reqwest client of
//! its own ([`ThreadClient`]), kept in a thread-local list: the thread drives
//! its own exchanges (no other thread wakes it, no lock is contended), and
//! reuses its own keep-alive connections, so `n` threads sharing a transport
//! hold at most `n` connections to a gateway.
//!
//! A thread's list is pruned on each of its calls: clients of transports that
//! no longer exist are dropped there (their connections closed), and on the
//! thread that drops the last handle of a transport at once. A thread's
//! clients are dropped when it exits.
//!
//! `fork()` copies the calling thread's list into the child, with runtimes
//! whose epoll instance, wake-up eventfd and sockets the child shares with
//! the parent. Each [`ThreadClient`] remembers the process that made it; a
//! call in another process (the child) abandons the inherited ones without
//! touching them (see [`ThreadClient`]'s `Drop`) and makes new ones, so a
//! connection is only ever used by the process that opened it.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::http::transport::Settings;

/// How long an idle connection is kept; servers close theirs after a minute
/// or so, and a connection closed under a request costs a retry.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

thread_local! {
    /// This thread's clients, one per transport it has called (rarely more
    /// than two: the gateway's and the refunds' mutual-TLS one).
    static CLIENTS: RefCell<Vec<ThreadClient>> = const { RefCell::new(Vec::new()) };
}

/// One thread's runtime and client for one transport.
pub(crate) struct ThreadClient {
    /// The transport's settings; the allocation outlives the transport while
    /// this exists, so its address identifies the transport unambiguously.
    owner: Weak<Settings>,
    /// The process this was made in.
    pid: u32,
    /// `Some` until dropped (`Option` so `Drop` can take it out).
    runtime: Option<tokio::runtime::Runtime>,
    client: Option<reqwest::Client>,
}

impl ThreadClient {
    fn new(settings: &Arc<Settings>, pid: u32) -> Result<ThreadClient> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Network {
                timeout: false,
                message: format!("cannot start this thread's HTTP runtime: {e}"),
            })?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(settings.tls.clone())
            .connect_timeout(settings.connect_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("libwxpay/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(IDLE_TIMEOUT)
            // One call at a time per thread: one connection per gateway.
            .pool_max_idle_per_host(1);
        // Without a configured proxy, reqwest reads HTTPS_PROXY, HTTP_PROXY,
        // ALL_PROXY and NO_PROXY from the environment, here.
        if let Some(proxy) = &settings.proxy {
            builder = builder.proxy(proxy.clone());
        }
        let client = {
            let _entered = runtime.enter();
            builder.build()
        }
        .map_err(|e| Error::Network {
            timeout: false,
            message: format!("cannot set up the HTTP client: {}", e.without_url()),
        })?;
        Ok(ThreadClient {
            owner: Arc::downgrade(settings),
            pid,
            runtime: Some(runtime),
            client: Some(client),
        })
    }

    fn belongs_to(&self, settings: &Arc<Settings>) -> bool {
        std::ptr::eq(self.owner.as_ptr(), Arc::as_ptr(settings))
    }

    /// Runs the exchange `start` makes with the client as a task on this
    /// thread's runtime, and waits for it, at most `timeout` (then the
    /// exchange is dropped and the error is `timed_out()`).
    ///
    /// The task first yields once: the runtime then polls its I/O driver,
    /// and the connections' tasks take in what came while this thread was
    /// away (a server closing an idle connection) before the exchange takes
    /// a connection from the pool. (Nothing runs the runtime between calls:
    /// without this, the first request after such a close would be written
    /// on the dead connection.)
    pub(crate) fn run<T, F>(
        &self,
        timeout: Duration,
        timed_out: impl FnOnce() -> Error,
        start: impl FnOnce(&reqwest::Client) -> Result<F>,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (Some(runtime), Some(client)) = (&self.runtime, &self.client) else {
            return Err(Error::InvalidArgument(
                "the HTTP client is shut down".into(),
            ));
        };
        let exchange = start(client)?;
        let outcome = runtime.block_on(async move {
            // Spawned from within the runtime (a task spawned from outside
            // wakes it through its eventfd: a write per call), and timed
            // from here: the timer then outlives the task, so the next
            // call's timer is never the earliest and need not wake the
            // driver either.
            let mut task = tokio::spawn(async move {
                tokio::task::yield_now().await;
                exchange.await
            });
            match tokio::time::timeout(timeout, &mut task).await {
                Ok(outcome) => Some(outcome),
                Err(_) => {
                    task.abort();
                    let _ = task.await;
                    None
                }
            }
        });
        match outcome {
            None => Err(timed_out()),
            Some(Ok(result)) => result,
            Some(Err(e)) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(Error::Network {
                    timeout: false,
                    message: "the HTTP exchange was cancelled".into(),
                }),
            },
        }
    }
}

/// What this process inherited through fork() and must never drop: kept
/// here, reachable, so a leak checker in the child does not report it.
type Abandoned = (Option<tokio::runtime::Runtime>, Option<reqwest::Client>);
static ABANDONED: Mutex<Vec<Abandoned>> = Mutex::new(Vec::new());

impl Drop for ThreadClient {
    fn drop(&mut self) {
        let (runtime, client) = (self.runtime.take(), self.client.take());
        if self.pid != std::process::id() {
            // Inherited through fork(): the epoll instance, the eventfd and
            // the sockets are shared with the parent (and its other
            // children). Dropping the runtime or a connection would
            // deregister their descriptors from that shared epoll set
            // (`epoll_ctl(DEL)` removes the parent's registrations, whose
            // sockets then never wake it again) and might write on a
            // connection the parent is using. So they are never dropped:
            // this process keeps some memory and a few descriptors, closed
            // when it exits.
            match ABANDONED.try_lock() {
                Ok(mut abandoned) => abandoned.push((runtime, client)),
                // Held by a thread that does not exist in this process (or
                // poisoned): forgotten instead.
                Err(_) => {
                    std::mem::forget(client);
                    std::mem::forget(runtime);
                }
            }
            return;
        }
        drop(client);
        if let Some(runtime) = runtime {
            // Never block in drop: a host may drop a client on an async
            // thread, or while a name lookup is still running.
            runtime.shutdown_background();
        }
    }
}

/// Runs `f` with this thread's client for the transport of `settings`,
/// made on this thread's first call with it (or its first in this process).
pub(crate) fn with_thread_client<T>(
    settings: &Arc<Settings>,
    f: impl FnOnce(&ThreadClient) -> Result<T>,
) -> Result<T> {
    CLIENTS
        .try_with(|clients| {
            let mut clients = clients.try_borrow_mut().map_err(|_| {
                Error::InvalidArgument("an HTTP call was made from within another".into())
            })?;
            // A child of fork() must not use anything its parent opened
            // (dropping those abandons them; see Drop).
            let pid = this_process();
            clients.retain(|c| c.pid == pid && c.owner.strong_count() > 0);
            let index = match clients.iter().position(|c| c.belongs_to(settings)) {
                Some(index) => index,
                None => {
                    clients.push(ThreadClient::new(settings, pid)?);
                    clients.len() - 1
                }
            };
            f(&clients[index])
        })
        .unwrap_or_else(|_| {
            Err(Error::InvalidArgument(
                "an HTTP call was made while this thread was exiting".into(),
            ))
        })
}

thread_local! {
    /// This process's id as this thread last saw it, and what tells it that
    /// the process has forked since (forkguard's `atfork` flavour: an atomic
    /// load per call rather than a `getpid` system call).
    static PROCESS: RefCell<(forkguard::Guard, u32)> =
        RefCell::new((forkguard::new(), std::process::id()));
}

/// The id of the process this thread runs in.
fn this_process() -> u32 {
    PROCESS.with(|process| {
        let (forks, pid) = &mut *process.borrow_mut();
        if forks.detected_fork() {
            *pid = std::process::id();
        }
        *pid
    })
}

/// Drops this thread's clients of transports that no longer exist (called
/// when a transport's last handle is dropped).
pub(crate) fn prune_this_thread() {
    let _ = CLIENTS.try_with(|clients| {
        if let Ok(mut clients) = clients.try_borrow_mut() {
            clients.retain(|c| c.owner.strong_count() > 0);
        }
    });
}
