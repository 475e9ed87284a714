//! The docker credential-helper protocol (`docker-credential-<name> get|list`).
//!
//! Running the program is behind the [`Runner`] trait so the protocol is tested with a fake and
//! the real [`ProcessRunner`] stays small. Helper output holds secrets: it is bounded, never
//! quoted in errors, and [`HelperCred`]'s `Debug` hides the secret.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::host::Host;
use crate::auth::Credential;
use crate::error::{Error, ErrorKind, Result};

/// Largest helper output accepted.
pub const MAX_HELPER_OUTPUT: usize = 1 << 20;
/// How much of a failing helper's stderr goes into the error.
const MAX_ERROR_TEXT: usize = 1024;
/// The `Username` a helper returns for an identity token.
pub const TOKEN_USER: &str = "<token>";

/// Runs a helper program with one argument and stdin, returning its stdout.
pub trait Runner {
    /// Runs `program arg` with `stdin`; a non-zero exit is an error.
    fn run(&self, program: &str, arg: &str, stdin: &[u8]) -> Result<Vec<u8>>;
}

/// Runs helpers as child processes, found through `PATH`.
#[derive(Debug, Clone)]
pub struct ProcessRunner {
    path: Option<OsString>,
    max_output: usize,
    timeout: Duration,
}

impl Default for ProcessRunner {
    fn default() -> Self {
        ProcessRunner::new()
    }
}

impl ProcessRunner {
    /// Helpers run with the inherited environment, 1 MiB output cap, 2 minute timeout.
    pub fn new() -> ProcessRunner {
        ProcessRunner {
            path: None,
            max_output: MAX_HELPER_OUTPUT,
            timeout: Duration::from_secs(120),
        }
    }

    /// Uses this `PATH` (from the caller's environment snapshot) to find and run helpers.
    pub fn with_path(mut self, path: impl Into<OsString>) -> ProcessRunner {
        self.path = Some(path.into());
        self
    }

    /// Changes the output cap.
    pub fn with_max_output(mut self, max: usize) -> ProcessRunner {
        self.max_output = max;
        self
    }

    /// Changes how long a helper may run before it is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> ProcessRunner {
        self.timeout = timeout;
        self
    }
}

/// Reads at most `max` bytes; sets `too_big` and stops when there is more.
fn read_bounded(r: Option<impl Read>, max: usize, too_big: &AtomicBool) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.take(max as u64 + 1).read_to_end(&mut buf);
        if buf.len() > max {
            buf.truncate(max);
            too_big.store(true, Ordering::Relaxed);
        }
    }
    buf
}

impl Runner for ProcessRunner {
    fn run(&self, program: &str, arg: &str, input: &[u8]) -> Result<Vec<u8>> {
        let mut cmd = Command::new(program);
        cmd.arg(arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = &self.path {
            cmd.env("PATH", p);
        }
        let mut child = cmd.spawn().map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::Io
            };
            Error::new(
                kind,
                format!("credential helper {program} not runnable: {e}"),
            )
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let too_big = AtomicBool::new(false);
        let (status, out, err) = std::thread::scope(|s| {
            s.spawn(move || {
                // A helper that exits without reading stdin closes the pipe; that is its call.
                if let Some(mut w) = stdin {
                    let _ = w.write_all(input);
                }
            });
            let out = s.spawn(|| read_bounded(stdout, self.max_output, &too_big));
            let err = s.spawn(|| read_bounded(stderr, MAX_ERROR_TEXT, &AtomicBool::new(false)));
            let deadline = Instant::now() + self.timeout;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(st)) => break Ok(st),
                    Ok(None) if too_big.load(Ordering::Relaxed) || Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(if too_big.load(Ordering::Relaxed) {
                            Error::new(
                                ErrorKind::SizeLimit,
                                format!("credential helper {program} output too large"),
                            )
                        } else {
                            Error::new(
                                ErrorKind::Other,
                                format!("credential helper {program} timed out"),
                            )
                        });
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => {
                        break Err(Error::io(
                            e,
                            format!("waiting for credential helper {program}"),
                        ))
                    }
                }
            };
            (
                status,
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default(),
            )
        });
        let status = status?;
        if too_big.load(Ordering::Relaxed) {
            return Err(Error::new(
                ErrorKind::SizeLimit,
                format!("credential helper {program} output too large"),
            ));
        }
        if !status.success() {
            // Helpers report "credentials not found" on stdout or stderr; only a failure's text
            // is shown, never a successful answer.
            let mut text = String::from_utf8_lossy(&err).trim().to_string();
            if text.is_empty() && !out.starts_with(b"{") {
                text = String::from_utf8_lossy(&out[..out.len().min(MAX_ERROR_TEXT)])
                    .trim()
                    .to_string();
            }
            let kind = if text.contains("credentials not found") {
                ErrorKind::NotFound
            } else {
                ErrorKind::Other
            };
            return Err(Error::new(
                kind,
                format!("credential helper {program} {arg} failed ({status}): {text}"),
            ));
        }
        Ok(out)
    }
}

