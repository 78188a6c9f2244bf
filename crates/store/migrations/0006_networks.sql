-- Overlay networks (s4t extension) and the addresses their ports hold. An address is a row
-- keyed by (network, ip): two ports can never get the same one, even from two replicas.
CREATE TABLE networks (
    id {id},
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    project VARCHAR(255),
    cidr VARCHAR(18) NOT NULL,
    mtu BIGINT NOT NULL,
    gateway VARCHAR(15),
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32)
);
CREATE UNIQUE INDEX networks_name ON networks (COALESCE(project, ''), name);
CREATE TABLE network_addresses (
    network_uuid VARCHAR(36) NOT NULL REFERENCES networks (uuid) ON DELETE RESTRICT,
    ip VARCHAR(15) NOT NULL,
    port_uuid VARCHAR(36) NOT NULL UNIQUE REFERENCES ports_on_boards (uuid) ON DELETE CASCADE,
    PRIMARY KEY (network_uuid, ip)
);
