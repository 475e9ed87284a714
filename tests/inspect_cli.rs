//! regctl commands that look inside images, against copies of `testdata/testrepo`:
//! `image get-file`, `blob get-file`, `blob diff-config`, `blob diff-layer`, `manifest diff`,
//! `image check-base`, `image create`, and `image inspect` of every platform.

mod support;

use std::fs;

use serde_json::Value;
use support::{ok, regctl, run, run_input, run_text, testdata, testrepo, TempDir};

const B1: &str = "sha256:b31b9d723be9876693afd74155a6388f322adf0e3291d5f9120b8dba17052e44";
const B3: &str = "sha256:ce0b34105d7613bb86c6dd14e9660dc61a8db34a22e177fb0be889078547176c";

fn layout(tmp: &TempDir) -> String {
    format!("ocidir://{}", testrepo(tmp).display())
}

fn rc(args: &[&str]) -> (i32, String, String) {
    run_text(regctl().args(args))
}

#[track_caller]
fn good(args: &[&str]) -> String {
    ok(regctl().args(args))
}

#[track_caller]
fn fails(args: &[&str], text: &str) -> (String, String) {
    let (code, out, err) = rc(args);
    assert_eq!(code, 1, "{args:?}: stdout {out}\nstderr {err}");
    assert!(err.contains(text), "{args:?}: stderr lacks {text:?}: {err}");
    (out, err)
}

/// Layer digests of `r` for platform `p`.
fn layers(r: &str, p: &str) -> Vec<String> {
    let m: Value =
        serde_json::from_str(&good(&["manifest", "get", r, "-p", p, "--format", "body"])).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn config_digest(r: &str, p: &str) -> String {
    let m: Value =
        serde_json::from_str(&good(&["manifest", "get", r, "-p", p, "--format", "body"])).unwrap();
    m["config"]["digest"].as_str().unwrap().to_string()
}

/// Pushes `testdata/layer-wh.tar` on top of v3's linux/amd64 image as tag `wh`; returns the
/// whiteout layer's digest.
fn push_whiteout_image(repo: &str) -> String {
    let tar = fs::read(testdata().join("layer-wh.tar")).unwrap();
    let out = run_input(regctl().args(["blob", "put", repo]), &tar);
    assert!(out.status.success(), "{out:?}");
    let dig = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let v3 = format!("{repo}:v3");
    let mut m: Value = serde_json::from_str(&good(&[
        "manifest",
        "get",
        &v3,
        "-p",
        "linux/amd64",
        "--format",
        "body",
    ]))
    .unwrap();
    m["layers"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar",
        "digest": dig,
        "size": tar.len(),
    }));
    let body = serde_json::to_vec(&m).unwrap();
    let out = run_input(
        regctl().args(["manifest", "put", &format!("{repo}:wh")]),
        &body,
    );
    assert!(out.status.success(), "{out:?}");
    dig
}

#[test]
fn image_get_file_searches_layers_top_down() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let v3 = format!("{repo}:v3");
    assert_eq!(good(&["image", "get-file", &v3, "base.txt"]), "A\n");
    assert_eq!(
        good(&["image", "cat", &v3, "/layer1.txt", "-p", "linux/arm64"]),
        "1\n"
    );
    // v3 is built on b1, while b3 has base.txt "B".
    assert_eq!(
        good(&["image", "get-file", &format!("{repo}:b3"), "base.txt"]),
        "B\n"
    );
    // Written to a file, nothing on stdout.
    let out = tmp.join("out.txt");
    let o = out.to_str().unwrap();
    assert_eq!(good(&["image", "get-file", &v3, "layer3.txt", o]), "");
    assert_eq!(fs::read_to_string(&out).unwrap(), "3\n");
    // A nested file of the topmost layer, with --format over the tar header.
    assert_eq!(
        good(&[
            "image",
            "get-file",
            &v3,
            "dir/layer.tar",
            "--format",
            "{{.Header.Name}} {{.Header.Size}} {{printf \"%o\" .Header.Mode}} {{.Header.Uid}}"
        ]),
        "dir/layer.tar 4096 644 0"
    );
    // Missing: an error, and no output file created.
    let missing = tmp.join("missing.txt");
    fails(
        &[
            "-v",
            "info",
            "image",
            "get-file",
            &v3,
            "nope.txt",
            missing.to_str().unwrap(),
        ],
        "file not found",
    );
    assert!(!missing.exists());
    // v1 has no layer3.
    fails(
        &["image", "get-file", &format!("{repo}:v1"), "layer3.txt"],
        "not found",
    );
}

