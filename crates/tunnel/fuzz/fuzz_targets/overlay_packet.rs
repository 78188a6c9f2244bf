//! Feeds arbitrary bytes to every overlay packet parser, as the hub and a board receive them
//! from the network: nothing may panic, and nothing but a genuine packet may open.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use s4t_tunnel::overlay::{self, Initiation, Initiator, Session};

struct Fixture {
    hub_private: Vec<u8>,
    board_public: Vec<u8>,
    board: Session,
    hub: Session,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (board_private, board_public) = overlay::generate_keypair();
        let (hub_private, hub_public) = overlay::generate_keypair();
        let (init, hello) =
            Initiator::start(&board_private, &hub_public, 1, &uuid::Uuid::nil()).unwrap();
        let accepted = overlay::respond(&hub_private, &board_public, &hello, 2, None).unwrap();
        let board = init.finish(&accepted.reply).unwrap();
        Fixture {
            hub_private,
            board_public,
            board,
            hub: accepted.session,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let _ = overlay::kind(data);
    let _ = overlay::data_header(data);
    let _ = overlay::response_receiver(data);
    if let Ok(i) = Initiation::open(&f.hub_private, data) {
        let _ = i.accept(&f.board_public, None, 3);
    }
    assert!(f.hub.open(data).is_err(), "random bytes opened as a data packet");
    assert!(f.board.open(data).is_err(), "random bytes opened as a data packet");
});
