//! Management policies: which of Observe, Create, Update, LateInitialize and Delete the
//! provider may do to an external resource, and the legacy `deletionPolicy` of cluster-scoped
//! (migration API) kinds.

use std::collections::BTreeSet;

/// One management action (`spec.managementPolicies` items).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    All,
    Observe,
    Create,
    Update,
    LateInitialize,
    Delete,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "*" => Action::All,
            "Observe" => Action::Observe,
            "Create" => Action::Create,
            "Update" => Action::Update,
            "LateInitialize" => Action::LateInitialize,
            "Delete" => Action::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::All => "*",
            Action::Observe => "Observe",
            Action::Create => "Create",
            Action::Update => "Update",
            Action::LateInitialize => "LateInitialize",
            Action::Delete => "Delete",
        }
    }
}

/// The legacy `spec.deletionPolicy` (cluster-scoped kinds only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Orphan,
}

/// The combinations Crossplane supports; any other set is refused.
pub fn supported() -> Vec<BTreeSet<Action>> {
    use Action::*;
    [
        &[All][..],
        &[Observe, Create, Update, LateInitialize, Delete],
        &[Observe],
        &[],
        &[Observe, Create, Update, Delete],
        &[Observe, Create, Update, LateInitialize],
        &[Observe, Create, Update],
        &[Observe, Create, Delete, LateInitialize],
        &[Observe, Create, LateInitialize],
        &[Observe, Create, Delete],
        &[Observe, Create],
        &[Observe, Delete],
    ]
    .iter()
    .map(|s| s.iter().copied().collect())
    .collect()
}

/// A resource's validated policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    actions: BTreeSet<Action>,
    deletion: DeletionPolicy,
}

impl Policies {
    /// Reads `spec.managementPolicies` (absent: `["*"]`) and, for legacy kinds, the deletion
    /// policy. The error names the field and what is accepted.
    pub fn read(policies: Option<&[String]>, deletion: DeletionPolicy) -> Result<Policies, String> {
        let raw: Vec<String> = policies.map_or_else(|| vec!["*".to_string()], |p| p.to_vec());
        let mut actions = BTreeSet::new();
        for p in &raw {
            let a = Action::parse(p).ok_or_else(|| {
                format!("spec.managementPolicies: {p:?} is not one of \"*\", Observe, Create, Update, LateInitialize, Delete")
            })?;
            actions.insert(a);
        }
        if !supported().contains(&actions) {
            let list: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
            return Err(format!(
                "spec.managementPolicies: the combination {list:?} is not supported; use [\"*\"], [\"Observe\"], [] (paused) or one of Crossplane's documented sets"
            ));
        }
        Ok(Policies { actions, deletion })
    }

    fn has(&self, a: Action) -> bool {
        self.actions.contains(&Action::All) || self.actions.contains(&a)
    }

    pub fn paused(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn should_create(&self) -> bool {
        self.has(Action::Create)
    }

    pub fn should_update(&self) -> bool {
        self.has(Action::Update)
    }

    pub fn should_late_initialize(&self) -> bool {
        self.has(Action::LateInitialize)
    }

    pub fn only_observe(&self) -> bool {
        self.actions.len() == 1 && self.actions.contains(&Action::Observe)
    }

    /// Deletes the external resource when both the deletion policy and the management policies
    /// say so; an explicit Delete in non-default management policies wins over `Orphan`.
    pub fn should_delete(&self) -> bool {
        let default = self.actions.len() == 1 && self.actions.contains(&Action::All);
        (self.deletion == DeletionPolicy::Delete && self.has(Action::Delete))
            || (!default && self.actions.contains(&Action::Delete))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: Option<&[&str]>, d: DeletionPolicy) -> Result<Policies, String> {
        let owned: Option<Vec<String>> = p.map(|p| p.iter().map(|s| s.to_string()).collect());
        Policies::read(owned.as_deref(), d)
    }

    #[test]
    fn policy_table() {
        use DeletionPolicy::*;
        // (policies, deletion) -> (paused, create, update, late-init, only-observe, delete)
        for (p, d, expect) in [
            (None, Delete, (false, true, true, true, false, true)),
            (
                Some(&["*"][..]),
                Orphan,
                (false, true, true, true, false, false),
            ),
            (
                Some(&[][..]),
                Delete,
                (true, false, false, false, false, false),
            ),
            (
                Some(&["Observe"][..]),
                Delete,
                (false, false, false, false, true, false),
            ),
            (
                Some(&["Observe", "Delete"][..]),
                Delete,
                (false, false, false, false, false, true),
            ),
            (
                Some(&["Observe", "Delete"][..]),
                Orphan,
                (false, false, false, false, false, true),
            ),
            (
                Some(&["Observe", "Create", "Update", "LateInitialize"][..]),
                Delete,
                (false, true, true, true, false, false),
            ),
            (
                Some(&["Create", "Observe", "Update", "Delete"][..]),
                Delete,
                (false, true, true, false, false, true),
            ),
        ] {
            let got = read(p, d).unwrap();
            assert_eq!(
                (
                    got.paused(),
                    got.should_create(),
                    got.should_update(),
                    got.should_late_initialize(),
                    got.only_observe(),
                    got.should_delete()
                ),
                expect,
                "{p:?} {d:?}"
            );
        }
    }

    #[test]
    fn unsupported_and_unknown_policies_are_refused_by_name() {
        let e = read(Some(&["Observe", "Update"]), DeletionPolicy::Delete).unwrap_err();
        assert!(
            e.contains("spec.managementPolicies") && e.contains("not supported"),
            "{e}"
        );
        let e = read(Some(&["Destroy"]), DeletionPolicy::Delete).unwrap_err();
        assert!(e.contains("\"Destroy\""), "{e}");
        assert_eq!(supported().len(), 12);
    }
}
