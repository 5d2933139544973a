//! The progress bar of a long `connlog ingest FILE`: bytes read, events per second, and the
//! time left. Drawn on standard error only when it is a terminal (indicatif hides it
//! otherwise), whether the ingest runs here or in the server that owns the directory.

use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::local::Progress;

pub struct Bar {
    bar: ProgressBar,
    started: Instant,
}

pub fn bar(total: Option<u64>) -> Bar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes}  {msg}  {eta} left"
    } else {
        "{spinner} [{elapsed_precise}] {bytes}  {msg}"
    };
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    bar.enable_steady_tick(Duration::from_millis(100));
    Bar {
        bar,
        started: Instant::now(),
    }
}

impl Bar {
    pub fn show(&mut self, progress: Progress) {
        if progress.done {
            self.bar.finish_and_clear();
            return;
        }
        if let Some(total) = progress.total {
            self.bar.set_length(total);
        }
        self.bar.set_position(progress.bytes);
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{} events, {}/s",
            HumanCount(progress.events),
            HumanCount((progress.events as f64 / seconds) as u64)
        ));
    }
}
