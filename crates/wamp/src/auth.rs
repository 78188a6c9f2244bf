//! WAMP-CRA and ticket primitives shared by the router and the client (RustCrypto underneath).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, challenge: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(challenge.as_bytes());
    mac
}

/// The WAMP-CRA signature: base64 of HMAC-SHA256(secret, challenge), as autobahn computes it.
pub(crate) fn wampcra_sign(secret: &str, challenge: &str) -> String {
    BASE64.encode(mac(secret, challenge).finalize().into_bytes())
}

/// Checks a WAMP-CRA signature in constant time.
pub(crate) fn wampcra_verify(secret: &str, challenge: &str, signature: &str) -> bool {
    match BASE64.decode(signature.trim()) {
        Ok(bytes) => mac(secret, challenge).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// Compares a ticket in constant time; hashing first hides the length too.
pub(crate) fn ticket_matches(expected: &str, given: &str) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wampcra_round_trip() {
        let challenge = r#"{"nonce": "abc", "authid": "board"}"#;
        let sig = wampcra_sign("secret", challenge);
        assert!(wampcra_verify("secret", challenge, &sig));
        assert!(!wampcra_verify("other", challenge, &sig));
        assert!(!wampcra_verify("secret", challenge, "not base64!"));
    }

    #[test]
    fn wampcra_matches_reference_vector() {
        // HMAC-SHA256 test vector of RFC 4231 case 2, base64-encoded.
        let sig = wampcra_sign("Jefe", "what do ya want for nothing?");
        assert_eq!(sig, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    }

    #[test]
    fn tickets() {
        assert!(ticket_matches("t0ken", "t0ken"));
        assert!(!ticket_matches("t0ken", "t0ke"));
    }
}
