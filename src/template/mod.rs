//! Go `text/template` engine. Stub: implemented in its own change.
