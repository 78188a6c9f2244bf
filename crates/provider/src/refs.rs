//! References between managed resources, resolved the Crossplane way and decided here without
//! I/O: a field (`board`) may be given as is, by a reference to a resource of the same
//! namespace (`boardRef: {name}`), or by a label selector (`boardSelector: {matchLabels}`).
//! The resolved value is the referenced resource's external name (its S4T uuid), written back
//! into the field.
//!
//! Policies: `resolve: IfNotPresent` (default) resolves only while the field is empty,
//! `Always` on every reconcile; `resolution: Required` (default) fails the reconcile when the
//! target is missing or not yet created, `Optional` leaves the field empty. Not supported:
//! `matchControllerRef` in selectors, and references across namespaces.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to a managed resource of the same namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Reference {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

/// Selects a managed resource of the same namespace by its labels.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct Policy {
    #[serde(default)]
    pub resolve: Resolve,
    #[serde(default)]
    pub resolution: Resolution,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Resolve {
    Always,
    #[default]
    IfNotPresent,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Resolution {
    #[default]
    Required,
    Optional,
}

/// The kinds a reference may point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Board,
    Fleet,
    Plugin,
    Service,
    Network,
}

impl RefKind {
    pub fn name(self) -> &'static str {
        match self {
            RefKind::Board => "Board",
            RefKind::Fleet => "Fleet",
            RefKind::Plugin => "Plugin",
            RefKind::Service => "Service",
            RefKind::Network => "Network",
        }
    }
}

/// One referencing field of a spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// The field under `spec.forProvider` that holds the value (`board`).
    pub field: &'static str,
    pub kind: RefKind,
    pub value: Option<String>,
    pub reference: Option<Reference>,
    pub selector: Option<Selector>,
}

/// A resource a reference may resolve to.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `crossplane.io/external-name`: absent until the resource was created.
    pub external_name: Option<String>,
}

/// The resolved fields: `field` → value.
pub type Resolved = BTreeMap<&'static str, String>;

impl Slot {
    fn policy(&self) -> Policy {
        self.reference
            .as_ref()
            .and_then(|r| r.policy.clone())
            .or_else(|| self.selector.as_ref().and_then(|s| s.policy.clone()))
            .unwrap_or_default()
    }

    fn value(&self) -> Option<&str> {
        self.value.as_deref().filter(|v| !v.is_empty())
    }

    /// Whether the candidates must be read to resolve this field now.
    pub fn needs_lookup(&self) -> bool {
        let by_ref = self.reference.is_some() || self.selector.is_some();
        by_ref && (self.value().is_none() || self.policy().resolve == Resolve::Always)
    }

