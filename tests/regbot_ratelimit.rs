//! regbot's rate-limit calls against the project's fake registry answering Docker Hub style
//! `RateLimit-*` headers: `m:ratelimit()` reports them, `image.ratelimitWait` polls with HEADs
//! until enough pulls remain (true) or its timeout passes (false).

mod support;

use support::fakereg::{FakeRegistry, RateLimitFault};
use support::{regbot, run_text, TempDir};

/// Runs one script with `regbot once` against `reg`; returns (exit code, stderr).
fn bot(reg: &FakeRegistry, tmp: &TempDir, lua: &str) -> (i32, String) {
    let body: String = lua.lines().map(|l| format!("      {l}\n")).collect();
    let yaml = format!(
        "defaults:\n  skipDockerConfig: true\n  timeout: 60s\ncreds:\n  - registry: {}\n    tls: disabled\nscripts:\n  - name: rl\n    script: |\n{body}",
        reg.host()
    );
    let cfg = tmp.join("regbot.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let (code, _, err) = run_text(regbot(tmp).arg("once").arg("-c").arg(&cfg));
    (code, err)
}

fn manifest_heads(reg: &FakeRegistry) -> usize {
    reg.requests()
        .iter()
        .filter(|r| r.method == "HEAD" && r.path.contains("/manifests/"))
        .count()
}

#[test]
fn ratelimit_reports_and_wait_polls_until_enough_remain() {
    let reg = FakeRegistry::start();
    let tags = reg.seed_tags("src", 1);
    let r = format!("{}/src:{}", reg.host(), tags[0]);
    reg.faults().ratelimit = Some(RateLimitFault::new(100, &[7, 20, 150]));
    let tmp = TempDir::new();
    let (code, err) = bot(
        &reg,
        &tmp,
        &format!(
            r#"local m = manifest.head("{r}")
local rl = m:ratelimit()
if not rl.Set or rl.Limit ~= 100 or rl.Remain ~= 7 then
  error("ratelimit: set=" .. tostring(rl.Set) .. " limit=" .. tostring(rl.Limit) .. " remain=" .. tostring(rl.Remain))
end
if not image.ratelimitWait("{r}", 100, "100ms", "30s") then error("gave up") end
log("waited")"#
        ),
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("waited"), "{err}");
    // One HEAD for m, then 20 (wait), 150 (done): three HEADs in all.
    assert_eq!(manifest_heads(&reg), 3, "{:?}", reg.requests());
}

#[test]
fn ratelimit_wait_gives_up_at_its_timeout() {
    let reg = FakeRegistry::start();
    let tags = reg.seed_tags("src", 1);
    let r = format!("{}/src:{}", reg.host(), tags[0]);
    reg.faults().ratelimit = Some(RateLimitFault::new(100, &[3]));
    let tmp = TempDir::new();
    let (code, err) = bot(
        &reg,
        &tmp,
        &format!(
            r#"local ok = image.ratelimitWait("{r}", 50, "100ms", "500ms")
if ok then error("should have timed out") end
log("gave up as asked")"#
        ),
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("gave up as asked"), "{err}");
    let heads = manifest_heads(&reg);
    assert!(
        (2..=12).contains(&heads),
        "{heads} HEADs in a 500ms wait polled every 100ms"
    );
}
