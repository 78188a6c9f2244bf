//! The manifests in `examples/provider/` are valid resources of the provider's kinds.

use std::path::PathBuf;

use s4t_provider::apis::{Board, ClusterProviderConfig, Fleet};

fn read(name: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/provider")
        .join(name);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[test]
fn examples_parse_as_their_kinds() {
    let site: ClusterProviderConfig = serde_norway::from_str(&read("site.yaml")).unwrap();
    assert_eq!(
        site.spec.site.credentials.secret_ref.namespace.as_deref(),
        Some("crossplane-system")
    );
    let board: Board = serde_norway::from_str(&read("board.yaml")).unwrap();
    assert_eq!(board.spec.for_provider.code, "LAB-01");
    // Absent fields take the CRD's defaults in Rust too.
    assert_eq!(board.spec.provider_config_ref.kind, "ClusterProviderConfig");
    assert_eq!(board.spec.provider_config_ref.name, "default");
    let fleet: Fleet = serde_norway::from_str(&read("fleet.yaml")).unwrap();
    assert_eq!(
        fleet.spec.for_provider.description.as_deref(),
        Some("boards of the lab")
    );
    // A body with an unknown kind of policy is refused by name when reconciled.
    let p = s4t_provider::policy::Policies::read(
        Some(&["Observe".to_string(), "Frobnicate".to_string()]),
        s4t_provider::policy::DeletionPolicy::Delete,
    );
    assert!(p.unwrap_err().contains("Frobnicate"));
}
