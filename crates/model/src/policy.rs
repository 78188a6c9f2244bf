//! Who may do what: the caller, the IoTronic roles and the authorisation rules.
//!
//! The rules follow IoTronic's in-code policy, with its broken rules fixed (listed in
//! `docs/compat.md`): board actions are no longer admin-only by accident, and the project
//! managers that may create boards may also act on them.

/// The identity a request runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
    /// `--noauth`: identity from headers, every rule passes (as upstream noauth).
    pub noauth: bool,
}

pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_ADMINISTRATOR: &str = "administrator";
pub const ROLE_PROJECT_ADMIN: &str = "admin_iot_project";
pub const ROLE_PROJECT_MANAGER: &str = "manager_iot_project";
pub const ROLE_USER: &str = "user_iot";

/// Every role the cloud knows about; tokens may carry only these.
pub const KNOWN_ROLES: [&str; 5] = [
    ROLE_ADMIN,
    ROLE_ADMINISTRATOR,
    ROLE_PROJECT_ADMIN,
    ROLE_PROJECT_MANAGER,
    ROLE_USER,
];

impl Caller {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }

    /// `is_admin` in IoTronic: role `admin` or `administrator`. Admins see every project.
    pub fn is_admin(&self) -> bool {
        self.has(ROLE_ADMIN) || self.has(ROLE_ADMINISTRATOR)
    }

    /// `is_iot_member`: any IoT project role.
    pub fn is_iot_member(&self) -> bool {
        self.has(ROLE_PROJECT_ADMIN) || self.has(ROLE_PROJECT_MANAGER) || self.has(ROLE_USER)
    }

    fn is_project_manager(&self) -> bool {
        self.has(ROLE_PROJECT_ADMIN) || self.has(ROLE_PROJECT_MANAGER)
    }

    fn is_owner(&self, owner: Option<&str>) -> bool {
        matches!((self.user_id.as_deref(), owner), (Some(u), Some(o)) if u == o)
    }
}

/// The operations the API authorises, named after IoTronic's policy rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `iot:<resource>:get` on any collection or resource.
    Read,
    BoardCreate,
    BoardUpdate,
    BoardDelete,
    /// Anything that talks to a board: actions, plugin and service operations, ports, webservices.
    BoardOperate,
    PluginCreate,
    /// Update or delete of a plugin (owner = the plugin's owner).
    PluginModify,
    ServiceCreate,
    ServiceModify,
    FleetCreate,
    FleetModify,
    /// Token management (an s4t extension).
    ManageTokens,
}

impl Action {
    /// The upstream rule name, used in the 403 message.
    pub fn rule(self) -> &'static str {
        match self {
            Action::Read => "iot:get",
            Action::BoardCreate => "iot:board:create",
            Action::BoardUpdate => "iot:board:update",
            Action::BoardDelete => "iot:board:delete",
            Action::BoardOperate => "iot:board_action:post",
            Action::PluginCreate => "iot:plugin:create",
            Action::PluginModify => "iot:plugin:update",
            Action::ServiceCreate => "iot:service:create",
            Action::ServiceModify => "iot:service:update",
            Action::FleetCreate => "iot:fleet:create",
            Action::FleetModify => "iot:fleet:update",
            Action::ManageTokens => "s4t:token:manage",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Access was denied to the following resource: {rule}")]
pub struct Denied {
    pub rule: &'static str,
}

/// Decides whether `caller` may perform `action`; `owner` is the owning user of the object acted
/// on, where the rule is `admin_or_owner`.
pub fn authorize(caller: &Caller, action: Action, owner: Option<&str>) -> Result<(), Denied> {
    if caller.noauth || caller.is_admin() {
        return Ok(());
    }
    let allowed = match action {
        Action::Read => caller.is_iot_member(),
        Action::BoardCreate | Action::FleetCreate | Action::ServiceCreate => {
            caller.is_project_manager()
        }
        Action::BoardUpdate | Action::BoardDelete | Action::FleetModify | Action::ServiceModify => {
            caller.is_project_manager()
        }
        Action::BoardOperate => caller.is_project_manager() || caller.is_owner(owner),
        Action::PluginCreate => caller.is_iot_member(),
        Action::PluginModify => caller.is_owner(owner),
        Action::ManageTokens => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Denied {
            rule: action.rule(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: &str, roles: &[&str]) -> Caller {
        Caller {
            user_id: Some(user.into()),
            project_id: Some("p1".into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            noauth: false,
        }
    }

    #[test]
    fn rule_table() {
        use Action::*;
        let admin = caller("a", &["admin"]);
        let padmin = caller("pa", &["admin_iot_project"]);
        let manager = caller("m", &["manager_iot_project"]);
        let user = caller("u", &["user_iot"]);
        let stranger = caller("s", &["member"]);
        #[rustfmt::skip]
        let table: &[(&Caller, Action, Option<&str>, bool)] = &[
            (&admin, ManageTokens, None, true),
            (&padmin, ManageTokens, None, false),
            (&stranger, Read, None, false),
            (&user, Read, None, true),
            (&user, BoardCreate, None, false),
            (&padmin, BoardCreate, None, true),
            (&manager, BoardCreate, None, true),
            (&manager, BoardDelete, None, true),
            (&user, BoardDelete, None, false),
            // upstream passes no owner, so only admins could act on boards: fixed
            (&user, BoardOperate, Some("u"), true),
            (&user, BoardOperate, Some("other"), false),
            (&manager, BoardOperate, Some("other"), true),
            (&user, PluginCreate, None, true),
            (&user, PluginModify, Some("u"), true),
            (&user, PluginModify, Some("x"), false),
            (&user, PluginModify, None, false),
            (&stranger, PluginCreate, None, false),
        ];
        for (who, action, owner, expected) in table {
            assert_eq!(
                authorize(who, *action, *owner).is_ok(),
                *expected,
                "{:?} {action:?} {owner:?}",
                who.roles
            );
        }
    }

    #[test]
    fn noauth_passes_every_rule() {
        let anon = Caller {
            noauth: true,
            ..Caller::default()
        };
        assert!(authorize(&anon, Action::ManageTokens, None).is_ok());
    }

    #[test]
    fn denial_names_the_rule() {
        let err = authorize(&caller("u", &[]), Action::BoardCreate, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Access was denied to the following resource: iot:board:create"
        );
    }
}
