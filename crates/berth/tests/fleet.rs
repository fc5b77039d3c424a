//! `berth bench fleet` at a small size, as a correctness test: a real server process and 200
//! real agents on hollow runtimes place 2,000 tasks; every one must be RUNNING exactly once,
//! where it was placed, with no RunTask failure, and still listed after a server restart.
//! Speed is not asserted (the figures are the benchmark's business). `berth` is a binary
//! crate, so the test runs the binary and reads its `check ...` lines; the bench also exits
//! non-zero on any correctness failure.

use std::process::Command;

/// The value printed after `label` on its own line of `output`.
fn figure<'a>(output: &'a str, label: &str) -> Option<&'a str> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .map(str::trim)
}

#[test]
fn a_fleet_of_200_agents_runs_2000_tasks_each_exactly_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["bench", "fleet", "--instances", "200", "--tasks", "2000"])
        // Correctness only: wait as long as a slow (debug, loaded) machine needs.
        .args(["--check", "--timeout", "1h"])
        .env("BERTH_LOG", "error")
        .output()
        .expect("berth bench fleet runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(output.status.success(), "the fleet run failed\n{context}");
    let check =
        |label: &str| figure(&stdout, label).unwrap_or_else(|| panic!("no '{label}'\n{context}"));
    assert_eq!(check("check tasks placed:"), "2000/2000", "{context}");
    assert_eq!(check("check tasks RUNNING:"), "2000/2000", "{context}");
    assert_eq!(check("check RunTask failures:"), "0", "{context}");
    assert_eq!(check("check ListTasks RUNNING:"), "2000", "{context}");
    assert_eq!(check("check containers running:"), "2000", "{context}");
    assert_eq!(check("check duplicates:"), "0", "{context}");
    assert_eq!(check("check:"), "ok", "{context}");
    assert!(
        figure(&stdout, "restart to serving:").is_some_and(|t| t.ends_with(" s")),
        "the restarted server listed every task\n{context}"
    );
}

#[test]
fn figures_are_read_from_their_own_line() {
    let output = "e2e tasks/s: 12.5\ncheck: ok\ncheck duplicates: 0\n";
    assert_eq!(figure(output, "check:"), Some("ok"));
    assert_eq!(figure(output, "check duplicates:"), Some("0"));
    assert_eq!(figure(output, "check tasks placed:"), None);
}
