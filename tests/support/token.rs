//! A Docker token-auth server on loopback for real `docker-registry` processes.
//!
//! Implements the Docker token protocol: `GET /token?service=&scope=..&account=` with optional
//! Basic credentials (anonymous allowed) and the OAuth2 `POST /token` form (`password` and
//! `refresh_token` grants). Tokens are RS256 JWTs whose header carries the signing certificate in
//! `x5c`; the registry trusts them through `rootcertbundle` (see [`TokenServer::registry_auth_yaml`]).
//! The RSA key and self-signed certificate are made with the `openssl` CLI at startup.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

use super::fakereg::{
    base64, base64_decode, base64url, basic_credentials, lock, parse_query, parse_scope,
    random_hex, rfc3339, unix_now, HttpServer, Request, Response,
};
use super::{ok, tool, TempDir};

/// One ACL entry. `account` is a user name, `"*"` (any authenticated user) or `"anonymous"`
/// (everyone, with or without credentials); `name` is a glob (`*`, `?`); `actions` may be `["*"]`.
#[derive(Debug, Clone)]
pub struct AclRule {
    pub account: String,
    /// Resource type, `repository` unless set (`registry` for `registry:catalog:*`).
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl AclRule {
    pub fn new(account: &str, name: &str, actions: &[&str]) -> AclRule {
        AclRule {
            account: account.to_string(),
            kind: "repository".to_string(),
            name: name.to_string(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    pub fn kind(mut self, kind: &str) -> AclRule {
        self.kind = kind.to_string();
        self
    }
}

#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// `(user, password)`.
    pub users: Vec<(String, String)>,
    pub acl: Vec<AclRule>,
    pub service: String,
    pub issuer: String,
    /// Token lifetime in seconds.
    pub expires_in: u64,
}

impl Default for TokenOptions {
    fn default() -> TokenOptions {
        TokenOptions {
            users: Vec::new(),
            acl: Vec::new(),
            service: "regclient-test-registry".to_string(),
            issuer: "regclient-test-issuer".to_string(),
            expires_in: 300,
        }
    }
}

/// One token request as the server saw it.
#[derive(Debug, Clone)]
pub struct TokenLog {
    pub method: String,
    /// Empty for anonymous.
    pub account: String,
    pub scopes: Vec<String>,
    /// `(type, name, actions)` granted; empty when the request was refused.
    pub granted: Vec<(String, String, Vec<String>)>,
    pub status: u16,
}

struct Signer {
    key: RsaKeyPair,
    rng: SystemRandom,
    /// base64url of the JWT header, fixed for the server's lifetime.
    header_b64: String,
}

struct State {
    opts: TokenOptions,
    signer: Signer,
    refresh: Mutex<std::collections::HashMap<String, String>>,
    log: Mutex<Vec<TokenLog>>,
}

/// A running token server; stops when dropped.
pub struct TokenServer {
    state: Arc<State>,
    server: HttpServer,
    cert: PathBuf,
    _dir: TempDir,
}

/// Decodes the first PEM block labelled `label`.
fn pem_block(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    base64_decode(&text[start..stop])
}

/// Glob with `*` (any run, including `/`) and `?`, like Python's fnmatch on these two.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    // Iterative matcher with single-star backtracking: O(len(p) * len(s)) at worst.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl State {
    fn check_user(&self, user: &str, pass: &str) -> bool {
        self.opts.users.iter().any(|(u, p)| u == user && p == pass)
    }

    /// The requested actions the ACL allows `account` (empty = anonymous).
    fn allowed(&self, account: &str, kind: &str, name: &str, requested: &[String]) -> Vec<String> {
        let mut ok = vec![false; requested.len()];
        for rule in &self.opts.acl {
            let applies = rule.account == "anonymous"
                || (rule.account == "*" && !account.is_empty())
                || (!account.is_empty() && rule.account == account);
            if !applies || !glob(&rule.kind, kind) || !glob(&rule.name, name) {
                continue;
            }
            for (i, a) in requested.iter().enumerate() {
                if rule.actions.iter().any(|x| x == "*" || x == a) {
                    ok[i] = true;
                }
            }
        }
        requested
            .iter()
            .zip(ok)
            .filter(|(_, ok)| *ok)
            .map(|(a, _)| a.clone())
            .collect()
    }

    fn jwt(
        &self,
        account: &str,
        service: &str,
        access: &[(String, String, Vec<String>)],
    ) -> (String, u64) {
        let now = unix_now();
        let access: Vec<Value> = access
            .iter()
            .map(|(t, n, a)| json!({"type": t, "name": n, "actions": a}))
            .collect();
        let claims = json!({
            "iss": self.opts.issuer,
            "sub": account,
            "aud": if service.is_empty() { self.opts.service.as_str() } else { service },
            "exp": now + self.opts.expires_in,
            // Slack for clock differences between the two processes.
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": random_hex(),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            self.signer.header_b64,
            base64url(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.signer.key.public().modulus_len()];
        self.signer
            .key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.signer.rng,
                input.as_bytes(),
                &mut sig,
            )
            .expect("RS256 sign");
        (format!("{input}.{}", base64url(&sig)), now)
    }

    fn log(
        &self,
        req: &Request,
        account: &str,
        scopes: &[String],
        granted: Vec<(String, String, Vec<String>)>,
        status: u16,
    ) {
        lock(&self.log).push(TokenLog {
            method: req.method.clone(),
            account: account.to_string(),
            scopes: scopes.to_vec(),
            granted,
            status,
        });
    }

    fn handle(&self, req: &Request) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/healthz") => Response::json(200, &json!({"ok": true})),
            ("GET", "/token") => {
                let scopes: Vec<String> = req
                    .query_all("scope")
                    .iter()
                    .flat_map(|s| s.split(' '))
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                let account = match basic_credentials(req.header("authorization")) {
                    Some((u, p)) if self.check_user(&u, &p) => u,
                    Some((u, _)) => return self.unauthorized(req, &u, &scopes),
                    None => String::new(),
                };
                let service = req.query("service").unwrap_or("").to_string();
                let offline = req.query("offline_token") == Some("true");
                self.issue(req, &account, &scopes, &service, offline)
            }
            ("POST", "/token") => {
                let form = parse_query(&String::from_utf8_lossy(&req.body));
                let get = |k: &str| {
                    form.iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let scopes: Vec<String> = get("scope")
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                let account = match get("grant_type").as_str() {
                    "password" => {
                        if !self.check_user(&get("username"), &get("password")) {
                            return self.unauthorized(req, &get("username"), &scopes);
                        }
                        get("username")
                    }
                    "refresh_token" => {
                        match lock(&self.refresh).get(&get("refresh_token")).cloned() {
                            Some(a) => a,
                            None => return self.unauthorized(req, "", &scopes),
                        }
                    }
                    _ => {
                        self.log(req, "", &scopes, Vec::new(), 400);
                        return Response::json(400, &json!({"error": "unsupported_grant_type"}));
                    }
                };
                // OAuth2 clients always get a refresh token back (the POST flow exists for it).
                self.issue(req, &account, &scopes, &get("service"), true)
            }
            _ => Response::error(404, "NOT_FOUND", "unknown path"),
        }
    }

    fn unauthorized(&self, req: &Request, account: &str, scopes: &[String]) -> Response {
        self.log(req, account, scopes, Vec::new(), 401);
        Response::error(401, "UNAUTHORIZED", "invalid username or password")
            .header("WWW-Authenticate", "Basic realm=\"token-server\"")
    }

    fn issue(
        &self,
        req: &Request,
        account: &str,
        scopes: &[String],
        service: &str,
        refresh: bool,
    ) -> Response {
        let access: Vec<(String, String, Vec<String>)> = scopes
            .iter()
            .filter_map(|s| parse_scope(s))
            .map(|(k, n, acts)| {
                let got = self.allowed(account, &k, &n, &acts);
                (k, n, got)
            })
            .collect();
        let (token, now) = self.jwt(account, service, &access);
        let mut body = json!({
            "token": token,
            "access_token": token,
            "expires_in": self.opts.expires_in,
            "issued_at": rfc3339(now),
        });
        if refresh && !account.is_empty() {
            let rt = random_hex();
            lock(&self.refresh).insert(rt.clone(), account.to_string());
            body["refresh_token"] = json!(rt);
        }
        self.log(req, account, scopes, access, 200);
        Response::json(200, &body)
    }
}

impl TokenServer {
    /// Generates a key and certificate and starts serving; `None` (after a note) when `openssl`
    /// is missing outside CI.
    pub fn start(opts: TokenOptions) -> Option<TokenServer> {
        let openssl = tool("openssl")?;
        let dir = TempDir::with_prefix("regclient-token");
        let run = |args: &[&str]| {
            ok(Command::new(&openssl).current_dir(dir.path()).args(args));
        };
        // genpkey writes PKCS#8, the format ring loads.
        run(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "signing.key",
        ]);
        run(&[
            "req",
            "-x509",
            "-key",
            "signing.key",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=regclient test token signer",
            "-out",
            "signing.crt",
        ]);
        run(&[
            "x509",
            "-in",
            "signing.crt",
            "-outform",
            "der",
            "-out",
            "signing.der",
        ]);
        let key_pem = fs::read_to_string(dir.join("signing.key")).expect("read signing.key");
        let pkcs8 = pem_block(&key_pem, "PRIVATE KEY").expect("PKCS#8 PEM block in signing.key");
        let key = RsaKeyPair::from_pkcs8(&pkcs8).expect("ring accepts the RSA key");
        let cert_der = fs::read(dir.join("signing.der")).expect("read signing.der");
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [base64(&cert_der)]});
        let state = Arc::new(State {
            opts,
            signer: Signer {
                key,
                rng: SystemRandom::new(),
                header_b64: base64url(header.to_string().as_bytes()),
            },
            refresh: Mutex::new(Default::default()),
            log: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let server = HttpServer::start(Arc::new(move |req| st.handle(req)));
        Some(TokenServer {
            state,
            server,
            cert: dir.join("signing.crt"),
            _dir: dir,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.host()
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.host())
    }

    pub fn service(&self) -> &str {
        &self.state.opts.service
    }

    pub fn issuer(&self) -> &str {
        &self.state.opts.issuer
    }

    /// PEM certificate the registry must trust (`rootcertbundle`).
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The `auth:` block for a docker-registry `config.yml` (top level, two-space indents).
    pub fn registry_auth_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            self.realm(),
            self.service(),
            self.issuer(),
            self.cert.display()
        )
    }

    /// Every token request so far.
    pub fn requests(&self) -> Vec<TokenLog> {
        lock(&self.state.log).clone()
    }
}
