//! regctl write commands: `artifact put`, `index create|add|delete` and `repo copy`, on
//! copies of `testdata/testrepo` and against a real docker-registry.

mod support;

use std::fs;
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::registry::{Options, Registry};
use support::{regctl, run_with, testrepo, TempDir, RUN_TIMEOUT};

const WARN_DEFAULT_TYPE: &str = "using default value for artifact-type is not recommended";

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
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    #[track_caller]
    fn fails_with(&self, text: &str) {
        assert_ne!(
            self.code, 0,
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

fn out(o: Output) -> Out {
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs regctl in `dir` (so `ocidir://name` is relative to it), optionally feeding stdin.
fn rc(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut cmd = regctl();
    cmd.current_dir(dir).args(args);
    out(run_with(&mut cmd, stdin, RUN_TIMEOUT))
}

/// A temp dir holding a copy of the test layout as `ocidir://testrepo`.
fn setup() -> TempDir {
    let tmp = TempDir::new();
    testrepo(&tmp);
    tmp
}

fn raw_json(dir: &Path, r: &str) -> Value {
    let o = rc(dir, &["manifest", "get", r, "--format", "body"], None);
    serde_json::from_str(o.ok()).expect("manifest JSON")
}

fn digest_of(dir: &Path, r: &str, platform: Option<&str>) -> String {
    let mut args = vec!["manifest", "head", r];
    if let Some(p) = platform {
        args.extend(["--platform", p]);
    }
    rc(dir, &args, None).ok().trim().to_string()
}

fn tags(dir: &Path, repo: &str) -> Vec<String> {
    rc(dir, &["tag", "ls", repo], None)
        .ok()
        .lines()
        .map(str::to_string)
        .collect()
}

fn referrer_count(dir: &Path, r: &str, extra: &[&str]) -> usize {
    let mut args = vec!["artifact", "list", r, "--format", "{{len .Descriptors}}"];
    args.extend(extra);
    rc(dir, &args, None).ok().trim().parse().expect("a count")
}

#[test]
fn artifact_put_default_type_warns() {
    let tmp = setup();
    let d = tmp.path();
    let o = rc(
        d,
        &["artifact", "put", "ocidir://testrepo:art"],
        Some(b"hello"),
    );
    o.ok();
    assert_eq!(o.stdout, "", "no output without --format/--by-digest");
    assert!(o.stderr.contains(WARN_DEFAULT_TYPE), "{}", o.stderr);
    let m = raw_json(d, "ocidir://testrepo:art");
    assert_eq!(m["artifactType"], "application/vnd.unknown.config+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(m["config"]["size"], 2);
    assert_eq!(m["layers"][0]["mediaType"], "application/octet-stream");
    assert!(m.get("subject").is_none());
    let got = rc(d, &["artifact", "get", "ocidir://testrepo:art"], None);
    assert_eq!(got.ok(), "hello");
    let cfg = rc(
        d,
        &["artifact", "get", "ocidir://testrepo:art", "--config"],
        None,
    );
    assert_eq!(cfg.ok(), "{}");

    // With an artifact type: no warning, and the single layer takes that type.
    let o = rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.test",
            "--annotation",
            "org.example.k=v",
            "ocidir://testrepo:art2",
        ],
        Some(b"typed"),
    );
    o.ok();
    assert!(!o.stderr.contains(WARN_DEFAULT_TYPE), "{}", o.stderr);
    let m = raw_json(d, "ocidir://testrepo:art2");
    assert_eq!(m["artifactType"], "application/example.test");
    assert_eq!(m["layers"][0]["mediaType"], "application/example.test");
    assert_eq!(m["annotations"]["org.example.k"], "v");
    // --format renders the pushed manifest.
    let o = rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.fmt",
            "--format",
            "{{.ArtifactType}} {{.Digest}}",
            "ocidir://testrepo:art3",
        ],
        Some(b"formatted"),
    );
    let want = format!(
        "application/example.fmt {}",
        digest_of(d, "ocidir://testrepo:art3", None)
    );
    assert_eq!(o.ok(), want);
    rc(
        d,
        &[
            "artifact",
            "put",
            "--annotation",
            "novalue",
            "ocidir://testrepo:x",
        ],
        Some(b"x"),
    )
    .fails_with("key=value");
}

