//! Device actions (`DevicePing`, `DeviceEcho`, ...): the replies Lightning-rod gives, with the
//! dangerous ones (reboot, package operations, upgrade) off unless the board's operator turned
//! them on.

use std::time::Duration;

use serde_json::Value;

use s4t_model::board_link::WampMessage;

/// Every device procedure the agent registers.
pub const DEVICE_METHODS: &[&str] = &[
    "DevicePing",
    "DeviceEcho",
    "DeviceReboot",
    "DeviceRestartLR",
    "DeviceNetConfig",
    "DeviceUpgradeLR",
    "DevicePkgOperation",
    "DeviceRestSubmit",
    "DeviceFactoryReset",
];

/// What the board's operator allows the cloud to do to it.
#[derive(Debug, Clone, Default)]
pub struct DevicePolicy {
    /// `DeviceReboot` reboots the machine.
    pub allow_reboot: bool,
    /// `DevicePkgOperation` runs apt/pip/npm.
    pub allow_packages: bool,
    /// `DeviceUpgradeLR` runs this command (`{version}` is replaced); none: refused.
    pub upgrade_command: Option<String>,
}

/// What happens after the reply has been sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aftermath {
    Reboot(Duration),
    /// Drop the link and reconnect, as a restarted agent would.
    Restart(Duration),
    /// Forget the identity and wait for a new code.
    FactoryReset,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Performed {
    pub reply: WampMessage,
    pub then: Option<Aftermath>,
}

impl Performed {
    fn reply(reply: WampMessage) -> Performed {
        Performed { reply, then: None }
    }
}

/// Actions that always answer RUNNING first and report through `notify_result` (upstream).
pub fn always_async(method: &str) -> bool {
    matches!(method, "DeviceUpgradeLR" | "DevicePkgOperation")
}

/// Actions that never go asynchronous, even inside a parent request.
pub fn never_async(method: &str) -> bool {
    matches!(
        method,
        "DeviceReboot" | "DeviceRestartLR" | "DeviceFactoryReset"
    )
}

/// The RUNNING message of an asynchronous action.
pub fn running_message(method: &str, params: &Value) -> String {
    match method {
        "DeviceUpgradeLR" => {
            let v = params.get("version").and_then(Value::as_str).unwrap_or("");
            let v = if v.is_empty() { "latest" } else { v };
            format!("LR upgrading to {v} version...")
        }
        other => other.to_string(),
    }
}

/// `datetime.now().isoformat()`, as Lightning-rod stamps its replies.
fn stamp() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The delay parameter of reboot and restart: default 3 s, at least 3 s (upstream).
fn delay(params: &Value) -> u64 {
    let n = match params.get("delay") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(3),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(3),
        _ => 3,
    };
    n.max(3)
}

/// One device, as far as device actions are concerned.
#[derive(Debug, Clone)]
pub struct Device {
    /// What `DevicePing` reports (the host name for a real board).
    pub hostname: String,
    pub policy: DevicePolicy,
}

impl Device {
    pub async fn perform(&self, method: &str, params: &Value) -> Performed {
        match method {
            "DevicePing" => Performed::reply(WampMessage::success(format!(
                "{} @ {}",
                self.hostname,
                stamp()
            ))),
            "DeviceEcho" => {
                let say = params.get("say").map(text_of).unwrap_or_default();
                Performed::reply(WampMessage::success(format!("{say} @ {}", stamp())))
            }
            "DeviceReboot" => {
                if !self.policy.allow_reboot {
                    return Performed::reply(WampMessage::error(
                        "DeviceReboot is disabled on this board: its agent runs without --allow-reboot",
                    ));
                }
                let d = delay(params);
                Performed {
                    reply: WampMessage::success(format!(
                        "Rebooting board in {d} seconds ({})...",
                        stamp()
                    )),
                    then: Some(Aftermath::Reboot(Duration::from_secs(d))),
                }
            }
            "DeviceRestartLR" => {
                let d = delay(params);
                Performed {
                    reply: WampMessage::success(format!(
                        "Restarting LR in {d} seconds ({})...",
                        stamp()
                    )),
                    then: Some(Aftermath::Restart(Duration::from_secs(d))),
                }
            }
            "DeviceNetConfig" => Performed::reply(run_quietly("ip", &["addr", "show"]).await),
            "DeviceUpgradeLR" => Performed::reply(self.upgrade(params).await),
            "DevicePkgOperation" => Performed::reply(self.package(params).await),
            "DeviceRestSubmit" => Performed::reply(rest_submit(params).await),
            "DeviceFactoryReset" => Performed {
                reply: WampMessage::success("Device reset completed"),
                then: Some(Aftermath::FactoryReset),
            },
            other => Performed::reply(WampMessage::error(format!(
                "{other} is not a device action"
            ))),
        }
    }

