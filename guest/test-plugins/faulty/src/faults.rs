//! The faults, triggered by marker events: a panic, an endless loop, unbounded allocation,
//! a malformed append.
//!
//! The host's isolation tests ingest an event whose `AgentName` is one of the markers and
//! check that the plugin's failure costs one call, never the host or any data:
//! - [`PANIC`]: the guest panics (a trap, `panic = "abort"` on wasm32);
//! - [`LOOP`]: the guest spins forever (the per-call deadline must end it);
//! - [`ALLOC`]: the guest allocates 1 MiB blocks without end (the memory cap must end it);
//! - [`BAD_APPEND`]: the guest calls `journal.append` with columns that do not fit together,
//!   as no plugin built on the SDK can (the host must trap the call, storing nothing).
//!
//! And three that strike later: [`REPLAY_PANIC`] is stored like any event, but the plugin
//! panics when it meets it in `replay`. Swapping to this plugin over a journal holding one
//! shows a plugin that loads yet fails to initialise. [`REPLAY_READS`] makes `replay` read
//! the journal, which a host replaying without it attached must notice. [`SAVE_PANIC`] and
//! [`SAVE_LOOP`] are stored like any event, and from then on the plugin panics, or spins
//! forever, in `save-snapshot`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use connlog_plugin_sdk::PluginHost;
use connlog_plugin_sdk::model::{ConnectionEvent, EventRef, SessionKey};
use connlog_plugin_sdk::v0_3::coder::connection_log::{journal, types::EventColumns};

/// `AgentName` that makes the plugin panic.
pub const PANIC: &str = "fault:panic";
/// `AgentName` that makes the plugin loop forever.
pub const LOOP: &str = "fault:loop";
/// `AgentName` that makes the plugin allocate until it runs out of memory.
pub const ALLOC: &str = "fault:alloc";

/// `AgentName` that makes the plugin append malformed event columns.
pub const BAD_APPEND: &str = "fault:bad-append";

/// `AgentName` that is stored normally but makes `replay` panic.
pub const REPLAY_PANIC: &str = "fault:replay-panic";

/// `AgentName` that is stored normally, but whose `replay` reads the journal (the event's
/// session) and panics if it cannot: a plugin that needs the journal while it replays.
pub const REPLAY_READS: &str = "fault:replay-reads";

/// `AgentName` that is stored normally, after which every `save-snapshot` panics.
pub const SAVE_PANIC: &str = "fault:save-panic";

/// `AgentName` that is stored normally, after which every `save-snapshot` spins forever.
pub const SAVE_LOOP: &str = "fault:save-loop";

/// What every save does: set by the last `fault:save-*` event ingested or replayed.
static SAVES: AtomicU8 = AtomicU8::new(SAVES_WELL);
const SAVES_WELL: u8 = 0;
const SAVES_PANIC: u8 = 1;
const SAVES_LOOP: u8 = 2;

/// Where `fault:alloc` keeps its blocks, so that nothing can free or elide them.
static HOARD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Called on every incoming event, before validation. Does nothing for ordinary events.
pub fn on_event(event: &ConnectionEvent) {
    match event.agent_name.as_str() {
        PANIC => panic!("fault injection: event {} asked for a panic", event.id),
        LOOP => spin(),
        ALLOC => {
            let mut hoard = HOARD
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            loop {
                // Filled, not zeroed, so the pages are really touched on every platform.
                hoard.push(core::hint::black_box(vec![0xA5u8; 1 << 20]));
            }
        }
        SAVE_PANIC => SAVES.store(SAVES_PANIC, Ordering::Relaxed),
        SAVE_LOOP => SAVES.store(SAVES_LOOP, Ordering::Relaxed),
        BAD_APPEND => {
            // One event's time and no other column. A host that took it would store the
            // batch, which the isolation test notices.
            let columns = EventColumns {
                uuids: Vec::new(),
                times: vec![event.time],
                codes: Vec::new(),
                flags: Vec::new(),
                methods: Vec::new(),
                text: String::new(),
                text_ends: Vec::new(),
            };
            let _ = journal::append(&columns);
        }
        _ => {}
    }
}

/// Called on every replayed event. Does nothing for ordinary events.
pub fn on_replay(event: &EventRef) {
    match event.agent_name {
        REPLAY_PANIC => panic!(
            "fault injection: replaying event {} asked for a panic",
            event.id
        ),
        SAVE_PANIC => SAVES.store(SAVES_PANIC, Ordering::Relaxed),
        SAVE_LOOP => SAVES.store(SAVES_LOOP, Ordering::Relaxed),
        _ => {}
    }
}

/// Called before every snapshot save.
pub fn on_save() {
    match SAVES.load(Ordering::Relaxed) {
        SAVES_PANIC => panic!("fault injection: a fault:save-panic event makes every save panic"),
        SAVES_LOOP => spin(),
        _ => {}
    }
}

fn spin() -> ! {
    let mut spins: u64 = 0;
    loop {
        spins = core::hint::black_box(spins.wrapping_add(1));
    }
}

/// Reads the session of every replayed `fault:replay-reads` event from the journal;
/// panics when the host cannot answer.
pub fn read_journal_on_replay(host: &mut dyn PluginHost, events: &[EventRef]) {
    let keys: Vec<SessionKey> = events
        .iter()
        .filter(|e| e.agent_name == REPLAY_READS)
        .map(|e| SessionKey {
            connection_id: e.connection_id.unwrap_or_default(),
            workspace_id: e.workspace_id,
            agent_name: e.agent_name.to_string(),
        })
        .collect();
    if !keys.is_empty()
        && let Err(e) = host.session_events(&keys)
    {
        panic!("fault injection: the journal could not be read during replay: {e}");
    }
}
