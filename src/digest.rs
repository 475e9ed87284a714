//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and a reader that verifies them.
//!
//! Every byte that crosses a scheme boundary goes through [`VerifyReader`], so a blob that does
//! not match its descriptor fails at EOF, before anything downstream commits it.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::Digest as _;

use crate::error::{Error, ErrorKind, Result};

/// A digest algorithm this library can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Algorithm {
    /// SHA-256, the default everywhere.
    #[default]
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// A fresh hasher.
    pub fn digester(self) -> Digester {
        match self {
            Algorithm::Sha256 => Digester::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Digester::Sha512(sha2::Sha512::new()),
        }
    }

    /// Digest of a byte slice.
    pub fn digest(self, data: &[u8]) -> Digest {
        let mut d = self.digester();
        d.update(data);
        d.finish()
    }
}

impl FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Algorithm> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            _ => Err(Error::new(
                ErrorKind::Unsupported,
                format!("unsupported digest algorithm {s:?}"),
            )),
        }
    }
}

/// A content digest: algorithm plus lower-case hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algo: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `algo:hex`; only sha256 and sha512 with the exact hex length are accepted.
    pub fn parse(s: &str) -> Result<Digest> {
        let (algo, hex) = s.split_once(':').ok_or_else(|| {
            Error::new(ErrorKind::InvalidReference, format!("invalid digest {s:?}"))
        })?;
        let algo: Algorithm = algo.parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidReference,
                format!("invalid digest {s:?}: unsupported algorithm"),
            )
        })?;
        if hex.len() != algo.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::new(
                ErrorKind::InvalidReference,
                format!(
                    "invalid digest {s:?}: want {} lower-case hex characters",
                    algo.hex_len()
                ),
            ));
        }
        Ok(Digest {
            algo,
            hex: hex.to_string(),
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algo
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Digest of a byte slice with sha256.
    pub fn sha256(data: &[u8]) -> Digest {
        Algorithm::Sha256.digest(data)
    }

    /// The referrers fallback tag for this digest: `sha256-<hex>`.
    pub fn fallback_tag(&self) -> String {
        format!("{}-{}", self.algo.as_str(), self.hex)
    }

    /// Checks `data` against this digest.
    pub fn verify(&self, data: &[u8]) -> Result<()> {
        let got = self.algo.digest(data);
        if &got != self {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!("digest mismatch: expected {self}, computed {got}"),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher.
#[derive(Clone)]
pub enum Digester {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Digester {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Digester::Sha256(h) => h.update(data),
            Digester::Sha512(h) => h.update(data),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Digester::Sha256(_) => Algorithm::Sha256,
            Digester::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (algo, bytes): (Algorithm, Vec<u8>) = match self {
            Digester::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Digester::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest {
            algo,
            hex: hex_encode(&bytes),
        }
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Wraps a reader; counts and hashes what passes and fails at EOF when size or digest differ
/// from what was expected. Reading past the expected size fails at once, so a lying source
/// cannot make us buffer or write without bound.
pub struct VerifyReader<R> {
    inner: R,
    digester: Digester,
    expect: Option<Digest>,
    size: Option<u64>,
    read: u64,
    done: bool,
    /// Repositioned away from the start: the digest cannot be checked.
    partial: bool,
}

impl<R: Read> VerifyReader<R> {
    /// Verifies `size` (when known) and `digest` (when given) at EOF.
    pub fn new(inner: R, digest: Option<Digest>, size: Option<u64>) -> VerifyReader<R> {
        let algo = digest.as_ref().map(|d| d.algorithm()).unwrap_or_default();
        VerifyReader {
            inner,
            digester: algo.digester(),
            expect: digest,
            size,
            read: 0,
            done: false,
            partial: false,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The digest computed so far (final once EOF was reached).
    pub fn computed(&self) -> Digest {
        self.digester.clone().finish()
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The wrapped reader, for repositioning it (see [`VerifyReader::restart_at`]).
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Tells the verifier that the wrapped reader now continues at byte `pos`. From the start
    /// the digest is verified again; from anywhere else only the size can be (the skipped
    /// bytes were never hashed) until a restart at 0.
    pub fn restart_at(&mut self, pos: u64) {
        self.digester = self
            .expect
            .as_ref()
            .map(|d| d.algorithm())
            .unwrap_or_default()
            .digester();
        self.partial = pos != 0;
        self.read = pos;
        self.done = false;
    }

    /// Whether the digest is still checked at EOF.
    pub fn verifies_digest(&self) -> bool {
        self.expect.is_some() && !self.partial
    }

    fn check_end(&mut self) -> io::Result<()> {
        if let Some(size) = self.size {
            if self.read < size {
                return Err(Error::new(
                    ErrorKind::ShortRead,
                    format!("short read: expected {size} bytes, got {}", self.read),
                )
                .into_io());
            }
        }
        if let Some(expect) = self.expect.as_ref().filter(|_| !self.partial) {
            let got = self.computed();
            if &got != expect {
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    format!("digest mismatch: expected {expect}, computed {got}"),
                )
                .into_io());
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.check_end()?;
            self.done = true;
            return Ok(0);
        }
        self.read += n as u64;
        if let Some(size) = self.size {
            if self.read > size {
                return Err(Error::new(
                    ErrorKind::SizeLimit,
                    format!("content exceeds its size of {size} bytes"),
                )
                .into_io());
            }
        }
        self.digester.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

    #[test]
    fn parse_and_display() {
        let d = Digest::parse(HELLO).unwrap();
        assert_eq!(d.to_string(), HELLO);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.fallback_tag(), format!("sha256-{}", &HELLO[7..]));
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "sha256:12345",
            "sha256:",
            "md5:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
            "sha256:B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9",
            "sha256:z94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sha512() {
        let d = Algorithm::Sha512.digest(b"hello world");
        assert_eq!(d.hex().len(), 128);
        assert!(d
            .to_string()
            .starts_with("sha512:309ecc489c12d6eb4cc40f50c902f2b4"));
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
    }

    #[test]
    fn verify_reader_ok() {
        let d = Digest::parse(HELLO).unwrap();
        let mut r = VerifyReader::new(&b"hello world"[..], Some(d), Some(11));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn verify_reader_mismatch() {
        let d = Digest::parse(HELLO).unwrap();
        let mut r = VerifyReader::new(&b"hello World"[..], Some(d), Some(11));
        let err: Error = r.read_to_end(&mut Vec::new()).unwrap_err().into();
        assert_eq!(err.kind(), ErrorKind::DigestMismatch);
    }

    #[test]
    fn verify_reader_short_and_long() {
        let d = Digest::parse(HELLO).unwrap();
        let mut r = VerifyReader::new(&b"hello"[..], Some(d.clone()), Some(11));
        let err: Error = r.read_to_end(&mut Vec::new()).unwrap_err().into();
        assert_eq!(err.kind(), ErrorKind::ShortRead);
        let mut r = VerifyReader::new(&b"hello world!!"[..], Some(d), Some(11));
        let err: Error = r.read_to_end(&mut Vec::new()).unwrap_err().into();
        assert_eq!(err.kind(), ErrorKind::SizeLimit);
    }
}
