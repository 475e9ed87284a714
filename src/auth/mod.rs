//! Registry authentication as a pure state machine (no I/O, no clock).
//!
//! The transport keeps one [`AuthState`] per registry host, or per `host/repo` when the host has
//! `repoAuth` set (see [`state_key`]), behind a lock that it holds only while calling in, never
//! across a request. The state answers with a [`Step`]: send the registry request with this
//! `Authorization` value, or first fetch a token. The I/O loop around it is short:
//!
//! ```
//! use regclient::auth::{AuthState, Credential, Step};
//! use regclient::url::Url;
//! # fn http(_m: &str, _u: &str, _auth: Option<&str>, _body: Option<String>) -> (u16, Vec<String>, Vec<u8>) {
//! #     (200, vec![], b"{}".to_vec())
//! # }
//! let mut auth = AuthState::new(Credential::default(), "regclient/1");
//! let url = Url::parse("https://registry.example/v2/app/manifests/v1").unwrap();
//! let now = 1_700_000_000;
//! let mut step = auth.prepare("app", "GET", now);
//! let status = loop {
//!     match step {
//!         Step::Token(req) => {
//!             let method = if req.body().is_some() { "POST" } else { "GET" };
//!             let (status, _, body) = http(method, &req.url().to_string(), req.authorization().as_deref(), req.body());
//!             step = auth.token_response(&req, status, &body, now).unwrap();
//!         }
//!         Step::Send(header) => {
//!             let (status, www_auth, _) = http("GET", &url.to_string(), header.as_deref(), None);
//!             if status != 401 {
//!                 break status;
//!             }
//!             let www: Vec<&str> = www_auth.iter().map(String::as_str).collect();
//!             // Ends with an Unauthorized error once nothing new can be tried.
//!             step = auth.unauthorized(&www, &url, header.as_deref(), now).unwrap();
//!         }
//!     }
//! };
//! assert_eq!(status, 200);
//! ```
//!
//! Termination: every 401 either changes something (a first challenge, new scopes, a token
//! refreshed by a concurrent request, a POST falling back to GET) or ends in
//! [`ErrorKind::Unauthorized`]. Since those changes are finite, a refusing registry costs a
//! handful of requests, never a retry storm.

pub mod basic;
pub mod challenge;
pub mod scope;
pub mod token;

use std::fmt;
use std::net::IpAddr;

pub use challenge::Challenge;
pub use scope::{Scope, Scopes};
pub use token::{Credential, Token, TokenRequest};

use crate::error::{Error, ErrorKind, Result};
use crate::url::{Scheme, Url};

/// The key the transport files an [`AuthState`] under: the host, or `host/repo` with `repoAuth`.
pub fn state_key(host: &str, repo: &str, repo_auth: bool) -> String {
    if repo_auth && !repo.is_empty() {
        format!("{host}/{repo}")
    } else {
        host.to_string()
    }
}

/// What the transport does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send (or resend) the registry request with this `Authorization` value (`None`: without).
    Send(Option<String>),
    /// Fetch a token first and hand the response to [`AuthState::token_response`].
    Token(TokenRequest),
}

/// Extra check on a token realm: `(request URL, realm URL) -> allowed`. The transport plugs in
/// its redirect rules (proxy awareness and friends) here.
pub type RealmCheck = Box<dyn Fn(&Url, &Url) -> bool + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Handler {
    /// No challenge seen yet: requests go out anonymously.
    None,
    Basic,
    Bearer {
        realm: Url,
        service: String,
    },
}

/// Authentication state of one host (or one repository with `repoAuth`).
pub struct AuthState {
    cred: Credential,
    client_id: String,
    realm_check: Option<RealmCheck>,
    handler: Handler,
    scopes: Scopes,
    token: Option<Token>,
    /// From a token response; outlives the access token it came with.
    refresh_token: Option<String>,
    /// The identity token was refused once; stop offering it.
    identity_failed: bool,
}

impl fmt::Debug for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthState")
            .field("cred", &self.cred)
            .field("client_id", &self.client_id)
            .field("handler", &self.handler)
            .field("scopes", &self.scopes.to_strings())
            .field("token", &self.token)
            .field(
                "refresh_token",
                &self.refresh_token.as_deref().map(token::redact),
            )
            .field("identity_failed", &self.identity_failed)
            .finish()
    }
}

