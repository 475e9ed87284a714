//! Shared helpers for integration tests: temp dirs, fixture copies, running the binaries with a
//! bounded wait, and locating external tools.
//!
//! Each integration test crate includes this with `mod support;` and uses only part of it, hence
//! the crate-wide `dead_code` allowance.
#![allow(dead_code)]

pub mod fakereg;
pub mod gen;
pub mod registry;
pub mod token;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default limit for one command; generous for a loaded 2-core CI machine.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Root of the repository (the package directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Committed fixtures. Read-only by convention: copy before writing.
pub fn testdata() -> PathBuf {
    repo_root().join("testdata")
}

/// A unique directory under the system temp dir, removed (recursively) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        TempDir::with_prefix("regclient-test")
    }

    pub fn with_prefix(prefix: &str) -> TempDir {
        // pid + process-wide counter + time: unique across parallel tests and test binaries.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
            // create_dir (not _all) fails on collision, so two tests never share a dir.
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("create temp dir {}: {e}", path.display()),
            }
        }
        panic!("no free temp dir name under {}", base.display());
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join<P: AsRef<Path>>(&self, p: P) -> PathBuf {
        self.path.join(p)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Keep the dir for post-mortem when asked to.
        if std::env::var_os("KEEP_TEST_TMP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Recursively copies `src` into `dst` (created if missing). Symlinks are not expected in fixtures
/// and are copied as the files they point to.
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap_or_else(|e| panic!("create {}: {e}", dst.display()));
    let entries = fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    for entry in entries {
        let entry = entry.expect("dir entry");
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if from.is_dir() {
            copy_dir(&from, &to);
        } else {
            fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
        }
    }
}

/// A private, writable copy of `testdata/testrepo` at `<tmp>/testrepo`.
pub fn testrepo(tmp: &TempDir) -> PathBuf {
    let dst = tmp.join("testrepo");
    copy_dir(&testdata().join("testrepo"), &dst);
    dst
}

/// A private, writable copy of `testdata/external` at `<tmp>/external`.
pub fn external(tmp: &TempDir) -> PathBuf {
    let dst = tmp.join("external");
    copy_dir(&testdata().join("external"), &dst);
    dst
}

/// The `regctl` binary cargo built for this test run.
pub fn regctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_regctl"))
}

/// Runs `cmd` with no stdin and [`RUN_TIMEOUT`]; see [`run_with`].
pub fn run(cmd: &mut Command) -> Output {
    run_with(cmd, None, RUN_TIMEOUT)
}

/// Runs `cmd` feeding `input` on stdin.
pub fn run_input(cmd: &mut Command, input: &[u8]) -> Output {
    run_with(cmd, Some(input), RUN_TIMEOUT)
}

/// Runs `cmd`, collecting stdout and stderr; kills it and panics if it has not finished within
/// `limit`. The pipes are drained by threads so a chatty child cannot block on a full pipe, and
/// the deadline is enforced by waiting on their channel, not by polling.
pub fn run_with(cmd: &mut Command, input: Option<&[u8]>, limit: Duration) -> Output {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        let data = data.to_vec();
        // A writer thread, so a child that stops reading cannot block us before the deadline.
        thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    let pipes: [(bool, Option<Box<dyn Read + Send>>); 2] = [
        (
            true,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            false,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ];
    for (is_out, pipe) in pipes {
        let tx = tx.clone();
        let mut pipe = pipe.expect("piped");
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send((is_out, buf));
        });
    }
    drop(tx);
    let deadline = Instant::now() + limit;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, b)) => stdout = b,
            Ok((false, b)) => stderr = b,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "timed out after {limit:?}: {cmd:?}\nstdout so far: {}\nstderr so far: {}",
                    String::from_utf8_lossy(&stdout),
                    String::from_utf8_lossy(&stderr)
                );
            }
        }
    }
    let status: ExitStatus = child.wait().expect("wait for child");
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Panics with the command's output unless it succeeded; returns stdout as a string.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True when running under CI (`CI` set to anything but empty/`false`/`0`).
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !(v.is_empty() || v == "false" || v == "0"),
        Err(_) => false,
    }
}

