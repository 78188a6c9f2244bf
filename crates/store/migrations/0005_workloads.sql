-- Workloads (s4t extension): what runs on boards, and where each replica is placed.
CREATE TABLE workloads (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(63) NOT NULL,
    project VARCHAR(255),
    spec TEXT NOT NULL,
    pinned_board VARCHAR(36) REFERENCES boards (uuid) ON DELETE CASCADE,
    generation BIGINT NOT NULL DEFAULT 1,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);
-- One name per project; COALESCE so that rows without a project are unique too.
CREATE UNIQUE INDEX workloads_name ON workloads (COALESCE(project, ''), name);
CREATE TABLE workload_replicas (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    workload_uuid VARCHAR(36) NOT NULL REFERENCES workloads (uuid) ON DELETE CASCADE,
    ordinal BIGINT NOT NULL,
    board_uuid VARCHAR(36) REFERENCES boards (uuid) ON DELETE SET NULL,
    generation BIGINT NOT NULL,
    state VARCHAR(32) NOT NULL,
    exit_code BIGINT,
    restarts BIGINT NOT NULL DEFAULT 0,
    message TEXT,
    placed_at VARCHAR(32),
    reported_at VARCHAR(32),
    created_at VARCHAR(32) NOT NULL,
    UNIQUE (workload_uuid, ordinal)
);
CREATE INDEX workload_replicas_board ON workload_replicas (board_uuid);