#[test]
fn image_get_file_honours_whiteouts() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let wh_digest = push_whiteout_image(&repo);
    let wh = format!("{repo}:wh");
    // layer2.txt exists in a lower layer but the top layer whites it out.
    assert_eq!(
        good(&["image", "get-file", &format!("{repo}:v3"), "layer2.txt"]),
        "2\n"
    );
    let (out, _) = fails(&["image", "get-file", &wh, "layer2.txt"], "file deleted");
    assert!(out.is_empty());
    // Untouched lower files are still found; the top layer replaces layer1.txt.
    assert_eq!(good(&["image", "get-file", &wh, "layer3.txt"]), "3\n");
    assert_eq!(good(&["image", "get-file", &wh, "layer1.txt"]), "1\n");
    // The opaque directory keeps its own new content and hides anything below it.
    assert_eq!(good(&["image", "get-file", &wh, "exdir/new.txt"]), "new\n");
    fails(&["image", "get-file", &wh, "exdir/old.txt"], "file deleted");
    // The same on the layer alone.
    assert_eq!(
        good(&["blob", "get-file", &repo, &wh_digest, "exdir/new.txt"]),
        "new\n"
    );
    fails(
        &["blob", "get-file", &repo, &wh_digest, "layer2.txt"],
        "file deleted",
    );
    fails(
        &["blob", "get-file", &repo, &wh_digest, "base.txt"],
        "file not found",
    );
}

#[test]
fn blob_get_file() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let b1 = layers(&format!("{repo}:b1"), "linux/amd64");
    let b3 = layers(&format!("{repo}:b3"), "linux/amd64");
    assert_eq!(
        good(&["blob", "get-file", &repo, &b1[0], "base.txt"]),
        "A\n"
    );
    assert_eq!(good(&["blob", "cat", &repo, &b3[0], "./base.txt"]), "B\n");
    let out = tmp.join("base.txt");
    good(&[
        "blob",
        "get-file",
        &repo,
        &b3[0],
        "base.txt",
        out.to_str().unwrap(),
    ]);
    assert_eq!(fs::read_to_string(&out).unwrap(), "B\n");
    assert_eq!(
        good(&[
            "blob",
            "get-file",
            &repo,
            &b1[0],
            "base.txt",
            "--format",
            "{{.Header.Size}} {{.Header.ModTime.Year}}"
        ]),
        "2 2019"
    );
    fails(
        &["blob", "get-file", &repo, &b1[0], "layer1.txt"],
        "file not found",
    );
    // A blob that is not there.
    fails(
        &[
            "blob",
            "get-file",
            &repo,
            &format!("sha256:{}", "0".repeat(64)),
            "x",
        ],
        "not found",
    );
}