#[test]
fn artifact_put_config() {
    let tmp = setup();
    let d = tmp.path();
    fs::write(tmp.join("config.json"), br#"{"hello":"config"}"#).unwrap();
    // Config type given explicitly.
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.test",
            "--config-type",
            "application/example.config",
            "--config-file",
            "config.json",
            "ocidir://testrepo:cfg",
        ],
        Some(b"data"),
    )
    .ok();
    let m = raw_json(d, "ocidir://testrepo:cfg");
    assert_eq!(m["config"]["mediaType"], "application/example.config");
    assert_eq!(m["artifactType"], "application/example.test");
    let cfg = rc(
        d,
        &["artifact", "get", "ocidir://testrepo:cfg", "--config"],
        None,
    );
    assert_eq!(cfg.ok(), r#"{"hello":"config"}"#);

    // Config file without a config type: the artifact type is used, with a warning.
    let o = rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.test",
            "--config-file",
            "config.json",
            "ocidir://testrepo:cfg2",
        ],
        Some(b"data"),
    );
    o.ok();
    assert!(o.stderr.contains("config-type"), "{}", o.stderr);
    let m = raw_json(d, "ocidir://testrepo:cfg2");
    assert_eq!(m["config"]["mediaType"], "application/example.test");

    // Neither: refused.
    rc(
        d,
        &[
            "artifact",
            "put",
            "--config-file",
            "config.json",
            "ocidir://testrepo:cfg3",
        ],
        Some(b"data"),
    )
    .fails_with("--config-type");

    // A config type alone keeps the empty config and needs no artifact type.
    let o = rc(
        d,
        &[
            "artifact",
            "put",
            "--config-type",
            "application/example.config",
            "ocidir://testrepo:cfg4",
        ],
        Some(b"data"),
    );
    o.ok();
    let m = raw_json(d, "ocidir://testrepo:cfg4");
    assert_eq!(m["config"]["mediaType"], "application/example.config");
    assert_eq!(m["config"]["size"], 2);
}

#[test]
fn artifact_put_files() {
    let tmp = setup();
    let d = tmp.path();
    fs::create_dir_all(tmp.join("in/sub")).unwrap();
    fs::write(tmp.join("in/one.txt"), "one\n").unwrap();
    fs::write(tmp.join("in/two.txt"), "two\n").unwrap();
    fs::write(tmp.join("in/sub/three.txt"), "three\n").unwrap();
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.files",
            "-f",
            "in/one.txt",
            "-m",
            "application/example.one",
            "-f",
            "in/two.txt",
            "-m",
            "application/example.two",
            "--file-title",
            "--strip-dirs",
            "ocidir://testrepo:files",
        ],
        None,
    )
    .ok();
    let m = raw_json(d, "ocidir://testrepo:files");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["mediaType"], "application/example.one");
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "one.txt"
    );
    assert_eq!(
        layers[1]["annotations"]["org.opencontainers.image.title"],
        "two.txt"
    );
    let got = rc(
        d,
        &[
            "artifact",
            "get",
            "ocidir://testrepo:files",
            "--file",
            "two.txt",
        ],
        None,
    );
    assert_eq!(got.ok(), "two\n");
    let got = rc(
        d,
        &[
            "artifact",
            "get",
            "ocidir://testrepo:files",
            "-m",
            "application/example.one",
        ],
        None,
    );
    assert_eq!(got.ok(), "one\n");

    // Without --strip-dirs the title keeps the path.
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.files",
            "-f",
            "in/one.txt",
            "--file-title",
            "ocidir://testrepo:files2",
        ],
        None,
    )
    .ok();
    let m = raw_json(d, "ocidir://testrepo:files2");
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "in/one.txt"
    );
    assert_eq!(m["layers"][0]["mediaType"], "application/example.files");

    // Two files need two media types.
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.files",
            "-f",
            "in/one.txt",
            "-f",
            "in/two.txt",
            "ocidir://testrepo:files3",
        ],
        None,
    )
    .fails_with("file-media-type");

    // A directory is packed; its title ends with "/".
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.dir",
            "-m",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "-f",
            "in/sub",
            "--file-title",
            "ocidir://testrepo:dir",
        ],
        None,
    )
    .ok();
    let m = raw_json(d, "ocidir://testrepo:dir");
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "in/sub/"
    );
    let o = rc(d, &["artifact", "get", "ocidir://testrepo:dir"], None);
    let gz = o.stdout.as_bytes();
    assert!(gz.len() > 2 && gz[0] == 0x1f, "not gzip: {:?}", &o.stdout);

    // A missing file is an error.
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.files",
            "-f",
            "in/nope.txt",
            "ocidir://testrepo:files4",
        ],
        None,
    )
    .fails_with("nope.txt");
}