impl AuthState {
    /// A fresh state with the host's credentials; `client_id` is sent to token services
    /// (regclient sends its user agent).
    pub fn new(cred: Credential, client_id: impl Into<String>) -> AuthState {
        AuthState {
            cred,
            client_id: client_id.into(),
            realm_check: None,
            handler: Handler::None,
            scopes: Scopes::new(),
            token: None,
            refresh_token: None,
            identity_failed: false,
        }
    }

    /// Adds a realm check on top of the built-in one (no https→http downgrade, no local realm
    /// for a non-local registry).
    pub fn with_realm_check(mut self, check: RealmCheck) -> AuthState {
        self.realm_check = Some(check);
        self
    }

    /// Replaces the credentials (a refreshed credential helper result); cached tokens are dropped.
    pub fn set_credential(&mut self, cred: Credential) {
        if cred != self.cred {
            self.cred = cred;
            self.token = None;
            self.refresh_token = None;
            self.identity_failed = false;
        }
    }

    /// Before a request to `repo` (empty for `/v2/` or the catalog) with `method`: adds the scope
    /// it needs and says how to send it.
    pub fn prepare(&mut self, repo: &str, method: &str, now: u64) -> Step {
        if !repo.is_empty() {
            self.add_scope(Scope::for_request(repo, method));
        }
        self.step(now)
    }

    /// Like [`prepare`](Self::prepare) with an explicit scope (`registry:catalog:*`).
    pub fn prepare_scope(&mut self, scope: Scope, now: u64) -> Step {
        self.add_scope(scope);
        self.step(now)
    }

    /// The `Authorization` value usable right now without any fetch, if any (for redirects).
    pub fn current_header(&self, now: u64) -> Option<String> {
        match &self.handler {
            Handler::None => None,
            Handler::Basic => self.basic_header(),
            Handler::Bearer { .. } => self
                .token
                .as_ref()
                .filter(|t| t.valid_at(now))
                .map(Token::header),
        }
    }

    fn add_scope(&mut self, scope: Scope) {
        // A token covers exactly the scopes it was issued for.
        if self.scopes.add(scope) {
            self.token = None;
        }
    }

    fn basic_header(&self) -> Option<String> {
        self.cred
            .has_basic()
            .then(|| basic::header(&self.cred.user, &self.cred.pass))
    }

    fn step(&self, now: u64) -> Step {
        match &self.handler {
            Handler::None | Handler::Basic => Step::Send(self.current_header(now)),
            Handler::Bearer { .. } => match self.current_header(now) {
                Some(h) => Step::Send(Some(h)),
                None => Step::Token(self.token_request()),
            },
        }
    }

    fn token_request(&self) -> TokenRequest {
        let Handler::Bearer { realm, service } = &self.handler else {
            unreachable!("token requests are only built for bearer hosts");
        };
        let scopes = self.scopes.to_strings();
        let p = token::TokenParams {
            realm,
            service,
            scopes: &scopes,
            client_id: &self.client_id,
        };
        match self.refresh_secret() {
            Some(r) => token::post_request(p, r),
            None => token::get_request(p, &self.cred),
        }
    }

    fn refresh_secret(&self) -> Option<&str> {
        self.refresh_token.as_deref().or_else(|| {
            (!self.identity_failed && !self.cred.token.is_empty())
                .then_some(self.cred.token.as_str())
        })
    }