    /// The field's value, given the resources of the referenced kind in the namespace (only
    /// read when [`Slot::needs_lookup`]).
    pub fn resolve(&self, candidates: &[Candidate]) -> Result<Option<String>, String> {
        if !self.needs_lookup() {
            return Ok(self.value().map(str::to_string));
        }
        let required = self.policy().resolution != Resolution::Optional;
        let kind = self.kind.name();
        let found = if let Some(r) = &self.reference {
            match candidates.iter().find(|c| c.name == r.name) {
                None => Err(format!(
                    "spec.forProvider.{}Ref: {kind} {:?} does not exist in this namespace",
                    self.field, r.name
                )),
                Some(c) => c.external_name.clone().ok_or_else(|| {
                    format!(
                        "spec.forProvider.{}Ref: {kind} {:?} is not created yet (it has no external name)",
                        self.field, r.name
                    )
                }),
            }
        } else {
            let wanted = &self.selector.as_ref().expect("needs_lookup").match_labels;
            let mut matching: Vec<&Candidate> = candidates
                .iter()
                .filter(|c| wanted.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
                .filter(|c| c.external_name.is_some())
                .collect();
            // The same answer on every reconcile: the first by name.
            matching.sort_by(|a, b| a.name.cmp(&b.name));
            matching
                .first()
                .and_then(|c| c.external_name.clone())
                .ok_or_else(|| {
                    format!(
                        "spec.forProvider.{}Selector: no created {kind} in this namespace has the labels {wanted:?}",
                        self.field
                    )
                })
        };
        match found {
            Ok(v) => Ok(Some(v)),
            Err(e) if required => Err(e),
            Err(_) => Ok(self.value().map(str::to_string)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, labels: &[(&str, &str)], external: Option<&str>) -> Candidate {
        Candidate {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            external_name: external.map(str::to_string),
        }
    }

    fn slot(value: Option<&str>) -> Slot {
        Slot {
            field: "board",
            kind: RefKind::Board,
            value: value.map(str::to_string),
            reference: None,
            selector: None,
        }
    }

    fn by_ref(value: Option<&str>, name: &str, policy: Option<Policy>) -> Slot {
        Slot {
            reference: Some(Reference {
                name: name.into(),
                policy,
            }),
            ..slot(value)
        }
    }

    fn by_labels(labels: &[(&str, &str)], policy: Option<Policy>) -> Slot {
        Slot {
            selector: Some(Selector {
                match_labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                policy,
            }),
            ..slot(None)
        }
    }

    fn policy(resolve: Resolve, resolution: Resolution) -> Option<Policy> {
        Some(Policy {
            resolve,
            resolution,
        })
    }

    #[test]
    fn resolution_table() {
        let all = [
            candidate("rpi-1", &[("site", "a")], Some("u-1")),
            candidate("rpi-0", &[("site", "a")], Some("u-0")),
            candidate("rpi-2", &[("site", "b")], None),
        ];
        let optional = policy(Resolve::IfNotPresent, Resolution::Optional);
        let always = policy(Resolve::Always, Resolution::Required);
        // (case, slot, looks up, result: Ok(value) or Err(part of the message))
        type Row = (
            &'static str,
            Slot,
            bool,
            Result<Option<&'static str>, &'static str>,
        );
        let rows: Vec<Row> = vec![
            ("plain value", slot(Some("u-9")), false, Ok(Some("u-9"))),
            ("nothing at all", slot(None), false, Ok(None)),
            ("empty value is absent", slot(Some("")), false, Ok(None)),
            (
                "ref to a created board",
                by_ref(None, "rpi-1", None),
                true,
                Ok(Some("u-1")),
            ),
            (
                "ref, value present: IfNotPresent keeps it",
                by_ref(Some("u-old"), "rpi-1", None),
                false,
                Ok(Some("u-old")),
            ),
            (
                "ref, value present: Always resolves again",
                by_ref(Some("u-old"), "rpi-1", always.clone()),
                true,
                Ok(Some("u-1")),
            ),
            (
                "ref to a missing board",
                by_ref(None, "nope", None),
                true,
                Err("does not exist"),
            ),
            (
                "ref to a board not yet created",
                by_ref(None, "rpi-2", None),
                true,
                Err("not created yet"),
            ),
            (
                "optional ref, missing",
                by_ref(None, "nope", optional.clone()),
                true,
                Ok(None),
            ),
            (
                "selector: first created match by name",
                by_labels(&[("site", "a")], None),
                true,
                Ok(Some("u-0")),
            ),
            (
                "selector: matches are not created",
                by_labels(&[("site", "b")], None),
                true,
                Err("no created Board"),
            ),
            (
                "selector: no match",
                by_labels(&[("site", "z")], None),
                true,
                Err("labels"),
            ),
            (
                "optional selector: no match",
                by_labels(&[("site", "z")], optional.clone()),
                true,
                Ok(None),
            ),
            (
                "empty selector: any created",
                by_labels(&[], None),
                true,
                Ok(Some("u-0")),
            ),
        ];
        for (case, s, looks_up, want) in rows {
            assert_eq!(s.needs_lookup(), looks_up, "{case}");
            let got = s.resolve(&all);
            match want {
                Ok(v) => assert_eq!(got, Ok(v.map(str::to_string)), "{case}"),
                Err(part) => {
                    let e = got.expect_err(case);
                    assert!(e.contains(part), "{case}: {e}");
                    assert!(e.starts_with("spec.forProvider.board"), "{case}: {e}");
                }
            }
        }
    }
}
