//! `evaluate`: score model outputs with the papers' metrics (ROUGE, classification metrics, rater
//! agreement, Wilcoxon signed-rank). See `ro_examples::evaluate` and `--help`.

use clap::Parser;
use ro_examples::evaluate::Cli;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    if let Err(e) = cli.command.run() {
        eprintln!("evaluate: {e:#}");
        std::process::exit(1);
    }
}
