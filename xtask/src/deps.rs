//! System packages the workspace needs, checked with dpkg and installed with apt-get as root.
use std::process::Command;

use anyhow::{bail, Result};

/// Debian packages and why they are needed.
const PACKAGES: &[(&str, &str)] = &[
    (
        "libz3-dev",
        "Z3 for provenn-maxsmt (the z3 crate links the system libz3)",
    ),
    (
        "cmake",
        "building HiGHS for provenn-milp (good_lp's highs feature)",
    ),
    ("libclang-dev", "bindgen for the HiGHS bindings"),
    ("g++", "C++ compiler for HiGHS"),
    ("pkg-config", "locating system libraries at build time"),
    (
        "libfontconfig1-dev",
        "font lookup for report plots (plotters)",
    ),
    ("fonts-dejavu-core", "a font for plot labels"),
];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Ensures every package is installed.
pub fn ensure() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(p, _)| !installed(p))
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for (p, why) in PACKAGES.iter().filter(|(p, _)| missing.contains(p)) {
        eprintln!("missing system package {p}: {why}");
    }
    let cmd = format!("apt-get update && apt-get install -y {}", missing.join(" "));
    let has_apt = Command::new("apt-get").arg("--version").output().is_ok();
    if !(is_root() && has_apt) {
        bail!("install the missing packages, as root: {cmd}");
    }
    eprintln!("installing: {cmd}");
    let ok = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()?
        .success()
        && Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?
            .success();
    if !ok {
        bail!("apt-get failed; run it yourself: {cmd}");
    }
    let still: Vec<&str> = missing.into_iter().filter(|p| !installed(p)).collect();
    if !still.is_empty() {
        bail!("still missing after apt-get: {}", still.join(" "));
    }
    Ok(())
}
