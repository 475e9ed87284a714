//! An in-memory scheme for unit tests. Stub.