    async fn upgrade(&self, params: &Value) -> WampMessage {
        let Some(template) = &self.policy.upgrade_command else {
            return WampMessage::error(
                "DeviceUpgradeLR is disabled on this board: its agent runs without --upgrade-command",
            );
        };
        let version = params.get("version").and_then(Value::as_str).unwrap_or("");
        if !version.is_empty()
            && version != "latest"
            && !version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
        {
            return WampMessage::error(format!(
                "version {version:?} is not a version: use digits, letters, '.', '-' or '+'"
            ));
        }
        let command = template.replace("{version}", version);
        let words: Vec<&str> = command.split_whitespace().collect();
        let Some((program, args)) = words.split_first() else {
            return WampMessage::error("--upgrade-command is empty");
        };
        match run_quietly(program, args).await {
            m if m.result == s4t_model::resources::Outcome::Success => {
                WampMessage::success("LR upgraded")
            }
            m => m,
        }
    }

    async fn package(&self, params: &Value) -> WampMessage {
        if !self.policy.allow_packages {
            return WampMessage::error(
                "DevicePkgOperation is disabled on this board: its agent runs without --allow-packages",
            );
        }
        match package_command(params) {
            Ok((program, args)) => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run_quietly(&program, &args).await
            }
            Err(e) => WampMessage::error(e),
        }
    }
}

/// The command line of a package operation, checked: known managers and commands only, and a
/// package name that cannot smuggle options or shell syntax (no shell is used either).
pub fn package_command(params: &Value) -> Result<(String, Vec<String>), String> {
    let field = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or("").trim();
    let manager = field("manager");
    let command = field("command");
    let package = field("package");
    let version = field("version");
    if !["apt", "apt-get", "pip", "pip3", "npm"].contains(&manager) {
        return Err(format!(
            "manager {manager:?}: use apt, apt-get, pip, pip3 or npm"
        ));
    }
    if !["install", "update", "upgrade", "remove", "uninstall"].contains(&command) {
        return Err(format!(
            "command {command:?}: use install, update, upgrade, remove or uninstall"
        ));
    }
    let safe = |s: &str| {
        !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+@/:=~".contains(c))
    };
    if command != "update" && (package.is_empty() || !safe(package)) {
        return Err(format!(
            "package {package:?}: give one package name (letters, digits, . _ - + @ /)"
        ));
    }
    if !version.is_empty() && !safe(version) {
        return Err(format!("version {version:?} is not a version"));
    }
    let spec = match (manager, version) {
        (_, "") => package.to_string(),
        ("pip" | "pip3", v) => format!("{package}=={v}"),
        ("apt" | "apt-get", v) => format!("{package}={v}"),
        (_, v) => format!("{package}@{v}"),
    };
    let mut args = vec![command.to_string()];
    if manager.starts_with("apt") {
        args.push("-y".into());
    }
    if command != "update" {
        args.push(spec);
    }
    Ok((manager.to_string(), args))
}

