//! The stock IoTronic CLI (python-iotronicclient 0.4.7) against `s4t cloud`, unmodified.
//!
//! Needs `S4T_IOTRONIC_CLI` (the `iotronic` executable; `tests/peers/setup-client.sh` installs it).
//! Without it the tests fail when `S4T_REQUIRE_PEERS=1` (CI) and are skipped with a message
//! otherwise.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Cloud {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `s4t cloud` on a free port. The stock client strips the characters `/`, `v` and `1`
/// from the end of `--iotronic-url` (`rstrip('/v1')`), so a port ending in 1 would be mangled:
/// such ports are avoided.
fn start_cloud(extra: &[&str]) -> Cloud {
    loop {
        let cloud = start_cloud_once(extra);
        if !cloud.url.ends_with('1') {
            return cloud;
        }
    }
}

fn start_cloud_once(extra: &[&str]) -> Cloud {
    let dir = std::env::temp_dir().join(format!(
        "s4t-stock-client-{}",
        std::process::id() as u64 * 1000 + rand_suffix()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_s4t"))
        .args([
            "cloud",
            "--api-addr",
            "127.0.0.1:0",
            "--wamp-addr",
            "127.0.0.1:0",
            "--tunnel-addr",
            "127.0.0.1:0",
            "--overlay-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&dir)
        .args(extra)
        .env("S4T_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start s4t cloud");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "unexpected first line: {first:?}"
    );
    Cloud { child, url, dir }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

fn cli() -> Option<String> {
    match std::env::var("S4T_IOTRONIC_CLI") {
        Ok(p) => Some(p),
        Err(_) if std::env::var("S4T_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("S4T_REQUIRE_PEERS=1 but S4T_IOTRONIC_CLI is not set")
        }
        Err(_) => {
            eprintln!("skipped: S4T_IOTRONIC_CLI is not set (tests/peers/setup-client.sh installs the stock client)");
            None
        }
    }
}

/// Runs `iotronic <args>` against the cloud; returns (success, stdout + stderr).
fn iot(cli: &str, cloud: &Cloud, token: &str, args: &[&str]) -> (bool, String) {
    let home = cloud.dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(cli)
        .args([
            "--os-auth-token",
            token,
            "--iotronic-url",
            &cloud.url,
            "--max-retries",
            "0",
        ])
        .args(args)
        .env("HOME", &home)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run the iotronic CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The value column of a `Property | Value` table row.
fn prop(table: &str, name: &str) -> String {
    table
        .lines()
        .find_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 2 && cells[1] == name).then(|| cells[2].to_string())
        })
        .unwrap_or_else(|| panic!("no {name} in:\n{table}"))
}

fn ok(result: (bool, String), what: &str) -> String {
    assert!(result.0, "{what} failed:\n{}", result.1);
    result.1
}

#[test]
fn stock_cli_drives_boards_plugins_services_and_fleets_with_a_token() {
    let Some(cli) = cli() else { return };
    let cloud = start_cloud(&[]);
    let token = std::fs::read_to_string(cloud.dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let run = |args: &[&str]| iot(&cli, &cloud, &token, args);

    let out = ok(
        run(&[
            "board-create",
            "stock-1",
            "CODE-stock-1",
            "server",
            "38.19",
            "15.55",
            "10",
        ]),
        "board-create",
    );
    assert_eq!(prop(&out, "status"), "registered");
    assert_eq!(prop(&out, "code"), "CODE-stock-1");
    let uuid = prop(&out, "uuid");
    let out = ok(run(&["board-list"]), "board-list");
    assert!(out.contains(&uuid) && out.contains("registered"), "{out}");
    let out = ok(run(&["board-show", "stock-1"]), "board-show");
    assert_eq!(prop(&out, "uuid"), uuid);
    assert!(
        prop(&out, "location").contains("'latitude': '38.19'"),
        "{out}"
    );
    let out = ok(
        run(&["board-update", "stock-1", "name=stock-one", "type=gateway"]),
        "board-update",
    );
    assert_eq!(prop(&out, "name"), "stock-one");
    assert_eq!(prop(&out, "type"), "gateway");
    let (failed_ok, out) = run(&["board-show", "no-such-board"]);
    assert!(
        !failed_ok && out.contains("Board no-such-board could not be found."),
        "{out}"
    );

    let src = cloud.dir.join("echo.py");
    std::fs::write(
        &src,
        "from iotronic_lightningrod.plugins import Plugin\n# ünïcödé ✓\n",
    )
    .unwrap();
    let out = ok(
        run(&[
            "plugin-create",
            "--callable",
            "echo-plugin",
            src.to_str().unwrap(),
        ]),
        "plugin-create",
    );
    assert_eq!(prop(&out, "callable"), "True");
    assert!(prop(&out, "code").contains("ünïcödé ✓"), "{out}");
    let out = ok(run(&["plugin-list"]), "plugin-list");
    assert!(out.contains("echo-plugin"), "{out}");
    assert_eq!(
        prop(
            &ok(run(&["plugin-show", "echo-plugin"]), "plugin-show"),
            "name"
        ),
        "echo-plugin"
    );
    let out = ok(
        run(&["plugin-update", "echo-plugin", "name=echo-2"]),
        "plugin-update",
    );
    assert_eq!(prop(&out, "name"), "echo-2");
    ok(run(&["plugins-on-board", "stock-one"]), "plugins-on-board");

    let out = ok(
        run(&["service-create", "ssh", "22", "TCP"]),
        "service-create",
    );
    assert_eq!(prop(&out, "port"), "22");
    assert!(ok(run(&["service-list"]), "service-list").contains("ssh"));
    assert_eq!(
        prop(
            &ok(run(&["service-show", "ssh"]), "service-show"),
            "protocol"
        ),
        "TCP"
    );
    assert_eq!(
        prop(
            &ok(
                run(&["service-update", "ssh", "port=2222"]),
                "service-update"
            ),
            "port"
        ),
        "2222"
    );
    ok(
        run(&["services-on-board", "stock-one"]),
        "services-on-board",
    );

    let out = ok(
        run(&["fleet-create", "lab", "--description", "the lab"]),
        "fleet-create",
    );
    let fleet = prop(&out, "uuid");
    assert!(ok(run(&["fleet-list"]), "fleet-list").contains("lab"));
    assert_eq!(
        prop(
            &ok(run(&["fleet-show", "lab"]), "fleet-show"),
            "description"
        ),
        "the lab"
    );
    assert_eq!(
        prop(
            &ok(
                run(&["fleet-update", "lab", "description=the big lab"]),
                "fleet-update"
            ),
            "description"
        ),
        "the big lab"
    );
    assert_eq!(
        prop(
            &ok(
                run(&["board-update", "stock-one", &format!("fleet={fleet}")]),
                "board-update fleet"
            ),
            "fleet"
        ),
        fleet
    );
    let out = ok(run(&["boards-in-fleet", "lab"]), "boards-in-fleet");
    assert!(out.contains(&uuid), "{out}");

    for (cmd, header) in [
        ("webservice-list", "Board"),
        ("port-list", "VIF"),
        ("enabled-webservice-list", "DNS"),
    ] {
        assert!(ok(run(&[cmd]), cmd).contains(header), "{cmd}");
    }

    assert!(ok(run(&["plugin-delete", "echo-2"]), "plugin-delete").contains("Deleted plugin"));
    assert!(ok(run(&["service-delete", "ssh"]), "service-delete").contains("Deleted service"));
    assert!(ok(run(&["board-delete", "stock-one"]), "board-delete").contains("Deleted board"));
    assert!(ok(run(&["fleet-delete", "lab"]), "fleet-delete").contains("Deleted fleet lab"));
    let out = ok(run(&["board-list"]), "board-list after delete");
    assert!(!out.contains(&uuid), "{out}");
}

#[test]
fn stock_cli_works_against_noauth_mode() {
    let Some(cli) = cli() else { return };
    let cloud = start_cloud(&["--noauth"]);
    let out = ok(
        iot(
            &cli,
            &cloud,
            "noauth",
            &["board-create", "na-1", "CODE-na-1", "server", "1", "2", "3"],
        ),
        "board-create",
    );
    assert_eq!(prop(&out, "status"), "registered");
    assert!(ok(iot(&cli, &cloud, "noauth", &["board-list"]), "board-list").contains("na-1"));
}

#[test]
fn stock_cli_is_refused_with_a_wrong_token() {
    let Some(cli) = cli() else { return };
    let cloud = start_cloud(&[]);
    let (success, out) = iot(&cli, &cloud, "not-a-token", &["board-list"]);
    assert!(!success, "{out}");
    assert!(
        out.contains("credentials") || out.contains("requires authentication"),
        "{out}"
    );
}
