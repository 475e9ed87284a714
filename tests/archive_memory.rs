//! Export and import stream blobs: a 64 MiB layer goes through with far less memory than its
//! size (peak RSS read from /proc while the command runs).

mod support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use support::{ok, regctl, TempDir};

const LAYER: usize = 64 << 20;
/// Peak RSS allowed, well under the layer size.
const LIMIT_KB: u64 = 40 << 10;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes a layout with one image whose single layer is `LAYER` incompressible bytes.
fn big_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let tmp = blobs.join("tmp");
    let mut f = std::io::BufWriter::new(fs::File::create(&tmp).unwrap());
    let mut h = Sha256::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..LAYER / buf.len() {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        h.update(&buf);
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let layer = hex(&h.finalize());
    fs::rename(&tmp, blobs.join(&layer)).unwrap();
    let put = |data: &[u8]| {
        let d = hex(&Sha256::digest(data));
        fs::write(blobs.join(&d), data).unwrap();
        (format!("sha256:{d}"), data.len())
    };
    let (cd, cs) =
        put(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#);
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{layer}"), "size": LAYER}],
    });
    let (md, ms) = put(serde_json::to_vec(&m).unwrap().as_slice());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "big"}}],
    });
    fs::write(dir.join("index.json"), index.to_string()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Runs `cmd` to completion, returning the highest VmHWM (kB) seen while it ran.
fn peak_rss(cmd: &mut Command) -> u64 {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut peak = 0;
    loop {
        if let Ok(s) = fs::read_to_string(&status_file) {
            if let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "{cmd:?} failed: {st}");
            return peak;
        }
        assert!(Instant::now() < deadline, "{cmd:?} timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn big_layer_is_streamed() {
    let tmp = TempDir::new();
    let src = tmp.join("src");
    big_layout(&src);
    let r = format!("ocidir://{}:big", src.display());
    let want = ok(regctl().args(["image", "digest", &r]))
        .trim()
        .to_string();
    for compress in [false, true] {
        let t = tmp.join(format!("big-{compress}.tar"));
        let mut cmd = regctl();
        cmd.args(["image", "export", &r]).arg(&t);
        if compress {
            cmd.arg("--compress");
        }
        let kb = peak_rss(&mut cmd);
        eprintln!("export peak RSS {kb} kB (compress={compress})");
        assert!(
            kb < LIMIT_KB,
            "export peak RSS {kb} kB (compress={compress})"
        );
        assert!(fs::metadata(&t).unwrap().len() > LAYER as u64 / 2);
        let out = tmp.join(format!("out-{compress}"));
        let tgt = format!("ocidir://{}:big", out.display());
        let kb = peak_rss(regctl().args(["image", "import", &tgt]).arg(&t));
        eprintln!("import peak RSS {kb} kB (compress={compress})");
        assert!(
            kb < LIMIT_KB,
            "import peak RSS {kb} kB (compress={compress})"
        );
        assert_eq!(ok(regctl().args(["image", "digest", &tgt])).trim(), want);
        fs::remove_file(&t).unwrap();
        fs::remove_dir_all(&out).unwrap();
    }
}
