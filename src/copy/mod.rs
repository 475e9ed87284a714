//! The image copy engine. Stub: implemented in its own change.
