//! Interop with stock autobahn-python (asyncio), the library Lightning-rod boards use.
//!
//! Runs when `S4T_AUTOBAHN_PYTHON` names a python with autobahn 21.x and msgpack
//! (`tests/interop/setup-autobahn.sh` makes one); otherwise it says so and passes.

mod common;

use std::path::Path;

use common::*;
use s4t_wamp::{handler, CallError, CallResult, WampError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_autobahn_client() {
    let Ok(python) = std::env::var("S4T_AUTOBAHN_PYTHON") else {
        eprintln!("S4T_AUTOBAHN_PYTHON not set: autobahn interop not run");
        return;
    };
    let t = start_default().await;
    let local = t
        .router
        .local_session(REALM, "example", "cloud")
        .await
        .unwrap();
    local
        .register(
            "interop.rust.echo",
            handler(|inv| async move { Ok(CallResult::new(inv.args, inv.kwargs)) }),
        )
        .await
        .unwrap();
    let caller = local.clone();
    local
        .register(
            "interop.rust.call_back",
            handler(move |inv| {
                let caller = caller.clone();
                async move {
                    let mut args = inv.args.into_iter();
                    let procedure = args
                        .next()
                        .and_then(|p| p.as_str().map(String::from))
                        .unwrap_or_default();
                    caller
                        .call(&procedure, args.collect(), inv.kwargs)
                        .await
                        .map_err(|e| match e {
                            WampError::Call(e) => e,
                            other => CallError::with_message("interop.error", other.to_string()),
                        })
                }
            }),
        )
        .await
        .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/autobahn_client.py");
    for serializer in ["json", "msgpack", "default"] {
        let output = tokio::process::Command::new(&python)
            .arg(&script)
            .arg(&t.url)
            .arg(serializer)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("{serializer}:\n{stdout}");
        assert!(
            output.status.success(),
            "autobahn ({serializer}) failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
