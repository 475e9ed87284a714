//! Tests of the regbot API against OCI layouts.
