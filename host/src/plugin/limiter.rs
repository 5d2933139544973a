//! The memory cap of an instance, and how much linear memory it holds now.

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use super::Limits;

/// wasmtime's `StoreLimits`, plus the size of the instance's linear memory, so that the
/// host can report what a plugin really uses (not what it estimates).
pub struct MemoryLimiter {
    limits: StoreLimits,
    linear_memory_bytes: usize,
}

impl MemoryLimiter {
    pub fn new(limits: &Limits) -> Self {
        let limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(limits.max_instances)
            .trap_on_grow_failure(true)
            .build();
        Self {
            limits,
            linear_memory_bytes: 0,
        }
    }

    /// The largest size any memory of the instance has grown to (one memory for the
    /// reference plugin: wasm memories never shrink).
    pub fn linear_memory_bytes(&self) -> usize {
        self.linear_memory_bytes
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        if let Ok(true) = allowed {
            self.linear_memory_bytes = self.linear_memory_bytes.max(desired);
        } else {
            tracing::warn!(
                current,
                desired,
                "plugin memory growth refused: memory_limit_exceeded"
            );
        }
        allowed
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}
