//! Transfer progress: an indicatif bar on stderr for humans, throttled JSON events with
//! `--json`, nothing with `--quiet`.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::output::Output;

/// Least time between two JSON progress events.
const JSON_EVERY: Duration = Duration::from_millis(250);

/// Progress of one transfer.
pub(crate) struct Progress<'a> {
    out: &'a Output,
    bar: Option<ProgressBar>,
    direction: &'static str,
    total: u64,
    done: u64,
    last_event: Option<Instant>,
}

impl<'a> Progress<'a> {
    /// Starts at `done` of `total` bytes; `direction` is "sending" or "receiving".
    pub(crate) fn new(out: &'a Output, direction: &'static str, done: u64, total: u64) -> Self {
        let bar = (!out.json() && !out.quiet()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(direction);
            bar.set_position(done);
            bar
        });
        Self {
            out,
            bar,
            direction,
            total,
            done,
            last_event: None,
        }
    }

    /// `n` more bytes went through.
    pub(crate) fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(b) = &self.bar {
            b.set_position(self.done);
        }
        if self.out.json() && self.last_event.is_none_or(|t| t.elapsed() >= JSON_EVERY) {
            self.event();
        }
    }

    fn event(&mut self) {
        self.last_event = Some(Instant::now());
        self.out.event(json!({
            "event": "progress",
            "direction": self.direction,
            "bytes": self.done,
            "total": self.total,
        }));
    }

    /// The last event (always printed in JSON mode) and the bar cleared.
    pub(crate) fn finish(mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if self.out.json() {
            self.event();
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.abandon();
        }
    }
}