#[test]
fn blob_diff_layer() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let b1 = layers(&format!("{repo}:b1"), "linux/amd64");
    let b2 = layers(&format!("{repo}:b2"), "linux/amd64");
    let b3 = layers(&format!("{repo}:b3"), "linux/amd64");
    // Same layer: no difference.
    assert_eq!(
        good(&["blob", "diff-layer", &repo, &b1[0], &repo, &b1[0]]),
        ""
    );
    // b3 changes base.txt's content: its listing line differs in the content digest only.
    let out = good(&["blob", "diff-layer", &repo, &b1[0], &repo, &b3[0]]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("@@ -"), "{out}");
    let minus: Vec<&&str> = lines.iter().filter(|l| l.starts_with('-')).collect();
    let plus: Vec<&&str> = lines.iter().filter(|l| l.starts_with('+')).collect();
    assert!(!minus.is_empty() && !plus.is_empty(), "{out}");
    assert!(out.contains("base.txt"), "{out}");
    assert!(
        minus
            .iter()
            .any(|l| l.contains(" 0/0 ") && l.contains("sha256:")),
        "{out}"
    );
    // b2 rebuilt b1's files with later timestamps: only the times differ.
    let with_ts = good(&["blob", "diff-layer", &repo, &b1[0], &repo, &b2[0]]);
    assert!(
        with_ts.contains("+-rw-r--r-- 0/0        2 2019-06-01T00:00:00Z base.txt"),
        "{with_ts}"
    );
    assert!(
        with_ts.contains("--rw-r--r-- 0/0        2 2019-01-01T00:00:00Z base.txt"),
        "{with_ts}"
    );
    let without = good(&[
        "blob",
        "diff-layer",
        &repo,
        &b1[0],
        &repo,
        &b2[0],
        "--ignore-timestamp",
    ]);
    assert_eq!(without, "");
    // Context settings.
    let v3 = layers(&format!("{repo}:v3"), "linux/amd64");
    let full = good(&[
        "blob",
        "diff-layer",
        &repo,
        &v3[0],
        &repo,
        &v3[4],
        "--context-full",
    ]);
    let zero = good(&[
        "blob",
        "diff-layer",
        &repo,
        &v3[0],
        &repo,
        &v3[4],
        "--context",
        "0",
    ]);
    assert!(
        full.contains("dir/layer.tar") && full.contains("base.txt"),
        "{full}"
    );
    assert!(full.lines().count() >= zero.lines().count());
}

#[test]
fn blob_diff_config() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let c2 = config_digest(&format!("{repo}:v2"), "linux/amd64");
    let c3 = config_digest(&format!("{repo}:v3"), "linux/amd64");
    assert_eq!(good(&["blob", "diff-config", &repo, &c2, &repo, &c2]), "");
    let out = good(&["blob", "diff-config", &repo, &c2, &repo, &c3]);
    assert!(out.starts_with("@@ -"), "{out}");
    // Indented JSON lines.
    assert!(
        out.lines()
            .any(|l| l.starts_with("-  ") || l.starts_with("-    ")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with('+')), "{out}");
    let full = good(&[
        "blob",
        "diff-config",
        &repo,
        &c2,
        &repo,
        &c3,
        "--context-full",
    ]);
    assert_eq!(full.lines().filter(|l| l.starts_with("@@")).count(), 1);
    assert!(full.lines().count() > out.lines().count(), "{full}");
    // Every line of the v3 config appears in the full diff (as context or added).
    assert!(full.contains("\"architecture\": \"amd64\""), "{full}");
    fails(
        &["blob", "diff-config", &repo, &c2, &repo, "sha256:bogus"],
        "",
    );
}

#[test]
fn manifest_diff() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let v2 = format!("{repo}:v2");
    let v3 = format!("{repo}:v3");
    assert_eq!(good(&["manifest", "diff", &v2, &v2]), "");
    let out = good(&["manifest", "diff", &v2, &v3]);
    // v2's amd64 entry is replaced by v3's.
    assert!(
        out.contains(
            "-      \"digest\": \"sha256:95039bf3c29823b43ae8ad74024d987a642dbd926005fd72a2f0c95796aa7b2a\","
        ),
        "{out}"
    );
    assert!(out.contains("+        \"variant\": \"v6\""), "{out}");
    let hunks = |s: &str| s.lines().filter(|l| l.starts_with("@@")).count();
    let wide = good(&["manifest", "diff", &v2, &v3, "--context", "100"]);
    assert_eq!(hunks(&wide), 1, "{wide}");
    assert!(hunks(&good(&["manifest", "diff", &v2, &v3, "--context", "0"])) >= hunks(&out));
    fails(
        &["manifest", "diff", &v2, &v3, "--context", "x"],
        "--context",
    );
}

