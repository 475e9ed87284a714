//! Output formatting: template data objects and printPretty layouts. Stub.
