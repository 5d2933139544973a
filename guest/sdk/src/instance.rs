//! The one plugin a component serves, whichever contract version it exports.

use std::any::Any;
use std::cell::RefCell;

use crate::plugin::ConnectionLogPlugin;

thread_local! {
    // One instance serves one host store, and the host serialises calls, so a RefCell
    // suffices. `dyn Any` because a static cannot be generic: the one `P` is checked on use.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `f` on the component's plugin, created with [`ConnectionLogPlugin::new`] on the first
/// call.
pub(crate) fn with_plugin<P: ConnectionLogPlugin, T>(f: impl FnOnce(&mut P) -> T) -> T {
    INSTANCE.with(|instance| {
        let mut instance = instance.borrow_mut();
        let plugin = instance
            .get_or_insert_with(|| Box::new(P::new()))
            .downcast_mut::<P>()
            .expect("a component serves one plugin type");
        f(plugin)
    })
}