#[test]
fn check_base_matrix() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let t = |tag: &str| format!("{repo}:{tag}");
    // v1 carries no base annotations.
    let (out, _) = fails(&["image", "check-base", &t("v1")], "annotation is missing");
    assert!(!out.contains("matches"));
    // Matching bases.
    for (img, base) in [("v2", "b1"), ("v3", "b1")] {
        assert_eq!(
            good(&["image", "check-base", &t(img), "--base", &t(base)]),
            "base image matches\n",
            "{img} on {base}"
        );
    }
    // Rebuilt or different bases.
    for (img, base) in [("v2", "b2"), ("v3", "b3"), ("v3", "b2")] {
        // Only stdout and the exit code report a change; `-v info` logs the reason.
        let (out, err) = fails(
            &[
                "-v",
                "info",
                "image",
                "check-base",
                &t(img),
                "--base",
                &t(base),
            ],
            "base image differs",
        );
        let quiet = run(regctl().args(["image", "check-base", &t(img), "--base", &t(base)]));
        assert!(!quiet.status.success());
        assert!(quiet.stderr.is_empty(), "{quiet:?}");
        assert_eq!(out, "base image has changed\n", "{img} on {base}: {err}");
    }
    // --quiet prints nothing either way, the exit code tells.
    assert_eq!(
        good(&[
            "image",
            "check-base",
            &t("v2"),
            "--base",
            &t("b1"),
            "--quiet"
        ]),
        ""
    );
    // --quiet: nothing on stdout, nothing on stderr, only the exit code.
    let q = run(regctl().args([
        "image",
        "check-base",
        &t("v2"),
        "--base",
        &t("b2"),
        "--quiet",
    ]));
    assert!(!q.status.success());
    assert!(q.stdout.is_empty() && q.stderr.is_empty(), "{q:?}");
    // One platform only.
    assert_eq!(
        good(&[
            "image",
            "check-base",
            &t("v3"),
            "--base",
            &t("b1"),
            "-p",
            "linux/arm/v6"
        ]),
        "base image matches\n"
    );
    // A single image (v2's linux/arm/v7 child) is compared for its config's platform.
    let child =
        format!("{repo}@sha256:e2a58463bc91a2d290f7e4897e872f777c864ba4b6ac031e87eebf121214dcef");
    assert_eq!(
        good(&["image", "check-base", &child, "--base", &t("b1")]),
        "base image matches\n"
    );
    fails(
        &[
            "-v",
            "info",
            "image",
            "check-base",
            &child,
            "--base",
            &t("b3"),
        ],
        "base image differs",
    );
    // With a digest only the base's current digest is compared.
    assert_eq!(
        good(&[
            "image",
            "check-base",
            &t("v3"),
            "--base",
            &t("b3"),
            "--digest",
            B3
        ]),
        "base image matches\n"
    );
    let (out, _) = fails(
        &[
            "-v",
            "info",
            "image",
            "check-base",
            &t("v3"),
            "--base",
            &t("b2"),
            "--digest",
            B1,
        ],
        "base image differs",
    );
    assert_eq!(out, "base image has changed\n");
}