#[test]
fn artifact_put_subject() {
    let tmp = setup();
    let d = tmp.path();
    let v2 = digest_of(d, "ocidir://testrepo:v2", None);
    let before = referrer_count(d, "ocidir://testrepo:v2", &[]);
    // No reference: pushed by digest into the subject's repository.
    let o = rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.test",
            "--subject",
            "ocidir://testrepo:v2",
            "--by-digest",
        ],
        Some(b"referrer data"),
    );
    let dig = o.ok().trim().to_string();
    assert!(dig.starts_with("sha256:"), "{dig}");
    let m = raw_json(d, &format!("ocidir://testrepo@{dig}"));
    assert_eq!(m["subject"]["digest"], v2.as_str());
    assert_eq!(
        m["subject"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert!(m["subject"]["size"].as_i64().unwrap() > 0);
    assert_eq!(m["subject"].as_object().unwrap().len(), 3);
    assert_eq!(referrer_count(d, "ocidir://testrepo:v2", &[]), before + 1);
    let listed = rc(
        d,
        &[
            "artifact",
            "list",
            "ocidir://testrepo:v2",
            "--filter-artifact-type",
            "application/example.test",
            "--format",
            "{{ (index .Descriptors 0).Digest }}",
        ],
        None,
    );
    assert_eq!(listed.ok().trim(), dig);
    let got = rc(
        d,
        &[
            "artifact",
            "get",
            "--subject",
            "ocidir://testrepo:v2",
            "--filter-artifact-type",
            "application/example.test",
        ],
        None,
    );
    assert_eq!(got.ok(), "referrer data");

    // With a platform, the subject is that platform's manifest.
    let arm = digest_of(d, "ocidir://testrepo:v2", Some("linux/arm64"));
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.plat",
            "--subject",
            "ocidir://testrepo:v2",
            "--platform",
            "linux/arm64",
            "ocidir://testrepo:plat-ref",
        ],
        Some(b"arm data"),
    )
    .ok();
    let m = raw_json(d, "ocidir://testrepo:plat-ref");
    assert_eq!(m["subject"]["digest"], arm.as_str());
    let got = rc(
        d,
        &[
            "artifact",
            "get",
            "--subject",
            "ocidir://testrepo:v2",
            "--platform",
            "linux/arm64",
            "--filter-artifact-type",
            "application/example.plat",
        ],
        None,
    );
    assert_eq!(got.ok(), "arm data");

    // A missing subject fails.
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.test",
            "--subject",
            "ocidir://testrepo:missing",
        ],
        Some(b"x"),
    )
    .fails_with("not found");
    rc(d, &["artifact", "put"], Some(b"x"))
        .fails_with("either a reference or subject must be provided");
}

#[test]
fn artifact_put_external() {
    let tmp = setup();
    let d = tmp.path();
    let put = |args: &[&str]| {
        let mut a = vec![
            "artifact",
            "put",
            "--artifact-type",
            "application/example.ext",
        ];
        a.extend(args);
        rc(d, &a, Some(b"external data"))
    };
    // Subject + external, no reference: by digest into the external repository.
    put(&[
        "--subject",
        "ocidir://testrepo:v2",
        "--external",
        "ocidir://ext",
    ])
    .ok();
    assert_eq!(
        referrer_count(
            d,
            "ocidir://testrepo:v2",
            &["--filter-artifact-type", "application/example.ext"]
        ),
        0
    );
    assert_eq!(
        referrer_count(
            d,
            "ocidir://testrepo:v2",
            &[
                "--external",
                "ocidir://ext",
                "--filter-artifact-type",
                "application/example.ext"
            ]
        ),
        1
    );
    let got = rc(
        d,
        &[
            "artifact",
            "get",
            "--subject",
            "ocidir://testrepo:v2",
            "--external",
            "ocidir://ext",
            "--filter-artifact-type",
            "application/example.ext",
        ],
        None,
    );
    assert_eq!(got.ok(), "external data");
    // A reference in the external repository is fine and gets the tag.
    put(&[
        "--subject",
        "ocidir://testrepo:v1",
        "--external",
        "ocidir://ext",
        "ocidir://ext:named",
    ])
    .ok();
    assert!(tags(d, "ocidir://ext").contains(&"named".to_string()));
    // A reference elsewhere conflicts.
    put(&[
        "--subject",
        "ocidir://testrepo:v1",
        "--external",
        "ocidir://ext",
        "ocidir://testrepo:named",
    ])
    .fails_with("unsupported");
    // External needs a subject.
    put(&["--external", "ocidir://ext", "ocidir://ext:nosubject"]).fails_with("unsupported");
}

