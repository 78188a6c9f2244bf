//! The overlay's crypto ceiling for `bench/README.md`: seal and open MTU-sized frames on one
//! core, as the cloud hub and a board each do for every frame.
//!
//! ```text
//! overlay_crypto [SECONDS] [FRAME_BYTES]     prints {"gbit_per_s_seal_and_open": ..}
//! ```

use std::time::{Duration, Instant};

use s4t_tunnel::overlay::{generate_keypair, respond, Initiator};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1380);
    let (board_priv, board_pub) = generate_keypair();
    let (cloud_priv, cloud_pub) = generate_keypair();
    let (init, hello) = Initiator::start(&board_priv, &cloud_pub, 1, &uuid::Uuid::nil()).unwrap();
    let accepted = respond(&cloud_priv, &board_pub, &hello, 2, None).unwrap();
    let (cloud, reply) = (accepted.session, accepted.reply);
    let board = init.finish(&reply).unwrap();
    let frame = vec![0x5au8; size];
    let start = Instant::now();
    let mut frames = 0u64;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        for _ in 0..1000 {
            let packet = board.seal(&frame).unwrap();
            let opened = cloud.open(&packet).unwrap();
            debug_assert_eq!(opened.len(), size);
        }
        frames += 1000;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{{\"frame_bytes\": {size}, \"frames\": {frames}, \"seconds\": {elapsed:.3}, \"gbit_per_s_seal_and_open\": {:.2}}}",
        frames as f64 * size as f64 * 8.0 / 1e9 / elapsed
    );
}
