//! `regbot once` without a registry: `defaults.memoryLimit` and `timeout` reach the
//! Lua state, a script over either limit fails naming itself, and the other scripts of the
//! file still succeed; failures are summarised in file order; `-c -` reads stdin.

mod support;

use std::process::Command;

use support::{run, TempDir};

fn once(tmp: &TempDir, yaml: &str) -> (i32, Vec<serde_json::Value>, String) {
    let p = tmp.join("regbot.yaml");
    std::fs::write(&p, yaml).unwrap();
    let home = tmp.join("home");
    let _ = std::fs::create_dir_all(&home);
    let out = run(Command::new(env!("CARGO_BIN_EXE_regbot"))
        .current_dir(tmp.path())
        .env("HOME", &home)
        .env("DOCKER_CONFIG", tmp.join("docker"))
        .args(["once", "-v", "debug", "--logopt", "json", "-c"])
        .arg(&p));
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out.status.code().unwrap_or(-1), lines, text)
}

fn failure<'a>(lines: &'a [serde_json::Value], script: &str) -> Option<&'a str> {
    lines
        .iter()
        .find(|l| l["msg"] == "script failed" && l["script"] == script)
        .and_then(|l| l["err"].as_str())
}

#[test]
fn memory_and_time_limits_fail_only_their_script() {
    let tmp = TempDir::new();
    let yaml = r#"
defaults:
  skipDockerConfig: true
  memoryLimit: 4MiB
  timeout: 1s
scripts:
  - name: hog
    timeout: 30s
    script: |
      local t = {}
      for i = 1, 100000000 do t[i] = string.rep("x", 64) .. i end
  - name: spin
    script: |
      while true do end
  - name: fine
    script: |
      local t = {}
      for i = 1, 1000 do t[i] = i * 2 end
      print("sum ready")
"#;
    let (code, lines, text) = once(&tmp, yaml);
    assert_eq!(code, 1, "{text}");
    let hog = failure(&lines, "hog").unwrap_or_else(|| panic!("hog did not fail: {text}"));
    assert!(hog.contains("memory"), "{hog}");
    let spin = failure(&lines, "spin").unwrap_or_else(|| panic!("spin did not fail: {text}"));
    assert!(spin.contains("timeout"), "{spin}");
    assert!(failure(&lines, "fine").is_none(), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l["msg"] == "script finished" && l["script"] == "fine"),
        "{text}"
    );
}

/// With `parallel: 3` the scripts run on three workers; each failure is reported on its own
/// and the final summary names the first failure in file order, whatever order they ended in.
#[test]
fn parallel_failures_reported_in_file_order() {
    let tmp = TempDir::new();
    let yaml = r#"
defaults:
  skipDockerConfig: true
  parallel: 3
  timeout: 20s
scripts:
  - name: a
    script: error("a broke")
  - name: b
    script: local x = 1
  - name: c
    script: error("c broke")
"#;
    let (code, lines, text) = once(&tmp, yaml);
    assert_eq!(code, 1, "{text}");
    assert!(failure(&lines, "a").is_some_and(|e| e.contains("a broke")));
    assert!(failure(&lines, "c").is_some_and(|e| e.contains("c broke")));
    assert!(failure(&lines, "b").is_none(), "{text}");
    let last = lines.last().expect("summary line");
    assert_eq!(last["msg"], "regbot failed", "{text}");
    assert_eq!(
        last["script"], "a",
        "the first failure in file order: {text}"
    );
    assert_eq!(last["failed"], "2", "{text}");
}

/// `-c -` reads the whole file from stdin and runs it.
#[test]
fn config_from_stdin_runs() {
    let tmp = TempDir::new();
    let home = tmp.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = support::run_input(
        Command::new(env!("CARGO_BIN_EXE_regbot"))
            .current_dir(tmp.path())
            .env("HOME", &home)
            .env("DOCKER_CONFIG", tmp.join("docker"))
            .args(["once", "-c", "-"]),
        b"defaults:\n  skipDockerConfig: true\nscripts:\n  - name: stdin\n    script: log('from stdin ' .. 6 * 7)\n",
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("script=stdin") && text.contains("from stdin 42"),
        "{text}"
    );
}
