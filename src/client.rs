//! The [`Client`] facade: picks the scheme for a reference and offers the operations the tools
//! use.

use crate::error::{Error, ErrorKind, Result};
use crate::image_config::ImageConfig;
use crate::manifest::Manifest;
use crate::platform::Platform;
use crate::reference::{Reference, Scheme as RefScheme};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Host;
use crate::scheme::ocidir::{OciDir, OciDirOpts};
use crate::scheme::registry::Registry;
use crate::scheme::Scheme;
use crate::transport::client::{Transport, TransportConfig};

/// Settings for a [`Client`].
#[derive(Clone)]
pub struct ClientConfig {
    /// User agent for registry requests.
    pub user_agent: String,
    /// Worker threads for copies (blobs and platforms in parallel).
    pub threads: usize,
    /// Layout options.
    pub ocidir: OciDirOpts,
    /// Registry settings by name (merged from every source; see `config::merge_hosts`).
    pub hosts: BTreeMap<String, Host>,
    /// Settings applied to registries not listed in `hosts`.
    pub host_default: Option<Host>,
    /// HTTP transport settings.
    pub transport: TransportConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            user_agent: format!("regclient/regctl ({})", env!("CARGO_PKG_VERSION")),
            threads: 6,
            ocidir: OciDirOpts::default(),
            hosts: BTreeMap::new(),
            host_default: None,
            transport: TransportConfig::default(),
        }
    }
}

/// The entry point: owns the backends and the worker pool.
pub struct Client {
    config: ClientConfig,
    ocidir: OciDir,
    registry: Registry,
    pool: rayon::ThreadPool,
}

impl Client {
    /// A client with the given settings.
    pub fn new(config: ClientConfig) -> Client {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.max(1))
            .thread_name(|i| format!("regclient-{i}"))
            .build()
            .expect("building the worker pool");
        let hosts = config.hosts.clone();
        let default = config.host_default.clone();
        let mut tcfg = config.transport.clone();
        tcfg.user_agent = config.user_agent.clone();
        let transport = Transport::new(
            tcfg,
            Box::new(move |name: &str| {
                hosts
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| Host::new_default_name(default.as_ref(), name))
            }),
        );
        Client {
            ocidir: OciDir::new(config.ocidir.clone()),
            registry: Registry::new(Arc::new(transport)),
            config,
            pool,
        }
    }

    /// Settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The worker pool (dedicated to this client, never rayon's global pool).
    pub fn pool(&self) -> &rayon::ThreadPool {
        &self.pool
    }

    /// The backend for a reference.
    pub fn scheme(&self, r: &Reference) -> Result<&dyn Scheme> {
        match r.scheme {
            RefScheme::OciDir => Ok(&self.ocidir),
            RefScheme::Registry => Ok(&self.registry),
            RefScheme::OciFile => Err(Error::new(
                ErrorKind::Unsupported,
                "unknown scheme: ocifile (use ocidir:// or import the tar)",
            )),
        }
    }

    /// The registry backend (catalog listing, transport settings).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Reads a manifest.
    pub fn manifest_get(&self, r: &Reference) -> Result<Manifest> {
        self.scheme(r)?
            .manifest_get(r)
            .map_err(|e| e.context(format!("getting manifest {}", r.common_name())))
    }

    /// Reads a manifest and, for an index, follows the best match for `platform` (nested
    /// indexes too, bounded).
    pub fn manifest_get_platform(&self, r: &Reference, platform: &Platform) -> Result<Manifest> {
        let mut m = self.manifest_get(r)?;
        for _ in 0..8 {
            if !m.is_index() {
                return Ok(m);
            }
            let d = m
                .select_platform(platform)
                .map_err(|e| e.context(r.common_name()))?;
            m = self.manifest_get(&r.set_digest(&d.digest.to_string()))?;
        }
        Err(Error::new(
            ErrorKind::Loop,
            "index nesting deeper than 8 levels",
        ))
    }

    /// Reads and parses the image config of `r` (resolving `platform` in an index).
    pub fn image_config(
        &self,
        r: &Reference,
        platform: &Platform,
    ) -> Result<(Manifest, ImageConfig, Vec<u8>)> {
        let m = self.manifest_get_platform(r, platform)?;
        let cd = match m.config() {
            Some(c)
                if c.media_type == crate::mediatype::OCI1_IMAGE_CONFIG
                    || c.media_type == crate::mediatype::DOCKER2_IMAGE_CONFIG =>
            {
                c.clone()
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::UnsupportedMediaType,
                    format!(
                        "{} is not an image (artifact? try \"artifact get --config\")",
                        r.common_name()
                    ),
                ))
            }
        };
        let raw = match cd.embedded_data() {
            Some(d) => d,
            None => self
                .scheme(r)?
                .blob_get(r, &cd)?
                .read_all(crate::image_config::MAX_CONFIG)?,
        };
        let cfg = ImageConfig::parse(&raw)?;
        Ok((m, cfg, raw))
    }

    /// Ends use of a reference (layouts garbage-collect what this process changed).
    pub fn close(&self, r: &Reference) -> Result<()> {
        self.scheme(r)?.close(r)
    }
}
