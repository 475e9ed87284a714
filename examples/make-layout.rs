//! Writes a deterministic OCI layout of pseudo-random layers, for benchmarks.
//!
//! ```text
//! cargo run --release --example make-layout -- OUT \
//!     [--platforms linux/amd64,linux/arm64] [--layers-per-platform N] [--layer-size 16M] \
//!     [--shared-base-layers N] [--seed N] [--tag NAME] [--no-index] [--compression gzip|none]
//! ```
//!
//! Every image gets `--shared-base-layers` layers that are identical across platforms, followed by
//! `--layers-per-platform` layers of its own. Each layer is a tar holding one file of
//! `--layer-size` incompressible bytes from a seeded PRNG, so the same arguments always give the
//! same digests. gzip layers use stored (level 0) deflate blocks: generation is I/O bound and the
//! digests do not depend on a compressor's choices. Layers are streamed to disk while hashing, so
//! memory stays small even for `--layer-size 1G`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flate2::{Compression, GzBuilder};
use rayon::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const CREATED: &str = "2020-01-01T00:00:00Z";
const MTIME: u64 = 1_577_836_800; // CREATED as Unix seconds
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Debug)]
struct Args {
    out: PathBuf,
    platforms: Vec<String>,
    layers_per_platform: usize,
    layer_size: u64,
    shared_base_layers: usize,
    seed: u64,
    tag: String,
    no_index: bool,
    gzip: bool,
}

fn parse_args() -> Result<Args, String> {
    use lexopt::prelude::*;
    let mut out = None;
    let mut a = Args {
        out: PathBuf::new(),
        platforms: vec!["linux/amd64".into()],
        layers_per_platform: 1,
        layer_size: 1 << 20,
        shared_base_layers: 0,
        seed: 0,
        tag: "latest".into(),
        no_index: false,
        gzip: true,
    };
    let mut p = lexopt::Parser::from_env();
    let err = |e: lexopt::Error| e.to_string();
    while let Some(arg) = p.next().map_err(err)? {
        match arg {
            Long("platforms") => {
                let v = p.value().map_err(err)?.string().map_err(err)?;
                a.platforms = v.split(',').map(|s| s.trim().to_string()).collect();
            }
            Long("layers-per-platform") => {
                a.layers_per_platform = p.value().map_err(err)?.parse().map_err(err)?
            }
            Long("layer-size") => {
                let v = p.value().map_err(err)?.string().map_err(err)?;
                a.layer_size = parse_size(&v)?;
            }
            Long("shared-base-layers") => {
                a.shared_base_layers = p.value().map_err(err)?.parse().map_err(err)?
            }
            Long("seed") => a.seed = p.value().map_err(err)?.parse().map_err(err)?,
            Long("tag") => a.tag = p.value().map_err(err)?.string().map_err(err)?,
            Long("no-index") => a.no_index = true,
            Long("compression") => {
                a.gzip = match p.value().map_err(err)?.string().map_err(err)?.as_str() {
                    "gzip" => true,
                    "none" => false,
                    other => return Err(format!("unknown compression {other:?} (gzip|none)")),
                }
            }
            Long("help") | Short('h') => {
                println!("{}", usage());
                std::process::exit(0);
            }
            Value(v) if out.is_none() => out = Some(PathBuf::from(v)),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    a.out = out.ok_or("missing OUT directory")?;
    if a.platforms.iter().any(|p| platform_json(p).is_none()) {
        return Err(format!(
            "bad platform in {:?} (want os/arch[/variant])",
            a.platforms
        ));
    }
    if a.no_index && a.platforms.len() != 1 {
        return Err("--no-index needs exactly one platform".into());
    }
    if a.shared_base_layers + a.layers_per_platform == 0 {
        return Err("an image needs at least one layer".into());
    }
    Ok(a)
}

fn usage() -> &'static str {
    "usage: make-layout OUT [--platforms os/arch[/variant],...] [--layers-per-platform N] \
     [--layer-size SIZE[K|M|G]] [--shared-base-layers N] [--seed N] [--tag NAME] [--no-index] \
     [--compression gzip|none]"
}

/// `16M`, `1G`, `512K` (binary units) or plain bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size {s:?}"))
}

fn platform_json(p: &str) -> Option<Value> {
    let parts: Vec<&str> = p.split('/').collect();
    let ok = |s: &&str| !s.is_empty();
    match parts.as_slice() {
        [os, arch] if ok(os) && ok(arch) => Some(json!({ "architecture": arch, "os": os })),
        [os, arch, v] if ok(os) && ok(arch) && ok(v) => {
            Some(json!({ "architecture": arch, "os": os, "variant": v }))
        }
        _ => None,
    }
}

/// splitmix64: tiny, fast, and good enough that deflate and dedup find nothing to exploit.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `len` pseudo-random bytes as a reader, so tar can stream them.
struct RandomReader {
    rng: SplitMix,
    left: u64,
}

impl Read for RandomReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            let word = self.rng.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Hashes and counts everything written through it.
struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hash: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hash.finalize()), self.size)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// FNV-1a, to turn a layer's name into a PRNG stream id.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// One distinct layer to generate.
struct LayerJob {
    /// Names the PRNG stream and the file inside the tar: `shared-0`, `linux-amd64-2`, ...
    name: String,
}

struct LayerOut {
    digest: String,
    diff_id: String,
    size: u64,
}

