//! The real `kith-mailboxd` binary, started on loopback port 0.

use std::process::Command;

use service_kit::testing::{self, RunningServer};

const BIN: &str = env!("CARGO_BIN_EXE_kith-mailboxd");

/// The binary with none of its environment variables inherited, and its
/// default data folder in a fresh temporary folder.
fn mailboxd() -> Command {
    let mut command = Command::new(BIN);
    for var in ["LISTEN", "DATA", "DATABASE", "CONFIG", "READY_FILE"] {
        command.env_remove(format!("KITH_MAILBOXD_{var}"));
    }
    let home = tempfile::tempdir().expect("temp dir").keep();
    command.env("XDG_DATA_HOME", home);
    command
}

#[test]
fn serves_health_and_metrics_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = mailboxd();
    command
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path());
    testing::assert_serves_and_stops(&mut command);
}

#[test]
fn help_lists_every_flag() {
    let flags = [
        "--listen",
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
        "--retention",
        "--max-deposit-size",
        "--mailbox-max-deposits",
        "--mailbox-max-bytes",
        "--sender-max-deposits",
        "--rate-limit",
        "--rate-burst",
        "--relay-listen",
        "--relay-quic-listen",
        "--relay-cert",
        "--relay-key",
        "--relay-tokens",
        "--relay-devices",
        "--relay-open",
    ];
    testing::assert_help_mentions(BIN, &flags);
}

#[test]
fn environment_variables_are_read() {
    let mut command = mailboxd();
    command.env("KITH_MAILBOXD_LISTEN", "127.0.0.1:0");
    let server = RunningServer::start(&mut command);
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn flags_win_over_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("x.db").display());
    let mut command = mailboxd();
    command
        .env("KITH_MAILBOXD_DATABASE", "ftp://ignored")
        .args(["--listen", "127.0.0.1:0", "--database", &database]);
    let server = RunningServer::start(&mut command);
    assert!(server.stderr().contains(&database), "{}", server.stderr());
}

#[test]
fn config_file_is_read() {
    let (_dir, config) = testing::temp_file("mailboxd.toml", "listen = \"127.0.0.1:0\"\n");
    let server = RunningServer::start(mailboxd().arg("--config").arg(&config));
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn bad_database_is_a_usage_error() {
    let mut command = mailboxd();
    command.args(["--listen", "127.0.0.1:0", "--database", "ftp://x"]);
    testing::assert_fails(&mut command, 2, "unsupported database scheme `ftp`");
}

#[test]
fn bad_database_in_the_config_file_is_refused() {
    let text = "listen = \"127.0.0.1:0\"\ndatabase = \"ftp://x\"\n";
    let (_dir, config) = testing::temp_file("mailboxd.toml", text);
    testing::assert_fails(mailboxd().arg("--config").arg(&config), 2, "ftp");
}

#[test]
fn unknown_config_key_is_refused() {
    let text = "listen = \"127.0.0.1:0\"\ncolour = \"blue\"\n";
    let (_dir, config) = testing::temp_file("mailboxd.toml", text);
    let stderr = testing::assert_fails(
        mailboxd().arg("--config").arg(&config),
        2,
        "line 2: unknown field `colour`",
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn an_open_relay_beyond_loopback_is_refused_unless_asked_for() {
    let mut command = mailboxd();
    command.args(["--listen", "127.0.0.1:0", "--relay-listen", "0.0.0.0:0"]);
    testing::assert_fails(&mut command, 2, "would be open to anyone");
    let (_dir, tokens) = testing::temp_file("tokens", "short\n");
    let mut command = mailboxd();
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--relay-listen",
            "0.0.0.0:0",
            "--relay-tokens",
        ])
        .arg(&tokens);
    testing::assert_fails(&mut command, 2, "entry 1 is not a token");
}

#[test]
fn missing_listen_says_how_to_give_it() {
    testing::assert_fails(&mut mailboxd(), 2, "--listen ADDR:PORT");
}

#[test]
fn slow_headers_are_cut_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = mailboxd();
    command
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .args(["--header-timeout", "300ms"]);
    let server = RunningServer::start(&mut command);
    testing::assert_cuts_off_slow_headers(server.addr());
}
