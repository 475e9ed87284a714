//! Reading image layers: tar, optionally gzip-compressed (sniffed from the first bytes), read
//! as a stream. Finds one file honouring whiteouts (`.wh.<name>` deletes `<name>`,
//! `.wh..wh..opq` hides everything below its directory from lower layers) and lists entries
//! for `blob diff-layer`.
//!
//! Nothing holds a whole layer in memory: entries are read in order and a found file is
//! handed to the caller as a reader over the archive.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use flate2::bufread::MultiGzDecoder;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::template::{Object, Time, Value};

/// Whiteout prefix.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Opaque directory marker.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";

/// A layer's uncompressed tar stream.
pub enum Decompressed<R: Read> {
    /// An uncompressed tar.
    Plain(BufReader<R>),
    /// A gzip-compressed tar.
    Gzip(Box<MultiGzDecoder<BufReader<R>>>),
}

impl<R: Read> Decompressed<R> {
    /// Sniffs the compression of `r`: gzip or plain tar (zstd is refused).
    pub fn new(r: R) -> Result<Decompressed<R>> {
        let mut br = BufReader::with_capacity(64 * 1024, r);
        let head = br.fill_buf()?;
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Decompressed::Gzip(Box::new(MultiGzDecoder::new(br))))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                "zstd compressed layers are not supported",
            ))
        } else {
            Ok(Decompressed::Plain(br))
        }
    }

    /// Reads what is left of the decompressed stream and then of the raw stream, so a
    /// verifying reader underneath reaches its end and checks the digest.
    pub fn finish(self) -> Result<()> {
        match self {
            Decompressed::Plain(mut br) => {
                std::io::copy(&mut br, &mut std::io::sink())?;
            }
            Decompressed::Gzip(mut gz) => {
                std::io::copy(&mut gz, &mut std::io::sink())?;
                let mut br = gz.into_inner();
                std::io::copy(&mut br, &mut std::io::sink())?;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decompressed::Plain(r) => r.read(buf),
            Decompressed::Gzip(r) => r.read(buf),
        }
    }
}

/// The fields of a tar header (Go's `tar.Header`, for `--format` templates).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileHeader {
    /// Entry name as stored.
    pub name: String,
    /// Link target (symlinks and hard links).
    pub linkname: String,
    /// Type flag byte (`'0'` file, `'5'` dir, `'2'` symlink, ...).
    pub typeflag: u8,
    /// Content size.
    pub size: u64,
    /// Permission and special bits (`0o7777`).
    pub mode: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Owner name.
    pub uname: String,
    /// Group name.
    pub gname: String,
    /// Modification time (Unix seconds).
    pub mtime: u64,
    /// Device major number.
    pub devmajor: u32,
    /// Device minor number.
    pub devminor: u32,
}

impl FileHeader {
    fn from_entry<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<FileHeader> {
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let linkname = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let h = e.header();
        let bad = |what: &str, err: std::io::Error| {
            Error::new(
                ErrorKind::Parse,
                format!("tar header of {name:?}: {what}: {err}"),
            )
        };
        Ok(FileHeader {
            typeflag: h.entry_type().as_byte(),
            size: h.size().map_err(|e| bad("size", e))?,
            mode: h.mode().map_err(|e| bad("mode", e))? & 0o7777,
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            uname: h
                .username_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
            gname: h
                .groupname_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
            mtime: h.mtime().unwrap_or(0),
            devmajor: h.device_major().ok().flatten().unwrap_or(0),
            devminor: h.device_minor().ok().flatten().unwrap_or(0),
            name,
            linkname,
        })
    }

    /// Go's `FileMode.String()` of the entry: type letters (`d` dir, `L` symlink, `D` device,
    /// `Dc` char device, `p` fifo, `u`/`g`/`t` setuid/setgid/sticky) or `-`, then `rwxrwxrwx`.
    pub fn mode_string(&self) -> String {
        let mut s = String::new();
        match self.typeflag {
            b'5' => s.push('d'),
            b'2' => s.push('L'),
            b'4' => s.push('D'),
            b'3' => s.push_str("Dc"),
            b'6' => s.push('p'),
            _ => {}
        }
        if self.mode & 0o4000 != 0 {
            s.push('u');
        }
        if self.mode & 0o2000 != 0 {
            s.push('g');
        }
        if self.mode & 0o1000 != 0 {
            s.push('t');
        }
        if s.is_empty() {
            s.push('-');
        }
        const RWX: &[u8] = b"rwxrwxrwx";
        for (i, c) in RWX.iter().enumerate() {
            if self.mode & (1 << (8 - i)) != 0 {
                s.push(*c as char);
            } else {
                s.push('-');
            }
        }
        s
    }

    fn mtime_value(&self) -> Value {
        Value::Object(Arc::new(Time::from_unix(self.mtime as i64, 0)))
    }
}

