//! Runs the regctl binary: argument handling, help, and commands against copies of
//! `testdata/testrepo` (never the committed layout itself, since writes garbage-collect).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

const HELLO_SHA256: &str =
    "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
/// Generous: a debug build copying a layout takes well under a second.
const TIMEOUT: Duration = Duration::from_secs(120);

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        &self.stdout
    }

    #[track_caller]
    fn fails_with(&self, text: &str) {
        assert_eq!(
            self.code, 1,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}: {}",
            self.stderr
        );
    }
}

fn regctl(args: &[&str]) -> Out {
    regctl_in(args, None)
}

/// Runs regctl with `stdin`, waiting at most [`TIMEOUT`].
fn regctl_in(args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regctl"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting regctl");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(TIMEOUT) {
        Ok(out) => out.expect("waiting for regctl"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("regctl {args:?} did not finish within {TIMEOUT:?}");
        }
    };
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "regctl-cli-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, sub: &str) -> String {
        self.0.join(sub).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("reading {from:?}: {e}")) {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The digest of the `os/arch` entry of the index at `r`.
fn child_digest(r: &str, platform: &str) -> String {
    let o = regctl(&["manifest", "get", "--format", "body", r]);
    let v: serde_json::Value = serde_json::from_str(o.ok()).expect("index JSON");
    let (os, arch) = platform.split_once('/').unwrap();
    v["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .find(|d| d["platform"]["os"] == os && d["platform"]["architecture"] == arch)
        .and_then(|d| d["digest"].as_str())
        .unwrap_or_else(|| panic!("no {platform} in {r}"))
        .to_string()
}

/// A private copy of `testdata/testrepo`; returns the temp dir and `ocidir://<copy>`.
fn testrepo() -> (TempDir, String) {
    let t = TempDir::new("repo");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/testrepo");
    copy_dir(&src, &t.0.join("testrepo"));
    let r = format!("ocidir://{}", t.path("testrepo"));
    (t, r)
}

#[test]
fn help_for_commands() {
    let root = regctl(&["--help"]);
    assert!(root.ok().contains("Commands:"), "{}", root.stdout);
    for cmd in ["tag", "manifest", "image", "artifact", "blob"] {
        assert!(root.stdout.contains(cmd), "{cmd} missing from root help");
    }
    let h = regctl(&["tag", "ls", "--help"]);
    let s = h.ok();
    assert!(s.contains("regctl tag ls <repository>"), "{s}");
    assert!(
        s.contains("--include RE") && s.contains("--exclude RE"),
        "{s}"
    );
    assert!(s.contains("ls, list"), "{s}");
    let h = regctl(&["image", "copy", "-h"]);
    let s = h.ok();
    assert!(s.contains("--referrers-src REF"), "{s}");
    assert!(!s.contains("--platforms"), "hidden flag shown: {s}");
    let h = regctl(&["help", "artifact", "get"]);
    assert!(h.ok().contains("--subject REF"), "{}", h.stdout);
    let h = regctl(&["manifest", "rm", "-h"]);
    assert!(h.ok().contains("--force-tag-dereference"), "{}", h.stdout);
    // A group without a subcommand shows its help.
    let h = regctl(&["blob"]);
    assert!(h.ok().contains("Commands:"), "{}", h.stdout);
}

#[test]
fn usage_errors() {
    regctl(&["tag", "ls", "--bogus", "x"]).fails_with("--bogus");
    regctl(&["tag", "ls"]).fails_with("<repository>");
    regctl(&["tag", "ls", "a", "b"]).fails_with("too many arguments");
    regctl(&["frobnicate"]).fails_with("unknown command \"frobnicate\"");
    regctl(&["tag", "ls", "--limit"]).fails_with("--limit");
    regctl(&["-v", "loud", "version"]).fails_with("--verbosity");
    regctl(&["artifact", "get"]).fails_with("either a reference or subject must be provided");
    regctl(&["--host", "reg=x,tls=maybe", "version"]).fails_with("tls");
}

#[test]
fn errors_never_show_passwords() {
    let o = regctl(&[
        "--host",
        "reg=x,pass=hunter2,bogus=1",
        "-v",
        "debug",
        "version",
    ]);
    assert_eq!(o.code, 1);
    assert!(!o.stderr.contains("hunter2"), "{}", o.stderr);
}

#[test]
fn host_password_never_logged() {
    let o = regctl(&[
        "-v",
        "debug",
        "--host",
        "reg=r.example,user=bob,pass=hunter2",
        "ref",
        "alpine",
    ]);
    assert!(o.stderr.contains("level=debug"), "{}", o.stderr);
    assert!(o.stderr.contains("user=bob"), "{}", o.stderr);
    assert!(!o.stderr.contains("hunter2"), "{}", o.stderr);
    let o = regctl(&[
        "--logopt",
        "json",
        "-v",
        "debug",
        "--host",
        "reg=r.example,pass=hunter2",
        "ref",
        "alpine",
    ]);
    assert!(!o.stderr.contains("hunter2"), "{}", o.stderr);
    let line = o.stderr.lines().next().expect("a log line");
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(v["level"], "DEBUG");
    assert_eq!(v["reg"], "r.example");
}

#[test]
fn closed_stdout_is_success() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regctl"))
        .args(["completion", "bash"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(TIMEOUT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("regctl did not finish");
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ref_parses() {
    let o = regctl(&["ref", "nginx"]);
    assert_eq!(o.ok(), "docker.io/library/nginx:latest\n");
    regctl(&["ref", "invalid*ref"]).fails_with("invalid reference");
}

#[test]
fn digest_of_stdin() {
    let o = regctl_in(&["digest"], Some(b"hello world"));
    assert_eq!(o.ok().trim(), HELLO_SHA256);
    let o = regctl_in(&["digest", "--algorithm", "sha512"], Some(b"hello world"));
    assert!(
        o.ok()
            .starts_with("sha512:309ecc489c12d6eb4cc40f50c902f2b4"),
        "{}",
        o.stdout
    );
    regctl_in(&["digest", "--algorithm", "md5"], Some(b"x")).fails_with("md5");
}

#[test]
fn completion_scripts() {
    let o = regctl(&["completion", "bash"]);
    assert!(o.ok().contains("complete -o default -F _regctl regctl"));
    assert!(regctl(&["completion", "fish"])
        .ok()
        .contains("complete -c regctl"));
    regctl(&["completion", "tcsh"]).fails_with("tcsh");
}

#[test]
fn invalid_reference_errors() {
    regctl(&["manifest", "get", "invalid*ref"]).fails_with("invalid reference");
    regctl(&["tag", "ls", "ocidir://bad*name"]).fails_with("invalid reference");
}

// The tests below need the layout scheme, template engine and copy engine.

#[test]
fn version_prints() {
    let o = regctl(&["version", "--format", "{{.VCSTag}}"]);
    assert!(!o.ok().trim().is_empty());
    assert!(regctl(&["version"]).ok().contains("VCSTag"));
}

#[test]
fn tag_list() {
    let (_t, repo) = testrepo();
    let o = regctl(&["tag", "ls", &repo]);
    assert!(o.ok().contains("v1\nv2\nv3"), "{}", o.stdout);
    let o = regctl(&[
        "tag",
        "ls",
        "--include",
        "sha256.*",
        "--exclude",
        r".*\.meta",
        &repo,
    ]);
    let s = o.ok();
    assert!(!s.is_empty());
    for line in s.lines() {
        assert!(
            line.starts_with("sha256-") && !line.ends_with(".meta"),
            "{line}"
        );
    }
    let o = regctl(&["tag", "ls", "--include", "v.", &repo]);
    assert_eq!(o.ok(), "v1\nv2\nv3\n");
    let o = regctl(&["tag", "ls", "--format", "raw", &repo]);
    assert!(o.ok().contains("application/vnd.oci.image.index.v1+json"));
}

#[test]
fn tag_delete() {
    let (_t, repo) = testrepo();
    let d = regctl(&["manifest", "head", &format!("{repo}:v1")]);
    let digest = d.ok().trim().to_string();
    regctl(&["tag", "rm", &format!("{repo}@{digest}")]).fails_with("missing tag");
    regctl(&["tag", "rm", &format!("{repo}:v1")]).ok();
    regctl(&["tag", "rm", &format!("{repo}:v1")]).fails_with("not found");
    regctl(&["tag", "rm", "--ignore-missing", &format!("{repo}:v1")]).ok();
    let o = regctl(&["tag", "ls", &repo]);
    assert!(!o.ok().lines().any(|l| l == "v1"), "{}", o.stdout);
}

#[test]
fn manifest_head_and_get() {
    let (_t, repo) = testrepo();
    let o = regctl(&["manifest", "head", &format!("{repo}:v1")]);
    assert!(o.ok().starts_with("sha256:"), "{}", o.stdout);
    let o = regctl(&["image", "digest", &format!("{repo}:v1")]);
    assert!(o.ok().starts_with("sha256:"), "{}", o.stdout);
    let o = regctl(&[
        "manifest",
        "head",
        "-p",
        "linux/amd64",
        &format!("{repo}:v1"),
    ]);
    assert_eq!(
        o.ok().trim(),
        child_digest(&format!("{repo}:v1"), "linux/amd64")
    );
    regctl(&[
        "manifest",
        "head",
        "-p",
        "linux/unknown",
        &format!("{repo}:v1"),
    ])
    .fails_with("not found");
    regctl(&["manifest", "head", &format!("{repo}:missing")]).fails_with("not found");
    let o = regctl(&["manifest", "get", "--format", "body", &format!("{repo}:v1")]);
    assert!(o.ok().contains("\"manifests\""), "{}", o.stdout);
    regctl(&[
        "manifest",
        "get",
        "--require-list",
        "-p",
        "linux/amd64",
        &format!("{repo}:v1"),
    ])
    .fails_with("--require-list");
}

#[test]
fn manifest_delete_needs_digest() {
    let (_t, repo) = testrepo();
    regctl(&["manifest", "rm", &format!("{repo}:a2")]).fails_with("missing digest");
    regctl(&[
        "manifest",
        "rm",
        "--force-tag-dereference",
        &format!("{repo}:a2"),
    ])
    .ok();
    regctl(&["manifest", "get", &format!("{repo}:a2")]).fails_with("not found");
    regctl(&[
        "manifest",
        "rm",
        "--force-tag-dereference",
        "--ignore-missing",
        &format!("{repo}:a2"),
    ])
    .ok();
}

#[test]
fn image_copy_between_layouts() {
    let (t, repo) = testrepo();
    let target = format!("ocidir://{}", t.path("copy"));
    let o = regctl(&[
        "image",
        "copy",
        &format!("{repo}:v1"),
        &format!("{target}:v1"),
    ]);
    assert_eq!(o.ok(), format!("{target}:v1\n"));
    let o = regctl(&["tag", "ls", &target]);
    assert!(o.ok().lines().any(|l| l == "v1"), "{}", o.stdout);
    let src = regctl(&["manifest", "head", &format!("{repo}:v1")]);
    let dst = regctl(&["manifest", "head", &format!("{target}:v1")]);
    assert_eq!(src.ok(), dst.ok());
    // Single platform: the target is the platform manifest.
    let o = regctl(&[
        "image",
        "copy",
        "-p",
        "linux/arm64",
        &format!("{repo}:v1"),
        &format!("{target}:arm"),
    ]);
    o.ok();
    let o = regctl(&["manifest", "head", &format!("{target}:arm")]);
    assert_eq!(
        o.ok().trim(),
        child_digest(&format!("{repo}:v1"), "linux/arm64")
    );
    regctl(&[
        "image",
        "copy",
        "--referrers-src",
        &repo,
        &format!("{repo}:v1"),
        &format!("{target}:x"),
    ])
    .fails_with("--referrers");
}

#[test]
fn blob_round_trip() {
    let (_t, repo) = testrepo();
    let o = regctl_in(&["blob", "put", &repo], Some(b"hello world"));
    assert_eq!(o.ok().trim(), HELLO_SHA256);
    let o = regctl(&["blob", "get", &repo, HELLO_SHA256]);
    assert_eq!(o.ok(), "hello world");
    let o = regctl(&["blob", "head", &repo, HELLO_SHA256]);
    assert!(!o.ok().is_empty());
    regctl(&["blob", "delete", &repo, HELLO_SHA256]).ok();
    regctl(&["blob", "get", &repo, HELLO_SHA256]).fails_with("not found");
    regctl_in(
        &["blob", "put", "--digest", HELLO_SHA256, &repo],
        Some(b"hello World"),
    )
    .fails_with("digest");
}

#[test]
fn blob_copy_to_new_layout() {
    let (t, repo) = testrepo();
    regctl_in(&["blob", "put", &repo], Some(b"hello world")).ok();
    let target = format!("ocidir://{}", t.path("blobs"));
    regctl(&["blob", "copy", &repo, &target, HELLO_SHA256]).ok();
    let o = regctl(&["blob", "get", &target, HELLO_SHA256]);
    assert_eq!(o.ok(), "hello world");
}

#[test]
fn artifact_get() {
    let (_t, repo) = testrepo();
    assert_eq!(
        regctl(&["artifact", "get", &format!("{repo}:a1")]).ok(),
        "eggs"
    );
    let o = regctl(&[
        "artifact",
        "get",
        "-m",
        "application/example.layer.2",
        &format!("{repo}:a3"),
    ]);
    assert_eq!(o.ok().trim(), "2");
    let o = regctl(&[
        "artifact",
        "get",
        "--file",
        "layer3.txt",
        &format!("{repo}:a3"),
    ]);
    assert_eq!(o.ok().trim(), "3");
    regctl(&["artifact", "get", &format!("{repo}:a3")])
        .fails_with("more than one matching layer found");
    regctl(&["artifact", "get", "--file", "nope", &format!("{repo}:a3")]).fails_with("not found");
    let o = regctl(&[
        "artifact",
        "get",
        "--subject",
        &format!("{repo}:v2"),
        "--filter-artifact-type",
        "application/example.sbom",
    ]);
    assert_eq!(o.ok(), "eggs");
    let o = regctl(&[
        "artifact",
        "get",
        "--filter-annotation",
        "type=sbom",
        &format!("{repo}:ai"),
    ]);
    assert_eq!(o.ok(), "eggs");
    let o = regctl(&[
        "artifact",
        "get",
        "--filter-annotation",
        "type=sbom",
        "--config",
        &format!("{repo}:ai"),
    ]);
    assert_eq!(o.ok().trim(), "{}");
    regctl(&[
        "artifact",
        "get",
        "--subject",
        &format!("{repo}:v3"),
        "--filter-artifact-type",
        "application/example.sbom",
    ])
    .fails_with("not found");
    let o = regctl(&[
        "artifact",
        "get",
        "--slow-referrers",
        "--subject",
        &format!("{repo}:v3"),
        "--filter-artifact-type",
        "application/example.sbom",
        "--filter-annotation",
        "type=eat",
    ]);
    assert_eq!(o.ok().trim(), "oatmeal");
}

#[test]
fn artifact_get_to_dir() {
    let (t, repo) = testrepo();
    let out = t.path("out");
    regctl(&["artifact", "get", "-o", &out, &format!("{repo}:a3")]).ok();
    for i in 1..=3 {
        let s = std::fs::read_to_string(t.0.join(format!("out/layer{i}.txt"))).unwrap();
        assert_eq!(s, format!("{i}\n"));
    }
}

#[test]
fn artifact_list_and_tree() {
    let (_t, repo) = testrepo();
    let o = regctl(&["artifact", "list", &format!("{repo}:v2")]);
    assert!(o.ok().contains("Referrers:"), "{}", o.stdout);
    let o = regctl(&[
        "artifact",
        "list",
        "--filter-artifact-type",
        "application/example.sbom",
        "--format",
        "{{ (index .Descriptors 0).ArtifactType }}",
        &format!("{repo}:v2"),
    ]);
    assert_eq!(o.ok().trim(), "application/example.sbom");
    regctl(&["artifact", "list"]).fails_with("<reference>");
    regctl(&["artifact", "list", &format!("{repo}:missing")]).fails_with("not found");
    let missing = format!("{repo}@sha256:{}", "0".repeat(64));
    regctl(&["artifact", "list", &missing]).fails_with("not found");
    regctl(&["artifact", "tree", &format!("{repo}:missing")]).fails_with("not found");
    let o = regctl(&["artifact", "tree", &format!("{repo}:v1")]);
    assert!(o.ok().contains("Children"), "{}", o.stdout);
    let o = regctl(&["artifact", "tree", &format!("{repo}:v2")]);
    assert!(o.ok().contains("Referrers"), "{}", o.stdout);
    regctl(&["artifact", "tree", &format!("{repo}:loop")]).fails_with("loop encountered");
    let o = regctl(&["artifact", "tree", "--digest-tags", &format!("{repo}:v1")]);
    assert!(o.ok().contains(".meta"), "{}", o.stdout);
}

#[test]
fn image_inspect() {
    let (_t, repo) = testrepo();
    let o = regctl(&[
        "image",
        "inspect",
        "--format",
        r#"{{ index .Config.Labels "version" }}"#,
        "-p",
        "linux/amd64",
        &format!("{repo}:v1"),
    ]);
    assert_eq!(o.ok().trim(), "1");
    regctl(&["image", "inspect", &format!("{repo}:a1")]).fails_with("artifact get --config");
}

/// A private copy of `testdata/external` next to a copy of the test repository.
fn external(t: &TempDir) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/external");
    copy_dir(&src, &t.0.join("external"));
    format!("ocidir://{}", t.path("external"))
}

#[test]
fn artifact_get_external_and_platform() {
    let (t, repo) = testrepo();
    let ext = external(&t);
    let o = regctl(&[
        "artifact",
        "get",
        "--subject",
        &format!("{repo}:v2"),
        "--external",
        &ext,
        "--sort-annotation",
        "preference",
    ]);
    assert_eq!(o.ok(), "bacon");
    let o = regctl(&[
        "artifact",
        "get",
        "--subject",
        &format!("{repo}:v2"),
        "--external",
        &ext,
        "--sort-annotation",
        "preference",
        "--sort-desc",
    ]);
    assert_eq!(o.ok(), "ham");
    regctl(&["artifact", "get", "--external", &ext, &format!("{repo}:a1")]).fails_with("--subject");
    let o = regctl(&[
        "artifact",
        "get",
        "--subject",
        &format!("{repo}:v2"),
        "-p",
        "linux/arm64",
        "--filter-artifact-type",
        "application/example.arms",
    ]);
    assert_eq!(o.ok(), "64 arms");
    regctl(&[
        "artifact",
        "get",
        "--latest",
        "--sort-annotation",
        "x",
        "--subject",
        &format!("{repo}:v2"),
    ])
    .fails_with("--latest");
}

#[test]
fn image_copy_with_referrers() {
    let (t, repo) = testrepo();
    let target = format!("ocidir://{}", t.path("copy"));
    regctl(&[
        "image",
        "copy",
        "--referrers",
        &format!("{repo}:v2"),
        &format!("{target}:v2"),
    ])
    .ok();
    let o = regctl(&[
        "artifact",
        "get",
        "--subject",
        &format!("{target}:v2"),
        "--filter-artifact-type",
        "application/example.sbom",
    ]);
    assert_eq!(o.ok(), "eggs");
    // Without --referrers they stay behind.
    regctl(&[
        "image",
        "copy",
        &format!("{repo}:v2"),
        &format!("{target}-plain:v2"),
    ])
    .ok();
    regctl(&[
        "artifact",
        "get",
        "--subject",
        &format!("{target}-plain:v2"),
        "--filter-artifact-type",
        "application/example.sbom",
    ])
    .fails_with("not found");
}

#[test]
fn manifest_put_round_trip() {
    let (_t, repo) = testrepo();
    let body = regctl(&["manifest", "get", "--format", "body", &format!("{repo}:v1")]);
    let body = body.ok().as_bytes().to_vec();
    let want = regctl(&["manifest", "head", &format!("{repo}:v1")]);
    let want = want.ok().trim().to_string();
    regctl_in(&["manifest", "put", &format!("{repo}:copy")], Some(&body)).ok();
    let got = regctl(&["manifest", "head", &format!("{repo}:copy")]);
    assert_eq!(got.ok().trim(), want);
    let o = regctl_in(&["manifest", "put", "--by-digest", &repo], Some(&body));
    assert_eq!(o.ok().trim(), want);
    regctl_in(
        &["manifest", "put", &format!("{repo}:bad")],
        Some(b"not json"),
    )
    .fails_with("JSON");
}
