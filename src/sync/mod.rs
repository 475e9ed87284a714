//! regsync: mirroring images, repositories and registries as described by a YAML file.
//!
//! [`Config::parse`] reads and validates the file (defaults applied, templates expanded);
//! [`Runner`] runs its entries against a [`crate::Client`] and returns a [`Report`].

pub mod config;
pub mod filter;
pub mod run;
pub mod semver;

pub use config::{Config, Defaults, SyncEntry, SyncType};
pub use run::{Action, EntryReport, ImageReport, Level, LogFn, Mode, Report, Runner};
