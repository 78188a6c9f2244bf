//! The wstun reverse-tunnel protocol.
//!
//! Every WebSocket carries the subprotocol [`SUBPROTOCOL`]. A board opens a *control* socket
//! `GET /?dst=<host>:<public_port>&uuid=<board uuid>`; the server listens on the public port and,
//! for each TCP connection it accepts there, sends the text frame `NC:<id>` on the control
//! socket. The board then opens a *data* socket `GET /?id=<id>` and joins it to a fresh TCP
//! connection to its local service. Data travels as binary frames.
//!
//! s4t peers also offer [`S4T_SUBPROTOCOL`]; a server that selects it lets an empty binary frame
//! mean "no more data in this direction" (TCP half-close), which plain wstun cannot express.

use std::fmt;

use url::Url;
use uuid::Uuid;

/// The subprotocol of every wstun WebSocket.
pub const SUBPROTOCOL: &str = "tunnel-protocol";
/// Offered first by s4t peers: wstun plus half-close (an empty binary frame ends a direction).
pub const S4T_SUBPROTOCOL: &str = "s4t-tunnel.v1";
/// Prefix of the control frame that announces a new public connection.
pub const NEW_CONNECTION: &str = "NC:";

/// What an upgrade request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// A board offers a tunnel for `public_port`. `host` is what the client wrote before the
    /// port (the server's name, by wstun's convention); servers ignore it.
    Control {
        host: String,
        public_port: u16,
        board: Option<String>,
    },
    /// The data socket for the announced connection `id`.
    Data { id: Uuid },
}

/// Why an upgrade request is not a wstun request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(
        "the request has neither dst=HOST:PORT (a control socket) nor id=UUID (a data socket)"
    )]
    Neither,
    #[error("the request has both dst and id: a socket is either a control or a data socket")]
    Both,
    #[error("dst={0:?} is not HOST:PORT with a port from 1 to 65535")]
    BadDst(String),
    #[error("uuid={0:?} is not a UUID (the board's uuid)")]
    BadBoard(String),
    #[error("id={0:?} is not a UUID (the id of an NC: frame)")]
    BadId(String),
    #[error("query parameter {0} is given more than once")]
    Repeated(&'static str),
}

/// Tells control from data requests by their query string (without the `?`).
pub fn classify(query: Option<&str>) -> Result<Upgrade, RequestError> {
    let (mut dst, mut board, mut id) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let (slot, name) = match k.as_ref() {
            "dst" => (&mut dst, "dst"),
            "uuid" => (&mut board, "uuid"),
            "id" => (&mut id, "id"),
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(RequestError::Repeated(name));
        }
    }
    match (dst, id) {
        (Some(_), Some(_)) => Err(RequestError::Both),
        (None, None) => Err(RequestError::Neither),
        (None, Some(id)) => Uuid::parse_str(&id)
            .map(|id| Upgrade::Data { id })
            .map_err(|_| RequestError::BadId(id)),
        (Some(dst), None) => {
            let (host, port) = dst
                .rsplit_once(':')
                .ok_or_else(|| RequestError::BadDst(dst.clone()))?;
            let public_port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| RequestError::BadDst(dst.clone()))?;
            let board = match board {
                Some(b) if Uuid::parse_str(&b).is_err() => return Err(RequestError::BadBoard(b)),
                other => other,
            };
            Ok(Upgrade::Control {
                host: host.to_string(),
                public_port,
                board,
            })
        }
    }
}

/// The control frame announcing connection `id`.
pub fn new_connection_frame(id: &Uuid) -> String {
    format!("{NEW_CONNECTION}{id}")
}

/// A text frame on a control socket that is not `NC:<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotNewConnection(pub String);

impl fmt::Display for NotNewConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(64).collect();
        write!(f, "control frame {shown:?} is not NC:<uuid>")
    }
}

impl std::error::Error for NotNewConnection {}

/// Reads an `NC:<id>` control frame.
pub fn parse_new_connection(text: &str) -> Result<Uuid, NotNewConnection> {
    text.strip_prefix(NEW_CONNECTION)
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
        .ok_or_else(|| NotNewConnection(text.to_string()))
}

/// The control socket URL for `public_port` of `board`, on the tunnel server at `server`
/// (`ws://host:port` or `wss://host:port`).
pub fn control_url(server: &Url, public_port: u16, board: &str) -> Url {
    let mut u = server.clone();
    let host = server.host_str().unwrap_or("localhost").to_string();
    u.set_path("/");
    u.query_pairs_mut()
        .clear()
        .append_pair("dst", &format!("{host}:{public_port}"))
        .append_pair("uuid", board);
    u
}

/// The query parameter an s4t agent adds to a control socket: the service (or webservice) the
/// tunnel is for, so that a tunnel left over for a port now held by something else is refused.
/// wstun servers ignore it.
pub const SERVICE_PARAM: &str = "service";

