//! Feeds arbitrary bytes to both serializers: decoding must never panic, and whatever decodes
//! must survive an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s4t_wamp::Serializer;

fuzz_target!(|data: &[u8]| {
    for serializer in [Serializer::Json, Serializer::Msgpack] {
        if let Ok(message) = serializer.decode(data) {
            let again = serializer
                .decode(&serializer.encode(&message))
                .expect("an encoded message decodes");
            assert_eq!(again, message);
        }
    }
});
