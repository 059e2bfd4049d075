//! Helpers shared by the CLI tests.
use std::ffi::OsStr;
use std::process::Command;

/// Runs the `provenn` binary with `args`: its exit code, and its stdout with stderr appended
/// (for failure messages).
pub fn run_provenn<I, S>(args: I) -> (Option<i32>, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_provenn"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}