/// Runs a program without a shell; its output is the message.
async fn run_quietly(program: &str, args: &[&str]) -> WampMessage {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {
            WampMessage::success(String::from_utf8_lossy(&o.stdout).into_owned())
        }
        Ok(o) => WampMessage::error(format!(
            "{program} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => WampMessage::error(format!("cannot run {program}: {e}")),
    }
}

/// `DeviceRestSubmit`: an HTTP request made by the board; the reply is the response body.
async fn rest_submit(params: &Value) -> WampMessage {
    let Some(url) = params.get("url").and_then(Value::as_str) else {
        return WampMessage::error("DeviceRestSubmit: parameters.url is required");
    };
    let method = params
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return WampMessage::error(format!(
            "DeviceRestSubmit: method {method:?} is not an HTTP method"
        ));
    };
    let timeout = params
        .get("timeout")
        .and_then(Value::as_f64)
        .filter(|t| *t > 0.0 && *t < 3600.0)
        .unwrap_or(30.0);
    let verify = params
        .get("verify")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(timeout))
        .danger_accept_invalid_certs(!verify)
        .build()
    {
        Ok(c) => c,
        Err(e) => return WampMessage::error(format!("DeviceRestSubmit: {e}")),
    };
    let mut req = client.request(method, url);
    if let Some(q) = params.get("params").and_then(Value::as_object) {
        let pairs: Vec<(String, String)> = q.iter().map(|(k, v)| (k.clone(), text_of(v))).collect();
        req = req.query(&pairs);
    }
    if let Some(h) = params.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            req = req.header(k.as_str(), text_of(v));
        }
    }
    if let Some(j) = params.get("json") {
        req = req.json(j);
    } else if let Some(d) = params.get("data") {
        req = req.body(text_of(d));
    }
    match req.send().await {
        Ok(resp) => match resp.text().await {
            Ok(body) => WampMessage::success(body),
            Err(e) => WampMessage::error(format!("DeviceRestSubmit: reading the body: {e}")),
        },
        Err(e) => WampMessage::error(format!("DeviceRestSubmit: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s4t_model::resources::Outcome;
    use serde_json::json;

    fn device(policy: DevicePolicy) -> Device {
        Device {
            hostname: "board-1".into(),
            policy,
        }
    }

    #[tokio::test]
    async fn ping_and_echo_answer_like_lightning_rod() {
        let d = device(DevicePolicy::default());
        let ping = d.perform("DevicePing", &json!({})).await;
        assert_eq!(ping.reply.result, Outcome::Success);
        let text = ping.reply.message.as_str().unwrap();
        let stamp = text.strip_prefix("board-1 @ ").unwrap();
        // Lightning-rod's isoformat: 2026-12-03T17:45:48.108289
        let shape: String = stamp
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99T99:99:99.999999", "{text}");
        let echo = d.perform("DeviceEcho", &json!({"say": "hello"})).await;
        assert!(echo.reply.message.as_str().unwrap().starts_with("hello @ "));
    }

    #[tokio::test]
    async fn dangerous_actions_are_refused_unless_allowed() {
        let d = device(DevicePolicy::default());
        for (method, flag) in [
            ("DeviceReboot", "--allow-reboot"),
            ("DevicePkgOperation", "--allow-packages"),
            ("DeviceUpgradeLR", "--upgrade-command"),
        ] {
            let p = d.perform(method, &json!({})).await;
            assert_eq!(p.reply.result, Outcome::Error, "{method}");
            assert!(p.reply.message.as_str().unwrap().contains(flag), "{method}");
            assert_eq!(p.then, None);
        }
        let d = device(DevicePolicy {
            allow_reboot: true,
            ..Default::default()
        });
        let p = d.perform("DeviceReboot", &json!({"delay": 1})).await;
        assert_eq!(p.then, Some(Aftermath::Reboot(Duration::from_secs(3))));
    }

    #[test]
    fn package_commands_table() {
        let ok = [
            (
                json!({"manager": "pip3", "command": "install", "package": "requests", "version": "2.31.0"}),
                ("pip3", vec!["install", "requests==2.31.0"]),
            ),
            (
                json!({"manager": "apt", "command": "remove", "package": "nginx"}),
                ("apt", vec!["remove", "-y", "nginx"]),
            ),
            (
                json!({"manager": "apt-get", "command": "update"}),
                ("apt-get", vec!["update", "-y"]),
            ),
            (
                json!({"manager": "npm", "command": "install", "package": "left-pad", "version": "1.3.0"}),
                ("npm", vec!["install", "left-pad@1.3.0"]),
            ),
        ];
        for (params, (program, args)) in ok {
            let (p, a) = package_command(&params).unwrap();
            assert_eq!(
                (p.as_str(), a.iter().map(String::as_str).collect::<Vec<_>>()),
                (program, args)
            );
        }
        let bad = [
            (
                json!({"manager": "curl", "command": "install", "package": "x"}),
                "manager",
            ),
            (
                json!({"manager": "pip", "command": "eval", "package": "x"}),
                "command",
            ),
            (
                json!({"manager": "pip", "command": "install", "package": "--index-url=evil"}),
                "package",
            ),
            (
                json!({"manager": "pip", "command": "install", "package": "x; rm -rf /"}),
                "package",
            ),
            (
                json!({"manager": "pip", "command": "install", "package": "x", "version": "1 && id"}),
                "version",
            ),
        ];
        for (params, field) in bad {
            let e = package_command(&params).unwrap_err();
            assert!(e.starts_with(field), "{params}: {e}");
        }
    }

    #[test]
    fn async_rules_follow_upstream() {
        assert!(always_async("DeviceUpgradeLR") && always_async("DevicePkgOperation"));
        assert!(!always_async("DevicePing"));
        assert!(never_async("DeviceReboot") && !never_async("DeviceEcho"));
        assert_eq!(
            running_message("DeviceUpgradeLR", &json!({"version": ""})),
            "LR upgrading to latest version..."
        );
    }
}