#[test]
fn artifact_put_index() {
    let tmp = setup();
    let d = tmp.path();
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.a",
            "--annotation",
            "type=a",
            "--platform",
            "linux/amd64",
            "--index",
            "ocidir://testrepo:art-index",
        ],
        Some(b"first"),
    )
    .ok();
    let m = raw_json(d, "ocidir://testrepo:art-index");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(m["manifests"].as_array().unwrap().len(), 1);
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.b",
            "--annotation",
            "type=b",
            "--index",
            "ocidir://testrepo:art-index",
        ],
        Some(b"second"),
    )
    .ok();
    let m = raw_json(d, "ocidir://testrepo:art-index");
    let ms = m["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    assert_eq!(ms[0]["artifactType"], "application/example.a");
    assert_eq!(ms[0]["annotations"]["type"], "a");
    assert_eq!(ms[0]["platform"]["architecture"], "amd64");
    assert_eq!(ms[1]["artifactType"], "application/example.b");
    assert!(ms[1].get("platform").is_none());
    let got = rc(
        d,
        &[
            "artifact",
            "get",
            "ocidir://testrepo:art-index",
            "--filter-annotation",
            "type=b",
        ],
        None,
    );
    assert_eq!(got.ok(), "second");
    // The children are not tagged but survive the layout's garbage collection.
    let first = ms[0]["digest"].as_str().unwrap();
    rc(
        d,
        &["manifest", "get", &format!("ocidir://testrepo@{first}")],
        None,
    )
    .ok();
    // A reference without a tag writes to "latest".
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.a",
            "--index",
            "ocidir://notag",
        ],
        Some(b"untagged"),
    )
    .ok();
    assert_eq!(tags(d, "ocidir://notag"), ["latest"]);
    rc(
        d,
        &[
            "index",
            "create",
            "ocidir://notag2",
            "--ref",
            "ocidir://testrepo:v1",
            "--platform",
            "linux/amd64",
        ],
        None,
    )
    .ok();
    assert_eq!(tags(d, "ocidir://notag2"), ["latest"]);
    // --index onto something that is not an index fails.
    rc(
        d,
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.a",
            "--index",
            "ocidir://testrepo:a1",
        ],
        Some(b"x"),
    )
    .fails_with("not an index");
}

#[test]
fn artifact_put_invalid_media_types() {
    let tmp = setup();
    let d = tmp.path();
    for args in [
        vec!["--artifact-type", "application/example.test;version=1.0"],
        vec![
            "--artifact-type",
            "application/example.test",
            "--config-type",
            "application/example.config;version=1.0",
        ],
        vec![
            "--artifact-type",
            "application/example.test",
            "-m",
            "application/example.layer;version=1.0",
        ],
        vec!["--artifact-type", "no-slash"],
    ] {
        let mut a = vec!["artifact", "put", "ocidir://testrepo:bad"];
        a.extend(args);
        rc(d, &a, Some(b"x")).fails_with("unsupported media type");
    }
    assert!(!tags(d, "ocidir://testrepo").contains(&"bad".to_string()));
}

