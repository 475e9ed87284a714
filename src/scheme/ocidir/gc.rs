//! Garbage collection: delete every blob no `index.json` entry reaches.
//!
//! Runs under the layout lock, so no index update races it. Blobs another process is writing
//! for a manifest it has not indexed yet are not protected (upstream has the same window);
//! in-flight temp files are, since only stale ones are removed.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::time::{Duration, SystemTime};

use crate::descriptor::Descriptor;
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::manifest::{self, Manifest, Source};

use super::fs::{is_temp_name, read_capped, Layout};

/// Deepest manifest nesting followed (index → index → ... → manifest).
const MAX_DEPTH: usize = 16;
/// Temp files older than this are leftovers of a crashed writer.
pub(super) const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Every digest reachable from the index: entries, index children, configs and layers
/// (subjects are not followed). Unreadable manifests count as referenced but end the walk
/// there.
fn reachable(layout: &Layout, roots: &[Descriptor]) -> Result<HashSet<Digest>> {
    let mut seen: HashSet<Digest> = HashSet::new();
    // (descriptor, depth, is it a manifest?)
    let mut stack: Vec<(Descriptor, usize, bool)> =
        roots.iter().map(|d| (d.clone(), 0, true)).collect();
    while let Some((d, depth, is_manifest)) = stack.pop() {
        if !seen.insert(d.digest.clone()) || !is_manifest {
            continue;
        }
        if depth >= MAX_DEPTH {
            // Deleting what lies deeper could destroy data; refuse instead.
            return Err(Error::new(
                ErrorKind::Loop,
                format!(
                    "manifests nested deeper than {MAX_DEPTH} levels at {} in {}",
                    d.digest, layout.name
                ),
            ));
        }
        let Ok(raw) = read_capped(&layout.blob_path(&d.digest), manifest::MAX_PULL as u64) else {
            continue;
        };
        let src = Source {
            descriptor_type: Some(d.media_type.as_str()).filter(|t| !t.is_empty()),
            digest: Some(&d.digest),
            ..Default::default()
        };
        let Ok(m) = Manifest::from_bytes(raw, src) else {
            continue;
        };
        let children = m.manifests().len();
        for (i, child) in m.references().into_iter().enumerate() {
            // Index children are manifests; configs and layers are plain blobs.
            let child_is_manifest = m.is_index() && i < children;
            stack.push((child, depth + 1, child_is_manifest));
        }
    }
    Ok(seen)
}

/// Deletes unreferenced blobs and stale temp files. The caller holds the layout lock.
pub(super) fn run(layout: &Layout) -> Result<()> {
    let (index, _) = layout.read_index()?;
    let keep = reachable(layout, &index.manifests)?;
    let mut keep_by_alg: HashMap<Algorithm, HashSet<&str>> = HashMap::new();
    for d in &keep {
        keep_by_alg
            .entry(d.algorithm())
            .or_default()
            .insert(d.hex());
    }
    remove_stale_temps(&layout.root)?;
    let blobs = layout.blobs_dir();
    let algs = match fs::read_dir(&blobs) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(e, format!("listing {}", blobs.display()))),
    };
    for alg_entry in algs {
        let alg_entry = alg_entry.with_context(|| format!("listing {}", blobs.display()))?;
        let Some(alg_name) = alg_entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        // Directories of algorithms we cannot parse are left alone: we cannot tell what
        // references them.
        let Ok(algo) = alg_name.parse::<Algorithm>() else {
            continue;
        };
        if !alg_entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = alg_entry.path();
        remove_stale_temps(&dir)?;
        let keep = keep_by_alg.get(&algo);
        let files = fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for f in files {
            let f = f.with_context(|| format!("listing {}", dir.display()))?;
            let name = f.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_temp_name(name) || keep.is_some_and(|k| k.contains(name)) {
                continue;
            }
            if !f.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let path = f.path();
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(e, format!("removing {}", path.display()))),
            }
        }
    }
    Ok(())
}

/// Removes our temp files in `dir` that no writer has touched for [`STALE_TEMP`].
fn remove_stale_temps(dir: &std::path::Path) -> Result<()> {
    let now = SystemTime::now();
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name();
        if !name.to_str().is_some_and(is_temp_name) {
            continue;
        }
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TEMP);
        if stale {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(())
}