/// Finds an executable on `PATH`. Missing tools skip a test locally (returns `None` after a note on
/// stderr) but fail it in CI, where `tests/run.sh` installs them.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    });
    if found.is_none() {
        if in_ci() {
            panic!("required tool {name:?} not found on PATH (CI is set)");
        }
        // Written to the real stderr: eprintln! would be captured and hidden for a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "note: {name} not found on PATH; skipping a test that needs it"
        );
    }
    found
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Proxy variables a test must not inherit (both spellings, like Go).
pub const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

/// `regctl` confined to `tmp`: `HOME`, `REGCTL_CONFIG` (`<tmp>/regctl.json`) and `DOCKER_CONFIG`
/// (`<tmp>/docker`) point inside it, and `DOCKER_AUTH_CONFIG`, `XDG_CONFIG_HOME` and the proxy
/// variables are removed, so the developer's own settings never leak into a test.
pub fn regctl_isolated(tmp: &TempDir) -> Command {
    let home = tmp.join("home");
    let _ = fs::create_dir_all(&home);
    let mut cmd = regctl();
    cmd.env("HOME", &home)
        .env("REGCTL_CONFIG", tmp.join("regctl.json"))
        .env("DOCKER_CONFIG", tmp.join("docker"))
        .env_remove("DOCKER_AUTH_CONFIG")
        .env_remove("XDG_CONFIG_HOME");
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    cmd
}

/// Writes regctl's config file for [`regctl_isolated`] (`<tmp>/regctl.json`).
pub fn write_regctl_config(tmp: &TempDir, config: &serde_json::Value) {
    fs::write(tmp.join("regctl.json"), config.to_string()).expect("write regctl.json");
}

/// Writes docker's `config.json` for [`regctl_isolated`] (`<tmp>/docker/config.json`).
pub fn write_docker_config(tmp: &TempDir, config: &serde_json::Value) {
    let dir = tmp.join("docker");
    fs::create_dir_all(&dir).expect("docker config dir");
    fs::write(dir.join("config.json"), config.to_string()).expect("write docker config.json");
}

/// Runs `cmd` and returns its output as strings `(exit code, stdout, stderr)`.
pub fn run_text(cmd: &mut Command) -> (i32, String, String) {
    let out = run(cmd);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `bin` (regsync, regbot) with HOME, DOCKER_CONFIG and the working directory inside `tmp`,
/// so the developer's docker logins never leak into a test.
pub fn tool_in(bin: &str, tmp: &TempDir) -> Command {
    let home = tmp.join("home");
    let _ = fs::create_dir_all(&home);
    let mut cmd = Command::new(bin);
    cmd.current_dir(tmp.path())
        .env("HOME", &home)
        .env("DOCKER_CONFIG", tmp.join("docker"))
        .env_remove("DOCKER_AUTH_CONFIG");
    cmd
}

/// `regsync` isolated in `tmp` (see [`tool_in`]).
pub fn regsync(tmp: &TempDir) -> Command {
    tool_in(env!("CARGO_BIN_EXE_regsync"), tmp)
}

/// `regbot` isolated in `tmp` (see [`tool_in`]).
pub fn regbot(tmp: &TempDir) -> Command {
    tool_in(env!("CARGO_BIN_EXE_regbot"), tmp)
}

/// Starts `<cmd> server` on config `cfg` with JSON debug logs on a piped stderr (the caller
/// must drain it).
pub fn spawn_server(mut cmd: Command, cfg: &Path) -> std::process::Child {
    cmd.args(["server", "-v", "debug", "--logopt", "json", "-c"])
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server")
}

/// Sorted tags of an OCI layout (empty when it does not exist).
pub fn layout_tags(dir: &Path) -> Vec<String> {
    let c = regclient::Client::new(Default::default());
    let r = regclient::Reference::parse(&format!("ocidir://{}", dir.display())).unwrap();
    let mut t = c
        .scheme(&r)
        .unwrap()
        .tag_list(&r, &regclient::scheme::TagOpts::default())
        .map(|l| l.tags)
        .unwrap_or_default();
    t.sort();
    t
}
