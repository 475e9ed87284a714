//! Tests of the regbot API against copies of `testdata/testrepo`.
//!
//! Each test gets its own temp dir with the layout (`R` in Lua) and an empty target path
//! (`T`). The helper installs the API on a plain `Lua::new()` with a `RunState`; the real
//! sandbox builds its state elsewhere and calls the same [`install`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlua::Lua;

use super::install;
use crate::bot::{Level, Limits, RunState, ScriptEnv};
use crate::scheme::ocidir::OciDirOpts;
use crate::{Client, ClientConfig};

type Logged = (Level, String, String, Vec<(String, String)>);

/// A temp dir removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "regbot-api-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Every file of a directory with its content, to prove a dry run wrote nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

struct Harness {
    tmp: TempDir,
    lua: Lua,
    logs: Arc<Mutex<Vec<Logged>>>,
}

impl Harness {
    fn new(dry_run: bool) -> Harness {
        Self::with(dry_run, None, Limits::default())
    }

    fn with_deadline(dry_run: bool, deadline: Option<Instant>) -> Harness {
        Self::with(dry_run, deadline, Limits::default())
    }

    fn with_limits(dry_run: bool, limits: Limits) -> Harness {
        Self::with(dry_run, None, limits)
    }

    fn with(dry_run: bool, deadline: Option<Instant>, limits: Limits) -> Harness {
        let tmp = TempDir::new();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/testrepo"),
            &tmp.0.join("testrepo"),
        );
        let client = Client::new(ClientConfig {
            threads: 2,
            ocidir: OciDirOpts {
                gc: true,
                created: Some("2020-01-01T00:00:00Z".into()),
            },
            ..Default::default()
        });
        let logs: Arc<Mutex<Vec<Logged>>> = Arc::default();
        let sink = Arc::clone(&logs);
        let env = ScriptEnv {
            client: Arc::new(client),
            dry_run,
            log: Arc::new(move |level, script, msg, fields| {
                sink.lock().unwrap().push((
                    level,
                    script.to_string(),
                    msg.to_string(),
                    fields
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ))
            }),
            limits,
        };
        let lua = Lua::new();
        lua.set_app_data(RunState {
            script: "test".into(),
            deadline,
        });
        install(&lua, &env, "test").unwrap();
        let g = lua.globals();
        g.set(
            "R",
            format!("ocidir://{}", tmp.0.join("testrepo").display()),
        )
        .unwrap();
        g.set("T", format!("ocidir://{}", tmp.0.join("target").display()))
            .unwrap();
        g.set("DIR", tmp.0.display().to_string()).unwrap();
        Harness { tmp, lua, logs }
    }

    fn run(&self, src: &str) -> mlua::Result<()> {
        self.lua.load(src).set_name("script").exec()
    }

    fn ok(&self, src: &str) {
        if let Err(e) = self.run(src) {
            panic!("script failed: {e}\n{src}");
        }
    }

    fn err(&self, src: &str) -> String {
        match self.run(src) {
            Ok(()) => panic!("script should fail:\n{src}"),
            Err(e) => e.to_string(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.0.join(name)
    }

    fn logs(&self) -> Vec<Logged> {
        self.logs.lock().unwrap().clone()
    }
}

#[test]
fn log_message() {
    let h = Harness::new(false);
    h.ok(r#"log("hello " .. 42)"#);
    let logs = h.logs();
    assert_eq!(logs.len(), 1);
    let (level, script, msg, fields) = &logs[0];
    assert_eq!(*level, Level::Info);
    assert_eq!(script, "test");
    assert_eq!(msg, "User script message");
    assert_eq!(fields, &[("message".to_string(), "hello 42".to_string())]);
}

#[test]
fn reference_objects() {
    let h = Harness::new(false);
    h.ok(r#"
        local r = reference.new(R .. ":v1")
        assert(tostring(r) == R .. ":v1", tostring(r))
        assert(r:tag() == "v1")
        assert(r:digest() == "")
        r:digest("sha256:7ceb9b6bcc274697d0c38be6214b50cec79d601bc61708747d3f6cb772f6c6fa")
        assert(r:tag() == "", "setting a digest clears the tag")
        assert(tostring(r) == R .. "@sha256:7ceb9b6bcc274697d0c38be6214b50cec79d601bc61708747d3f6cb772f6c6fa")
        r:tag("v2")
        assert(r:digest() == "", "setting a tag clears the digest")
        assert(tostring(r) == R .. ":v2")
        -- objects are accepted wherever a reference is
        local m = manifest.getList(r)
        assert(m:descriptor().digest == manifest.descriptor(R .. ":v2").digest)
        local r2 = reference.new(m)
        assert(tostring(r2) == R .. ":v2")
        r:close()
        reference.close(R .. ":v1")
    "#);
    let e = h.err(r#"reference.new(R):digest("nope")"#);
    assert!(e.contains("ref:digest"), "{e}");
    let e = h.err(r#"reference.new("Not A Ref!")"#);
    assert!(e.contains("reference.new: argument 1"), "{e}");
}

#[test]
fn tag_ls_and_options() {
    let h = Harness::new(false);
    h.ok(r#"
        local tags = tag.ls(R)
        local found = false
        for _, t in ipairs(tags) do if t == "v2" then found = true end end
        assert(found, "v2 listed")
        local page = tag.ls(R, {limit = 2})
        assert(#page == 2, #page)
        assert(page[1] == tags[1] and page[2] == tags[2])
        local after = tag.ls(R, {last = "v1"})
        for _, t in ipairs(after) do assert(t > "v1", t) end
        assert(after[1] == "v2", after[1])
        assert(#tag.ls(R, {limit = 0}) == #tags, "0 is no limit")
    "#);
    let e = h.err(r#"tag.ls(R, {limt = 2})"#);
    assert!(e.contains("tag.ls: argument 2: unknown option limt"), "{e}");
}

#[test]
fn manifest_get_platform_and_config_labels() {
    let h = Harness::new(false);
    h.ok(r#"
        local m = manifest.get(R .. ":v1", "linux/amd64")
        assert(m.MediaType == "application/vnd.oci.image.manifest.v1+json", m.MediaType)
        assert(m.mediaType == m.MediaType)
        assert(m.SchemaVersion == 2 and m.schemaVersion == 2)
        assert(#m.Layers == #m.layers and #m.layers >= 1)
        assert(m.Layers[1].Digest == m.layers[1].digest)
        assert(m.Layers[1].Size == m.layers[1].size and m.layers[1].size > 0)
        assert(m.Config.MediaType == "application/vnd.oci.image.config.v1+json")
        assert(m.config.digest == m.Config.Digest)
        assert(m:descriptor().Platform.Architecture == "amd64")
        assert(m:descriptor().platform.os == "linux")
        local c = image.config(R .. ":v1")
        assert(c.Config.Labels.version == "1")
        assert(c.config.Labels["version"] == "1")
        assert(c.config.labels.arg_label == "arg_for_label")
        local c2 = image.config(m)
        assert(c2.Architecture == "amd64" and c2.architecture == "amd64")
        assert(c2.OS == "linux" and c2.os == "linux")
        assert(c2.RootFS.Type == "layers" and c2.rootfs.type == "layers")
        assert(#c2.RootFS.DiffIDs == #c2.rootfs.diff_ids)
        assert(#c2.History == #c2.history)
        if #c2.history > 0 then
          assert(c2.History[1].CreatedBy == c2.history[1].created_by)
        end
        local c3 = m:config()
        assert(c3.config.Labels.version == "1")
        assert(string.find(tostring(c3), '"version": "1"', 1, true), tostring(c3))
        assert(string.find(tostring(m), '"schemaVersion": 2', 1, true))
        -- an index resolves to the local platform without a platform argument
        local local_m = manifest.get(R .. ":v1")
        assert(local_m.mediaType == "application/vnd.oci.image.manifest.v1+json")
        -- m:config() on an index resolves too
        assert(manifest.getList(R .. ":v1"):config().config.Labels.version == "1")
    "#);
}

#[test]
fn get_list_descriptor_and_index_fields() {
    let h = Harness::new(false);
    h.ok(r#"
        local m = manifest.getList(R .. ":v1")
        local d = manifest.descriptor(m)
        assert(d.mediaType == "application/vnd.oci.image.index.v1+json", d.mediaType)
        assert(d.MediaType == d.mediaType)
        assert(string.sub(d.digest, 1, 7) == "sha256:", d.digest)
        assert(d.Size == d.size and d.size > 0)
        assert(#m.Manifests == #m.manifests and #m.manifests == 4)
        local e = m.Manifests[1]
        assert(e.Platform.Architecture == e.platform.architecture)
        assert(e.Platform.OS == "linux")
        assert(image.manifestList(R .. ":v1"):descriptor().digest == d.digest)
        assert(manifest.descriptor(R .. ":v1").digest == d.digest)
        local n = 0
        for k, v in pairs(m) do n = n + 1 end
        assert(n >= 3, "pairs walks the fields")
    "#);
}

#[test]
fn mirror_has_a_twin_tag() {
    let h = Harness::new(false);
    h.ok(r#"
        local want = manifest.descriptor(R .. ":mirror").digest
        local twin
        for _, t in ipairs(tag.ls(R)) do
          if t ~= "mirror" and manifest.descriptor(R .. ":" .. t).digest == want then twin = t end
        end
        assert(twin == "sha256-" .. string.sub(want, 8), tostring(twin))
    "#);
}

#[test]
fn copy_then_delete() {
    let h = Harness::new(false);
    h.ok(r#"
        image.copy(R .. ":v1", T .. ":copied")
        local tags = table.concat(tag.ls(T), ",")
        -- the referrer inside v1 brings its fallback tag along
        assert(string.find("," .. tags .. ",", ",copied,", 1, true), tags)
        assert(manifest.descriptor(T .. ":copied").digest == manifest.descriptor(R .. ":v1").digest)
        image.copy(R .. ":v2", T .. ":second", {digestTags = true, referrers = true, forceRecursive = true,
          includeExternal = false, platforms = {"linux/amd64"}})
        tag.delete(T .. ":copied")
        for _, t in ipairs(tag.ls(T)) do assert(t ~= "copied") end
    "#);
    let e = h.err(r#"image.copy(R .. ":v1", T .. ":x", {platforms = "linux/amd64"})"#);
    assert!(e.contains("image.copy: argument 3"), "{e}");
}

#[test]
fn manifest_delete_and_head() {
    let h = Harness::new(false);
    h.ok(r#"
        image.copy(R .. ":v1", T .. ":gone")
        local m = manifest.head(T .. ":gone")
        assert(m.layers == nil, "HEAD has no body")
        assert(m.MediaType == "application/vnd.oci.image.index.v1+json")
        local rl = m:ratelimit()
        assert(rl.Set == false and rl.Remain == 0 and rl.Limit == 0 and rl.Reset == 0)
        assert(type(rl.Policies) == "table" and #rl.Policies == 0)
        assert(m:ratelimitWait(10) == true)
        assert(image.ratelimitWait(T .. ":gone", 10, "1s", "2s") == true)
        assert(string.find(tostring(m), "sha256:", 1, true))
        local full = m:get()
        assert(#full.layers > 0)
        assert(m:head():descriptor().digest == m:descriptor().digest)
        assert(image.manifestHead(T .. ":gone"):descriptor().digest == m:descriptor().digest)
        assert(image.manifest(T .. ":gone", "linux/arm64"):descriptor().platform.architecture == "arm64")
        manifest.getList(T .. ":gone"):delete()
        local ok = pcall(manifest.head, T .. ":gone")
        assert(not ok, "deleted")
    "#);
    let e = h.err(r#"manifest.head(R .. ":v1"):export()"#);
    assert!(e.contains("m:get() first"), "{e}");
}

#[test]
fn export_edit_then_put_gives_new_digest() {
    let h = Harness::new(false);
    h.ok(r#"
        local m = manifest.get(R .. ":v1", "linux/amd64")
        local same = m:export()
        assert(same:descriptor().digest == m:descriptor().digest, "no edit, same bytes")
        m.annotations["org.example.edited"] = "yes"
        m.Annotations["org.example.go"] = "too"
        local m2 = m:export()
        assert(m2:descriptor().digest ~= m:descriptor().digest)
        assert(m2.annotations["org.example.edited"] == "yes")
        assert(m2.Annotations["org.example.go"] == "too")
        manifest.put(m2, R .. ":edited")
        local back = manifest.get(R .. ":edited")
        assert(back:descriptor().digest == m2:descriptor().digest)
        assert(back.annotations["org.example.edited"] == "yes")
        -- m:put and the index: a descriptor edit through the Go spelling
        local idx = manifest.getList(R .. ":v1")
        idx.Annotations = {note = "x"}
        local idx2 = idx:export()
        idx2:put(R .. ":edited-index")
        assert(manifest.getList(R .. ":edited-index").annotations.note == "x")
        -- a config descriptor taken from another manifest keeps m:config() working
        local other = manifest.get(R .. ":v1", "linux/arm64")
        local amd = manifest.get(R .. ":v1", "linux/amd64")
        amd.Config = other.layers[1]
        amd.config = other.config
        -- (m:config() reads the manifest as fetched; edits only matter after m:export())
        assert(amd:config().architecture == "amd64")
        assert(amd:export():config().architecture == "arm64")
        -- edits that break the manifest are refused
        local bad = manifest.get(R .. ":v1", "linux/amd64")
        bad.layers = "nope"
        assert(not pcall(bad.export, bad))
    "#);
}

#[test]
fn config_export_and_blob_round_trip() {
    let h = Harness::new(false);
    h.ok(r#"
        local d, s = blob.put(R, "hello")
        assert(s == 5, s)
        assert(d == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", d)
        local b = blob.get(R, d)
        assert(tostring(b) == "hello")
        assert(b:descriptor().size == 5)
        local hd = blob.head(R .. "@" .. d)
        assert(hd:descriptor().digest == d)
        assert(tostring(hd) == d)
        -- a blob object copies to another layout
        local d2, s2 = blob.put(T .. ":x", b)
        assert(d2 == d and s2 == 5)
        local big = blob.get(R, manifest.get(R .. ":v1", "linux/amd64").layers[1].digest)
        local d3 = blob.put(T .. ":x", big)
        assert(d3 == big:descriptor().digest)
        assert(tostring(blob.get(T .. ":x", d)) == "hello")
        -- config objects: unchanged export keeps the bytes, edits give a new blob
        local m = manifest.get(R .. ":v1", "linux/amd64")
        local c = image.config(m)
        local cd = blob.put(R, c)
        assert(cd == m.config.digest, cd)
        c.Config.Labels.version = "2"
        local c2 = c:export()
        assert(c2.config.Labels.version == "2")
        local cd2 = blob.put(R, c2)
        assert(cd2 ~= cd)
        assert(image.config(R .. ":v1").config.Labels.version == "1")
        local keys = {}
        for k in pairs(c) do keys[k] = true end
        assert(keys.config and keys.rootfs and keys.architecture)
    "#);
    let e = h.err(r#"blob.get(R)"#);
    assert!(e.contains("blob.get: no digest"), "{e}");
    let e = h.err(r#"blob.put(R, 12)"#);
    assert!(
        e.contains(
            "blob.put: argument 2: expected a string, blob object or config object, got number"
        ),
        "{e}"
    );
}

#[test]
fn tar_round_trip() {
    let h = Harness::new(false);
    h.ok(r#"
        local f = DIR .. "/v1.tar"
        image.exportTar(R .. ":v1", f)
        image.importTar(T .. ":imported", f)
        assert(manifest.descriptor(T .. ":imported").digest == manifest.descriptor(R .. ":v1").digest)
    "#);
    assert!(h.path("v1.tar").is_file());
    let e = h.err(r#"image.importTar(T .. ":x", DIR .. "/missing.tar")"#);
    assert!(e.contains("image.importTar"), "{e}");
}

#[test]
fn dry_run_writes_nothing() {
    let h = Harness::new(false);
    // A tar to import and a target with a tag, made before the dry run starts.
    h.ok(r#"
        image.exportTar(R .. ":v1", DIR .. "/v1.tar")
        image.copy(R .. ":v1", T .. ":keep")
    "#);
    let before_src = snapshot(&h.path("testrepo"));
    let before_tgt = snapshot(&h.path("target"));

    let dry = Harness::new(true);
    // Point the dry-run state at the first harness's directories.
    let g = dry.lua.globals();
    g.set("R", format!("ocidir://{}", h.path("testrepo").display()))
        .unwrap();
    g.set("T", format!("ocidir://{}", h.path("target").display()))
        .unwrap();
    g.set("DIR", h.tmp.0.display().to_string()).unwrap();
    g.set("WANT", crate::Digest::sha256(b"dry run").to_string())
        .unwrap();
    dry.ok(r#"
        image.copy(R .. ":v1", T .. ":new")
        tag.delete(T .. ":keep")
        manifest.getList(T .. ":keep"):delete()
        local m = manifest.get(R .. ":v1", "linux/amd64")
        m.annotations.x = "y"
        local m2 = m:export()
        manifest.put(m2, R .. ":dry")
        m2:put(T .. ":dry")
        local d, s = blob.put(R, "dry run")
        assert(d == WANT, d)
        assert(s == 7)
        image.importTar(T .. ":imp", DIR .. "/v1.tar")
        -- reads still work
        local tags = "," .. table.concat(tag.ls(T), ",") .. ","
        assert(string.find(tags, ",keep,", 1, true) and not string.find(tags, ",new,", 1, true), tags)
    "#);
    // A dry run still fails where the real run would.
    let e = dry.err(r#"tag.delete(T .. ":missing")"#);
    assert!(e.contains("tag.delete:"), "{e}");
    let e = dry.err(r#"image.copy(R .. ":missing", T .. ":x")"#);
    assert!(e.contains("image.copy:"), "{e}");
    assert_eq!(snapshot(&h.path("testrepo")), before_src);
    assert_eq!(snapshot(&h.path("target")), before_tgt);
    let logs = dry.logs();
    for what in [
        "image copy",
        "tag delete",
        "manifest delete",
        "manifest put",
        "blob put",
        "image import",
    ] {
        assert!(
            logs.iter()
                .any(|(l, _, m, _)| *l == Level::Info && m == &format!("Dry run: skipping {what}")),
            "no dry-run log for {what}: {logs:?}"
        );
    }
    // The dry-run blob.put reports what a real put would.
    let (_, _, _, fields) = logs
        .iter()
        .find(|(_, _, m, _)| m.ends_with("blob put"))
        .unwrap();
    assert!(fields
        .iter()
        .any(|(k, v)| k == "digest" && v == &crate::Digest::sha256(b"dry run").to_string()));
}

#[test]
fn wrong_argument_types() {
    let h = Harness::new(false);
    let cases = [
        (
            "tag.ls(5)",
            "tag.ls: argument 1: expected a reference string or object, got number",
        ),
        (
            "tag.delete({})",
            "tag.delete: argument 1: expected a reference string or object, got table",
        ),
        (
            "manifest.get(nil)",
            "manifest.get: argument 1: expected a reference string or object, got nil",
        ),
        (
            "manifest.get(R .. ':v1', 5)",
            "manifest.get: argument 2: expected a platform string like \"linux/amd64\", got number",
        ),
        (
            "manifest.put('x', R)",
            "manifest.put: argument 1: expected a manifest object, got string",
        ),
        (
            "manifest.put(manifest.getList(R .. ':v1'), true)",
            "manifest.put: argument 2: expected a reference string or object, got boolean",
        ),
        (
            "image.copy(R .. ':v1', 3)",
            "image.copy: argument 2: expected a reference string or object, got number",
        ),
        (
            "image.exportTar(R .. ':v1', {})",
            "image.exportTar: argument 2: expected a file name, got table",
        ),
        (
            "image.ratelimitWait(R .. ':v1', 'x')",
            "image.ratelimitWait: argument 2: expected an integer limit, got string",
        ),
        (
            "image.ratelimitWait(R .. ':v1', 1, 'soon')",
            "image.ratelimitWait: argument 3",
        ),
        (
            "blob.get(blob.put)",
            "blob.get: argument 1: expected a reference string or object, got function",
        ),
        (
            "repo.ls(5)",
            "repo.ls: argument 1: expected a registry name, got number",
        ),
        (
            "tag.ls(R, 'x')",
            "tag.ls: argument 2: expected an options table, got string",
        ),
        (
            "image.config(blob.head(R, manifest.get(R .. ':v1', 'linux/amd64').config.digest))",
            "image.config: argument 1: expected a reference string or object, got blob object",
        ),
    ];
    for (src, want) in cases {
        let e = h.err(src);
        assert!(e.contains(want), "{src}: {e}");
    }
    let e = h.err(r#"image.config(R .. ":a1")"#);
    assert!(
        e.contains("image.config:") && e.contains("not an image"),
        "{e}"
    );
    let e = h.err(r#"repo.ls(R)"#);
    assert!(e.contains("not a registry"), "{e}");
    let e = h.err(r#"manifest.get(R .. ":v1", "linux/s390x")"#);
    assert!(e.contains("manifest.get:"), "{e}");
    let e = h.err(r#"manifest.get(R .. ":missing")"#);
    assert!(e.contains("manifest.get:"), "{e}");
}

#[test]
fn rate_limit_wait_loop() {
    let h = Harness::new(false);
    let limited = || {
        Ok(crate::ratelimit::RateLimit {
            limit: 100,
            remain: 0,
            set: true,
            ..Default::default()
        })
    };
    let start = Instant::now();
    let got = super::image::wait_loop(
        &h.lua,
        5,
        Duration::from_millis(20),
        Duration::from_millis(100),
        limited,
    )
    .unwrap();
    assert!(!got, "still limited at the timeout");
    assert!(start.elapsed() < Duration::from_secs(2));
    // Remaining recovers on the third poll.
    let mut n = 0;
    let got = super::image::wait_loop(
        &h.lua,
        5,
        Duration::from_millis(1),
        Duration::from_secs(5),
        || {
            n += 1;
            Ok(crate::ratelimit::RateLimit {
                remain: if n >= 3 { 5 } else { 1 },
                set: true,
                ..Default::default()
            })
        },
    )
    .unwrap();
    assert!(got);
    assert_eq!(n, 3);
}

#[test]
fn waits_end_at_the_deadline() {
    let h = Harness::with_deadline(false, Some(Instant::now() + Duration::from_millis(150)));
    let start = Instant::now();
    let e = super::image::wait_loop(
        &h.lua,
        5,
        Duration::from_secs(300),
        Duration::from_secs(3600),
        || {
            Ok(crate::ratelimit::RateLimit {
                set: true,
                ..Default::default()
            })
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("timeout reached"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // Every call checks the deadline first.
    let e = h.err(r#"tag.ls(R)"#);
    assert!(e.contains("timeout reached"), "{e}");
}

#[test]
fn module_tables_double_as_type_tables() {
    let h = Harness::new(false);
    h.ok(r#"
        local r = reference.new(R .. ":v1")
        assert(reference.tag(r) == "v1")
        reference.tag(r, "v2")
        assert(r:tag() == "v2")
        local m = manifest.get(R .. ":v1", "linux/amd64")
        assert(manifest.descriptor(m).digest == m:descriptor().digest)
        local cfg = manifest.config(m)
        assert(cfg.Architecture == "amd64")
        local again = imageconfig.export(cfg)
        assert(tostring(again) == tostring(cfg))
        local e = manifest.export(m)
        assert(e:descriptor().digest == m:descriptor().digest, "an unedited export keeps the digest")
        local b = blob.get(R, m.Config.Digest)
        assert(blob.descriptor(b).digest == m.Config.Digest)
    "#);
}

/// Runs `src` in a fresh harness on its own thread; a conversion that never ends fails the
/// test instead of hanging it.
fn err_within(src: &'static str, limit: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let h = Harness::new(false);
        let _ = tx.send(h.err(src));
    });
    rx.recv_timeout(limit).expect("script did not stop")
}

#[test]
fn export_refuses_tables_larger_than_a_manifest() {
    // Shared subtables: 40 levels of doubling is 2^40 leaves but little Lua memory. The
    // conversion runs in Rust, where neither the deadline hook nor the memory limit reach.
    let e = err_within(
        r#"
        local m = manifest.get(R .. ":v1", "linux/amd64")
        local t = {"x"}
        for i = 1, 40 do t = {t, t} end
        m.layers = t
        m:export()
        "#,
        Duration::from_secs(60),
    );
    assert!(e.contains("too large"), "{e}");
    // The same string many times: small in Lua, large once copied out.
    let e = err_within(
        r#"
        local cfg = image.config(R .. ":v1")
        local s = string.rep("x", 1 << 20)
        local env = {}
        for i = 1, 64 do env[i] = s end
        cfg.Config.Env = env
        cfg:export()
        "#,
        Duration::from_secs(60),
    );
    assert!(e.contains("too large"), "{e}");
}

#[test]
fn export_of_a_large_object_keeps_its_key_order_quickly() {
    // Ordering the keys by the template used to search the template once per comparison.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let n = 100_000;
        let mut orig = serde_json::Map::new();
        for i in 0..n {
            orig.insert(format!("k{i}"), serde_json::Value::from(i));
        }
        let orig = serde_json::Value::Object(orig);
        let lua = Lua::new();
        let t = super::convert::to_lua(&lua, &orig).unwrap();
        let back = super::convert::to_json(&t, Some(&orig)).unwrap();
        let keys_kept = back
            .as_object()
            .unwrap()
            .keys()
            .eq(orig.as_object().unwrap().keys());
        let _ = tx.send(keys_kept);
    });
    let kept = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("conversion did not finish");
    assert!(kept);
}

#[test]
fn json_null_fields_read_as_nil_and_survive_export() {
    // Docker writes `"Labels": null`; scripts test such fields with `or {}` and `if`.
    let orig: serde_json::Value = serde_json::from_str(
        r#"{"config": {"Labels": null, "Env": ["A=1"], "Volumes": null},
            "history": [null, {"created_by": "x"}]}"#,
    )
    .unwrap();
    let lua = Lua::new();
    let t = super::convert::to_lua(&lua, &orig).unwrap();
    lua.globals().set("cfg", &t).unwrap();
    lua.load(
        r#"
        assert(cfg.config.Labels == nil, type(cfg.config.Labels))
        assert(cfg.Config.labels == nil)
        local labels = cfg.config.Labels or {}
        assert(labels["x"] == nil)
        assert(#cfg.history == 2, "a null array item keeps its place")
        "#,
    )
    .exec()
    .unwrap();
    let back = super::convert::to_json(&t, Some(&orig)).unwrap();
    assert_eq!(
        back, orig,
        "an unedited table converts back to the same JSON"
    );
    lua.load(r#"cfg.config.Labels = {a = "b"}"#).exec().unwrap();
    let back = super::convert::to_json(&t, Some(&orig)).unwrap();
    assert_eq!(back["config"]["Labels"], serde_json::json!({"a": "b"}));
    assert_eq!(back["config"]["Volumes"], serde_json::Value::Null);
}

#[test]
fn huge_wait_durations_do_not_overflow() {
    // Go durations reach u64::MAX seconds; adding one to an Instant panicked (an abort in
    // release builds, taking every script down).
    let limited = || {
        Ok(crate::ratelimit::RateLimit {
            set: true,
            ..Default::default()
        })
    };
    let h = Harness::with_deadline(false, Some(Instant::now() + Duration::from_millis(300)));
    let e = super::image::wait_loop(
        &h.lua,
        5,
        Duration::from_secs(u64::MAX / 2),
        Duration::MAX,
        limited,
    )
    .unwrap_err();
    assert!(e.to_string().contains("timeout reached"), "{e}");
    let h = Harness::new(false);
    let got = super::image::wait_loop(&h.lua, 5, Duration::MAX, Duration::from_secs(60), limited)
        .unwrap();
    assert!(!got, "a poll past the timeout ends the wait");
}

#[test]
fn no_memory_limit_still_reads_blobs() {
    let h = Harness::with_limits(
        false,
        Limits {
            timeout: None,
            memory: 0,
        },
    );
    h.ok(r#"
        local m = manifest.get(R .. ":v1", "linux/amd64")
        local b = blob.get(R, m.Config.Digest)
        assert(#tostring(b) == m.Config.Size, "config blob read in full")
    "#);
}
