//! The real `kith-named` binary, started on loopback port 0.

use std::process::Command;

use service_kit::testing::{self, RunningServer};

const BIN: &str = env!("CARGO_BIN_EXE_kith-named");

/// The binary with none of its environment variables inherited.
fn named() -> Command {
    let mut command = Command::new(BIN);
    for var in [
        "LISTEN",
        "DOMAIN",
        "DATA",
        "DATABASE",
        "CONFIG",
        "READY_FILE",
    ] {
        command.env_remove(format!("KITH_NAMED_{var}"));
    }
    // Never the real ~/.local/share: tests that give no --data use this.
    let home = tempfile::tempdir().expect("temp dir").keep();
    command.env("XDG_DATA_HOME", home);
    command
}

#[test]
fn serves_health_and_metrics_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = named();
    command
        .args(["--listen", "127.0.0.1:0", "--domain", "kith.test", "--data"])
        .arg(dir.path());
    testing::assert_serves_and_stops(&mut command);
}

#[test]
fn help_lists_every_flag() {
    let flags = [
        "--listen",
        "--domain",
        "--data",
        "--database",
        "--config",
        "--ready-file",
        "--header-timeout",
        "--body-timeout",
        "--idle-timeout",
        "--max-connections",
        "--max-connections-per-address",
        "--trusted-proxies",
    ];
    testing::assert_help_mentions(BIN, &flags);
}

#[test]
fn environment_variables_are_read() {
    let mut command = named();
    command
        .env("KITH_NAMED_LISTEN", "127.0.0.1:0")
        .env("KITH_NAMED_DOMAIN", "kith.test");
    let server = RunningServer::start(&mut command);
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn flags_win_over_environment() {
    let mut command = named();
    command.env("KITH_NAMED_DOMAIN", "not a domain").args([
        "--listen",
        "127.0.0.1:0",
        "--domain",
        "kith.test",
    ]);
    let server = RunningServer::start(&mut command);
    assert!(
        server.stderr().contains("domain=kith.test"),
        "{}",
        server.stderr()
    );
}

#[test]
fn config_file_is_read() {
    let text = "listen = \"127.0.0.1:0\"\ndomain = \"kith.test\"\n";
    let (_dir, config) = testing::temp_file("named.toml", text);
    let server = RunningServer::start(named().arg("--config").arg(&config));
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn bad_database_is_a_usage_error() {
    let mut command = named();
    command.args(["--listen", "127.0.0.1:0", "--domain", "kith.test"]);
    command.args(["--database", "ftp://x"]);
    testing::assert_fails(&mut command, 2, "unsupported database scheme `ftp`");
}

#[test]
fn unknown_config_key_is_refused() {
    let text = "listen = \"127.0.0.1:0\"\ndomain = \"kith.test\"\ncolour = \"blue\"\n";
    let (_dir, config) = testing::temp_file("named.toml", text);
    let mut command = named();
    command.arg("--config").arg(&config);
    let stderr = testing::assert_fails(&mut command, 2, "line 3: unknown field `colour`");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn missing_domain_says_how_to_give_it() {
    let mut command = named();
    command.args(["--listen", "127.0.0.1:0"]);
    testing::assert_fails(&mut command, 2, "--domain DOMAIN, set KITH_NAMED_DOMAIN");
}

#[test]
fn bad_domain_is_a_usage_error() {
    let mut command = named();
    command.args(["--listen", "127.0.0.1:0", "--domain", "user@kith.test"]);
    testing::assert_fails(&mut command, 2, "not a valid domain label");
}

#[test]
fn slow_headers_are_cut_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = named();
    command
        .args(["--listen", "127.0.0.1:0", "--domain", "kith.test", "--data"])
        .arg(dir.path())
        .args(["--header-timeout", "300ms"]);
    let server = RunningServer::start(&mut command);
    testing::assert_cuts_off_slow_headers(server.addr());
}
