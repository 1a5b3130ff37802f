//! `snaplabel`: label photos on this machine, run the whole pipeline locally, measure it.

mod bench;
mod dev;
mod dev_bench;
mod label;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "snaplabel",
    version,
    about = "Serverless image labeling, also on your laptop"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Label image files and folders (recursively) with the embedded model.
    Label(label::LabelArgs),
    /// Run the whole pipeline locally: S3, notifications, labeling, the API and the page.
    Dev(dev::DevArgs),
    /// Measure `snaplabel dev`: upload-to-result latency, throughput and memory under load.
    DevBench(dev_bench::DevBenchArgs),
    /// Measure per-stage times, images/s and memory for both engines.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Label(args) => label::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Dev(args) => dev::run(args),
        Command::DevBench(args) => dev_bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("snaplabel: {e:#}");
            ExitCode::from(2)
        }
    }
}
