//! Writing an instance's state to a new snapshot file: the serving instance when asked
//! (`ConnLog::save_snapshot`), the background writer's own instance, and the instance a
//! swap brings up beside the running one. Recording the file is each caller's: what it
//! may replace differs.

use super::ServiceError;
use super::transactions::no_store;
use crate::plugin::PluginInstance;
use crate::store::{Journal, WrittenSnapshot};

/// Writes `instance`'s snapshot to a new file through its attached journal, and makes it
/// durable under its final name, unrecorded and still locked (no sweep takes it) until
/// the caller records or discards it. `rows` and `last_seq` describe the state written:
/// it holds exactly the events with `seq <= last_seq`. A trap is `ServiceError::Plugin`
/// and leaves the instance poisoned; a failed save abandons the file (zeroed and removed).
pub(super) fn write_file(
    instance: &mut PluginInstance,
    plugin_digest: &str,
    rows: u64,
    last_seq: i64,
) -> Result<WrittenSnapshot, ServiceError> {
    fn journal(instance: &mut PluginInstance) -> Result<&mut Journal, ServiceError> {
        instance.state_mut().journal.as_mut().ok_or_else(no_store)
    }
    journal(instance)?
        .start_snapshot_write()
        .map_err(ServiceError::Storage)?;
    let saved = match instance.save_snapshot() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServiceError::Storage(e)),
        Err(trap) => Err(ServiceError::Plugin(trap)),
    };
    let journal = journal(instance)?;
    if let Err(e) = saved {
        journal.abandon_snapshot_write();
        return Err(e);
    }
    journal
        .finish_snapshot_write(plugin_digest, rows, last_seq)
        .map_err(ServiceError::Storage)
}