impl Object for FileHeader {
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Name" => Value::String(self.name.clone()),
            "Linkname" => Value::String(self.linkname.clone()),
            "Typeflag" => Value::Int(self.typeflag as i64),
            "Size" => Value::Int(self.size as i64),
            "Mode" => Value::Int(self.mode as i64),
            "Uid" => Value::Int(self.uid as i64),
            "Gid" => Value::Int(self.gid as i64),
            "Uname" => Value::String(self.uname.clone()),
            "Gname" => Value::String(self.gname.clone()),
            "ModTime" => self.mtime_value(),
            "Devmajor" => Value::Int(self.devmajor as i64),
            "Devminor" => Value::Int(self.devminor as i64),
            _ => return None,
        })
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "Typeflag": self.typeflag,
            "Name": self.name,
            "Linkname": self.linkname,
            "Size": self.size,
            "Mode": self.mode,
            "Uid": self.uid,
            "Gid": self.gid,
            "Uname": self.uname,
            "Gname": self.gname,
            "ModTime": Time::from_unix(self.mtime as i64, 0).format("2006-01-02T15:04:05Z07:00"),
            "Devmajor": self.devmajor,
            "Devminor": self.devminor,
        })
    }

    fn type_name(&self) -> String {
        "*tar.Header".to_string()
    }
}

