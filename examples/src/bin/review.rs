//! `review`: blinded clinician rating packets (self-contained HTML and CSV per rater, with a
//! separate un-blinding key), import of the raters' files, and a report with intervals,
//! paired Wilcoxon tests and inter-rater agreement. See `review --help` and the
//! `ro_examples::review` module.

use clap::Parser;
use ro_examples::review::Cli;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    if let Err(e) = cli.command.run() {
        eprintln!("review: {e:#}");
        std::process::exit(1);
    }
}
