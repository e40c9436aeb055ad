//! `maildrift check`'s progress on stderr: domains done / total, rate and ETA. Drawn only
//! when stderr is a terminal; with stderr redirected (a pipe, a file, CI) nothing is written.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// The bar, or nothing when stderr is not a terminal.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total` domains, when stderr is a terminal.
    pub(super) fn on_stderr(total: usize) -> Progress {
        if !std::io::stderr().is_terminal() || total == 0 {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(
            Some(u64::try_from(total).unwrap_or(u64::MAX)),
            ProgressDrawTarget::stderr(),
        );
        let style = ProgressStyle::with_template(
            "{spinner} checking {pos}/{len} domains [{bar:30}] {per_sec} ETA {eta}",
        )
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.tick();
        Progress { bar: Some(bar) }
    }

    /// One more domain done.
    pub(super) fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Removes the bar before the report is printed.
    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
