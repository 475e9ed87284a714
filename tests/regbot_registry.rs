//! `regbot once` end to end against a real docker-registry seeded from `testdata/testrepo`:
//! upstream's TestRegbot scenarios (reads, copy, tag delete, dry-run, timeout), failure
//! isolation between scripts, sandbox refusals, a dry run that must leave the registry
//! untouched, and the safe scripts of `tests/regbot-example.yaml` in dry-run mode.

mod support;

use std::collections::BTreeMap;

use support::registry::{Options, Registry};
use support::{run, testrepo, TempDir};

/// A registry with `testrepo:v1`, `:v2` and `:v3` copied from the layout.
struct Fixture {
    reg: Registry,
    tmp: TempDir,
}

impl Fixture {
    fn start() -> Option<Fixture> {
        let reg = Registry::start(Options::default())?;
        let tmp = TempDir::new();
        let src = testrepo(&tmp);
        let f = Fixture { reg, tmp };
        for t in ["v1", "v2", "v3"] {
            f.regctl(&[
                "image",
                "copy",
                &format!("ocidir://{}:{t}", src.display()),
                &f.r(&format!("testrepo:{t}")),
            ]);
        }
        Some(f)
    }

    /// `<host>/<path>`.
    fn r(&self, path: &str) -> String {
        format!("{}/{path}", self.reg.host)
    }

    fn regctl_out(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = support::regctl_isolated(&self.tmp);
        cmd.arg("--host")
            .arg(format!("reg={},tls=disabled", self.reg.host))
            .args(args);
        run(&mut cmd)
    }

    fn regctl(&self, args: &[&str]) -> String {
        let out = self.regctl_out(args);
        assert!(
            out.status.success(),
            "regctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Sorted tags of a repository without referrers fallback tags (`sha256-…`, which
    /// copying `v1` adds: its attestation manifest has a subject); empty when the repository
    /// does not exist.
    fn tags(&self, repo: &str) -> Vec<String> {
        let mut t = self.all_tags(repo);
        t.retain(|t| !t.starts_with("sha256-"));
        t
    }

    /// Every tag of a repository, sorted.
    fn all_tags(&self, repo: &str) -> Vec<String> {
        let out = self.regctl_out(&["tag", "ls", &self.r(repo)]);
        let mut t: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        t.sort();
        t
    }

    /// Runs `regbot <args> -c FILE` with JSON logs on a config holding `scripts` (YAML list
    /// items). Returns the exit code and the parsed log lines.
    fn bot(&self, args: &[&str], defaults: &str, scripts: &str) -> (i32, Logs) {
        let yaml = format!(
            "version: 1\ncreds:\n  - registry: {}\n    tls: disabled\ndefaults:\n  skipDockerConfig: true\n{defaults}scripts:\n{scripts}",
            self.reg.host
        );
        self.bot_yaml(args, &yaml)
    }

    fn bot_yaml(&self, args: &[&str], yaml: &str) -> (i32, Logs) {
        let p = self.tmp.join("regbot.yaml");
        std::fs::write(&p, yaml).unwrap();
        let mut cmd = support::regbot(&self.tmp);
        cmd.args(args)
            .args(["-v", "debug", "--logopt", "json", "-c"])
            .arg(&p);
        for v in support::PROXY_VARS {
            cmd.env_remove(v);
        }
        let out = run(&mut cmd);
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), Logs::parse(&text))
    }
}

/// A `scripts` list item with `lua` as a block literal; `extra` holds more keys (each line
/// indented by four spaces).
fn script(name: &str, extra: &str, lua: &str) -> String {
    let body: String = lua.lines().map(|l| format!("      {l}\n")).collect();
    format!("  - name: {name}\n{extra}    script: |\n{body}")
}

/// The JSON log lines of a run.
struct Logs {
    raw: String,
    lines: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl Logs {
    fn parse(text: &str) -> Logs {
        let lines = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v.as_object().cloned())
            .collect();
        Logs {
            raw: text.to_string(),
            lines,
        }
    }