/// The service an s4t control request names, if any.
pub fn requested_service(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == SERVICE_PARAM)
        .map(|(_, v)| v.into_owned())
}

/// The words of a refusal that will not change by trying again (the port is not, or no
/// longer, this tunnel's): a client may give the tunnel up.
pub const NOT_ALLOCATED: &str = "is not allocated to";

/// The data socket URL for connection `id`.
pub fn data_url(server: &Url, id: &Uuid) -> Url {
    let mut u = server.clone();
    u.set_path("/");
    u.query_pairs_mut()
        .clear()
        .append_pair("id", &id.to_string());
    u
}

/// Which subprotocol a server selects from a client's offer (`Sec-WebSocket-Protocol`, comma
/// separated): the s4t one when offered, else plain wstun; `None` when neither is offered.
pub fn select_subprotocol(offered: &str) -> Option<&'static str> {
    let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
    if offered.contains(&S4T_SUBPROTOCOL) {
        Some(S4T_SUBPROTOCOL)
    } else if offered.contains(&SUBPROTOCOL) {
        Some(SUBPROTOCOL)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "3f1d6f8e-2b7a-4c57-9c55-3f0a0e9d1b2c";

    #[test]
    fn requests_are_classified_by_query() {
        let id = Uuid::new_v4();
        let cases: Vec<(String, Result<Upgrade, RequestError>)> = vec![
            (
                format!("dst=cloud.example:50001&uuid={B}"),
                Ok(Upgrade::Control {
                    host: "cloud.example".into(),
                    public_port: 50001,
                    board: Some(B.into()),
                }),
            ),
            (
                "dst=[::1]:50002".into(),
                Ok(Upgrade::Control {
                    host: "[::1]".into(),
                    public_port: 50002,
                    board: None,
                }),
            ),
            (format!("id={id}"), Ok(Upgrade::Data { id })),
            (String::new(), Err(RequestError::Neither)),
            ("foo=bar".into(), Err(RequestError::Neither)),
            (format!("dst=h:1&id={id}"), Err(RequestError::Both)),
            ("dst=h".into(), Err(RequestError::BadDst("h".into()))),
            ("dst=h:0".into(), Err(RequestError::BadDst("h:0".into()))),
            (
                "dst=h:70000".into(),
                Err(RequestError::BadDst("h:70000".into())),
            ),
            (
                "dst=h:1&uuid=nope".into(),
                Err(RequestError::BadBoard("nope".into())),
            ),
            ("id=12".into(), Err(RequestError::BadId("12".into()))),
            ("dst=h:1&dst=h:2".into(), Err(RequestError::Repeated("dst"))),
        ];
        for (query, want) in cases {
            assert_eq!(classify(Some(&query)), want, "{query}");
        }
        assert_eq!(classify(None), Err(RequestError::Neither));
    }

    #[test]
    fn new_connection_frames_round_trip() {
        let id = Uuid::new_v4();
        let frame = new_connection_frame(&id);
        assert!(frame.starts_with("NC:"));
        assert_eq!(parse_new_connection(&frame), Ok(id));
        let lower_case = format!("nc:{id}");
        for bad in ["", "NC:", "NC:xyz", lower_case.as_str()] {
            assert!(parse_new_connection(bad).is_err(), "{bad}");
        }
        let long = "x".repeat(1000);
        assert!(parse_new_connection(&long).unwrap_err().to_string().len() < 120);
    }

    #[test]
    fn urls_follow_wstun() {
        let server = Url::parse("wss://cloud.example:8080").unwrap();
        assert_eq!(
            control_url(&server, 50001, B).as_str(),
            format!("wss://cloud.example:8080/?dst=cloud.example%3A50001&uuid={B}")
        );
        let id = Uuid::new_v4();
        assert_eq!(
            data_url(&server, &id).as_str(),
            format!("wss://cloud.example:8080/?id={id}")
        );
        // What the builders write, the classifier reads back.
        let c = control_url(&server, 50001, B);
        assert!(matches!(
            classify(c.query()),
            Ok(Upgrade::Control {
                public_port: 50001,
                ..
            })
        ));
    }

    #[test]
    fn subprotocol_selection_prefers_s4t() {
        for (offered, want) in [
            ("tunnel-protocol", Some(SUBPROTOCOL)),
            ("s4t-tunnel.v1, tunnel-protocol", Some(S4T_SUBPROTOCOL)),
            ("tunnel-protocol,s4t-tunnel.v1", Some(S4T_SUBPROTOCOL)),
            ("wamp.2.json", None),
            ("", None),
        ] {
            assert_eq!(select_subprotocol(offered), want, "{offered}");
        }
    }
}
