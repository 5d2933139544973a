//! Test-only faults, triggered by marker events: a panic, an endless loop, unbounded
//! allocation. Compiled only with the `fault-injection` feature.
