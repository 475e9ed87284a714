//! # regclient
//!
//! A blocking client for OCI / Docker registries and OCI image layouts, and the library behind
//! the `regctl`, `regsync` and `regbot` tools.
//!
//! Everything goes through a [`Client`], which owns the backends ([`scheme`]) and a worker pool.
//! References name what to act on: `registry/repo:tag`, `repo@sha256:...`, or
//! `ocidir://path:tag` for an OCI layout on disk.
//!
//! ```
//! use regclient::{Client, Reference};
//! let client = Client::new(Default::default());
//! let r = Reference::parse("ocidir://testdata/testrepo:v1").unwrap();
//! let m = client.manifest_get(&r).unwrap();
//! assert!(m.is_index());
//! println!("{} {}", m.media_type(), m.digest());
//! ```
//!
//! Copying is the [`copy`] engine over any two schemes; it runs on the client's own pool:
//!
//! ```no_run
//! use regclient::{copy, Client, Reference};
//! let client = Client::new(Default::default());
//! let src = Reference::parse("ocidir://testdata/testrepo:v2").unwrap();
//! let dst = Reference::parse("registry.example.org/mirror/app:v2").unwrap();
//! let opts = copy::CopyOpts { referrers: true, ..Default::default() };
//! let report = copy::image_copy(
//!     client.scheme(&src).unwrap(), &src,
//!     client.scheme(&dst).unwrap(), &dst,
//!     &opts, client.pool(), &|_event| {},
//! ).unwrap();
//! println!("{} ({} blobs copied)", report.digest, report.blobs_copied);
//! client.close(&dst).unwrap();
//! ```
//!
//! Registry settings (TLS, logins, mirrors, credential helpers) come in through
//! [`ClientConfig`]'s `hosts`; the binaries fill them from regctl's config file and Docker's,
//! see [`config`].
//!
//! Design rules: no global state (two clients never share anything), no printing (progress
//! and warnings reach the caller through callbacks), one [`Error`] type with a [`ErrorKind`]
//! to branch on, and every read of untrusted data bounded.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
pub mod auth;
pub mod base64;
#[cfg(feature = "lua")]
pub mod bot;
pub mod config;
pub mod copy;
pub mod descriptor;
pub mod diff;
pub mod digest;
mod error;
pub mod format;
pub mod image_config;
pub mod layer;
pub mod manifest;
pub mod mediatype;
pub mod platform;
pub mod ratelimit;
pub mod reference;
pub mod referrer;
pub mod regex;
pub mod schedule;
pub mod scheme;
pub mod sync;
pub mod template;
pub mod transport;
pub mod url;

mod civil;
mod client;
mod deadline;

pub use client::{Client, ClientConfig};
pub use descriptor::Descriptor;
pub use digest::{Algorithm, Digest};
pub use error::{Error, ErrorKind, Result, ResultExt};
pub use image_config::ImageConfig;
pub use manifest::Manifest;
pub use platform::Platform;
pub use reference::Reference;
