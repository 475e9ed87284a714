//! Tests of the layout scheme.
use super::*;
