//! An in-memory `Host` for native tests and benchmarks.
