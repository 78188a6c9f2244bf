//! The Webservice kind against the S4T REST API, as pure functions. S4T has no update of a
//! webservice; one whose port or security differs is reported, not silently accepted.

use serde_json::{json, Value};

use super::{
    found, read_item, s4t_name, spec_and_status_accessors, uuid_of, ManagedKind, Observed, Reply,
    Request, Target, Verb,
};
use crate::apis::Webservice;
use crate::conditions;
use crate::refs::{RefKind, Resolved, Slot};

impl ManagedKind for Webservice {
    const COMPONENT: &'static str = "provider-s4t/managed/webservice";

    spec_and_status_accessors!();

    fn references(&self) -> Vec<Slot> {
        let p = &self.spec.for_provider;
        vec![Slot {
            field: "board",
            kind: RefKind::Board,
            value: p.board.clone(),
            reference: p.board_ref.clone(),
            selector: p.board_selector.clone(),
        }]
    }

    fn next_read(&self, at: Target<'_>, replies: &[Reply]) -> Option<Request> {
        read_item(format!("v1/webservices/{}", at.external), replies)
    }

    fn observe(&self, _: Target<'_>, replies: &[Reply]) -> Result<Observed, String> {
        let Some(w) = found(replies)? else {
            return Ok(Observed::absent());
        };
        let p = &self.spec.for_provider;
        let secure = p.secure.unwrap_or(true);
        if w["port"].as_u64() != Some(p.port as u64) || w["secure"].as_bool() != Some(secure) {
            return Err(format!(
                "the webservice has port {} (secure {}) in S4T, not {} (secure {secure}); S4T cannot change it: delete the webservice",
                w["port"], w["secure"], p.port
            ));
        }
        Ok(Observed::present(
            json!({"uuid": w["uuid"]}),
            conditions::available(),
            Vec::new(),
        ))
    }

    fn create(&self, refs: &Resolved) -> Result<Request, String> {
        let board = refs
            .get("board")
            .ok_or("spec.forProvider: give the board (board, boardRef or boardSelector)")?;
        let p = &self.spec.for_provider;
        let mut body = json!({
            "name": s4t_name(p.name.as_deref(), self),
            "port": p.port,
            "secure": p.secure.unwrap_or(true),
        });
        if let Some(e) = &p.extra {
            body["extra"] = Value::Object(e.clone());
        }
        Ok(Request::with(
            Verb::Put,
            format!("v1/boards/{board}/webservices"),
            body,
        ))
    }

    fn created(&self, _: &Resolved, reply: &Value) -> Result<String, String> {
        uuid_of(reply)
    }

    fn delete(&self, at: Target<'_>, _: &[Reply]) -> Vec<Request> {
        vec![Request::delete(format!("v1/webservices/{}", at.external))]
    }
}