/// v2 with its base annotation pointing into this layout instead of an unresolvable registry.
fn annotate_base(repo: &str, tag: &str, base_tag: &str) {
    let mut m: Value = serde_json::from_str(&good(&[
        "manifest",
        "get",
        &format!("{repo}:v2"),
        "--format",
        "body",
    ]))
    .unwrap();
    m["annotations"]["org.opencontainers.image.base.name"] =
        Value::String(format!("{repo}:{base_tag}"));
    let out = run_input(
        regctl().args(["manifest", "put", &format!("{repo}:{tag}")]),
        &serde_json::to_vec(&m).unwrap(),
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn check_base_from_annotations() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    // The annotated digest is b1's: b2 has changed since, b1 has not.
    annotate_base(&repo, "on-b2", "b2");
    annotate_base(&repo, "on-b1", "b1");
    let (out, _) = fails(
        &[
            "-v",
            "info",
            "image",
            "check-base",
            &format!("{repo}:on-b2"),
        ],
        "base image differs",
    );
    assert_eq!(out, "base image has changed\n");
    assert_eq!(
        good(&["image", "check-base", &format!("{repo}:on-b1")]),
        "base image matches\n"
    );
    // --digest overrides the annotated digest.
    fails(
        &[
            "-v",
            "info",
            "image",
            "check-base",
            &format!("{repo}:on-b1"),
            "--digest",
            B3,
        ],
        "base image differs",
    );
}

#[test]
fn image_create() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let r = format!("{repo}:scratch");
    assert_eq!(
        good(&[
            "image",
            "create",
            &r,
            "--label",
            "version=0",
            "--label",
            "team=x=y",
            "--annotation",
            "org.example=1",
            "--created",
            "2021-02-03T04:05:06Z",
            "--platform",
            "linux/arm/v7",
        ]),
        ""
    );
    let m: Value =
        serde_json::from_str(&good(&["manifest", "get", &r, "--format", "body"])).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["layers"], serde_json::json!([]));
    assert_eq!(m["annotations"]["org.example"], "1");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let c: Value = serde_json::from_str(&good(&[
        "image",
        "inspect",
        &r,
        "-p",
        "linux/arm/v7",
        "--format",
        "body",
    ]))
    .unwrap();
    assert_eq!(c["created"], "2021-02-03T04:05:06Z");
    assert_eq!(c["os"], "linux");
    assert_eq!(c["architecture"], "arm");
    assert_eq!(c["variant"], "v7");
    assert_eq!(c["config"]["Labels"]["version"], "0");
    assert_eq!(c["config"]["Labels"]["team"], "x=y");
    assert_eq!(c["rootfs"]["diff_ids"], serde_json::json!([]));
    // Docker media types, by digest: the digest is printed and resolves.
    let dig = good(&[
        "image",
        "new",
        &format!("{repo}:unused"),
        "--by-digest",
        "--media-type",
        "application/vnd.docker.distribution.manifest.v2+json",
        "--created",
        "now",
    ]);
    let dig = dig.trim();
    assert!(dig.starts_with("sha256:"), "{dig}");
    let m: Value = serde_json::from_str(&good(&[
        "manifest",
        "get",
        &format!("{repo}@{dig}"),
        "--format",
        "body",
    ]))
    .unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    let (code, _, _) = rc(&["manifest", "head", &format!("{repo}:unused")]);
    assert_ne!(code, 0, "--by-digest must not tag");
    // Default platform is the local one, without a created time.
    good(&["image", "init", &format!("{repo}:local")]);
    let c: Value = serde_json::from_str(&good(&[
        "image",
        "inspect",
        &format!("{repo}:local"),
        "--format",
        "body",
    ]))
    .unwrap();
    assert!(c.get("created").is_none(), "{c}");
    assert_eq!(c["os"], std::env::consts::OS);
    // Bad input.
    fails(&["image", "create", &r, "--label", "novalue"], "key=value");
    fails(
        &["image", "create", &r, "--created", "yesterday"],
        "--created",
    );
    fails(
        &["image", "create", &r, "--media-type", "text/plain"],
        "media type",
    );
    // --format renders the pushed manifest.
    let out = good(&[
        "image",
        "create",
        &format!("{repo}:fmt"),
        "--format",
        "{{.GetDescriptor.Digest}}",
    ]);
    assert!(out.starts_with("sha256:"), "{out}");
}

