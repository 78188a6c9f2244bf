//! API tokens: random, shown once, stored as sha256 hashes.

use std::io::Write;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

use s4t_store::Store;

/// The name of the file the first-start admin token is written to (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// A new random token: 32 bytes from the OS generator, hex, with a recognisable prefix.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("s4t_{}", hex::encode(bytes))
}

/// A board's WAMP secret: 256 random bits, hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// On first start (no token in the store), creates the admin token and writes it once to
/// `DIR/admin-token` with mode 0600. Returns it when created.
pub async fn ensure_admin_token(store: &Store, data_dir: &Path) -> std::io::Result<Option<String>> {
    let count = store.count_tokens().await.map_err(std::io::Error::other)?;
    if count > 0 {
        return Ok(None);
    }
    let token = new_token();
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    write_private(&path, &format!("{token}\n"))?;
    store
        .insert_token(
            &hash_token(&token),
            "admin",
            Some("admin"),
            &["admin".to_string()],
            Some("created on first start"),
        )
        .await
        .map_err(std::io::Error::other)?;
    tracing::info!(file = %path.display(), "created the admin token");
    Ok(Some(token))
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(content.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// sha256 of a plugin's code, hex: the content digest recorded for every plugin version.
pub fn content_digest(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_eq!(
            content_digest(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
