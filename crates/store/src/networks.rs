//! Overlay networks and the ports on them (s4t extension), with transactional IPAM.

use std::net::Ipv4Addr;

use sqlx::any::AnyRow;
use sqlx::Row;

use s4t_model::net::{Cidr, NetworkFields};
use s4t_model::resources::Port;

use crate::{Result, Scope, Store, StoreError};

/// A network as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub uuid: String,
    pub name: String,
    pub project: Option<String>,
    pub cidr: String,
    pub mtu: i64,
    pub gateway: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

impl Network {
    pub fn cidr(&self) -> Result<Cidr> {
        Cidr::parse("cidr", &self.cidr).map_err(|e| StoreError::Corrupt {
            what: "network cidr",
            detail: e.message,
        })
    }
}

const SELECT: &str =
    "SELECT uuid, name, project, cidr, mtu, gateway, created_at, updated_at FROM networks";

fn decode(row: &AnyRow) -> Result<Network> {
    Ok(Network {
        uuid: row.try_get("uuid")?,
        name: row.try_get("name")?,
        project: row.try_get("project")?,
        cidr: row.try_get("cidr")?,
        mtu: row.try_get("mtu")?,
        gateway: row.try_get("gateway")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What the overlay hub needs to know about a port to admit its tunnel.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayPeer {
    pub port_uuid: String,
    pub board_uuid: String,
    pub network_uuid: String,
    pub mtu: i64,
    /// The board's overlay key (base64), once the board has reported one.
    pub public_key: Option<String>,
}

/// What a new port needs besides its address.
#[derive(Debug, Clone)]
pub struct NewPort {
    pub uuid: String,
    pub board_uuid: String,
    pub vif_name: String,
    pub mac: String,
}

impl Store {
    pub async fn create_network(
        &self,
        f: &NetworkFields,
        project: Option<&str>,
    ) -> Result<Network> {
        let uuid = s4t_model::ident::new_uuid();
        sqlx::query(
            "INSERT INTO networks (uuid, name, project, cidr, mtu, gateway, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&uuid)
        .bind(&f.name)
        .bind(project)
        .bind(f.cidr.to_string())
        .bind(f.mtu as i64)
        .bind(f.gateway.map(|g| g.to_string()))
        .bind(s4t_model::time::now())
        .execute(&*self.writer())
        .await
        .map_err(|e| {
            StoreError::conflict_or(e, || {
                format!("A network named {} already exists in this project.", f.name)
            })
        })?;
        self.network(&uuid, &Scope::All).await
    }

    /// A network by uuid or name, in `scope`.
    pub async fn network(&self, ident: &str, scope: &Scope) -> Result<Network> {
        decode(&crate::sql::fetch_by_ident(self.pool(), SELECT, "Network", ident, scope).await?)
    }

    pub async fn networks(&self, scope: &Scope) -> Result<Vec<Network>> {
        crate::sql::fetch_in_scope(self.pool(), SELECT, scope)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// How many addresses of a network are held.
    pub async fn network_addresses_used(&self, uuid: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM network_addresses WHERE network_uuid = $1")
            .bind(uuid)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Deletes a network that no port uses (409 naming how many do).
    pub async fn delete_network(&self, uuid: &str) -> Result<()> {
        let used = self.network_addresses_used(uuid).await?;
        if used > 0 {
            return Err(StoreError::Conflict(format!(
                "Network {uuid} still has {used} port(s): delete them first."
            )));
        }
        let done = sqlx::query("DELETE FROM networks WHERE uuid = $1")
            .bind(uuid)
            .execute(&*self.writer())
            .await
            .map_err(|e| {
                StoreError::conflict_or(e, || {
                    format!("Network {uuid} got a port meanwhile: delete it first.")
                })
            })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("Network", uuid));
        }
        Ok(())
    }

    /// Records the overlay public key (base64) a board reported over its authenticated link.
    pub async fn set_board_overlay_key(&self, board_uuid: &str, key: &str) -> Result<()> {
        let done = sqlx::query("UPDATE boards SET overlay_key = $1 WHERE uuid = $2")
            .bind(key)
            .bind(board_uuid)
            .execute(&*self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "Board",
                id: board_uuid.to_string(),
            });
        }
        Ok(())
    }

    /// The port on an s4t network with this uuid, with its board's key; `None` when there is no
    /// such port (deleted, or not on an s4t network).
    pub async fn overlay_peer(&self, port_uuid: &str) -> Result<Option<OverlayPeer>> {
        let row = sqlx::query(
            "SELECT p.uuid, p.board_uuid, n.uuid, n.mtu, b.overlay_key FROM ports_on_boards p \
             JOIN networks n ON n.uuid = p.network JOIN boards b ON b.uuid = p.board_uuid \
             WHERE p.uuid = $1",
        )
        .bind(port_uuid)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(OverlayPeer {
                port_uuid: r.try_get(0)?,
                board_uuid: r.try_get(1)?,
                network_uuid: r.try_get(2)?,
                mtu: r.try_get(3)?,
                public_key: r.try_get(4)?,
            })
        })
        .transpose()
    }

    /// Creates a port on a network with a free address of it, in one transaction (a lost race
    /// for an address is retried with another). `draw` spreads the addresses.
    pub async fn create_network_port(
        &self,
        network: &Network,
        port: &NewPort,
        mut draw: impl FnMut() -> u32,
    ) -> Result<Port> {
        let cidr = network.cidr()?;
        let gateway: Option<Ipv4Addr> = network.gateway.as_deref().and_then(|g| g.parse().ok());
        for _ in 0..16 {
            let mut tx = self.begin_write().await?;
            let used: Vec<Ipv4Addr> =
                sqlx::query("SELECT ip FROM network_addresses WHERE network_uuid = $1")
                    .bind(&network.uuid)
                    .fetch_all(&mut **tx)
                    .await?
                    .iter()
                    .filter_map(|r| r.try_get::<String, _>(0).ok()?.parse().ok())
                    .collect();
            let Some(ip) = s4t_model::net::allocate(&cidr, gateway, &used, draw()) else {
                return Err(StoreError::Conflict(format!(
                    "Network {} ({cidr}) has no free address left: delete a port or make a larger network.",
                    network.name
                )));
            };
            let now = s4t_model::time::now();
            let inserted = sqlx::query(
                "INSERT INTO ports_on_boards (uuid, board_uuid, vif_name, mac_add, ip, network, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&port.uuid)
            .bind(&port.board_uuid)
            .bind(&port.vif_name)
            .bind(&port.mac)
            .bind(ip.to_string())
            .bind(&network.uuid)
            .bind(&now)
            .execute(&mut **tx)
            .await;
            let claimed = match inserted {
                Ok(_) => sqlx::query(
                    "INSERT INTO network_addresses (network_uuid, ip, port_uuid) VALUES ($1, $2, $3)",
                )
                .bind(&network.uuid)
                .bind(ip.to_string())
                .bind(&port.uuid)
                .execute(&mut **tx)
                .await
                .map(|_| ()),
                Err(e) => Err(e),
            };
            match claimed {
                Ok(()) => {
                    tx.commit().await?;
                    return self.port(&port.uuid, &Scope::All, None).await;
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    match e.as_database_error() {
                        Some(db) if db.is_unique_violation() => continue,
                        Some(db) if db.is_foreign_key_violation() => {
                            return Err(StoreError::Conflict(format!(
                                "board {} or network {} was deleted meanwhile",
                                port.board_uuid, network.uuid
                            )))
                        }
                        _ => return Err(e.into()),
                    }
                }
            }
        }
        Err(StoreError::Conflict(format!(
            "could not allocate an address on network {}: too many concurrent requests, try again",
            network.name
        )))
    }
}
