//! A standalone router for manual tests and interop checks:
//! `cargo run -p s4t-wamp --example router -- 127.0.0.1:8181`
//!
//! Realm `s4t`, anonymous access. An in-process session registers `interop.rust.echo` (returns
//! its arguments) and `interop.rust.call_back` (calls the procedure named in its first
//! argument with the remaining arguments and returns that result).

use std::sync::Arc;

use s4t_wamp::{handler, CallError, CallResult, Router, RouterConfig, Session};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8181".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let router = Router::new(RouterConfig::default());
    let local = router
        .local_session("s4t", "example", "cloud")
        .await
        .map_err(std::io::Error::other)?;
    local
        .register(
            "interop.rust.echo",
            handler(|inv| async move { Ok(CallResult::new(inv.args, inv.kwargs)) }),
        )
        .await
        .map_err(std::io::Error::other)?;
    let caller: Arc<Session> = Arc::new(local.clone());
    local
        .register(
            "interop.rust.call_back",
            handler(move |inv| {
                let caller = caller.clone();
                async move {
                    let mut args = inv.args.into_iter();
                    let Some(procedure) = args.next().and_then(|p| p.as_str().map(String::from))
                    else {
                        return Err(CallError::with_message(
                            "wamp.error.invalid_argument",
                            "first argument: the procedure to call",
                        ));
                    };
                    caller
                        .call(&procedure, args.collect(), inv.kwargs)
                        .await
                        .map_err(|e| match e {
                            s4t_wamp::WampError::Call(e) => e,
                            other => CallError::with_message("interop.error", other.to_string()),
                        })
                }
            }),
        )
        .await
        .map_err(std::io::Error::other)?;
    println!("listening on ws://{}", listener.local_addr()?);
    router.serve(listener).await
}
