//! The library's one error type.
//!
//! Callers branch on [`Error::kind`]; humans read the context chain, which `Display` prints
//! outermost first, joined with `": "` ("copying sha256:… to ocidir://out: writing blob: no space").
//! The kinds follow the error classes regclient users match on (not found, unauthorized, digest
//! mismatch, ...), kept small on purpose.

use std::fmt;
use std::sync::Arc;

/// What went wrong, for callers that need to branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A reference, digest, platform or other string did not parse.
    InvalidReference,
    /// Some input (flag, file, config, JSON) is invalid.
    InvalidInput,
    /// The manifest, blob, tag, layout or file does not exist.
    NotFound,
    /// Credentials were refused or missing (HTTP 401/403).
    Unauthorized,
    /// The registry asked us to slow down (HTTP 429).
    RateLimit,
    /// Content did not match its digest.
    DigestMismatch,
    /// Content was larger than allowed or than its descriptor said.
    SizeLimit,
    /// Content ended before its descriptor's size.
    ShortRead,
    /// The media type is not one this operation supports.
    UnsupportedMediaType,
    /// The operation is not supported by this scheme, registry or configuration.
    Unsupported,
    /// A reference lacks the tag or digest that the operation needs.
    MissingTagOrDigest,
    /// A loop was found while walking manifests or referrers.
    Loop,
    /// Two values that had to be equal were not (check-base and friends).
    Mismatch,
    /// A required annotation is missing.
    MissingAnnotation,
    /// A file inside a layer was deleted by a whiteout.
    FileDeleted,
    /// The registry answered with an unexpected HTTP status.
    HttpStatus,
    /// A network or TLS failure.
    Network,
    /// The operation was canceled.
    Canceled,
    /// Filesystem or other I/O failure.
    Io,
    /// Parsing JSON, YAML, a template or other structured text failed.
    Parse,
    /// Anything else.
    Other,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidReference => "invalid reference",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::NotFound => "not found",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::RateLimit => "rate limit exceeded",
            ErrorKind::DigestMismatch => "digest mismatch",
            ErrorKind::SizeLimit => "size limit exceeded",
            ErrorKind::ShortRead => "short read",
            ErrorKind::UnsupportedMediaType => "unsupported media type",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::MissingTagOrDigest => "missing tag or digest",
            ErrorKind::Loop => "loop encountered",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::MissingAnnotation => "annotation is missing",
            ErrorKind::FileDeleted => "file deleted",
            ErrorKind::HttpStatus => "unexpected http status",
            ErrorKind::Network => "network error",
            ErrorKind::Canceled => "canceled",
            ErrorKind::Io => "i/o error",
            ErrorKind::Parse => "parsing failed",
            ErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The library's error: a kind, a message, an optional source, and context frames.
///
/// Cheap to clone (an `Arc`), so one failure can be reported to every waiter of a shared
/// transfer.
#[derive(Clone)]
pub struct Error(Arc<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    /// Outermost last: `context()` pushes.
    context: Vec<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    /// The HTTP status that caused the error, when a registry answered.
    status: Option<u16>,
}

/// The library's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a human message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Arc::new(Inner {
            kind,
            message: message.into(),
            context: Vec::new(),
            source: None,
            status: None,
        }))
    }

    /// Records the HTTP status that caused this error.
    pub fn with_status(self, status: u16) -> Error {
        let mut inner = self.into_inner();
        inner.status = Some(status);
        Error(Arc::new(inner))
    }

    /// The HTTP status that caused this error, when a registry answered.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    fn into_inner(self) -> Inner {
        match Arc::try_unwrap(self.0) {
            Ok(inner) => inner,
            Err(arc) => Inner {
                kind: arc.kind,
                message: arc.message.clone(),
                context: arc.context.clone(),
                source: arc.source.clone(),
                status: arc.status,
            },
        }
    }

    /// An I/O error, classified (a missing file is `NotFound`).
    pub fn io(err: std::io::Error, what: impl Into<String>) -> Error {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Io,
        };
        // An io::Error carrying one of our errors (a verifying reader) keeps its kind.
        if let Some(inner) = err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return inner.clone().context(what);
        }
        Error(Arc::new(Inner {
            kind,
            message: err.to_string(),
            context: vec![what.into()],
            source: Some(Arc::new(err)),
            status: None,
        }))
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The innermost message, without context.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Adds a frame of context ("reading index.json of ocidir://x").
    pub fn context(self, ctx: impl Into<String>) -> Error {
        let mut inner = self.into_inner();
        inner.context.push(ctx.into());
        Error(Arc::new(inner))
    }

    /// True when this is an I/O error about a closed pipe (the CLI treats it as success).
    pub fn is_broken_pipe(&self) -> bool {
        self.0
            .source
            .as_ref()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// Wraps this error in an `io::Error`, for use inside `Read`/`Write` implementations.
    pub fn into_io(self) -> std::io::Error {
        let kind = match self.kind() {
            ErrorKind::NotFound => std::io::ErrorKind::NotFound,
            ErrorKind::DigestMismatch | ErrorKind::SizeLimit => std::io::ErrorKind::InvalidData,
            ErrorKind::ShortRead => std::io::ErrorKind::UnexpectedEof,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ctx in self.0.context.iter().rev() {
            write!(f, "{ctx}: ")?;
        }
        if self.0.message.is_empty() {
            f.write_str(self.0.kind.as_str())
        } else {
            f.write_str(&self.0.message)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .field("context", &self.0.context)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        if let Some(inner) = err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return inner.clone();
        }
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Io,
        };
        Error(Arc::new(Inner {
            kind,
            message: err.to_string(),
            context: Vec::new(),
            source: Some(Arc::new(err)),
            status: None,
        }))
    }
}

/// Builds an [`Error`] like `format!`: `err!(NotFound, "tag {tag} not found")`.
#[macro_export]
macro_rules! err {
    ($kind:ident, $($arg:tt)*) => {
        $crate::Error::new($crate::ErrorKind::$kind, format!($($arg)*))
    };
}

/// Adds context to results.
pub trait ResultExt<T> {
    /// Adds a context frame computed only on error.
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_joins_context_outermost_first() {
        let e = err!(NotFound, "tag v1 not found")
            .context("reading index.json")
            .context("copying ocidir://a");
        assert_eq!(
            e.to_string(),
            "copying ocidir://a: reading index.json: tag v1 not found"
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn io_round_trip_keeps_kind() {
        let e = err!(DigestMismatch, "expected sha256:a");
        let io = e.into_io();
        let back: Error = io.into();
        assert_eq!(back.kind(), ErrorKind::DigestMismatch);
    }

    #[test]
    fn io_not_found_maps() {
        let e = Error::io(
            std::io::Error::from(std::io::ErrorKind::NotFound),
            "opening x",
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().starts_with("opening x: "));
    }
}
