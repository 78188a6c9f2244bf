-- Every public port the cloud has handed out, whatever holds it: a service exposure or a
-- webservice's tunnel. One table with the port as key, so that no port is given twice, even by
-- cloud replicas racing on one database.
CREATE TABLE public_ports (
    port BIGINT PRIMARY KEY,
    board_uuid VARCHAR(36) NOT NULL REFERENCES boards (uuid) ON DELETE CASCADE,
    purpose VARCHAR(16) NOT NULL,
    owner_uuid VARCHAR(36) NOT NULL,
    created_at VARCHAR(32) NOT NULL
);
INSERT INTO public_ports (port, board_uuid, purpose, owner_uuid, created_at)
    SELECT public_port, board_uuid, 'service', service_uuid, created_at FROM exposed_services;
-- The tunnel port of a webservice (the HTTPS front reaches the board through it).
ALTER TABLE webservices ADD COLUMN tunnel_port BIGINT;
CREATE UNIQUE INDEX webservices_tunnel_port ON webservices (tunnel_port);