    fn field<'a>(l: &'a serde_json::Map<String, serde_json::Value>, k: &str) -> &'a str {
        l.get(k).and_then(|v| v.as_str()).unwrap_or_default()
    }

    /// Script name -> error of every "script failed" line.
    fn failures(&self) -> BTreeMap<String, String> {
        self.lines
            .iter()
            .filter(|l| Self::field(l, "msg") == "script failed")
            .map(|l| {
                (
                    Self::field(l, "script").to_string(),
                    Self::field(l, "err").to_string(),
                )
            })
            .collect()
    }

    /// Whether any line of `script` contains `text` (in its message or a field).
    fn said(&self, script: &str, text: &str) -> bool {
        self.lines.iter().any(|l| {
            Self::field(l, "script") == script
                && l.values()
                    .any(|v| v.as_str().is_some_and(|s| s.contains(text)))
        })
    }
}

fn assert_ok(code: i32, logs: &Logs) {
    assert_eq!(code, 0, "regbot failed:\n{}", logs.raw);
    assert!(logs.failures().is_empty(), "{}", logs.raw);
}

/// Upstream's read scenarios: an empty script, tag.ls, manifest.get with a platform and the
/// image config's `version` label.
#[test]
fn reads_tags_manifests_and_config() {
    let Some(f) = Fixture::start() else { return };
    let repo = f.r("testrepo");
    let scripts = [
        script("empty", "", "-- nothing to do"),
        script(
            "tags",
            "",
            &format!(
                r#"local tags = tag.ls("{repo}")
local found = false
for _, t in ipairs(tags) do
  if t == "v2" then found = true end
end
if not found then error("v2 not listed: " .. table.concat(tags, ",")) end
log("tags " .. table.concat(tags, ","))"#
            ),
        ),
        script(
            "label",
            "",
            &format!(
                r#"local m = manifest.get("{repo}:v1", "linux/amd64")
local ic = image.config(m)
local v = ic.Config.Labels["version"]
if v ~= "1" then error("label version is " .. tostring(v)) end
if ic.config.Labels.version ~= "1" then error("JSON name view differs") end
log("version label " .. v)"#
            ),
        ),
    ]
    .concat();
    let (code, logs) = f.bot(&["once"], "", &scripts);
    assert_ok(code, &logs);
    assert!(logs.said("tags", "v1,v2,v3"), "{}", logs.raw);
    assert!(logs.said("label", "version label 1"), "{}", logs.raw);
}

