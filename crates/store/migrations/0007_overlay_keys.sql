-- The public X25519 key of a board's overlay tunnels (s4t extension), as the board reported it
-- over its authenticated link. The cloud's hub accepts a handshake for a port only from the key
-- of the port's board.
ALTER TABLE boards ADD COLUMN overlay_key VARCHAR(64);
