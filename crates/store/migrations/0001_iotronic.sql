-- The IoTronic resources. Timestamps are ISO-8601 text (the wire format); JSON columns are text.
-- Deletes cascade from boards to everything that belongs to a board; plugins, services and fleets
-- that are still in use cannot be deleted (the API answers 409 before the database would refuse).

CREATE TABLE fleets (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    project VARCHAR(64),
    description VARCHAR(300),
    extra TEXT NOT NULL DEFAULT '{}',
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);
CREATE INDEX fleets_project ON fleets (project);

CREATE TABLE boards (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    code VARCHAR(36) NOT NULL UNIQUE,
    status VARCHAR(15) NOT NULL DEFAULT 'registered' CHECK (status IN ('registered', 'offline', 'online')),
    name VARCHAR(255) NOT NULL UNIQUE,
    type VARCHAR(255),
    agent VARCHAR(255),
    owner VARCHAR(64),
    project VARCHAR(64),
    fleet VARCHAR(36) REFERENCES fleets (uuid) ON DELETE RESTRICT,
    mobile {bool} NOT NULL DEFAULT FALSE,
    lr_version VARCHAR(20),
    connectivity TEXT NOT NULL DEFAULT '{}',
    config TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);
CREATE INDEX boards_project ON boards (project);
CREATE INDEX boards_fleet ON boards (fleet);

CREATE TABLE locations (
    id {id},
    board_id BIGINT NOT NULL UNIQUE REFERENCES boards (id) ON DELETE CASCADE,
    longitude VARCHAR(18) NOT NULL,
    latitude VARCHAR(18) NOT NULL,
    altitude VARCHAR(18) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);

CREATE TABLE sessions (
    id {id},
    valid {bool} NOT NULL DEFAULT TRUE,
    session_id VARCHAR(20) NOT NULL,
    board_uuid VARCHAR(36) NOT NULL REFERENCES boards (uuid) ON DELETE CASCADE,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32),
    UNIQUE (session_id, board_uuid)
);
CREATE UNIQUE INDEX sessions_one_valid ON sessions (board_uuid) WHERE valid = TRUE;

CREATE TABLE plugins (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    owner VARCHAR(64),
    public {bool} NOT NULL DEFAULT FALSE,
    code TEXT NOT NULL,
    digest VARCHAR(64) NOT NULL,
    callable {bool},
    parameters TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);
CREATE INDEX plugins_owner ON plugins (owner);

CREATE TABLE injection_plugins (
    id {id},
    board_uuid VARCHAR(36) NOT NULL REFERENCES boards (uuid) ON DELETE CASCADE,
    plugin_uuid VARCHAR(36) NOT NULL REFERENCES plugins (uuid) ON DELETE RESTRICT,
    onboot {bool} NOT NULL DEFAULT FALSE,
    status VARCHAR(15) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32),
    UNIQUE (board_uuid, plugin_uuid)
);
CREATE INDEX injection_plugins_plugin ON injection_plugins (plugin_uuid);

CREATE TABLE services (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    project VARCHAR(64),
    port BIGINT NOT NULL,
    protocol VARCHAR(3) NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);
CREATE INDEX services_project ON services (project);

CREATE TABLE exposed_services (
    id {id},
    board_uuid VARCHAR(36) NOT NULL REFERENCES boards (uuid) ON DELETE CASCADE,
    service_uuid VARCHAR(36) NOT NULL REFERENCES services (uuid) ON DELETE RESTRICT,
    public_port BIGINT NOT NULL UNIQUE,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32),
    UNIQUE (board_uuid, service_uuid)
);
CREATE INDEX exposed_services_service ON exposed_services (service_uuid);

CREATE TABLE ports_on_boards (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    board_uuid VARCHAR(36) NOT NULL REFERENCES boards (uuid) ON DELETE CASCADE,
    vif_name VARCHAR(15) NOT NULL,
    mac_add VARCHAR(32) NOT NULL,
    ip VARCHAR(64),
    network VARCHAR(64),
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);
CREATE INDEX ports_on_boards_board ON ports_on_boards (board_uuid);

CREATE TABLE webservices (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    port BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    board_uuid VARCHAR(36) NOT NULL REFERENCES boards (uuid) ON DELETE CASCADE,
    secure {bool} NOT NULL DEFAULT TRUE,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32),
    UNIQUE (board_uuid, name)
);

CREATE TABLE enabled_webservices (
    id {id},
    board_uuid VARCHAR(36) NOT NULL UNIQUE REFERENCES boards (uuid) ON DELETE CASCADE,
    http_port BIGINT NOT NULL,
    https_port BIGINT NOT NULL,
    dns VARCHAR(100) NOT NULL UNIQUE,
    zone VARCHAR(100) NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);

CREATE TABLE requests (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    main_request_uuid VARCHAR(36) REFERENCES requests (uuid) ON DELETE CASCADE,
    destination_uuid VARCHAR(36),
    pending_requests BIGINT NOT NULL DEFAULT 0,
    project VARCHAR(64),
    status VARCHAR(10) NOT NULL CHECK (status IN ('PENDING', 'COMPLETED')),
    type BIGINT NOT NULL DEFAULT 0,
    action VARCHAR(64),
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);
CREATE INDEX requests_main ON requests (main_request_uuid);
CREATE INDEX requests_project ON requests (project);

CREATE TABLE results (
    id {id},
    board_uuid VARCHAR(36) NOT NULL,
    request_uuid VARCHAR(36) NOT NULL REFERENCES requests (uuid) ON DELETE CASCADE,
    result VARCHAR(10) NOT NULL CHECK (result IN ('SUCCESS', 'ERROR', 'WARNING', 'RUNNING')),
    message TEXT NOT NULL DEFAULT '',
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32),
    UNIQUE (board_uuid, request_uuid)
);

CREATE TABLE api_tokens (
    id {id},
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    user_id VARCHAR(64) NOT NULL,
    project_id VARCHAR(64),
    roles TEXT NOT NULL,
    description VARCHAR(255),
    created_at VARCHAR(32) NOT NULL
)
