//! The `provenn explain` command end to end: a trained network from a file, the Iris data from
//! `PROVENN_DATA`, and the independent check the command runs on every explanation.
use std::path::{Path, PathBuf};

mod common;

use provenn::data::{catalog, DataDir, LoadOptions};
use provenn::train::ffn::FfnParams;

/// `$PROVENN_DATA`, which CI must set (as `provenn_tests::real_data_dir` requires).
fn data_dir() -> Option<PathBuf> {
    match std::env::var_os("PROVENN_DATA") {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must set PROVENN_DATA so the real-data tests run")
        }
        _ => {
            eprintln!("PROVENN_DATA not set: skipping a real-data test");
            None
        }
    }
}

/// Runs `provenn explain` on Iris with `extra` arguments: success, and stdout (with stderr
/// appended, for failure messages).
fn explain(net: &Path, data: &Path, extra: &[&str]) -> (bool, String) {
    let mut args: Vec<&std::ffi::OsStr> = ["explain", "--dataset", "iris", "--net"]
        .iter()
        .map(|s| s.as_ref())
        .collect();
    args.push(net.as_os_str());
    args.push("--data".as_ref());
    args.push(data.as_os_str());
    args.extend(extra.iter().map(|s| s.as_ref() as &std::ffi::OsStr));
    let (code, text) = common::run_provenn(args);
    (code == Some(0), text)
}

#[test]
fn explain_checks_every_explanation_and_reports_it() {
    let Some(dir) = data_dir() else { return };
    let d = catalog::load("iris", &DataDir::new(&dir), &LoadOptions::default())
        .unwrap()
        .dataset;
    let net = FfnParams {
        hidden: vec![8, 8],
        epochs: 60,
        seed: 3,
        ..Default::default()
    }
    .build()
    .unwrap()
    .fit(&d, None, &mut |_| {})
    .unwrap()
    .net;
    let tmp = std::env::temp_dir().join(format!("provenn-cli-explain-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let file = tmp.join("iris.bin");
    provenn::nn::io::save(&net, &file).unwrap();

    let (ok, stdout) = explain(&file, &dir, &["--rows", "0,60,120"]);
    assert!(ok, "{stdout}");
    let rows = stdout.lines().filter(|l| l.starts_with("row ")).count();
    let checks: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("check:"))
        .collect();
    assert_eq!(rows, 3, "{stdout}");
    assert_eq!(checks.len(), 3, "{stdout}");
    for c in checks {
        assert!(c.contains("entailed yes"), "{c}");
        // "k of k kept features shown necessary"
        let words: Vec<&str> = c.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "of").unwrap();
        assert_eq!(words[at - 1], words[at + 1], "{c}");
    }

    // --no-check skips it.
    let (ok, stdout) = explain(&file, &dir, &["--first", "2", "--no-check"]);
    assert!(ok, "{stdout}");
    assert!(!stdout.contains("check:"), "{stdout}");
    std::fs::remove_dir_all(&tmp).ok();
}
