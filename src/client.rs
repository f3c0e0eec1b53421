//! The client: runs the 2014 APP flow against a gateway, with its access_token
//! cache, transport, clock and nonce source.
//!
//! A [`Client`] is `Send + Sync`: share one (behind an `Arc` or a `static`)
//! between all the threads of a process, so they share one access_token and
//! one pool of keep-alive connections.

use std::fmt;
use std::sync::Arc;

use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::flow::{pay_params, prepay_body, PayParams};
use crate::gateway::{
    genprepay_request, parse_genprepay_response, parse_token_response, token_request, PrepayBody,
    TOKEN_REJECTED_ERRCODES,
};
use crate::nonce::{NonceSource, RandomNonce};
use crate::order::Order;
use crate::token::{self, AccessToken, TokenStore};
use crate::transport::{HttpTransport, Transport};

/// A WeChat Pay client for one merchant configuration.
pub struct Client {
    config: Config,
    api_base: Url,
    transport: Arc<dyn Transport>,
    tokens: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    nonces: Arc<dyn NonceSource>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`] with injected parts; each part left unset gets the
/// production default.
pub struct ClientBuilder {
    config: Config,
    transport: Option<Arc<dyn Transport>>,
    tokens: Option<Arc<dyn TokenStore>>,
    clock: Option<Arc<dyn Clock>>,
    nonces: Option<Arc<dyn NonceSource>>,
}

impl ClientBuilder {
    /// Sends requests through `transport` instead of the HTTPS client.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Keeps the access_token in `store` instead of where the configuration's
    /// `token_store` says.
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.tokens = Some(store);
        self
    }

    /// Reads the time from `clock`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Takes nonces from `nonces`.
    pub fn nonce_source(mut self, nonces: Arc<dyn NonceSource>) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// Validates the configuration and builds the client.
    pub fn build(self) -> Result<Client> {
        self.config.validate()?;
        let api_base = self.config.api_base_url()?;
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(HttpTransport::new(self.config.timeout())?),
        };
        Ok(Client {
            api_base,
            transport,
            tokens: match self.tokens {
                Some(store) => store,
                None => token::store_for(&self.config)?,
            },
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            nonces: self.nonces.unwrap_or_else(|| Arc::new(RandomNonce)),
            config: self.config,
        })
    }
}

impl Client {
    /// A client with the production transport, clock and nonces, and the
    /// token store the configuration names (in-process by default).
    pub fn new(config: Config) -> Result<Client> {
        Client::builder(config).build()
    }

    /// A builder, for injecting a transport, token store, clock or nonce source.
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            transport: None,
            tokens: None,
            clock: None,
            nonces: None,
        }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the whole flow for `order`: access_token (cached), signed package,
    /// `app_signature`, `genprepay`, and the signed parameters for the app.
    ///
    /// When `genprepay` answers 40001 or 42001 the token is refreshed once and
    /// the identical request sent once more; any other error is returned as it
    /// is.
    pub fn build_pay_params(&self, order: &Order) -> Result<PayParams> {
        let now = self.clock.now_unix();
        let noncestr = self.nonces.nonce();
        let body = prepay_body(&self.config, order, now, &noncestr)?;
        let prepayid = self.genprepay(&body)?;
        pay_params(&self.config, order, &prepayid, now, &noncestr)
    }

    fn genprepay(&self, body: &PrepayBody) -> Result<String> {
        let token = self.access_token()?;
        match self.send_genprepay(&token, body) {
            Err(Error::Gateway { errcode, .. }) if TOKEN_REJECTED_ERRCODES.contains(&errcode) => {
                log::debug!("genprepay rejected the access_token ({errcode}); refreshing it once");
                self.tokens.invalidate(&token);
                let token = self.access_token()?;
                self.send_genprepay(&token, body)
            }
            other => other,
        }
    }

    fn send_genprepay(&self, token: &AccessToken, body: &PrepayBody) -> Result<String> {
        let request = genprepay_request(&self.api_base, token, body)?;
        let response = self.transport.send(&request)?;
        parse_genprepay_response(&response)
    }

    /// The current access_token, fetched when there is none or it is due.
    fn access_token(&self) -> Result<AccessToken> {
        let fetch = || {
            log::debug!("fetching an access_token for appid {}", self.config.appid);
            let request =
                token_request(&self.api_base, &self.config.appid, &self.config.app_secret);
            let response = self.transport.send(&request)?;
            // The token lives from when it was issued: read the clock after.
            parse_token_response(&response, self.clock.now_unix())
        };
        self.tokens.get_or_fetch(self.clock.now_unix(), &fetch)
    }
}
