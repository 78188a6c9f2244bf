//! Webservices end to end, with the real binary: a board's HTTP server published as
//! `https://web.board1.example.test` through `s4t cloud`'s front and `s4t agent`'s tunnel. The
//! client resolves the name to the front itself (as `curl --resolve` does) and trusts the
//! cloud's CA; plain HTTP gets a redirect, or is proxied for a non-secure webservice; names that
//! are not published get no certificate; delete, renew and disable do what they say.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod common;
use common::*;

const HOST: &str = "web.board1.example.test";

/// The board's web server: answers every request with its path and Host.
async fn board_http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split_whitespace().nth(1).unwrap_or("?").to_string();
                let host = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("host: ")
                            .or_else(|| l.strip_prefix("Host: "))
                    })
                    .unwrap_or("?")
                    .trim()
                    .to_string();
                let body = format!("board says hello to {path} on {host}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(resp.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    port
}

impl Api {
    async fn wait_online(&self) {
        let start = Instant::now();
        loop {
            let (_, b) = self.call(reqwest::Method::GET, "/v1/boards/wb", None).await;
            if b["status"] == "online" {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "board not online: {b}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webservices_through_the_https_front() {
    let cloud_dir = temp_dir("web-cloud");
    let agent_dir = temp_dir("web-agent");
    let (api_port, wamp_port, https_port, http_port) =
        (free_port(), free_port(), free_port(), free_port());
    let (_cloud, base) = start_cloud_with(
        &cloud_dir,
        api_port,
        wamp_port,
        &[
            "--tunnel-addr",
            "127.0.0.1:0",
            "--public-ports",
            &{
                let (a, b) = free_range(8);
                format!("{a}-{b}")
            },
            "--https-addr",
            &format!("127.0.0.1:{https_port}"),
            "--http-addr",
            &format!("127.0.0.1:{http_port}"),
        ],
    );
    let api = Api::of(&cloud_dir, base);
    api.create_board("wb", "WEB-E2E").await;
    let _agent = start_agent_at(
        &agent_dir,
        "WEB-E2E",
        &format!("ws://127.0.0.1:{wamp_port}/"),
        &[],
    );
    api.wait_online().await;
    let board_port = board_http_server().await;

    // Publishing before enabling: IoTronic's 404.
    let expose =
        |name: &str, secure: bool| json!({"name": name, "port": board_port, "secure": secure});
    let (status, r) = api
        .call(
            reqwest::Method::PUT,
            "/v1/boards/wb/webservices",
            Some(expose("web", true)),
        )
        .await;
    assert_eq!(status, 404, "{r}");
    // Bad names are refused naming the field.
    let (status, r) = api
        .call(
            reqwest::Method::POST,
            "/v1/boards/wb/webservices/enable",
            Some(json!({"dns": "board_1", "zone": "example.test", "email": "ops@example.test"})),
        )
        .await;
    assert_eq!(status, 400, "{r}");
    assert!(r.to_string().contains("dns"), "{r}");
    let (status, e) = api
        .call(
            reqwest::Method::POST,
            "/v1/boards/wb/webservices/enable",
            Some(json!({"dns": "board1", "zone": "example.test", "email": "ops@example.test"})),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(
        (e["dns"].as_str(), e["https_port"].as_u64()),
        (Some("board1"), Some(https_port as u64))
    );
    let (status, r) = api
        .call(
            reqwest::Method::POST,
            "/v1/boards/wb/webservices/enable",
            Some(json!({"dns": "board1", "zone": "example.test", "email": "ops@example.test"})),
        )
        .await;
    assert_eq!(status, 409, "{r}");

    let (status, web) = api
        .call(
            reqwest::Method::PUT,
            "/v1/boards/wb/webservices",
            Some(expose("web", true)),
        )
        .await;
    assert_eq!(status, 201, "{web}");
    assert_eq!(
        (web["name"].as_str(), web["secure"].as_bool()),
        (Some("web"), Some(true))
    );
    let (status, plain) = api
        .call(
            reqwest::Method::PUT,
            "/v1/boards/wb/webservices",
            Some(expose("plain", false)),
        )
        .await;
    assert_eq!(status, 201, "{plain}");

    // HTTPS by name, with the cloud's CA as the only trust anchor.
    let ca = std::fs::read(cloud_dir.join("webservice-ca.pem")).unwrap();
    let front = std::net::SocketAddr::from(([127, 0, 0, 1], https_port));
    let client = |host: &str| {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .tls_built_in_root_certs(false)
            .resolve(host, front)
            .resolve(
                host,
                std::net::SocketAddr::from(([127, 0, 0, 1], http_port)),
            )
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let https = client(HOST);
    let r = https
        .get(format!("https://{HOST}:{https_port}/hello?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        format!("board says hello to /hello?x=1 on {HOST}:{https_port}")
    );
    // Several requests at once, each on its own connection.
    let many: Vec<_> = (0..20)
        .map(|i| {
            let c = client(HOST);
            tokio::spawn(async move {
                c.get(format!("https://{HOST}:{https_port}/n{i}"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for (i, t) in many.into_iter().enumerate() {
        assert!(t
            .await
            .unwrap()
            .starts_with(&format!("board says hello to /n{i} ")));
    }
    // A name nobody published gets no certificate.
    let other = "nope.board1.example.test";
    assert!(client(other)
        .get(format!("https://{other}:{https_port}/"))
        .send()
        .await
        .is_err());

    // Plain HTTP: a secure webservice redirects, a non-secure one is served.
    let http_client = client(HOST);
    let r = http_client
        .get(format!("http://{HOST}:{http_port}/a/b?c=d"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(
        r.headers()["location"],
        format!("https://{HOST}:{https_port}/a/b?c=d").as_str()
    );
    let plain_host = "plain.board1.example.test";
    let r = client(plain_host)
        .get(format!("http://{plain_host}:{http_port}/p"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .starts_with("board says hello to /p "));

    // The lists say what is published.
    let (_, list) = api
        .call(reqwest::Method::GET, "/v1/boards/wb/webservices", None)
        .await;
    assert_eq!(list["webservices"].as_array().unwrap().len(), 2, "{list}");
    let (_, enabled) = api
        .call(reqwest::Method::GET, "/v1/enabledwebservices", None)
        .await;
    assert_eq!(
        enabled["EnabledWebservices"].as_array().unwrap().len(),
        1,
        "{enabled}"
    );

    // Delete one: its name stops answering, the other keeps working.
    let (status, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/webservices/{}", plain["uuid"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let r = client(plain_host)
        .get(format!("http://{plain_host}:{http_port}/p"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (status, r) = api
        .call(
            reqwest::Method::GET,
            "/v1/boards/wb/webservices/renew",
            None,
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let r = https
        .get(format!("https://{HOST}:{https_port}/after-renew"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Disable: every name goes, and the board's tunnels with them.
    let (status, _) = api
        .call(
            reqwest::Method::DELETE,
            "/v1/boards/wb/webservices/disable",
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(client(HOST)
        .get(format!("https://{HOST}:{https_port}/"))
        .send()
        .await
        .is_err());
    let (_, enabled) = api
        .call(reqwest::Method::GET, "/v1/enabledwebservices", None)
        .await;
    assert_eq!(enabled["EnabledWebservices"], json!([]), "{enabled}");
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(agent_dir.join("services.json")).unwrap())
            .unwrap();
    assert_eq!(kept["services"], json!({}), "{kept}");
    let (status, _) = api
        .call(
            reqwest::Method::GET,
            "/v1/boards/wb/webservices/renew",
            None,
        )
        .await;
    assert_eq!(status, 404);
}
