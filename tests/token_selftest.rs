//! Self-test of the token server against a real docker-registry.

mod support;