/// A helper's answer to `get`. `Debug` hides the secret.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
pub struct HelperCred {
    /// The server the credential is for.
    #[serde(rename = "ServerURL", default)]
    pub server_url: String,
    /// User name, or `<token>` when the secret is an identity token.
    #[serde(rename = "Username", default)]
    pub username: String,
    /// Password or identity token.
    #[serde(rename = "Secret", default)]
    pub secret: String,
}

impl fmt::Debug for HelperCred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelperCred")
            .field("server_url", &self.server_url)
            .field("username", &self.username)
            .field(
                "secret",
                &if self.secret.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

impl HelperCred {
    /// As a credential: `<token>` users become identity tokens.
    pub fn credential(&self) -> Credential {
        if self.username == TOKEN_USER {
            Credential {
                token: self.secret.clone(),
                ..Credential::default()
            }
        } else {
            Credential {
                user: self.username.clone(),
                pass: self.secret.clone(),
                token: String::new(),
            }
        }
    }
}

fn invalid_output(helper: &str, op: &str, e: &serde_json::Error) -> Error {
    // The position only: serde messages can quote values, and values here are secrets.
    Error::new(
        ErrorKind::Parse,
        format!(
            "credential helper {helper} {op}: invalid JSON at line {} column {}",
            e.line(),
            e.column()
        ),
    )
}

/// `helper get` for `server` (sent on stdin without a newline).
pub fn get(runner: &dyn Runner, helper: &str, server: &str) -> Result<HelperCred> {
    let out = runner.run(helper, "get", server.as_bytes())?;
    serde_json::from_slice(&out).map_err(|e| invalid_output(helper, "get", &e))
}

/// `helper list`: server URL → user name.
pub fn list(runner: &dyn Runner, helper: &str) -> Result<BTreeMap<String, String>> {
    let out = runner.run(helper, "list", b"")?;
    serde_json::from_slice(&out).map_err(|e| invalid_output(helper, "list", &e))
}

/// The credential to use for `host`: from its helper when it has one (asked with
/// [`Host::cred_host`]), else the stored login.
pub fn host_credential(runner: &dyn Runner, host: &Host) -> Result<Credential> {
    if host.cred_helper.is_empty() {
        return Ok(host.credential());
    }
    get(runner, &host.cred_helper, host.cred_host()).map(|c| c.credential())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Answers from a table keyed by `program arg stdin`, recording calls.
    struct Fake {
        answers: BTreeMap<String, Result<Vec<u8>>>,
        calls: RefCell<Vec<String>>,
    }

    impl Fake {
        fn new(answers: &[(&str, Result<&str>)]) -> Fake {
            Fake {
                answers: answers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone().map(|s| s.as_bytes().to_vec())))
                    .collect(),
                calls: RefCell::new(Vec::new()),
            }
        }
    }

    impl Runner for Fake {
        fn run(&self, program: &str, arg: &str, stdin: &[u8]) -> Result<Vec<u8>> {
            let key = format!("{program} {arg} {}", String::from_utf8_lossy(stdin));
            self.calls.borrow_mut().push(key.clone());
            self.answers.get(&key).cloned().unwrap_or_else(|| {
                Err(Error::new(
                    ErrorKind::NotFound,
                    format!("no such helper: {program}"),
                ))
            })
        }
    }

    #[test]
    fn get_table() {
        let fake = Fake::new(&[
            (
                "docker-credential-a get reg.example",
                Ok(r#"{"ServerURL":"reg.example","Username":"u","Secret":"p"}"#),
            ),
            (
                "docker-credential-a get tok.example",
                Ok(r#"{"ServerURL":"tok.example","Username":"<token>","Secret":"idt"}"#),
            ),
            (
                "docker-credential-a get bad.example",
                Ok(r#"{"Username":"u","Secret":12345"#),
            ),
            (
                "docker-credential-a get https://index.docker.io/v1/",
                Ok(r#"{"ServerURL":"https://index.docker.io/v1/","Username":"hub","Secret":"hp"}"#),
            ),
            (
                "docker-credential-a get http://insecure.example:5000/",
                Ok(r#"{"Username":"h","Secret":"hp2"}"#),
            ),
        ]);
        let cases = [
            ("reg.example", "u", "p", ""),
            ("tok.example", "", "", "idt"),
            ("https://index.docker.io/v1/", "hub", "hp", ""),
            ("http://insecure.example:5000/", "h", "hp2", ""),
        ];
        for (server, u, p, t) in cases {
            let c = get(&fake, "docker-credential-a", server)
                .unwrap()
                .credential();
            assert_eq!(
                (c.user.as_str(), c.pass.as_str(), c.token.as_str()),
                (u, p, t),
                "{server}"
            );
        }
        let e = get(&fake, "docker-credential-a", "bad.example").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(!e.to_string().contains("12345"), "{e}");
        let e = get(&fake, "docker-credential-missing", "reg.example").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let hc = get(&fake, "docker-credential-a", "reg.example").unwrap();
        assert!(!format!("{hc:?}").contains("\"p\""));
    }

    #[test]
    fn host_credential_uses_cred_host() {
        let fake = Fake::new(&[
            (
                "docker-credential-a get https://index.docker.io/v1/",
                Ok(r#"{"Username":"hub","Secret":"hp"}"#),
            ),
            (
                "docker-credential-a get reg.example",
                Ok(r#"{"Username":"u","Secret":"p"}"#),
            ),
        ]);
        let mut hub = Host::new_name("docker.io");
        hub.cred_helper = "docker-credential-a".into();
        assert_eq!(host_credential(&fake, &hub).unwrap().user, "hub");
        let mut reg = Host::new_name("reg.example");
        reg.cred_helper = "docker-credential-a".into();
        assert_eq!(host_credential(&fake, &reg).unwrap().pass, "p");
        let plain = Host {
            user: "x".into(),
            pass: "y".into(),
            ..Host::new_name("r")
        };
        assert_eq!(host_credential(&fake, &plain).unwrap().user, "x");
        assert_eq!(fake.calls.borrow().len(), 2);
    }

    #[test]
    fn list_parses() {
        let fake = Fake::new(&[(
            "docker-credential-s list ",
            Ok(r#"{"https://index.docker.io/v1/":"hub","reg.example":"u"}"#),
        )]);
        let l = list(&fake, "docker-credential-s").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l["reg.example"], "u");
    }

    #[cfg(unix)]
    #[test]
    fn real_process_helper() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("regclient-helper-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = r#"#!/bin/sh
case "$1" in
get)
  read -r server || true
  case "$server" in
    reg.example) printf '{"ServerURL":"%s","Username":"u","Secret":"s3cr3t"}' "$server" ;;
    tok.example) printf '{"ServerURL":"%s","Username":"<token>","Secret":"idtok"}' "$server" ;;
    big.example) yes aaaaaaaaaaaaaaaa | head -c 200000 ;;
    *) echo "credentials not found in native keychain" >&2; exit 1 ;;
  esac ;;
list) printf '{"reg.example":"u"}' ;;
*) echo "unknown op" >&2; exit 2 ;;
esac
"#;
        let path = dir.join("docker-credential-test");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let runner = ProcessRunner::new().with_path(format!("{}:/usr/bin:/bin", dir.display()));
        let c = get(&runner, "docker-credential-test", "reg.example").unwrap();
        assert_eq!(
            (
                c.server_url.as_str(),
                c.username.as_str(),
                c.secret.as_str()
            ),
            ("reg.example", "u", "s3cr3t")
        );
        assert_eq!(
            get(&runner, "docker-credential-test", "tok.example")
                .unwrap()
                .credential()
                .token,
            "idtok"
        );
        assert_eq!(
            list(&runner, "docker-credential-test").unwrap()["reg.example"],
            "u"
        );
        let e = get(&runner, "docker-credential-test", "other.example").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("native keychain"), "{e}");
        let e = runner
            .run("docker-credential-test", "store", b"")
            .unwrap_err();
        assert!(e.to_string().contains("unknown op"), "{e}");
        let small = runner.clone().with_max_output(1000);
        assert_eq!(
            small
                .run("docker-credential-test", "get", b"big.example")
                .unwrap_err()
                .kind(),
            ErrorKind::SizeLimit
        );
        let e = runner
            .run("docker-credential-nonexistent", "get", b"x")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
