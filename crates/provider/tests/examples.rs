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

/// Every manifest of `examples/provider/` is a resource of one of the provider's kinds, and
/// every kind has one; `examples/migration/` holds one of each kind of the migration API.
#[test]
fn every_kind_has_an_example() {
    use s4t_provider::apis::*;
    fn parse<K: serde::de::DeserializeOwned>(text: &str, file: &str) {
        if let Err(e) = serde_norway::from_str::<K>(text) {
            panic!("{file}: {e}");
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut kinds = std::collections::BTreeSet::new();
    for (dir, group) in [("provider", GROUP), ("migration", legacy::LEGACY_GROUP)] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let file = format!(
                "examples/{dir}/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let v: serde_json::Value = serde_norway::from_str(&text).unwrap();
            assert_eq!(v["apiVersion"], format!("{group}/v1alpha1"), "{file}");
            let kind = v["kind"].as_str().unwrap().to_string();
            match (dir, kind.as_str()) {
                ("provider", "ClusterProviderConfig") => {
                    parse::<ClusterProviderConfig>(&text, &file)
                }
                ("provider", "Board") => parse::<Board>(&text, &file),
                ("provider", "Fleet") => parse::<Fleet>(&text, &file),
                ("provider", "Plugin") => parse::<Plugin>(&text, &file),
                ("provider", "PluginInjection") => parse::<PluginInjection>(&text, &file),
                ("provider", "Service") => parse::<Service>(&text, &file),
                ("provider", "ServiceExposure") => parse::<ServiceExposure>(&text, &file),
                ("provider", "Network") => parse::<Network>(&text, &file),
                ("provider", "Port") => parse::<Port>(&text, &file),
                ("provider", "Webservice") => parse::<Webservice>(&text, &file),
                ("provider", "Workload") => parse::<Workload>(&text, &file),
                ("migration", "Device") => parse::<legacy::Device>(&text, &file),
                ("migration", "Plugin") => parse::<legacy::Plugin>(&text, &file),
                ("migration", "BoardPluginInjection") => {
                    parse::<legacy::BoardPluginInjection>(&text, &file)
                }
                ("migration", "Service") => parse::<legacy::Service>(&text, &file),
                ("migration", "BoardServiceInjection") => {
                    parse::<legacy::BoardServiceInjection>(&text, &file)
                }
                ("migration", "Fleet") => parse::<legacy::Fleet>(&text, &file),
                ("migration", "Port") => parse::<legacy::Port>(&text, &file),
                ("migration", "Webservice") => parse::<legacy::Webservice>(&text, &file),
                (_, other) => panic!("{file}: kind {other} is not the provider's"),
            }
            kinds.insert(format!("{group}/{kind}"));
        }
    }
    for (_, crd) in s4t_provider::apis::crds() {
        if crd.spec.names.kind == "ProviderConfig" {
            continue;
        }
        let k = format!("{}/{}", crd.spec.group, crd.spec.names.kind);
        assert!(kinds.contains(&k), "no example of {k}");
    }
}
