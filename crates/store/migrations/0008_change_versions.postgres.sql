-- The version of what a board's representation reads (boards, sessions, locations): every
-- committed change bumps it, whoever makes it (a cascade, another replica, a person), so the
-- API can keep rendered boards until it moves, and other replicas hear of it (NOTIFY).
-- The triggers are deferred to the commit and bump once per transaction: the version row is
-- locked last, just before the commit, so it cannot close a lock cycle between writers.
-- Statements are separated by "-- ;;" lines, since the function body holds semicolons.
CREATE TABLE change_versions (name VARCHAR(32) PRIMARY KEY, version BIGINT NOT NULL)
-- ;;
INSERT INTO change_versions (name, version) VALUES ('boards', 0)
-- ;;
CREATE FUNCTION s4t_boards_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('s4t.boards_changed', true) IS DISTINCT FROM 'yes' THEN
    PERFORM set_config('s4t.boards_changed', 'yes', true);
    UPDATE change_versions SET version = version + 1 WHERE name = 'boards';
    PERFORM pg_notify('s4t_changes', 'boards');
  END IF;
  RETURN NULL;
END $$
-- ;;
CREATE CONSTRAINT TRIGGER boards_changed AFTER INSERT OR UPDATE OR DELETE ON boards
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION s4t_boards_changed()
-- ;;
CREATE CONSTRAINT TRIGGER sessions_changed AFTER INSERT OR UPDATE OR DELETE ON sessions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION s4t_boards_changed()
-- ;;
CREATE CONSTRAINT TRIGGER locations_changed AFTER INSERT OR UPDATE OR DELETE ON locations
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION s4t_boards_changed()
