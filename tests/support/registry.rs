//! Real `docker-registry` processes on loopback for integration tests: plain HTTP, TLS with a
//! throw-away CA, and htpasswd basic auth. Each instance gets a free port and its own storage
//! under a [`TempDir`], and is killed when dropped.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{ok, tool, TempDir};

/// How a registry is set up.
#[derive(Default, Clone)]
pub struct Options {
    /// Serve HTTPS with a certificate for 127.0.0.1/localhost signed by a fresh CA.
    pub tls: bool,
    /// `user:password` pairs for htpasswd basic auth.
    pub htpasswd: Vec<(String, String)>,
    /// Token auth: the `auth:` block from [`super::token::TokenServer::registry_auth_yaml`].
    /// Mutually exclusive with `htpasswd`.
    pub token: Option<String>,
}

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// PEM of the CA when TLS is on.
    pub ca_pem: Option<String>,
    /// Path of the CA file when TLS is on.
    pub ca_file: Option<PathBuf>,
    /// The access log (one line per request).
    pub log: PathBuf,
    child: Child,
    dir: TempDir,
}

fn free_port() -> u16 {
    // Bind port 0 and release it: the kernel hands out a port nobody uses right now.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Registry {
    /// Starts a registry, or returns `None` (after a note) when `docker-registry` is missing
    /// outside CI.
    pub fn start(opts: Options) -> Option<Registry> {
        let bin = tool("docker-registry")?;
        let dir = TempDir::with_prefix("regclient-registry");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let data = dir.join("data");
        fs::create_dir_all(&data).expect("data dir");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: regclient-test\n",
            data.display()
        );
        let (mut ca_pem, mut ca_file) = (None, None);
        if opts.tls {
            let openssl = tool("openssl")?;
            let tls = dir.join("tls");
            fs::create_dir_all(&tls).expect("tls dir");
            let run = |args: &[&str]| {
                ok(Command::new(&openssl).current_dir(&tls).args(args));
            };
            run(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-sha256",
                "-days",
                "2",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=regclient test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-sha256",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ]);
            fs::write(
                tls.join("server.ext"),
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
            )
            .expect("server.ext");
            run(&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-sha256",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ]);
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                tls.join("server.crt").display(),
                tls.join("server.key").display()
            ));
            ca_pem = Some(fs::read_to_string(tls.join("ca.crt")).expect("ca.crt"));
            ca_file = Some(tls.join("ca.crt"));
        }
        if !opts.htpasswd.is_empty() {
            let htpasswd = tool("htpasswd")?;
            let file = dir.join("htpasswd");
            fs::write(&file, "").expect("htpasswd file");
            for (u, p) in &opts.htpasswd {
                ok(Command::new(&htpasswd).arg("-Bb").arg(&file).arg(u).arg(p));
            }
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: regclient-test\n    path: {}\n",
                file.display()
            ));
        }
        if let Some(yaml) = &opts.token {
            assert!(
                opts.htpasswd.is_empty(),
                "token and htpasswd auth are exclusive"
            );
            cfg.push_str(yaml);
        }
        let cfg_path = dir.join("config.yml");
        fs::write(&cfg_path, cfg).expect("config.yml");
        let log = dir.join("registry.log");
        let log_file = fs::File::create(&log).expect("log file");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log clone"))
            .stderr(log_file)
            .spawn()
            .expect("spawn docker-registry");
        let mut reg = Registry {
            host,
            ca_pem,
            ca_file,
            log,
            child,
            dir,
        };
        reg.wait_ready();
        Some(reg)
    }

    /// Waits (bounded) until the port accepts connections.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "docker-registry exited ({status}): {}",
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            // connect_timeout blocks for real; it is the wait, not a sleep.
            if TcpStream::connect_timeout(
                &self.host.parse().expect("socket addr"),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        panic!("docker-registry on {} did not start within 30 s", self.host);
    }

    /// Storage root (to corrupt or inspect content).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Number of HTTP requests in the access log so far (lines with `"METHOD /v2/`).
    pub fn request_count(&self) -> usize {
        count_requests(&fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// The log once every request made before this call has been written to it.
    ///
    /// The registry writes an access-log line after answering, so a client that has just exited
    /// may be ahead of the log. This sends a marker request (outside `/v2/`, so it is not counted
    /// by [`Registry::request_count`]) and waits, bounded, until its line shows up.
    pub fn settled_log(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let marker = format!(
            "/regclient-test-marker-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("{scheme}://{}{marker}", self.host);
        agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("marker request {url}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains(&format!("\"GET {marker} ")) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "marker {marker} never reached the access log of {}",
                self.host
            );
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// [`Registry::request_count`] once the log has caught up (see [`Registry::settled_log`]).
    pub fn settled_request_count(&self) -> usize {
        count_requests(&self.settled_log())
    }
}

/// Lines of an access log that are `/v2/` API requests.
pub fn count_requests(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains("\"GET /v2")
                || l.contains("\"HEAD /v2")
                || l.contains("\"PUT /v2")
                || l.contains("\"POST /v2")
                || l.contains("\"PATCH /v2")
                || l.contains("\"DELETE /v2")
        })
        .count()
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