/// Streams a layer into `blobs/sha256/<digest>` via a temp file; returns its digests.
fn write_layer(blobs: &Path, job: &LayerJob, a: &Args) -> io::Result<LayerOut> {
    let tmp = blobs.join(format!(".tmp-{}", job.name));
    let file = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut header = tar::Header::new_ustar();
    header.set_path(format!("{}.bin", job.name))?;
    header.set_size(a.layer_size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let data = RandomReader {
        rng: SplitMix(a.seed ^ fnv1a(&job.name)),
        left: a.layer_size,
    };
    let (file, digest, diff_id, size) = if a.gzip {
        let gz = GzBuilder::new()
            .mtime(0)
            .write(HashWriter::new(file), Compression::none());
        let mut tar = tar::Builder::new(HashWriter::new(gz));
        tar.append(&header, data)?;
        let (gz, diff_id, _) = tar.into_inner()?.finish();
        let (file, digest, size) = gz.finish()?.finish();
        (file, digest, diff_id, size)
    } else {
        let mut tar = tar::Builder::new(HashWriter::new(file));
        tar.append(&header, data)?;
        let (file, digest, size) = tar.into_inner()?.finish();
        (file, digest.clone(), digest, size)
    };
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, blobs.join(&digest))?;
    Ok(LayerOut {
        digest: format!("sha256:{digest}"),
        diff_id: format!("sha256:{diff_id}"),
        size,
    })
}

/// Writes a JSON blob; returns its descriptor.
fn write_json(blobs: &Path, media_type: &str, v: &Value) -> io::Result<Value> {
    let data = serde_json::to_vec(v).map_err(io::Error::other)?;
    let digest = hex(&Sha256::digest(&data));
    fs::write(blobs.join(&digest), &data)?;
    Ok(json!({ "mediaType": media_type, "digest": format!("sha256:{digest}"), "size": data.len() }))
}

fn run(a: &Args) -> io::Result<()> {
    let blobs = a.out.join("blobs").join("sha256");
    fs::create_dir_all(&blobs)?;
    fs::write(
        a.out.join("oci-layout"),
        b"{\"imageLayoutVersion\":\"1.0.0\"}",
    )?;

    // Distinct layers first (in parallel), then assemble images from their results.
    let mut jobs: Vec<LayerJob> = (0..a.shared_base_layers)
        .map(|i| LayerJob {
            name: format!("shared-{i}"),
        })
        .collect();
    for p in &a.platforms {
        for i in 0..a.layers_per_platform {
            jobs.push(LayerJob {
                name: format!("{}-{i}", p.replace('/', "-")),
            });
        }
    }
    let outs: Vec<LayerOut> = jobs
        .par_iter()
        .map(|j| write_layer(&blobs, j, a))
        .collect::<io::Result<_>>()?;
    let (shared, own) = outs.split_at(a.shared_base_layers);

    let layer_type = if a.gzip { OCI_LAYER_GZIP } else { OCI_LAYER };
    let mut manifests = Vec::new();
    for (pi, p) in a.platforms.iter().enumerate() {
        let layers: Vec<&LayerOut> = shared
            .iter()
            .chain(&own[pi * a.layers_per_platform..(pi + 1) * a.layers_per_platform])
            .collect();
        let plat = platform_json(p).expect("validated platform");
        let mut config = json!({ "created": CREATED });
        for k in ["architecture", "os", "variant"] {
            if let Some(v) = plat.get(k) {
                config[k] = v.clone();
            }
        }
        config["config"] = json!({});
        config["rootfs"] = json!({
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        });
        config["history"] = layers
            .iter()
            .map(|_| json!({ "created": CREATED, "created_by": "make-layout" }))
            .collect();
        let config = write_json(&blobs, OCI_CONFIG, &config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": layers
                .iter()
                .map(|l| json!({ "mediaType": layer_type, "digest": l.digest, "size": l.size }))
                .collect::<Vec<_>>(),
        });
        let mut desc = write_json(&blobs, OCI_MANIFEST, &manifest)?;
        desc["platform"] = plat;
        manifests.push(desc);
    }
    let mut top = if a.no_index {
        let mut d = manifests.remove(0);
        d.as_object_mut().expect("object").remove("platform");
        d
    } else {
        let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
        write_json(&blobs, OCI_INDEX, &index)?
    };
    top["annotations"] = json!({ "org.opencontainers.image.ref.name": a.tag });
    write_index_json(&a.out, &a.tag, top.clone())?;

    let total: u64 = outs.iter().map(|l| l.size).sum();
    println!(
        "{}:{} {} ({} distinct layers, {:.1} MiB of layer blobs)",
        a.out.display(),
        a.tag,
        top["digest"].as_str().unwrap_or(""),
        outs.len(),
        total as f64 / f64::from(1u32 << 20)
    );
    Ok(())
}

/// Adds `entry` to `index.json`, replacing an existing entry with the same tag so the tool can be
/// re-run into the same directory.
fn write_index_json(out: &Path, tag: &str, entry: Value) -> io::Result<()> {
    let path = out.join("index.json");
    let mut entries: Vec<Value> = match fs::read(&path) {
        Ok(b) => {
            let v: Value = serde_json::from_slice(&b).map_err(io::Error::other)?;
            v["manifests"].as_array().cloned().unwrap_or_default()
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    entries.retain(|e| e["annotations"]["org.opencontainers.image.ref.name"] != tag);
    entries.push(entry);
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries });
    let mut body = serde_json::to_vec_pretty(&index).map_err(io::Error::other)?;
    body.push(b'\n');
    fs::write(path, body)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("make-layout: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make-layout: {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}