#[test]
fn index_create_with_platforms() {
    let tmp = setup();
    let d = tmp.path();
    let amd = digest_of(d, "ocidir://testrepo:v2", Some("linux/amd64"));
    let arm = digest_of(d, "ocidir://testrepo:v2", Some("linux/arm64"));
    let o = rc(
        d,
        &[
            "index",
            "create",
            "ocidir://target:idx",
            "--ref",
            "ocidir://testrepo:v2",
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/arm64",
        ],
        None,
    );
    assert_eq!(o.ok(), "");
    let m = raw_json(d, "ocidir://target:idx");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.index.v1+json");
    let ms = m["manifests"].as_array().unwrap();
    let digests: Vec<&str> = ms.iter().map(|x| x["digest"].as_str().unwrap()).collect();
    assert_eq!(digests, [amd.as_str(), arm.as_str()]);
    assert_eq!(ms[1]["platform"]["architecture"], "arm64");
    assert_eq!(
        digest_of(d, "ocidir://target:idx", Some("linux/arm64")),
        arm
    );
    rc(
        d,
        &[
            "manifest",
            "get",
            "ocidir://target:idx",
            "--platform",
            "linux/arm/v7",
        ],
        None,
    )
    .fails_with("not found");
    // Referrers were not copied.
    assert_eq!(
        referrer_count(d, "ocidir://target:idx", &["--platform", "linux/arm64"]),
        0
    );
    // A platform the source lacks.
    rc(
        d,
        &[
            "index",
            "create",
            "ocidir://target:idx2",
            "--ref",
            "ocidir://testrepo:v2",
            "--platform",
            "linux/s390x",
        ],
        None,
    )
    .fails_with("platform not found");

    // By digest, with a subject and artifact type; --digest must be in the repository.
    let o = rc(
        d,
        &[
            "index",
            "create",
            "ocidir://target:idx3",
            "--digest",
            &amd,
            "--subject",
            "idx",
            "--artifact-type",
            "application/example.index",
            "--annotation",
            "org.example.k=v",
            "--desc-annotation",
            "entry=amd",
            "--by-digest",
        ],
        None,
    );
    let dig = o.ok().trim().to_string();
    assert!(dig.starts_with("sha256:"), "{dig}");
    let r = format!("ocidir://target@{dig}");
    let at = rc(
        d,
        &["manifest", "get", &r, "--format", "{{.ArtifactType}}"],
        None,
    );
    assert_eq!(at.ok().trim(), "application/example.index");
    let m = raw_json(d, &r);
    assert_eq!(
        m["subject"]["digest"],
        digest_of(d, "ocidir://target:idx", None)
    );
    assert_eq!(m["annotations"]["org.example.k"], "v");
    assert_eq!(m["manifests"][0]["annotations"]["entry"], "amd");
    assert_eq!(m["manifests"][0]["platform"]["architecture"], "amd64");
    assert!(!tags(d, "ocidir://target").contains(&"idx3".to_string()));
    rc(
        d,
        &[
            "index",
            "create",
            "ocidir://target:idx4",
            "--digest",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ],
        None,
    )
    .fails_with("must exist");
    // Docker lists take no subject.
    rc(
        d,
        &[
            "index",
            "create",
            "ocidir://target:idx5",
            "-m",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "--subject",
            "idx",
        ],
        None,
    )
    .fails_with("OCI index");
    // A Docker list with a descriptor platform override.
    rc(
        d,
        &[
            "index",
            "create",
            "ocidir://target:list",
            "-m",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "--digest",
            &amd,
            "--desc-platform",
            "linux/386",
        ],
        None,
    )
    .ok();
    let m = raw_json(d, "ocidir://target:list");
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(m["manifests"][0]["platform"]["architecture"], "386");
}

