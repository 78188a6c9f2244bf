-- Boards that run the s4t agent authenticate their WAMP sessions with a per-board secret issued
-- at registration. Only its SHA-256 is kept.
ALTER TABLE boards ADD COLUMN secret_hash VARCHAR(64);