    /// Feeds the token service's answer to `req` (status and body) and says what to do next.
    ///
    /// A refused refresh grant falls back to a GET with user/password (or anonymous); a refused
    /// GET is [`ErrorKind::Unauthorized`].
    pub fn token_response(
        &mut self,
        req: &TokenRequest,
        status: u16,
        body: &[u8],
        now: u64,
    ) -> Result<Step> {
        if (200..300).contains(&status) {
            let t = token::parse_response(body, now)?;
            if let Some(r) = &t.refresh_token {
                self.refresh_token = Some(r.clone());
            }
            let header = t.header();
            self.token = Some(t);
            return Ok(Step::Send(Some(header)));
        }
        match req {
            TokenRequest::Post { .. } => {
                // Drop whichever secret was refused so the next request is the GET fallback.
                if self.refresh_token.take().is_none() {
                    self.identity_failed = true;
                }
                Ok(Step::Token(self.token_request()))
            }
            TokenRequest::Get { .. } => Err(Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "unauthorized: the token server {}{} refused the credentials (status {status})",
                    req.url().authority(),
                    req.url().path()
                ),
            )),
        }
    }

    /// After a 401 on a request sent with `sent` as `Authorization`: reads the challenges and
    /// says what to try next, or fails with [`ErrorKind::Unauthorized`] when nothing new is left.
    pub fn unauthorized(
        &mut self,
        www_authenticate: &[&str],
        request_url: &Url,
        sent: Option<&str>,
        now: u64,
    ) -> Result<Step> {
        let challenges = challenge::parse(www_authenticate)
            .map_err(|e| unauthorized(format!("unusable challenge: {e}")))?;
        let chosen = challenges
            .iter()
            .find(|c| c.scheme == "bearer")
            .or_else(|| challenges.iter().find(|c| c.scheme == "basic"))
            .ok_or_else(|| unauthorized("no supported authentication challenge".to_string()))?;
        if chosen.scheme == "basic" {
            if chosen.param("realm").is_none() {
                return Err(unauthorized("basic challenge without realm".to_string()));
            }
            return self.basic_challenge(sent);
        }
        self.bearer_challenge(chosen, request_url, sent, now)
    }

    fn basic_challenge(&mut self, sent: Option<&str>) -> Result<Step> {
        match self.handler {
            Handler::None => self.handler = Handler::Basic,
            Handler::Basic => {}
            Handler::Bearer { .. } => {
                return Err(unauthorized(
                    "invalid challenge: scheme changed".to_string(),
                ))
            }
        }
        let header = self.basic_header().ok_or_else(|| {
            unauthorized("basic authentication required, no credentials".to_string())
        })?;
        if sent == Some(header.as_str()) {
            return Err(unauthorized("credentials refused".to_string()));
        }
        Ok(Step::Send(Some(header)))
    }

    fn bearer_challenge(
        &mut self,
        ch: &Challenge,
        request_url: &Url,
        sent: Option<&str>,
        now: u64,
    ) -> Result<Step> {
        let realm_str = ch
            .param("realm")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| unauthorized("bearer challenge without realm".to_string()))?;
        let realm = request_url
            .join(realm_str)
            .map_err(|e| unauthorized(format!("bearer realm: {e}")))?;
        if !realm_allowed(request_url, &realm)
            || self
                .realm_check
                .as_ref()
                .is_some_and(|f| !f(request_url, &realm))
        {
            return Err(unauthorized(format!("token realm {realm} refused")));
        }
        let service = ch.param("service").unwrap_or_default().to_string();
        let mut changed = false;
        match &self.handler {
            Handler::None => {
                self.handler = Handler::Bearer { realm, service };
                changed = true;
            }
            Handler::Bearer {
                realm: r,
                service: s,
            } => {
                if *r != realm || *s != service {
                    return Err(unauthorized(
                        "invalid challenge: realm or service changed".to_string(),
                    ));
                }
            }
            Handler::Basic => {
                return Err(unauthorized(
                    "invalid challenge: scheme changed".to_string(),
                ))
            }
        }
        let asked = ch.param("scope").map(str::to_string);
        if let Some(s) = &asked {
            changed |= self.scopes.add_str(s);
        }
        if changed {
            self.token = None;
        }
        match self.current_header(now) {
            // Our token was not the one refused (a concurrent request refreshed it): retry.
            Some(h) if sent != Some(h.as_str()) => Ok(Step::Send(Some(h))),
            // Name the permission that is missing, so a refused push says "push".
            Some(_) => Err(unauthorized(match asked {
                Some(scope) => format!("the token does not grant {scope}"),
                None => "token refused and challenge unchanged".to_string(),
            })),
            None => Ok(Step::Token(self.token_request())),
        }
    }
}

fn unauthorized(msg: String) -> Error {
    Error::new(ErrorKind::Unauthorized, msg)
}

/// Built-in realm rules: http(s) only, no downgrade from https, and no loopback, link-local or
/// unspecified realm unless the registry itself is local (a token fetch must not become a way to
/// probe the client's own machine).
pub fn realm_allowed(request: &Url, realm: &Url) -> bool {
    if request.scheme() == Scheme::Https && realm.scheme() != Scheme::Https {
        return false;
    }
    !is_local(realm.host()) || is_local(request.host())
}

/// True for `localhost` names and loopback, link-local or unspecified addresses.
pub fn is_local(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_link_local() || ip.is_unspecified(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
