//! Deadlines for long transfers: a reader or writer that fails once a moment has passed, so a
//! stream (a tar import or export, a blob put) stops there instead of running on. Each call
//! moves at most one buffer, so the overrun is one buffer's worth.

use std::io;
use std::time::Instant;

use crate::{Error, ErrorKind, Result};

/// Whether `deadline` has passed (`None` never does).
pub(crate) fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Fails with kind `Canceled` when `deadline` has passed; `what` names the work stopped.
pub(crate) fn check(deadline: Option<Instant>, what: &str) -> Result<()> {
    if passed(deadline) {
        return Err(Error::new(
            ErrorKind::Canceled,
            format!("{what} stopped: deadline reached"),
        ));
    }
    Ok(())
}

/// A reader or writer checked against a deadline on every call.
pub(crate) struct DeadlineIo<T> {
    inner: T,
    at: Option<Instant>,
}

impl<T> DeadlineIo<T> {
    /// Wraps `inner`; `None` never expires.
    pub(crate) fn new(inner: T, at: Option<Instant>) -> DeadlineIo<T> {
        DeadlineIo { inner, at }
    }

    /// The wrapped reader or writer.
    pub(crate) fn into_inner(self) -> T {
        self.inner
    }

    fn check(&self) -> io::Result<()> {
        check(self.at, "transfer").map_err(Error::into_io)
    }
}

impl<R: io::Read> io::Read for DeadlineIo<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl<W: io::Write> io::Write for DeadlineIo<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn passes_before_and_fails_after() {
        let mut r = DeadlineIo::new(&b"abc"[..], None);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abc");
        let mut late = DeadlineIo::new(&b"abc"[..], Some(Instant::now()));
        let e = late.read(&mut [0; 4]).unwrap_err();
        assert!(e.to_string().contains("deadline"), "{e}");
        let mut w = DeadlineIo::new(Vec::new(), Some(Instant::now()));
        assert!(w.write(b"x").is_err());
        assert_eq!(
            check(Some(Instant::now()), "import").unwrap_err().kind(),
            ErrorKind::Canceled
        );
        assert!(check(None, "import").is_ok());
    }
}
