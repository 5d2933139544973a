//! Compiled components on disk, so that a second start does not compile again.
//!
//! A file is keyed by the component's SHA-256 and by the engine's compatibility hash
//! (wasmtime version and every setting that changes code), so a stale entry is never even
//! looked at. Files are written to a temporary name and renamed, so a crash leaves no
//! half-written entry. The cache directory must be trusted like the binary itself:
//! `Component::deserialize_file` runs what it finds.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Clone, Debug)]
pub struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The default location: `$CONNLOG_CACHE_DIR`, else `$XDG_CACHE_HOME/connlog`, else
    /// `~/.cache/connlog`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("CONNLOG_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(base.join("connlog"))
    }

    fn entry_path(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir
            .join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
    }

    /// The cached compilation of the component with this digest, if there is a usable one.
    pub fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.entry_path(engine, digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: entries are only ever written by `store` below, from
        // `Component::serialize` of an engine with the same compatibility hash.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable compiled-component cache entry");
                None
            }
        }
    }

    pub fn store(
        &self,
        engine: &Engine,
        digest: &str,
        component: &Component,
    ) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.entry_path(engine, digest);
        let bytes = component.serialize()?;
        write_atomically(&path, &bytes)?;
        Ok(path)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}
