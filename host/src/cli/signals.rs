//! Ctrl-C and SIGTERM for commands that run until they are stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sets `cancelled` on the first Ctrl-C or SIGTERM, instead of ending the process there and
/// then, so that the command can store and checkpoint what it has read.
pub fn cancel_on_interrupt(cancelled: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("connlog-signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(wait_for_stop());
            eprintln!("connlog: stopping");
            cancelled.store(true, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch for Ctrl-C; it will end the process at once");
    }
}

/// The first Ctrl-C or SIGTERM.
pub async fn wait_for_stop() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
