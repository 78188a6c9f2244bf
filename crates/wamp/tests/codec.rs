//! Codec tests: round trips, frames as Crossbar/autobahn send them, bad frames, and a seeded
//! garbage/mutation loop asserting decode never panics.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use s4t_wamp::{Dict, Kwargs, Message, Serializer};
use serde_json::{json, Value};

fn dict(v: Value) -> Dict {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// Every message type, with and without payloads.
fn samples() -> Vec<Message> {
    let details =
        dict(json!({"roles": {"caller": {}}, "n": 1.5, "neg": -3, "nested": [null, true]}));
    let kwargs: Kwargs = dict(json!({"code": "X", "session": 5, "unicode": "héllo ✓"}));
    let args = vec![
        json!(1),
        json!("two"),
        json!({"three": [3]}),
        json!(u64::MAX),
    ];
    let mut all = vec![
        Message::Hello {
            realm: "s4t".into(),
            details: details.clone(),
        },
        Message::Welcome {
            session: 1 << 53,
            details: details.clone(),
        },
        Message::Abort {
            details: dict(json!({"message": "no"})),
            reason: "wamp.error.no_such_realm".into(),
        },
        Message::Goodbye {
            details: Dict::new(),
            reason: "wamp.close.close_realm".into(),
        },
        Message::Challenge {
            authmethod: "wampcra".into(),
            extra: dict(json!({"challenge": "{}"})),
        },
        Message::Authenticate {
            signature: "c2ln".into(),
            extra: Dict::new(),
        },
        Message::Published {
            request: 3,
            publication: 4,
        },
        Message::Subscribe {
            request: 5,
            options: Dict::new(),
            topic: "a.b".into(),
        },
        Message::Subscribed {
            request: 5,
            subscription: 6,
        },
        Message::Unsubscribe {
            request: 7,
            subscription: 6,
        },
        Message::Unsubscribed { request: 7 },
        Message::Cancel {
            request: 9,
            options: dict(json!({"mode": "skip"})),
        },
        Message::Register {
            request: 10,
            options: dict(json!({"match": "exact", "invoke": "single"})),
            procedure: "stack4things.register".into(),
        },
        Message::Registered {
            request: 10,
            registration: 11,
        },
        Message::Unregister {
            request: 12,
            registration: 11,
        },
        Message::Unregistered { request: 12 },
        Message::Interrupt {
            request: 13,
            options: Dict::new(),
        },
    ];
    // Payload-carrying types in three shapes: none, args only, args and kwargs.
    let payloads = [
        (vec![], Kwargs::new()),
        (args.clone(), Kwargs::new()),
        (vec![], kwargs.clone()),
        (args, kwargs),
    ];
    for (args, kwargs) in payloads {
        all.extend([
            Message::Error {
                request_type: 48,
                request: 1,
                details: Dict::new(),
                error: "wamp.error.no_such_procedure".into(),
                args: args.clone(),
                kwargs: kwargs.clone(),
            },
            Message::Publish {
                request: 2,
                options: dict(json!({"acknowledge": true})),
                topic: "t".into(),
                args: args.clone(),
                kwargs: kwargs.clone(),
            },
            Message::Event {
                subscription: 6,
                publication: 8,
                details: Dict::new(),
                args: args.clone(),
                kwargs: kwargs.clone(),
            },
            Message::Call {
                request: 9,
                options: dict(json!({"timeout": 1000})),
                procedure: "p.q".into(),
                args: args.clone(),
                kwargs: kwargs.clone(),
            },
            Message::Result {
                request: 9,
                details: Dict::new(),
                args: args.clone(),
                kwargs: kwargs.clone(),
            },
            Message::Invocation {
                request: 14,
                registration: 11,
                details: dict(json!({"caller": 1})),
                args: args.clone(),
                kwargs: kwargs.clone(),
            },
            Message::Yield {
                request: 14,
                options: Dict::new(),
                args: args.clone(),
                kwargs: kwargs.clone(),
            },
        ]);
    }
    all
}

#[test]
fn round_trip_every_message_type() {
    let all = samples();
    let codes: std::collections::BTreeSet<u64> = all.iter().map(Message::code).collect();
    assert_eq!(codes.len(), 24, "every message type is covered");
    for serializer in [Serializer::Json, Serializer::Msgpack] {
        for message in &all {
            let bytes = serializer.encode(message);
            let back = serializer
                .decode(&bytes)
                .unwrap_or_else(|e| panic!("{serializer:?} {}: {e}", message.name()));
            assert_eq!(&back, message, "{serializer:?}");
        }
    }
}

#[test]
fn encoding_trims_empty_payloads() {
    let enc = |m: &Message| serde_json::from_slice::<Value>(&Serializer::Json.encode(m)).unwrap();
    let call = |args: Vec<Value>, kwargs: Kwargs| Message::Call {
        request: 1,
        options: Dict::new(),
        procedure: "p".into(),
        args,
        kwargs,
    };
    assert_eq!(enc(&call(vec![], Kwargs::new())), json!([48, 1, {}, "p"]));
    assert_eq!(
        enc(&call(vec![json!(1)], Kwargs::new())),
        json!([48, 1, {}, "p", [1]])
    );
    assert_eq!(
        enc(&call(vec![], dict(json!({"k": 1})))),
        json!([48, 1, {}, "p", [], {"k": 1}])
    );
}

#[test]
fn decodes_frames_as_autobahn_and_crossbar_send_them() {
    let json = Serializer::Json;
    let hello = json
        .decode(br#"[1,"s4t",{"roles":{"caller":{}}}]"#)
        .unwrap();
    assert_eq!(
        hello,
        Message::Hello {
            realm: "s4t".into(),
            details: dict(json!({"roles": {"caller": {}}}))
        }
    );
    let call = json
        .decode(br#"[48,1,{},"stack4things.register",[],{"code":"X","session":5}]"#)
        .unwrap();
    assert_eq!(
        call,
        Message::Call {
            request: 1,
            options: Dict::new(),
            procedure: "stack4things.register".into(),
            args: vec![],
            kwargs: dict(json!({"code": "X", "session": 5})),
        }
    );
    let result = json
        .decode(br#"[50,7,{},["{\"message\": \"\", \"result\": \"SUCCESS\"}"]]"#)
        .unwrap();
    assert_eq!(
        result,
        Message::Result {
            request: 7,
            details: Dict::new(),
            args: vec![json!("{\"message\": \"\", \"result\": \"SUCCESS\"}")],
            kwargs: Kwargs::new(),
        }
    );
    // Crossbar's WELCOME and an autobahn REGISTER.
    let welcome = json
        .decode(br#"[2,5463,{"authid":"X3GX-YH4C","authrole":"anonymous","authmethod":"anonymous","roles":{"broker":{"features":{"publisher_exclusion":true}},"dealer":{"features":{}}}}]"#)
        .unwrap();
    assert!(matches!(welcome, Message::Welcome { session: 5463, .. }));
    let register = json
        .decode(br#"[64, 2, {"match": "exact", "invoke": "single"}, "iotronic.board-1.stack4things.ping"]"#)
        .unwrap();
    assert!(matches!(register, Message::Register { request: 2, .. }));
    // MessagePack: the same CALL, hand-encoded.
    let mut packed = vec![
        0x96, 0x30, 0x01, 0x80, 0xA1, b'p', 0x90, 0x81, 0xA1, b'k', 0x05,
    ];
    let msg = Serializer::Msgpack.decode(&packed).unwrap();
    assert_eq!(
        msg,
        Message::Call {
            request: 1,
            options: Dict::new(),
            procedure: "p".into(),
            args: vec![],
            kwargs: dict(json!({"k": 5})),
        }
    );
    packed.push(0xC0);
    let err = Serializer::Msgpack.decode(&packed).unwrap_err();
    assert!(err.to_string().contains("trailing"), "{err}");
}

fn json_error(frame: &str) -> String {
    Serializer::Json
        .decode(frame.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_frames_are_named() {
    let cases: &[(&str, &str)] = &[
        ("[48, 1", "invalid JSON"),
        ("not json", "invalid JSON"),
        ("{\"a\": 1}", "message must be an array, got a dict"),
        ("[]", "empty message array"),
        (
            "[\"48\", 1]",
            "message type must be a non-negative integer, got a string",
        ),
        ("[99, 1]", "unknown message type 99"),
        (
            "[-1, 1]",
            "message type must be a non-negative integer, got a negative integer",
        ),
        ("[48, 1]", "CALL: expected 4 to 6 elements, got 2"),
        (
            "[48, 1, {}, \"p\", [], {}, 7]",
            "CALL: expected 4 to 6 elements, got 7",
        ),
        ("[1, \"s4t\"]", "HELLO: expected 3 elements, got 2"),
        (
            "[48, \"1\", {}, \"p\"]",
            "CALL: element 1 (request) must be an ID",
        ),
        ("[48, -1, {}, \"p\"]", "got a negative integer"),
        ("[48, 1.5, {}, \"p\"]", "got a float"),
        (
            "[48, 9007199254740993, {}, \"p\"]",
            "got an integer above 2^53",
        ),
        (
            "[48, 1, [], \"p\"]",
            "CALL: element 2 (options) must be a dict, got a list",
        ),
        (
            "[48, 1, {}, 5]",
            "CALL: element 3 (procedure) must be a string, got an integer",
        ),
        (
            "[48, 1, {}, \"a..b\"]",
            "CALL: invalid URI \"a..b\" for procedure",
        ),
        ("[48, 1, {}, \"a b\"]", "invalid URI"),
        ("[1, \"\", {}]", "HELLO: invalid URI \"\" for realm"),
        (
            "[48, 1, {}, \"p\", {}]",
            "CALL: element 4 (arguments) must be a list, got a dict",
        ),
        (
            "[48, 1, {}, \"p\", [], []]",
            "CALL: element 5 (keyword arguments) must be a dict",
        ),
        ("[8, 48, 1, {}, \"not a uri\"]", "ERROR: invalid URI"),
        ("[3, {}, 5]", "ABORT: element 2 (reason) must be a string"),
    ];
    for (frame, expected) in cases {
        let error = json_error(frame);
        assert!(
            error.contains(expected),
            "{frame}: {error:?} should contain {expected:?}"
        );
    }
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(json_error(&deep).contains("invalid JSON"));

    let msgpack = |bytes: &[u8]| Serializer::Msgpack.decode(bytes).unwrap_err().to_string();
    assert!(msgpack(&[0x93, 0x30]).contains("invalid MessagePack"));
    assert!(
        msgpack(&[0x81, 0x01, 0x02]).contains("invalid MessagePack"),
        "non-string map key"
    );
    assert!(msgpack(&[0xC1]).contains("invalid MessagePack"));
    assert!(msgpack(&[0x92, 0x63, 0x01]).contains("unknown message type 99"));
    let mut deep = vec![0x91; 10_000];
    deep.push(0x01);
    assert!(msgpack(&deep).contains("invalid MessagePack"));
}

#[test]
fn subprotocols() {
    for s in [Serializer::Json, Serializer::Msgpack] {
        assert_eq!(Serializer::from_subprotocol(s.subprotocol()), Some(s));
    }
    assert_eq!(Serializer::from_subprotocol("wamp.2.cbor"), None);
}

/// Random bytes, random JSON-ish text, and mutations of valid frames: decode must return,
/// never panic (a panic fails the test).
#[test]
fn garbage_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x0057_4741_4d50);
    let valid: Vec<(Serializer, Vec<u8>)> = samples()
        .iter()
        .flat_map(|m| [Serializer::Json, Serializer::Msgpack].map(|s| (s, s.encode(m))))
        .collect();
    let alphabet = b"[]{}\",:0123456789-.eE truefalsnul\\u";
    let mut decoded_ok = 0usize;
    for round in 0..30_000 {
        let bytes: Vec<u8> = match round % 3 {
            0 => (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect(),
            1 => (0..rng.gen_range(0..64))
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect(),
            _ => {
                let (_, base) = &valid[rng.gen_range(0..valid.len())];
                let mut bytes = base.clone();
                for _ in 0..rng.gen_range(1..4) {
                    if bytes.is_empty() {
                        break;
                    }
                    let i = rng.gen_range(0..bytes.len());
                    match rng.gen_range(0..4) {
                        0 => bytes[i] = rng.gen(),
                        1 => {
                            bytes.remove(i);
                        }
                        2 => bytes.insert(i, rng.gen()),
                        _ => bytes.truncate(i),
                    }
                }
                bytes
            }
        };
        for serializer in [Serializer::Json, Serializer::Msgpack] {
            if let Ok(message) = serializer.decode(&bytes) {
                decoded_ok += 1;
                // Whatever decodes must re-encode and decode to the same message.
                let again = serializer.decode(&serializer.encode(&message)).unwrap();
                assert_eq!(again, message);
            }
        }
    }
    assert!(decoded_ok > 0, "mutations sometimes stay valid");
}
