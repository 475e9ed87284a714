//! `regbot` without a registry: usage, version, and configuration errors that must name the
//! file, script and field and stop before any script runs. Also checks that the shipped
//! example configuration parses.

mod support;

use std::process::Command;

use support::{run, run_input, TempDir};

/// `regbot` with HOME and DOCKER_CONFIG inside `tmp`, so no docker login leaks in.
fn regbot(tmp: &TempDir) -> Command {
    let home = tmp.join("home");
    let _ = std::fs::create_dir_all(&home);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regbot"));
    cmd.current_dir(tmp.path())
        .env("HOME", &home)
        .env("DOCKER_CONFIG", tmp.join("docker"))
        .env_remove("DOCKER_AUTH_CONFIG");
    cmd
}

fn text(out: &std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `yaml` to `<tmp>/regbot.yaml`, runs `regbot once -c` on it and returns
/// `(code, stderr)`.
fn once(tmp: &TempDir, yaml: &str) -> (i32, String) {
    let p = tmp.join("regbot.yaml");
    std::fs::write(&p, yaml).unwrap();
    let (code, _, stderr) = text(&run(regbot(tmp)
        .args(["once", "-v", "debug", "-c"])
        .arg(&p)));
    (code, stderr)
}

#[test]
fn help_lists_commands_and_flags() {
    let tmp = TempDir::new();
    for flag in ["--help", "-h"] {
        let (code, stdout, _) = text(&run(regbot(&tmp).arg(flag)));
        assert_eq!(code, 0);
        for want in [
            "once",
            "server",
            "version",
            "--config",
            "--dry-run",
            "--logopt",
        ] {
            assert!(stdout.contains(want), "{want} missing from help: {stdout}");
        }
    }
}

#[test]
fn usage_errors_exit_1() {
    let tmp = TempDir::new();
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["once"][..],
        &["once", "--bogus"][..],
        &["once", "-v", "loud", "-c", "x.yaml"][..],
        &["once", "--logopt", "xml", "-c", "x.yaml"][..],
    ] {
        let (code, _, stderr) = text(&run(regbot(&tmp).args(args)));
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains("regbot:"), "{args:?}: {stderr}");
    }
}

#[test]
fn version_plain_and_formatted() {
    let tmp = TempDir::new();
    let (code, stdout, _) = text(&run(regbot(&tmp).arg("version")));
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!("VCSTag: {}", env!("CARGO_PKG_VERSION"))
    );
    let (code, stdout, _) = text(&run(regbot(&tmp).args([
        "version",
        "--format",
        "{{.VCSTag}}",
    ])));
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), env!("CARGO_PKG_VERSION"));
    let (code, _, stderr) = text(&run(regbot(&tmp).args(["version", "--format", "{{.X"])));
    assert_eq!(code, 1, "{stderr}");
}

/// Every config error exits 1 with one message naming the file, the script and the field, and
/// no script runs (the first script would log if it ran).
#[test]
fn config_errors_name_file_script_and_field() {
    let tmp = TempDir::new();
    let good = "  - name: first\n    script: log(\"ran\")\n";
    let cases: &[(String, &[&str])] = &[
        ("scripts: [\n".into(), &["invalid YAML"]),
        (format!("version: 3\nscripts:\n{good}"), &["field version"]),
        (
            format!("scripts:\n{good}  - script: log(1)\n"),
            &["scripts[1]", "field name", "missing"],
        ),
        (
            format!("scripts:\n{good}  - name: first\n    script: log(2)\n"),
            &["scripts[1] (first)", "field name", "duplicate"],
        ),
        (
            format!("scripts:\n{good}  - name: blank\n    script: ''\n"),
            &["scripts[1] (blank)", "field script", "empty script"],
        ),
        (
            format!("scripts:\n{good}  - name: cron\n    schedule: '* * *'\n    script: x = 1\n"),
            &["scripts[1] (cron)", "field schedule", "invalid schedule"],
        ),
        (
            format!("scripts:\n{good}  - name: every\n    interval: often\n    script: x = 1\n"),
            &["scripts[1] (every)", "field interval", "invalid duration"],
        ),
        (
            format!("scripts:\n{good}  - name: slow\n    timeout: 3 days\n    script: x = 1\n"),
            &["scripts[1] (slow)", "field timeout"],
        ),
        (
            format!("defaults:\n  memoryLimit: 1TB?\nscripts:\n{good}"),
            &["defaults", "field memoryLimit"],
        ),
        (
            format!("creds:\n  - tls: disabled\nscripts:\n{good}"),
            &["creds[0]", "field registry"],
        ),
    ];
    for (yaml, parts) in cases {
        let (code, stderr) = once(&tmp, yaml);
        assert_eq!(code, 1, "{yaml}\n{stderr}");
        assert!(stderr.contains("failed to load config"), "{stderr}");
        assert!(stderr.contains("regbot.yaml"), "file not named: {stderr}");
        for p in *parts {
            assert!(stderr.contains(p), "{p:?} missing for\n{yaml}\n{stderr}");
        }
        assert!(
            !stderr.contains("script started") && !stderr.contains("ran"),
            "a script ran despite the config error: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn config_errors_from_stdin_and_missing_file() {
    let tmp = TempDir::new();
    let out = run_input(
        regbot(&tmp).args(["once", "-c", "-"]),
        b"scripts:\n  - name: a\n    schedule: '@never'\n    script: x = 1\n",
    );
    let (code, _, stderr) = text(&out);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("scripts[0] (a)") && stderr.contains("field schedule"),
        "{stderr}"
    );
    let (code, _, stderr) = text(&run(regbot(&tmp).args(["server", "-c", "nope.yaml"])));
    assert_eq!(code, 1);
    assert!(stderr.contains("nope.yaml"), "{stderr}");
}

#[test]
fn json_log_lines() {
    let tmp = TempDir::new();
    let p = tmp.join("bad.yaml");
    std::fs::write(&p, "version: 9\n").unwrap();
    let (code, _, stderr) = text(&run(regbot(&tmp)
        .args(["once", "--logopt", "json", "-c"])
        .arg(&p)));
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(stderr.trim()).expect("one JSON line");
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["msg"], "failed to load config");
    assert!(v["err"].as_str().unwrap().contains("field version"), "{v}");
}

/// A file with no scripts is fine: nothing to do.
#[test]
fn once_without_scripts_succeeds() {
    let tmp = TempDir::new();
    let (code, stderr) = once(&tmp, "version: 1\ndefaults:\n  skipDockerConfig: true\n");
    assert_eq!(code, 0, "{stderr}");
}

/// The shipped example parses, with every script scheduled and the defaults applied.
#[test]
fn example_config_parses() {
    let path = support::repo_root().join("tests/regbot-example.yaml");
    let cfg = regclient::bot::config::Config::load(&path).unwrap();
    assert!(cfg.scripts.len() >= 4, "{:?}", cfg.scripts);
    for s in &cfg.scripts {
        assert!(
            s.trigger().unwrap().is_some(),
            "{} has no schedule or interval",
            s.name
        );
        assert!(!s.timeout.0.is_zero(), "{} has no timeout", s.name);
    }
    assert!(cfg.defaults.memory_limit.is_some());
}
