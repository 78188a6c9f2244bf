-- The version of what a board's representation reads (boards, sessions, locations): every
-- committed change bumps it, whoever makes it (a cascade, another process, a person), so the
-- API can keep rendered boards until it moves. Statements are separated by "-- ;;" lines,
-- since trigger bodies hold semicolons.
CREATE TABLE change_versions (name VARCHAR(32) PRIMARY KEY, version BIGINT NOT NULL)
-- ;;
INSERT INTO change_versions (name, version) VALUES ('boards', 0)
-- ;;
CREATE TRIGGER boards_changed_on_insert AFTER INSERT ON boards
BEGIN UPDATE change_versions SET version = version + 1 WHERE name = 'boards'; END
-- ;;
CREATE TRIGGER boards_changed_on_update AFTER UPDATE ON boards
BEGIN UPDATE change_versions SET version = version + 1 WHERE name = 'boards'; END
-- ;;
CREATE TRIGGER boards_changed_on_delete AFTER DELETE ON boards
BEGIN UPDATE change_versions SET version = version + 1 WHERE name = 'boards'; END
-- ;;
CREATE TRIGGER sessions_changed_on_insert AFTER INSERT ON sessions
BEGIN UPDATE change_versions SET version = version + 1 WHERE name = 'boards'; END
-- ;;
CREATE TRIGGER sessions_changed_on_update AFTER UPDATE ON sessions
BEGIN UPDATE change_versions SET version = version + 1 WHERE name = 'boards'; END
-- ;;
CREATE TRIGGER sessions_changed_on_delete AFTER DELETE ON sessions
BEGIN UPDATE change_versions SET version = version + 1 WHERE name = 'boards'; END
-- ;;
CREATE TRIGGER locations_changed_on_insert AFTER INSERT ON locations
BEGIN UPDATE change_versions SET version = version + 1 WHERE name = 'boards'; END
-- ;;
CREATE TRIGGER locations_changed_on_update AFTER UPDATE ON locations
BEGIN UPDATE change_versions SET version = version + 1 WHERE name = 'boards'; END
-- ;;
CREATE TRIGGER locations_changed_on_delete AFTER DELETE ON locations
BEGIN UPDATE change_versions SET version = version + 1 WHERE name = 'boards'; END