#[test]
fn index_add_and_delete() {
    let tmp = setup();
    let d = tmp.path();
    let amd = digest_of(d, "ocidir://testrepo:v2", Some("linux/amd64"));
    let arm = digest_of(d, "ocidir://testrepo:v2", Some("linux/arm64"));
    rc(
        d,
        &[
            "index",
            "create",
            "ocidir://target:idx",
            "--ref",
            "ocidir://testrepo:v2",
            "--platform",
            "linux/amd64",
        ],
        None,
    )
    .ok();
    rc(
        d,
        &[
            "index",
            "add",
            "ocidir://target:idx",
            "--ref",
            "ocidir://testrepo:v2",
            "--platform",
            "linux/arm64",
            "--referrers",
            "--digest-tags",
        ],
        None,
    )
    .ok();
    let m = raw_json(d, "ocidir://target:idx");
    let digests: Vec<&str> = m["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [amd.as_str(), arm.as_str()]);
    let got = rc(
        d,
        &[
            "artifact",
            "get",
            "--subject",
            "ocidir://target:idx",
            "--platform",
            "linux/arm64",
            "--filter-artifact-type",
            "application/example.arms",
        ],
        None,
    );
    assert_eq!(got.ok(), "64 arms");
    // Adding the same entry again changes nothing (duplicates removed).
    rc(
        d,
        &["index", "add", "ocidir://target:idx", "--digest", &arm],
        None,
    )
    .ok();
    assert_eq!(
        raw_json(d, "ocidir://target:idx")["manifests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Adding to something that is not an index fails.
    rc(
        d,
        &[
            "index",
            "add",
            &format!("ocidir://target@{amd}"),
            "--digest",
            &arm,
        ],
        None,
    )
    .fails_with("not an index");

    // Delete by platform (exact match only).
    rc(
        d,
        &[
            "index",
            "delete",
            "ocidir://target:idx",
            "--platform",
            "linux/arm/v6",
        ],
        None,
    )
    .fails_with("no matching");
    rc(
        d,
        &[
            "index",
            "rm",
            "ocidir://target:idx",
            "--platform",
            "linux/amd64",
        ],
        None,
    )
    .ok();
    let m = raw_json(d, "ocidir://target:idx");
    let ms = m["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["digest"], arm.as_str());
    // Delete by digest.
    rc(
        d,
        &["index", "delete", "ocidir://target:idx", "--digest", &arm],
        None,
    )
    .ok();
    assert!(raw_json(d, "ocidir://target:idx")["manifests"]
        .as_array()
        .unwrap()
        .is_empty());
    rc(d, &["index", "delete", "ocidir://target:idx"], None).fails_with("--digest");
}

const FULL_TAGS: &[&str] = &[
    "a1", "a2", "a3", "ai", "child", "loop", "mirror", "v1", "v2", "v3",
];

#[test]
fn repo_copy_full() {
    let tmp = setup();
    let d = tmp.path();
    rc(d, &["repo", "copy", "ocidir://testrepo"], None).fails_with("argument");
    let o = rc(
        d,
        &["repo", "copy", "ocidir://testrepo", "ocidir://copy"],
        None,
    );
    assert_eq!(o.ok(), "");
    let src = tags(d, "ocidir://testrepo");
    let dst = tags(d, "ocidir://copy");
    for t in FULL_TAGS {
        assert!(dst.contains(&t.to_string()), "{t} missing: {dst:?}");
    }
    assert_eq!(src, dst);
    for t in ["v1", "v2", "a3"] {
        assert_eq!(
            digest_of(d, &format!("ocidir://copy:{t}"), None),
            digest_of(d, &format!("ocidir://testrepo:{t}"), None)
        );
    }
    // Every copied tag is readable down to the blobs.
    let got = rc(d, &["artifact", "get", "ocidir://copy:a1"], None);
    assert_eq!(got.ok(), "eggs");
    // Unlimited concurrency gives the same result.
    rc(
        d,
        &[
            "repo",
            "cp",
            "ocidir://testrepo",
            "ocidir://copy2",
            "--concurrent",
            "-1",
        ],
        None,
    )
    .ok();
    assert_eq!(tags(d, "ocidir://copy2"), src);
    rc(
        d,
        &["repo", "copy", "ocidir://nothere", "ocidir://copy3"],
        None,
    )
    .fails_with("nothere");
    rc(
        d,
        &[
            "repo",
            "copy",
            "ocidir://testrepo",
            "ocidir://copy3",
            "--concurrent",
            "many",
        ],
        None,
    )
    .fails_with("--concurrent");
}

#[test]
fn repo_copy_filters() {
    let tmp = setup();
    let d = tmp.path();
    rc(
        d,
        &[
            "repo",
            "copy",
            "ocidir://testrepo",
            "ocidir://ex",
            "--exclude",
            "sha.*",
            "--exclude",
            "a.*",
        ],
        None,
    )
    .ok();
    let t = tags(d, "ocidir://ex");
    for want in ["v1", "v2", "v3", "b1", "child"] {
        assert!(t.contains(&want.to_string()), "{want} missing: {t:?}");
    }
    for gone in ["a1", "a2", "a3", "ai"] {
        assert!(!t.contains(&gone.to_string()), "{gone} copied: {t:?}");
    }
    assert_eq!(referrer_count(d, "ocidir://ex:v2", &[]), 0);

    // Only v*, with referrers.
    rc(
        d,
        &[
            "repo",
            "copy",
            "ocidir://testrepo",
            "ocidir://inc",
            "--include",
            "v.*",
            "--referrers",
        ],
        None,
    )
    .ok();
    let t = tags(d, "ocidir://inc");
    assert!(
        t.iter()
            .all(|t| t.starts_with('v') || t.starts_with("sha256-")),
        "{t:?}"
    );
    assert!(t.contains(&"v2".to_string()));
    assert!(!t.contains(&"b1".to_string()));
    assert_eq!(
        referrer_count(d, "ocidir://inc:v2", &[]),
        referrer_count(d, "ocidir://testrepo:v2", &[])
    );
    assert!(referrer_count(d, "ocidir://inc:v2", &[]) >= 2);
    let got = rc(
        d,
        &[
            "artifact",
            "get",
            "--subject",
            "ocidir://inc:v2",
            "--filter-artifact-type",
            "application/example.sbom",
        ],
        None,
    );
    assert_eq!(got.ok(), "eggs");

    // Only v*, without referrers.
    rc(
        d,
        &[
            "repo",
            "copy",
            "ocidir://testrepo",
            "ocidir://inc2",
            "--include",
            "v.*",
        ],
        None,
    )
    .ok();
    // Digest tags only appear as referrers fallback tags of copied manifests with a subject
    // (v1's attestation), not as copied tags.
    let t: Vec<String> = tags(d, "ocidir://inc2")
        .into_iter()
        .filter(|t| !t.starts_with("sha256-"))
        .collect();
    assert_eq!(t, ["v1", "v2", "v3"]);
    assert_eq!(referrer_count(d, "ocidir://inc2:v2", &[]), 0);
}

#[test]
fn repo_copy_new_tags() {
    let tmp = setup();
    let d = tmp.path();
    // The target's v1 is something else; --new-tags must leave it alone.
    rc(
        d,
        &["image", "copy", "ocidir://testrepo:b1", "ocidir://nt:v1"],
        None,
    )
    .ok();
    let b1 = digest_of(d, "ocidir://testrepo:b1", None);
    rc(
        d,
        &[
            "repo",
            "copy",
            "ocidir://testrepo",
            "ocidir://nt",
            "--include",
            "v.*",
            "--new-tags",
        ],
        None,
    )
    .ok();
    assert_eq!(digest_of(d, "ocidir://nt:v1", None), b1);
    assert_eq!(
        digest_of(d, "ocidir://nt:v2", None),
        digest_of(d, "ocidir://testrepo:v2", None)
    );
    // Without --new-tags the tag is overwritten.
    rc(
        d,
        &[
            "repo",
            "copy",
            "ocidir://testrepo",
            "ocidir://nt",
            "--include",
            "v1",
        ],
        None,
    )
    .ok();
    assert_eq!(
        digest_of(d, "ocidir://nt:v1", None),
        digest_of(d, "ocidir://testrepo:v1", None)
    );
    // A missing target counts as having no tags.
    rc(
        d,
        &[
            "repo",
            "copy",
            "ocidir://testrepo",
            "ocidir://nt2",
            "--include",
            "v3",
            "--new-tags",
        ],
        None,
    )
    .ok();
    assert_eq!(tags(d, "ocidir://nt2"), ["v3"]);
}

fn registry() -> Option<Registry> {
    Registry::start(Options::default())
}

fn host_flag(reg: &Registry) -> String {
    format!("reg={},tls=disabled", reg.host)
}

#[test]
fn registry_artifact_put_and_index() {
    let Some(reg) = registry() else { return };
    let tmp = setup();
    let d = tmp.path();
    let h = host_flag(&reg);
    let repo = format!("{}/writes", reg.host);
    let with_host = |args: &[&str]| {
        let mut a = vec!["--host", h.as_str()];
        a.extend(args);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |args: &[&str], stdin: Option<&[u8]>| {
        let a = with_host(args);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        rc(d, &a, stdin)
    };
    run(
        &[
            "image",
            "copy",
            "ocidir://testrepo:v2",
            &format!("{repo}:v2"),
        ],
        None,
    )
    .ok();
    // Referrer by digest into the subject's repository.
    let o = run(
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.reg",
            "--subject",
            &format!("{repo}:v2"),
            "--by-digest",
        ],
        Some(b"registry referrer"),
    );
    let dig = o.ok().trim().to_string();
    assert!(dig.starts_with("sha256:"));
    let listed = run(
        &[
            "artifact",
            "list",
            &format!("{repo}:v2"),
            "--format",
            "{{ (index .Descriptors 0).Digest }}",
        ],
        None,
    );
    assert_eq!(listed.ok().trim(), dig);
    let got = run(
        &[
            "artifact",
            "get",
            "--subject",
            &format!("{repo}:v2"),
            "--filter-artifact-type",
            "application/example.reg",
        ],
        None,
    );
    assert_eq!(got.ok(), "registry referrer");
    // Putting the same content again skips the blobs (no upload started) and gives the same
    // digest.
    let uploads = |reg: &Registry| {
        fs::read_to_string(&reg.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"POST /v2/") && l.contains("/blobs/uploads"))
            .count()
    };
    let before = uploads(&reg);
    assert!(before > 0, "the first put uploaded nothing?");
    let o = run(
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.reg",
            "--subject",
            &format!("{repo}:v2"),
            "--by-digest",
        ],
        Some(b"registry referrer"),
    );
    assert_eq!(o.ok().trim(), dig);
    assert_eq!(uploads(&reg), before);
    run(
        &[
            "artifact",
            "put",
            "--artifact-type",
            "application/example.reg;v=1",
            &format!("{repo}:bad"),
        ],
        Some(b"x"),
    )
    .fails_with("unsupported media type");

    // An index built on the registry from the layout.
    let arm = digest_of(d, "ocidir://testrepo:v2", Some("linux/arm64"));
    run(
        &[
            "index",
            "create",
            &format!("{repo}:idx"),
            "--ref",
            "ocidir://testrepo:v2",
            "--platform",
            "linux/arm64",
            "--referrers",
        ],
        None,
    )
    .ok();
    let raw = run(
        &[
            "manifest",
            "get",
            &format!("{repo}:idx"),
            "--format",
            "body",
        ],
        None,
    );
    let m: Value = serde_json::from_str(raw.ok()).unwrap();
    assert_eq!(m["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(m["manifests"][0]["digest"], arm.as_str());
    let got = run(
        &[
            "artifact",
            "get",
            "--subject",
            &format!("{repo}:idx"),
            "--platform",
            "linux/arm64",
            "--filter-artifact-type",
            "application/example.arms",
        ],
        None,
    );
    assert_eq!(got.ok(), "64 arms");
    run(
        &["index", "delete", &format!("{repo}:idx"), "--digest", &arm],
        None,
    )
    .ok();
    let raw = run(
        &[
            "manifest",
            "get",
            &format!("{repo}:idx"),
            "--format",
            "body",
        ],
        None,
    );
    let m: Value = serde_json::from_str(raw.ok()).unwrap();
    assert!(m["manifests"].as_array().unwrap().is_empty());
}

#[test]
fn registry_repo_copy() {
    let Some(reg) = registry() else { return };
    let tmp = setup();
    let d = tmp.path();
    let h = host_flag(&reg);
    let repo = format!("{}/copied", reg.host);
    let run = |args: &[&str]| {
        let mut a = vec!["--host", h.as_str()];
        a.extend(args);
        rc(d, &a, None)
    };
    run(&[
        "repo",
        "copy",
        "ocidir://testrepo",
        &repo,
        "--include",
        "v.*",
        "--include",
        "a1",
        "--referrers",
        "--concurrent",
        "3",
    ])
    .ok();
    let t: Vec<String> = run(&["tag", "ls", &repo])
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    for want in ["a1", "v1", "v2", "v3"] {
        assert!(t.contains(&want.to_string()), "{want} missing: {t:?}");
    }
    assert!(!t.contains(&"b1".to_string()));
    assert_eq!(
        run(&["manifest", "head", &format!("{repo}:v2")])
            .ok()
            .trim(),
        digest_of(d, "ocidir://testrepo:v2", None)
    );
    let got = run(&[
        "artifact",
        "get",
        "--subject",
        &format!("{repo}:v2"),
        "--filter-artifact-type",
        "application/example.sbom",
    ]);
    assert_eq!(got.ok(), "eggs");
    // Registry to layout, only new tags: the existing v1 is kept.
    run(&["image", "copy", "ocidir://testrepo:b1", "ocidir://back:v1"]).ok();
    run(&[
        "repo",
        "copy",
        &repo,
        "ocidir://back",
        "--new-tags",
        "--exclude",
        "sha.*",
    ])
    .ok();
    assert_eq!(
        digest_of(d, "ocidir://back:v1", None),
        digest_of(d, "ocidir://testrepo:b1", None)
    );
    assert_eq!(
        digest_of(d, "ocidir://back:v3", None),
        digest_of(d, "ocidir://testrepo:v3", None)
    );
}

#[test]
fn repo_copy_stops_after_first_error() {
    let tmp = setup();
    let d = tmp.path();
    // A file where the target layout should be: every copy fails.
    fs::write(tmp.join("blocked"), "not a directory").unwrap();
    let failures = |o: &Out| o.stderr.matches("copying ocidir://testrepo:").count();
    let o = rc(
        d,
        &[
            "repo",
            "copy",
            "ocidir://testrepo",
            "ocidir://blocked",
            "--concurrent",
            "1",
        ],
        None,
    );
    o.fails_with("ocidir://blocked");
    assert_eq!(failures(&o), 1, "{}", o.stderr);
    // In parallel, copies already running finish and their errors are joined, but no new
    // copy starts: at most one failure per worker.
    let o = rc(
        d,
        &[
            "repo",
            "copy",
            "ocidir://testrepo",
            "ocidir://blocked",
            "--concurrent",
            "3",
        ],
        None,
    );
    o.fails_with("ocidir://blocked");
    let n = failures(&o);
    assert!((1..=3).contains(&n), "{n} failures: {}", o.stderr);
}
