//! End to end over real sockets, with the real binary: a board created through the API, an
//! `s4t agent` that registers and comes online, board actions through REST, the agent killed and
//! back, the cloud killed (SIGKILL) and back.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::*;

fn start_agent(dir: &Path, code: &str, wamp_port: u16) -> Proc {
    Proc(
        Command::new(BIN)
            .args(["agent", "--data-dir"])
            .arg(dir)
            .args([
                "--code",
                code,
                "--cloud",
                &format!("ws://127.0.0.1:{wamp_port}/"),
            ])
            .args(["--ping-interval", "1", "--hostname", "e2e-board"])
            .args(["--upgrade-command", "sleep 60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

impl Api {
    async fn board(&self, name: &str) -> Value {
        self.call(reqwest::Method::GET, &format!("/v1/boards/{name}"), None)
            .await
            .1
    }

    /// Polls the board's status every 25 ms; the time it took, or a panic after `limit`.
    async fn wait_status(&self, name: &str, status: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.board(name).await["status"] == status {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "board {name} not {status} after {limit:?}: {}",
                self.board(name).await
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn action(&self, name: &str, action: &str, params: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/boards/{name}/action"),
            Some(json!({"action": action, "parameters": params})),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_lifecycle_through_the_cloud() {
    let cloud_dir = temp_dir("cloud");
    let agent_dir = temp_dir("agent");
    let (api_port, wamp_port) = (free_port(), free_port());
    let (mut cloud, base) = start_cloud(&cloud_dir, api_port, wamp_port);
    let token = std::fs::read_to_string(cloud_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let api = Api {
        base,
        token,
        http: reqwest::Client::new(),
    };
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/v1/boards",
            Some(json!({"name": "e2e", "code": "E2E-CODE", "type": "virtual",
                "location": [{"latitude": "1", "longitude": "2", "altitude": "3"}]})),
        )
        .await;
    assert_eq!(status, 201);

    // Offline board: upstream's 400.
    let (status, body) = api.action("e2e", "DevicePing", json!({})).await;
    assert_eq!(status, 400, "{body}");

    let mut agent = start_agent(&agent_dir, "E2E-CODE", wamp_port);
    api.wait_status("e2e", "online", Duration::from_secs(10))
        .await;
    let board = api.board("e2e").await;
    assert_eq!(board["agent"], "s4t");
    assert!(board["lr_version"]
        .as_str()
        .unwrap()
        .starts_with("0.5.0.s4t-"));
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(agent_dir.join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(settings["iotronic"]["board"]["uuid"], board["uuid"]);
    assert_eq!(settings["iotronic"]["board"]["status"], "operative");
    assert!(settings["s4t"]["board_secret"].as_str().unwrap().len() >= 64);

    let (status, body) = api.action("e2e", "DevicePing", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_str().unwrap().starts_with("e2e-board @ "), "{body}");
    let (status, body) = api.action("e2e", "DeviceEcho", json!({"say": "hi"})).await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().starts_with("hi @ "), "{body}");
    // Refused by the board's policy: the board's ERROR becomes upstream's 500.
    let (status, body) = api.action("e2e", "DeviceReboot", json!({})).await;
    assert_eq!(status, 500);
    assert!(body.to_string().contains("--allow-reboot"), "{body}");
    // Always asynchronous: RUNNING now, the result through notify_result.
    let (status, body) = api
        .action(
            "e2e",
            "DevicePkgOperation",
            json!({"manager": "pip", "command": "install", "package": "x"}),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, Some("DevicePkgOperation")));
    // Its result comes before the agent is killed below (else the restart interrupts it).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = api.call(reqwest::Method::GET, "/v1/requests", None).await;
        let pkg = list["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == "DevicePkgOperation")
            .cloned();
        if pkg.as_ref().is_some_and(|r| r["status"] == "COMPLETED") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DevicePkgOperation not completed: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Kill the agent: the cloud notices the dropped socket.
    agent.kill9();
    let took = api
        .wait_status("e2e", "offline", Duration::from_secs(5))
        .await;
    eprintln!("offline {took:?} after SIGKILL of the agent");
    let mut agent = start_agent(&agent_dir, "E2E-CODE", wamp_port);
    api.wait_status("e2e", "online", Duration::from_secs(10))
        .await;

    // A board that goes silent without closing its socket (frozen, or cut off): the cloud's
    // pings (1 s here) find it. Thawed, the agent finds its link closed and comes back.
    agent.signal("STOP");
    let took = api
        .wait_status("e2e", "offline", Duration::from_secs(5))
        .await;
    eprintln!("offline {took:?} after the agent froze");
    agent.signal("CONT");
    api.wait_status("e2e", "online", Duration::from_secs(10))
        .await;

    // An action that is still running when the cloud dies.
    let (status, body) = api
        .action("e2e", "DeviceUpgradeLR", json!({"version": "1.0"}))
        .await;
    assert_eq!(
        (status, body.as_str()),
        (200, Some("LR upgrading to 1.0 version..."))
    );
    cloud.kill9();
    let (_cloud, base) = start_cloud(&cloud_dir, api_port, wamp_port);
    assert_eq!(base, api.base);
    let took = api
        .wait_status("e2e", "online", Duration::from_secs(20))
        .await;
    eprintln!("online again {took:?} after the cloud restarted");
    let (status, body) = api.action("e2e", "DevicePing", json!({})).await;
    assert_eq!(status, 200, "{body}");

    // Every request ended: completed, or interrupted by the restart.
    let (_, list) = api.call(reqwest::Method::GET, "/v1/requests", None).await;
    let requests = list["requests"].as_array().unwrap();
    assert!(requests.len() >= 6, "{list}");
    for r in requests {
        assert_eq!(r["status"], "COMPLETED", "{r}");
        let uuid = r["uuid"].as_str().unwrap();
        let (_, results) = api
            .call(
                reqwest::Method::GET,
                &format!("/v1/requests/{uuid}/results"),
                None,
            )
            .await;
        let result = &results["results"][0];
        assert_ne!(result["result"], "RUNNING", "{r} {results}");
        match r["action"].as_str().unwrap() {
            "DevicePkgOperation" => {
                assert_eq!(result["result"], "ERROR");
                assert!(result["message"]
                    .as_str()
                    .unwrap()
                    .contains("--allow-packages"));
            }
            "DeviceUpgradeLR" => {
                assert_eq!(result["result"], "ERROR");
                assert!(
                    result["message"].as_str().unwrap().contains("interrupted"),
                    "{result}"
                );
            }
            _ => {}
        }
    }
    agent.kill9();
    let _ = std::fs::remove_dir_all(cloud_dir);
    let _ = std::fs::remove_dir_all(agent_dir);
}
