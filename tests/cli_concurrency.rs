//! Several regctl processes writing one OCI layout at once leave it valid: every tag present,
//! every blob it needs still there (another process's GC must not collect blobs whose manifest
//! is not written yet).

mod support;

use std::process::{Command, Stdio};

use support::{ok, regctl, TempDir};

#[test]
fn parallel_copies_into_one_layout() {
    let tmp = TempDir::new();
    let repo = support::testrepo(&tmp);
    let dst = tmp.join("shared");
    let tags = ["v1", "v2", "v3", "b1", "b2", "b3", "child", "a3"];
    // Start every copy before waiting for any.
    let children: Vec<_> = tags
        .iter()
        .map(|t| {
            let mut c: Command = regctl();
            c.args([
                "image",
                "copy",
                &format!("ocidir://{}:{t}", repo.display()),
                &format!("ocidir://{}:{t}", dst.display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
            (t, c.spawn().expect("spawn regctl"))
        })
        .collect();
    for (t, child) in children {
        let out = child.wait_with_output().expect("wait regctl");
        assert!(
            out.status.success(),
            "copy of {t} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = ok(regctl().args(["tag", "ls", &format!("ocidir://{}", dst.display())]));
    for t in tags {
        assert!(listed.lines().any(|l| l == t), "{t} missing from {listed}");
        let want = ok(regctl().args([
            "image",
            "digest",
            &format!("ocidir://{}:{t}", repo.display()),
        ]));
        let got = ok(regctl().args([
            "image",
            "digest",
            &format!("ocidir://{}:{t}", dst.display()),
        ]));
        assert_eq!(got, want, "{t}");
        // Copying out reads and verifies every blob the tag needs.
        let check = tmp.join(format!("check-{t}"));
        ok(regctl().args([
            "image",
            "copy",
            &format!("ocidir://{}:{t}", dst.display()),
            &format!("ocidir://{}:{t}", check.display()),
        ]));
    }
}