/// image.copy creates a tag; copy then tag.delete leaves nothing; the same copy under
/// --dry-run leaves the target missing.
#[test]
fn copy_delete_and_dry_run_copy() {
    let Some(f) = Fixture::start() else { return };
    let (src, dst) = (f.r("testrepo:v1"), f.r("copies"));
    let scripts = [
        script("copy", "", &format!(r#"image.copy("{src}", "{dst}:one")"#)),
        script(
            "copy-delete",
            "",
            &format!("image.copy(\"{src}\", \"{dst}:two\")\ntag.delete(\"{dst}:two\")"),
        ),
    ]
    .concat();
    let (code, logs) = f.bot(&["once"], "", &scripts);
    assert_ok(code, &logs);
    assert_eq!(f.tags("copies"), ["one"]);
    assert_eq!(
        f.regctl(&["image", "digest", &format!("{dst}:one")]),
        f.regctl(&["image", "digest", &src])
    );

    let dry = script("dry", "", &format!(r#"image.copy("{src}", "{dst}:three")"#));
    let (code, logs) = f.bot(&["once", "--dry-run"], "", &dry);
    assert_ok(code, &logs);
    assert_eq!(f.tags("copies"), ["one"], "dry run copied: {}", logs.raw);
}

/// One failing script never stops the others: an endless loop hits its timeout, a runtime
/// error, a syntax error and the refused host access (io, os.execute, require) are each
/// reported with the script's name, and a script after all of them still copies.
#[test]
fn failures_are_isolated_and_named() {
    let Some(f) = Fixture::start() else { return };
    let (src, dst) = (f.r("testrepo:v2"), f.r("survivor:ok"));
    let scripts = [
        script("spin", "    timeout: 1s\n", "while true do end"),
        script("thrower", "", "local a = 1\nerror(\"boom\")"),
        script("broken", "", "local = 1"),
        script("opens", "", "local fh = io.open(\"/etc/passwd\")"),
        script("executes", "", "os.execute(\"touch /tmp/regbot-pwned\")"),
        script("requires", "", "local m = require(\"socket\")"),
        script(
            "survivor",
            "",
            &format!("image.copy(\"{src}\", \"{dst}\")\nlog(\"still here\")"),
        ),
    ]
    .concat();
    // One at a time, in file order, so the survivor runs after every failure.
    let (code, logs) = f.bot(&["once"], "  parallel: 1\n", &scripts);
    assert_eq!(code, 1, "{}", logs.raw);
    let failed = logs.failures();
    let names: Vec<&str> = failed.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["broken", "executes", "opens", "requires", "spin", "thrower"],
        "{}",
        logs.raw
    );
    let err = |s: &str| failed[s].to_lowercase();
    assert!(err("spin").contains("timeout"), "{}", err("spin"));
    assert!(err("spin").contains("spin"), "{}", err("spin"));
    for s in ["thrower", "broken"] {
        assert!(err(s).contains(s), "error does not name {s}: {}", err(s));
    }
    assert!(
        err("thrower").contains("boom")
            && (err("thrower").contains(":2:") || err("thrower").contains("line 2")),
        "no message or line: {}",
        err("thrower")
    );
    assert!(err("opens").contains("io"), "{}", err("opens"));
    assert!(err("executes").contains("execute"), "{}", err("executes"));
    assert!(err("requires").contains("require"), "{}", err("requires"));
    assert!(!std::path::Path::new("/tmp/regbot-pwned").exists());
    assert!(logs.said("survivor", "still here"), "{}", logs.raw);
    assert_eq!(f.tags("survivor"), ["ok"]);
    // The final summary names the first failure in file order.
    let last = logs.lines.last().expect("a summary line");
    assert_eq!(Logs::field(last, "script"), "spin", "{}", logs.raw);
}

/// --dry-run covers every write: a copy, a tag delete, a manifest delete and a blob push
/// leave tags, digests and blobs exactly as they were.
#[test]
fn dry_run_leaves_registry_unchanged() {
    let Some(f) = Fixture::start() else { return };
    let repo = f.r("testrepo");
    let before = f.all_tags("testrepo");
    let v3 = f.regctl(&["image", "digest", &format!("{repo}:v3")]);
    let content = "regbot dry run blob";
    let scripts = script(
        "writes",
        "",
        &format!(
            r#"image.copy("{repo}:v1", "{repo}:dry")
tag.delete("{repo}:v2")
local m = manifest.get("{repo}:v3")
m:delete()
local d, n = blob.put("{repo}", "{content}")
log("blob " .. tostring(d) .. " " .. tostring(n))"#
        ),
    );
    let (code, logs) = f.bot(&["once", "--dry-run"], "", &scripts);
    assert_ok(code, &logs);
    assert_eq!(f.all_tags("testrepo"), before, "{}", logs.raw);
    // Each of the four writes says it was skipped.
    let skipped = logs
        .lines
        .iter()
        .filter(|l| Logs::field(l, "msg").to_lowercase().contains("dry run"))
        .count();
    assert_eq!(skipped, 4, "{}", logs.raw);
    assert_eq!(f.regctl(&["image", "digest", &format!("{repo}:v3")]), v3);
    use sha2::Digest;
    let blob = format!("sha256:{:x}", sha2::Sha256::digest(content.as_bytes()));
    let head = f.regctl_out(&["blob", "head", &repo, &blob]);
    assert!(!head.status.success(), "the blob was pushed: {}", logs.raw);
}

/// The example file's scripts that only touch registry.example.org, pointed at the test
/// registry and run with --dry-run: they read, decide, and change nothing.
#[test]
fn example_safe_scripts_in_dry_run() {
    let Some(f) = Fixture::start() else { return };
    // Content the example's scripts look for: a CI build tag, a staging repository with
    // release tags, and an old-style referrer tag whose subject does not exist.
    for (from, to) in [
        ("testrepo:v1", "app:ci-1234"),
        ("testrepo:v2", "app:v1.0.0"),
        ("testrepo:v1", "staging/app:v1.0.0"),
        ("testrepo:v3", "staging/app:v1.1.0"),
        ("testrepo:v2", &format!("app:sha256-{}", "0".repeat(64))),
    ] {
        f.regctl(&["image", "copy", &f.r(from), &f.r(to)]);
    }
    let before: Vec<Vec<String>> = ["app", "staging/app"]
        .iter()
        .map(|r| f.all_tags(r))
        .collect();

    let text = std::fs::read_to_string(support::repo_root().join("tests/regbot-example.yaml"))
        .unwrap()
        .replace("registry.example.org", &f.reg.host);
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    doc.apply_merge().unwrap();
    let safe = [
        "expire-ci-tags",
        "promote-releases",
        "drop-dangling-referrers",
        "inventory",
    ];
    let scripts = doc["scripts"].as_sequence_mut().unwrap();
    scripts.retain(|s| safe.contains(&s["name"].as_str().unwrap_or_default()));
    assert_eq!(scripts.len(), safe.len());
    // Plain HTTP and no secrets for the test registry.
    doc["creds"] = serde_yaml::from_str(&format!(
        "[{{registry: \"{}\", tls: disabled}}]",
        f.reg.host
    ))
    .unwrap();
    let (code, logs) = f.bot_yaml(
        &["once", "--dry-run"],
        &serde_yaml::to_string(&doc).unwrap(),
    );
    assert_ok(code, &logs);
    assert!(logs.said("expire-ci-tags", "expiring"), "{}", logs.raw);
    assert!(
        logs.said("promote-releases", "promoting v1.1.0"),
        "{}",
        logs.raw
    );
    assert!(
        !logs.said("promote-releases", "promoting v1.0.0"),
        "{}",
        logs.raw
    );
    assert!(
        logs.said("drop-dangling-referrers", "is gone"),
        "{}",
        logs.raw
    );
    assert!(logs.said("inventory", "staging/app: "), "{}", logs.raw);
    let after: Vec<Vec<String>> = ["app", "staging/app"]
        .iter()
        .map(|r| f.all_tags(r))
        .collect();
    assert_eq!(before, after, "the dry run changed tags: {}", logs.raw);
}

/// Every call of the Lua API once against a real registry, checked inside the script and
/// again from outside with regctl.
#[test]
fn every_api_call_against_the_registry() {
    let Some(f) = Fixture::start() else { return };
    let base = f.r("testrepo");
    let host = f.reg.host.clone();
    let tar = f.tmp.join("v1.tar");
    let lua = format!(
        r#"local base, host = "{base}", "{host}"
local function check(ok, what) if not ok then error(what, 2) end end
-- reference objects
local r = reference.new(base .. ":v2")
check(tostring(r) == base .. ":v2", "tostring(ref) " .. tostring(r))
check(r:tag() == "v2", "ref:tag()")
r:tag("v3")
check(tostring(r) == base .. ":v3", "ref:tag(set)")
-- repositories and tags
local found = false
for _, n in ipairs(repo.ls(host)) do if n == "testrepo" then found = true end end
check(found, "repo.ls misses testrepo")
local page = tag.ls(base, {{limit = 1}})
check(#page == 1, "tag.ls limit gave " .. #page)
-- manifests
local list = manifest.getList(base .. ":v2")
check(list.MediaType == "application/vnd.oci.image.index.v1+json", "getList media type")
check(list.mediaType == list.MediaType, "both spellings")
local h = manifest.head(base .. ":v2")
local hd = manifest.descriptor(h)
check(hd.Digest == list:descriptor().digest, "head digest " .. tostring(hd.Digest))
local m = manifest.get(base .. ":v2", "linux/arm64")
local cfg = m:config()
check(cfg.Architecture == "arm64" and cfg.architecture == "arm64", "config arch")
check(image.config(m).OS == "linux", "image.config")
check(#image.manifest(base .. ":v2", "linux/amd64").Layers == #m.layers, "image.manifest alias")
check(image.manifestHead(base .. ":v2"):descriptor().digest == hd.digest, "manifestHead alias")
check(image.manifestList(base .. ":v2").MediaType == list.MediaType, "manifestList alias")
check(m:get().Layers ~= nil and m:head():descriptor().digest == m:descriptor().digest, "m:get/m:head")
local rl = m:ratelimit()
check(rl.Set == false, "a registry without rate-limit headers")
check(image.ratelimitWait(base .. ":v2", 100, "1s", "5s") == true, "ratelimitWait")
check(m:ratelimitWait(100, "1s", "5s") == true, "m:ratelimitWait")
-- blobs
local layer = m.Layers[1]
check(blob.head(base, layer.Digest) ~= nil, "blob.head")
check(#tostring(blob.get(base, layer.digest)) == layer.Size, "blob.get size")
local dg, sz = blob.put(base .. "-copy", "hello regbot")
check(sz == 12, "blob.put size " .. tostring(sz))
check(tostring(blob.get(base .. "-copy", dg)) == "hello regbot", "blob round trip")
-- writes: copy, an edited manifest, deletes
image.copy(base .. ":v2", base .. "-copy:v2")
local e = manifest.get(base .. "-copy:v2")
e.Annotations["org.example.edited"] = "yes"
local ex = e:export()
manifest.put(ex, base .. "-copy:edited")
local edited = manifest.get(base .. "-copy:edited")
check(edited.annotations["org.example.edited"] == "yes", "edited annotation")
check(edited:descriptor().digest ~= e:descriptor().digest, "edit changes the digest")
edited:put(base .. "-copy:edited2")
tag.delete(base .. "-copy:edited2")
edited:delete()
-- tar export and import
image.exportTar(base .. ":v1", "{tar}")
image.importTar(base .. "-imported:v1", "{tar}")
reference.close(base .. "-imported:v1")
r:close()
log("every call ok")"#,
        tar = tar.display()
    );
    let (code, logs) = f.bot(&["once"], "", &script("calls", "", &lua));
    assert_ok(code, &logs);
    assert!(logs.said("calls", "every call ok"), "{}", logs.raw);
    // The writes landed, the deletes took effect.
    assert_eq!(f.tags("testrepo-copy"), ["v2"]);
    assert_eq!(
        f.regctl(&["image", "digest", &f.r("testrepo-imported:v1")]),
        f.regctl(&["image", "digest", &f.r("testrepo:v1")])
    );
    assert_eq!(
        f.regctl(&["image", "digest", &f.r("testrepo-copy:v2")]),
        f.regctl(&["image", "digest", &f.r("testrepo:v2")])
    );
    assert!(tar.metadata().map(|m| m.len() > 1024).unwrap_or(false));
}

/// A script written the way upstream's examples are (Lua 5.1 habits under gopher-lua: globals,
/// `log "text"` call syntax, `unpack`, `pairs` over tag lists, `string.gmatch`, `os.date`
/// arithmetic, a reference object re-tagged in a loop) runs unchanged.
#[test]
fn upstream_style_script_runs_unchanged() {
    let Some(f) = Fixture::start() else { return };
    let lua = format!(
        r#"log "starting upstream style script"
imageList = {{"{base}"}}
dateFmt = "%Y%m%d"
legacyDate = os.date(dateFmt, os.time() - (86400 * 30))
for k, img in pairs(imageList) do
  tags = tag.ls(img)
  table.sort(tags)
  ref = reference.new(img)
  for k, t in pairs(tags) do
    if string.match(t, "^v[0-9]+$") then
      ref:tag(t)
      ic = image.config(ref)
      created = ic.Created or ic.created
      y, mo, d = unpack({{string.match(created, "^(%d+)-(%d+)-(%d+)")}})
      parts = {{}}
      for p in string.gmatch(t, "[^v]+") do table.insert(parts, p) end
      if (y .. mo .. d) < legacyDate then
        log("old build " .. tostring(ref) .. " " .. parts[1])
        image.copy(ref, "{base}-archive:" .. t)
      end
    end
  end
end"#,
        base = f.r("testrepo")
    );
    let (code, logs) = f.bot(&["once"], "", &script("legacy", "", &lua));
    assert_ok(code, &logs);
    assert!(
        logs.said("legacy", "starting upstream style script"),
        "{}",
        logs.raw
    );
    // The fixture images were built with times in 2020 or earlier: all three are "old".
    assert!(logs.said("legacy", "old build"), "{}", logs.raw);
    assert_eq!(f.tags("testrepo-archive"), ["v1", "v2", "v3"]);
}
