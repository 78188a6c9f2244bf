-- Board calls of a rollout that wait for their board to come back online (s4t extension).
CREATE TABLE deferred_operations (
    id {id},
    request_uuid VARCHAR(36) NOT NULL UNIQUE REFERENCES requests (uuid) ON DELETE CASCADE,
    board_uuid VARCHAR(36) NOT NULL REFERENCES boards (uuid) ON DELETE CASCADE,
    method VARCHAR(64) NOT NULL,
    args TEXT NOT NULL,
    plugin_uuid VARCHAR(36),
    onboot {bool},
    created_at VARCHAR(32) NOT NULL
);
CREATE INDEX deferred_operations_board ON deferred_operations (board_uuid);
