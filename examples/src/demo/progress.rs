//! Stage timing and progress display: one indicatif bar per stage, a one-line summary when it
//! ends, wall-clock seconds and the peak memory collected into [`RunStats`].

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::summary::{RunStats, StageTime};

/// Times the stages of a run and shows their progress on stderr.
#[derive(Debug)]
pub struct Stages {
    stats: RunStats,
    hidden: bool,
}

/// A running stage: a progress bar (or spinner when the length is unknown).
#[derive(Debug)]
pub struct Stage {
    name: String,
    bar: ProgressBar,
    start: Instant,
}

impl Stage {
    /// The stage's progress bar (to `inc`, `set_length` or `set_message`).
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }
}

impl Stages {
    /// Progress on stderr; `hidden` draws nothing (tests).
    pub fn new(hidden: bool) -> Self {
        Self {
            stats: RunStats::default(),
            hidden,
        }
    }

    /// Starts a stage with `len` units of work (`None`: a spinner).
    pub fn start(&self, name: &str, len: Option<u64>) -> Stage {
        let bar = match len {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{prefix:>14.bold} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix:>14.bold} {spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        if self.hidden {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        } else if len.is_none() {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        bar.set_prefix(name.to_string());
        Stage {
            name: name.to_string(),
            bar,
            start: Instant::now(),
        }
    }

    /// Ends a stage: clears its bar, prints `name: summary (seconds)` and records the time.
    pub fn finish(&mut self, stage: Stage, summary: impl Into<String>) {
        let seconds = stage.start.elapsed().as_secs_f64();
        let summary = summary.into();
        stage.bar.finish_and_clear();
        if !self.hidden {
            eprintln!("{:>14}: {summary} ({seconds:.1} s)", stage.name);
        }
        self.stats.stages.push(StageTime {
            stage: stage.name,
            seconds,
            summary,
        });
    }

    /// Records a training throughput for the report.
    pub fn record_throughput(&mut self, what: &str, tokens_per_second: f64) {
        self.stats
            .tokens_per_second
            .push((what.to_string(), tokens_per_second));
    }

    /// The collected statistics, with the peak memory read now.
    pub fn into_stats(mut self) -> RunStats {
        self.stats.peak_rss_bytes = peak_rss_bytes();
        self.stats
    }
}

/// Peak resident set size of this process (`VmHWM` of `/proc/self/status`), where the OS
/// reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_recorded_in_order_with_their_summaries() {
        let mut stages = Stages::new(true);
        let s = stages.start("data", Some(3));
        s.bar().inc(3);
        stages.finish(s, "3 cases");
        let s = stages.start("train", None);
        stages.finish(s, "done");
        let stats = stages.into_stats();
        let names: Vec<&str> = stats.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names, ["data", "train"]);
        assert_eq!(stats.stages[0].summary, "3 cases");
        assert!(stats.stages.iter().all(|s| s.seconds >= 0.0));
        if cfg!(target_os = "linux") {
            assert!(stats.peak_rss_bytes.unwrap() > 1 << 20);
        }
    }
}
