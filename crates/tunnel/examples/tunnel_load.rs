//! Load for `bench/tunnel.sh`: a board-side TCP service and clients that measure throughput and
//! new connections per second, against the service directly (raw loopback) or through a tunnel.
//!
//! ```text
//! tunnel_load serve [ADDR]                       prints the bound port, serves until killed
//! tunnel_load throughput HOST:PORT up|down BYTES prints {"mb_per_s": ..}
//! tunnel_load connect HOST:PORT SECONDS CONC     prints {"per_s": .., "p50_ms": .., "p99_ms": ..}
//! ```
//!
//! The service reads one command byte per connection: `U` (read to EOF, answer the byte count),
//! `D` + 8 bytes little-endian N (send N bytes, then close), `E` (answer one byte, then wait for
//! EOF).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 256 * 1024;

fn usage() -> ! {
    eprintln!("usage: tunnel_load serve [ADDR] | throughput HOST:PORT up|down BYTES | connect HOST:PORT SECONDS CONC");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| usage());
    match arg(0) {
        "serve" => serve(args.get(1).map(String::as_str).unwrap_or("127.0.0.1:0")).await,
        "throughput" => {
            let bytes: u64 = arg(3).parse().unwrap_or_else(|_| usage());
            let secs = match arg(2) {
                "up" => upload(arg(1), bytes).await,
                "down" => download(arg(1), bytes).await,
                _ => usage(),
            };
            println!(
                "{{\"bytes\": {bytes}, \"seconds\": {secs:.4}, \"mb_per_s\": {:.1}}}",
                bytes as f64 / 1e6 / secs
            );
        }
        "connect" => {
            let secs: f64 = arg(2).parse().unwrap_or_else(|_| usage());
            let conc: usize = arg(3).parse().unwrap_or_else(|_| usage());
            connect_rate(arg(1), Duration::from_secs_f64(secs), conc).await;
        }
        _ => usage(),
    }
}

async fn serve(addr: &str) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    println!("{}", listener.local_addr().unwrap().port());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = serve_one(tcp).await;
        });
    }
}

async fn serve_one(mut tcp: TcpStream) -> std::io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let mut buf = vec![0u8; CHUNK];
    match tcp.read_u8().await? {
        b'U' => {
            let mut total = 0u64;
            loop {
                let n = tcp.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            tcp.write_all(&total.to_le_bytes()).await?;
            tcp.shutdown().await
        }
        b'D' => {
            let mut left = tcp.read_u64_le().await?;
            while left > 0 {
                let n = (left as usize).min(buf.len());
                tcp.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
            tcp.shutdown().await
        }
        b'E' => {
            tcp.write_all(b"e").await?;
            while tcp.read(&mut buf).await? > 0 {}
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn upload(target: &str, bytes: u64) -> f64 {
    let mut tcp = TcpStream::connect(target).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    let buf = vec![0x5au8; CHUNK];
    let start = Instant::now();
    tcp.write_all(b"U").await.unwrap();
    let mut left = bytes;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        tcp.write_all(&buf[..n]).await.unwrap();
        left -= n as u64;
    }
    tcp.shutdown().await.unwrap();
    let got = tcp.read_u64_le().await.expect("the service's byte count");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(got, bytes, "the service received {got} of {bytes} bytes");
    secs
}

async fn download(target: &str, bytes: u64) -> f64 {
    let mut tcp = TcpStream::connect(target).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    let mut buf = vec![0u8; CHUNK];
    let start = Instant::now();
    let mut cmd = vec![b'D'];
    cmd.extend_from_slice(&bytes.to_le_bytes());
    tcp.write_all(&cmd).await.unwrap();
    let mut got = 0u64;
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(got, bytes, "received {got} of {bytes} bytes");
    secs
}

/// CONC workers open, use (one byte each way) and close connections for `length`.
async fn connect_rate(target: &str, length: Duration, conc: usize) {
    let start = Instant::now();
    let workers: Vec<_> = (0..conc)
        .map(|_| {
            let target = target.to_string();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut failed = 0u64;
                while start.elapsed() < length {
                    let t = Instant::now();
                    match one_connection(&target).await {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(_) => failed += 1,
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (l, f) = w.await.unwrap();
        all.extend(l);
        failed += f;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let q = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(f64::NAN)
    };
    println!(
        "{{\"connections\": {}, \"failed\": {failed}, \"per_s\": {:.0}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}}}",
        all.len(),
        all.len() as f64 / secs,
        q(0.5),
        q(0.99)
    );
}

async fn one_connection(target: &str) -> std::io::Result<()> {
    let mut tcp = TcpStream::connect(target).await?;
    let _ = tcp.set_nodelay(true);
    tcp.write_all(b"E").await?;
    let mut b = [0u8; 1];
    tcp.read_exact(&mut b).await?;
    // Close from the client side first, so TIME_WAIT stays here and not on the service.
    drop(tcp);
    Ok(())
}