#[test]
fn image_inspect_every_platform() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let mut seen = 0;
    for tag in ["v1", "v2", "v3", "b1", "b3"] {
        let r = format!("{repo}:{tag}");
        let idx: Value =
            serde_json::from_str(&good(&["manifest", "get", &r, "--format", "body"])).unwrap();
        for d in idx["manifests"].as_array().unwrap() {
            let p = &d["platform"];
            if p["os"] == "unknown" || p.is_null() {
                continue;
            }
            let mut name = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(v) = p["variant"].as_str() {
                name = format!("{name}/{v}");
            }
            let c: Value = serde_json::from_str(&good(&[
                "image", "inspect", &r, "-p", &name, "--format", "body",
            ]))
            .unwrap();
            assert_eq!(c["architecture"], p["architecture"], "{tag} {name}");
            assert_eq!(c["os"], p["os"], "{tag} {name}");
            if let Some(v) = p["variant"].as_str() {
                assert_eq!(c["variant"], v, "{tag} {name}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 2 + 3 + 4 + 4 + 4, "{seen}");
    // Artifacts are not images.
    for a in ["a1", "a3"] {
        fails(
            &["image", "inspect", &format!("{repo}:{a}")],
            "artifact get --config",
        );
    }
}

#[test]
fn get_file_reports_a_corrupted_layer() {
    let tmp = TempDir::new();
    let dir = testrepo(&tmp);
    let repo = format!("ocidir://{}", dir.display());
    let top = layers(&format!("{repo}:v3"), "linux/amd64").pop().unwrap();
    // Replace the top layer's bytes with another valid tar holding layer3.txt: the file is
    // found, but the blob no longer matches its digest, which must fail the command.
    let hex = top.strip_prefix("sha256:").unwrap();
    // Padded with zeros to the original size, so only the digest check (after the tar's end,
    // once the file was already written) can notice.
    let blob = dir.join("blobs/sha256").join(hex);
    let size = fs::metadata(&blob).unwrap().len() as usize;
    let mut bytes = fs::read(testdata().join("layer.tar")).unwrap();
    assert!(bytes.len() < size);
    bytes.resize(size, 0);
    fs::write(&blob, bytes).unwrap();
    let (code, _, err) = rc(&["image", "get-file", &format!("{repo}:v3"), "layer3.txt"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("mismatch"), "{err}");
    fails(&["blob", "diff-layer", &repo, &top, &repo, &top], "");
}

#[test]
fn help_lists_the_commands() {
    let image = good(&["image", "--help"]);
    for c in ["check-base", "create", "get-file"] {
        assert!(image.contains(c), "{image}");
    }
    let blob = good(&["blob", "--help"]);
    for c in ["diff-config", "diff-layer", "get-file"] {
        assert!(blob.contains(c), "{blob}");
    }
    assert!(good(&["manifest", "--help"]).contains("diff"));
    let (code, _, _) = rc(&["blob", "get-file", "ocidir://x"]);
    assert_ne!(code, 0);
}

#[test]
fn check_base_compares_history_unless_no_config() {
    let tmp = TempDir::new();
    let repo = layout(&tmp);
    let v2 = format!("{repo}:v2");
    // v2's amd64 image with the first (base) history entry rewritten: same layers as b1.
    let mut m: Value = serde_json::from_str(&good(&[
        "manifest",
        "get",
        &v2,
        "-p",
        "linux/amd64",
        "--format",
        "body",
    ]))
    .unwrap();
    let cfg_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg: Value = serde_json::from_str(&good(&["blob", "get", &repo, &cfg_digest])).unwrap();
    cfg["history"][0]["created_by"] = Value::String("something else".into());
    let raw = serde_json::to_vec(&cfg).unwrap();
    let out = run_input(regctl().args(["blob", "put", &repo]), &raw);
    assert!(out.status.success(), "{out:?}");
    let new_digest = String::from_utf8(out.stdout).unwrap().trim().to_string();
    m["config"]["digest"] = Value::String(new_digest);
    m["config"]["size"] = raw.len().into();
    let out = run_input(
        regctl().args(["manifest", "put", &format!("{repo}:edited")]),
        &serde_json::to_vec(&m).unwrap(),
    );
    assert!(out.status.success(), "{out:?}");
    let edited = format!("{repo}:edited");
    let b1 = format!("{repo}:b1");
    let (out, err) = fails(
        &[
            "-v",
            "info",
            "image",
            "check-base",
            &edited,
            "--base",
            &b1,
            "-p",
            "linux/amd64",
        ],
        "history",
    );
    assert_eq!(out, "base image has changed\n", "{err}");
    assert_eq!(
        good(&[
            "image",
            "check-base",
            &edited,
            "--base",
            &b1,
            "-p",
            "linux/amd64",
            "--no-config"
        ]),
        "base image matches\n"
    );
}
