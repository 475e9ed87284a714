//! Real `docker-registry` processes on loopback for integration tests: plain HTTP, TLS with a
//! throw-away CA, and htpasswd basic auth. Each instance gets a free port and its own storage
//! under a [`TempDir`], and is killed when dropped.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ok, tool, TempDir};

/// How a registry is set up.
#[derive(Default, Clone)]
pub struct Options {
    /// Serve HTTPS with a certificate for 127.0.0.1/localhost signed by a fresh CA.
    pub tls: bool,
    /// `user:password` pairs for htpasswd basic auth.
    pub htpasswd: Vec<(String, String)>,
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
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
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
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
