//! The board lifecycle: `registered → offline ⇄ online`.
//!
//! Upstream stores whatever status a client sends (including `""`), and registration then hands the
//! board an empty config and bricks it. Here a status is a closed enum, the API never sets it, and
//! every change goes through [`BoardStatus::on`], so no path leads to a state registration cannot
//! leave.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoardStatus {
    /// Created through the API; waiting for the board to call `stack4things.register` with its code.
    Registered,
    /// Provisioned, but no WAMP session is open.
    Offline,
    /// A WAMP session is open and the board answered `connection`.
    Online,
}

/// What happens to a board, as seen by the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// The board called `stack4things.register` with its code and got its provisioning document.
    Provisioned,
    /// The board called `<agent>.stack4things.connection` from a live session.
    SessionOpened,
    /// The board's session left (meta event, liveness timeout or cloud restart).
    SessionClosed,
    /// An operator asked for the board to be provisioned again (new code, factory reset).
    Reprovision,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("board is {from} and cannot take {event:?}: it must register with its code first")]
    NotProvisioned {
        from: BoardStatus,
        event: LifecycleEvent,
    },
    #[error("board is online; disconnect it before it is provisioned again")]
    OnlineCannotReprovision,
    #[error("unknown board status {0:?}: expected registered, offline or online")]
    UnknownStatus(String),
}

impl BoardStatus {
    pub const ALL: [BoardStatus; 3] = [
        BoardStatus::Registered,
        BoardStatus::Offline,
        BoardStatus::Online,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BoardStatus::Registered => "registered",
            BoardStatus::Offline => "offline",
            BoardStatus::Online => "online",
        }
    }

    pub fn parse(raw: &str) -> Result<BoardStatus, LifecycleError> {
        BoardStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| LifecycleError::UnknownStatus(raw.to_string()))
    }

    /// The status after `event`, or why the event is impossible in this status.
    pub fn on(self, event: LifecycleEvent) -> Result<BoardStatus, LifecycleError> {
        use BoardStatus::*;
        use LifecycleEvent::*;
        match (self, event) {
            (_, Provisioned) => Ok(Offline),
            (Offline | Online, SessionOpened) => Ok(Online),
            (Registered, SessionOpened) => {
                Err(LifecycleError::NotProvisioned { from: self, event })
            }
            (Registered, SessionClosed) => Ok(Registered),
            (Offline | Online, SessionClosed) => Ok(Offline),
            (Online, Reprovision) => Err(LifecycleError::OnlineCannotReprovision),
            (Registered | Offline, Reprovision) => Ok(Registered),
        }
    }

    /// Whether calls can be sent to the board.
    pub fn is_connected(self) -> bool {
        self == BoardStatus::Online
    }
}

impl fmt::Display for BoardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::BoardStatus::*;
    use super::LifecycleEvent::*;
    use super::*;

    #[test]
    fn transition_table() {
        let table: [(BoardStatus, LifecycleEvent, Option<BoardStatus>); 12] = [
            (Registered, Provisioned, Some(Offline)),
            (Offline, Provisioned, Some(Offline)),
            (Online, Provisioned, Some(Offline)),
            (Registered, SessionOpened, None),
            (Offline, SessionOpened, Some(Online)),
            (Online, SessionOpened, Some(Online)),
            (Registered, SessionClosed, Some(Registered)),
            (Offline, SessionClosed, Some(Offline)),
            (Online, SessionClosed, Some(Offline)),
            (Registered, Reprovision, Some(Registered)),
            (Offline, Reprovision, Some(Registered)),
            (Online, Reprovision, None),
        ];
        for (from, event, expected) in table {
            assert_eq!(from.on(event).ok(), expected, "{from} + {event:?}");
        }
    }

    #[test]
    fn every_reachable_status_can_still_reach_online() {
        // From any status, a register followed by a connection brings the board online:
        // the property upstream loses with `status = ""`.
        for from in BoardStatus::ALL {
            let online = from.on(Provisioned).and_then(|s| s.on(SessionOpened));
            assert_eq!(online, Ok(Online), "from {from}");
        }
    }

    #[test]
    fn empty_and_unknown_statuses_do_not_parse() {
        for raw in ["", "REGISTERED", "maintenance", " online"] {
            assert!(BoardStatus::parse(raw).is_err(), "{raw:?}");
        }
        for s in BoardStatus::ALL {
            assert_eq!(BoardStatus::parse(s.as_str()), Ok(s));
        }
    }
}