/// A path without leading `/` or `./`, trailing `/`, `.` components or doubled slashes.
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// Does the tar entry `entry` (cleaned) hide `target` (cleaned) in lower layers? True for
/// `.wh.<target>`, `.wh.<parent of target>` and an opaque marker in any parent directory.
pub fn whiteout_hides(entry: &str, target: &str) -> bool {
    let (dir, base) = match entry.rsplit_once('/') {
        Some((d, b)) => (d, b),
        None => ("", entry),
    };
    let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) else {
        return false;
    };
    let under = |parent: &str| -> bool {
        parent.is_empty()
            || target
                .strip_prefix(parent)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if base == WHITEOUT_OPAQUE {
        return under(dir) && target != dir;
    }
    let deleted = if dir.is_empty() {
        hidden.to_string()
    } else {
        format!("{dir}/{hidden}")
    };
    target == deleted
        || target
            .strip_prefix(&deleted)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// What a search of one layer found.
pub enum Found<T> {
    /// The file is in this layer; the value is what the callback returned.
    File(T),
    /// A whiteout in this layer deletes it (lower layers must not be searched).
    Deleted,
    /// Not in this layer.
    NotFound,
}

/// Searches one layer stream for `name` (compared after [`clean_path`]). When found, `f` gets
/// the header and a reader over the content; the rest of the stream is then drained so a
/// verifying reader checks the digest. A file present in the layer wins over a whiteout in
/// the same layer (an opaque marker only hides lower layers).
pub fn find_file<R: Read, T>(
    r: R,
    name: &str,
    f: impl FnOnce(&FileHeader, &mut dyn Read) -> Result<T>,
) -> Result<Found<T>> {
    let target = clean_path(name);
    let mut ar = tar::Archive::new(Decompressed::new(r)?);
    let mut deleted = false;
    let mut result = None;
    {
        let entries = ar.entries().map_err(|e| tar_err(e, "reading layer"))?;
        for e in entries {
            let mut e = e.map_err(|e| tar_err(e, "reading layer"))?;
            let entry_name = clean_path(&String::from_utf8_lossy(&e.path_bytes()));
            if entry_name == target {
                let h = FileHeader::from_entry(&mut e)?;
                result = Some(f(&h, &mut e)?);
                break;
            }
            if whiteout_hides(&entry_name, &target) {
                deleted = true;
            }
        }
    }
    ar.into_inner().finish()?;
    Ok(match result {
        Some(t) => Found::File(t),
        None if deleted => Found::Deleted,
        None => Found::NotFound,
    })
}

/// One listing line per entry: `mode uid/gid size [mtime] name [sha256 of content]`, the
/// format `blob diff-layer` compares.
pub fn list<R: Read>(r: R, ignore_time: bool) -> Result<Vec<String>> {
    let mut ar = tar::Archive::new(Decompressed::new(r)?);
    let mut out = Vec::new();
    {
        let entries = ar.entries().map_err(|e| tar_err(e, "reading layer"))?;
        for e in entries {
            let mut e = e.map_err(|e| tar_err(e, "reading layer"))?;
            let h = FileHeader::from_entry(&mut e)?;
            let sum = if h.size > 0 {
                let mut hasher = Sha256::new();
                std::io::copy(&mut e, &mut hasher)?;
                Some(format!("sha256:{}", hex(&hasher.finalize())))
            } else {
                None
            };
            out.push(list_line(&h, ignore_time, sum.as_deref()));
        }
    }
    ar.into_inner().finish()?;
    Ok(out)
}

/// Formats one listing line (see [`list`]).
pub fn list_line(h: &FileHeader, ignore_time: bool, sum: Option<&str>) -> String {
    let mut line = format!("{} {}/{} {:8}", h.mode_string(), h.uid, h.gid, h.size);
    if !ignore_time {
        line.push(' ');
        line.push_str(&Time::from_unix(h.mtime as i64, 0).format("2006-01-02T15:04:05Z07:00"));
    }
    line.push_str(&format!(" {:<40}", h.name));
    if let Some(s) = sum {
        line.push(' ');
        line.push_str(s);
    }
    line.trim_end().to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tar_err(e: std::io::Error, what: &str) -> Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        Some(inner) => Error::new(inner.kind(), format!("{what}: {}", inner.message())),
        None => Error::io(e, what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            if name.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
            } else {
                h.set_mode(0o644);
            }
            h.set_size(data.len() as u64);
            h.set_mtime(1_577_836_800);
            h.set_uid(0);
            h.set_gid(0);
            h.set_path(name).unwrap();
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn read(layer: &[u8], name: &str) -> Found<Vec<u8>> {
        find_file(layer, name, |_, r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)?;
            Ok(v)
        })
        .unwrap()
    }

    fn describe(f: Found<Vec<u8>>) -> String {
        match f {
            Found::File(v) => format!("file {}", String::from_utf8_lossy(&v)),
            Found::Deleted => "deleted".into(),
            Found::NotFound => "missing".into(),
        }
    }

    #[test]
    fn whiteout_rules() {
        assert!(whiteout_hides(".wh.a.txt", "a.txt"));
        assert!(!whiteout_hides(".wh.a.txt", "a.txt2"));
        assert!(whiteout_hides("d/.wh.x", "d/x"));
        assert!(whiteout_hides("d/.wh.x", "d/x/y"));
        assert!(!whiteout_hides("d/.wh.x", "x"));
        assert!(!whiteout_hides("d/.wh.x", "d/xy"));
        assert!(whiteout_hides("d/.wh..wh..opq", "d/x"));
        assert!(whiteout_hides("d/.wh..wh..opq", "d/e/x"));
        assert!(!whiteout_hides("d/.wh..wh..opq", "d"));
        assert!(!whiteout_hides("d/.wh..wh..opq", "dx/y"));
        assert!(whiteout_hides(".wh..wh..opq", "anything"));
        assert!(!whiteout_hides("d/a.txt", "d/a.txt"));
        assert_eq!(clean_path("/./a//b/"), "a/b");
        assert_eq!(clean_path("./a/../b"), "b");
    }

    #[test]
    fn find_in_plain_and_gzip() {
        let t = tar_of(&[("dir/", b""), ("dir/a.txt", b"hello"), ("./b.txt", b"B")]);
        for layer in [t.clone(), gzip(&t)] {
            assert_eq!(describe(read(&layer, "dir/a.txt")), "file hello");
            assert_eq!(describe(read(&layer, "/dir/a.txt")), "file hello");
            assert_eq!(describe(read(&layer, "b.txt")), "file B");
            assert_eq!(describe(read(&layer, "c.txt")), "missing");
        }
    }

    #[test]
    fn find_honours_whiteouts() {
        let t = tar_of(&[
            (".wh.gone.txt", b""),
            ("exdir/", b""),
            ("exdir/.wh..wh..opq", b""),
            ("exdir/new.txt", b"new"),
            ("rmdir/.wh.sub", b""),
        ]);
        assert_eq!(describe(read(&t, "gone.txt")), "deleted");
        assert_eq!(describe(read(&t, "exdir/old.txt")), "deleted");
        // Same-layer content is not hidden by its own opaque marker.
        assert_eq!(describe(read(&t, "exdir/new.txt")), "file new");
        assert_eq!(describe(read(&t, "rmdir/sub/deep.txt")), "deleted");
        assert_eq!(describe(read(&t, "rmdir/other")), "missing");
    }

    #[test]
    fn listing_lines() {
        let t = tar_of(&[("dir/", b""), ("dir/a.txt", b"hello")]);
        let l = list(&gzip(&t)[..], false).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0], "drwxr-xr-x 0/0        0 2020-01-01T00:00:00Z dir/");
        assert_eq!(
            l[1],
            format!(
                "-rw-r--r-- 0/0        5 2020-01-01T00:00:00Z {:<40} sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                "dir/a.txt"
            )
        );
        let l = list(&t[..], true).unwrap();
        assert_eq!(l[0], "drwxr-xr-x 0/0        0 dir/");
        let h = FileHeader {
            typeflag: b'2',
            mode: 0o4777,
            ..Default::default()
        };
        assert_eq!(h.mode_string(), "Lurwxrwxrwx");
        assert_eq!(FileHeader::default().mode_string(), "----------");
    }

    #[test]
    fn zstd_refused() {
        let e = find_file(&[0x28u8, 0xb5, 0x2f, 0xfd, 0, 0][..], "x", |_, _| Ok(()))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::UnsupportedMediaType);
    }
}
