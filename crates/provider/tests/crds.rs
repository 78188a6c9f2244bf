//! The CRDs in `package/crds/` are the ones the Rust types generate, and they are structural
//! where Crossplane and the API server need it.

use std::path::PathBuf;

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../package/crds")
}

#[test]
fn package_crds_match_the_types() {
    let files = s4t_provider::apis::crd_files();
    assert_eq!(files.len(), 20);
    for (name, text) in files {
        let on_disk = std::fs::read_to_string(package_dir().join(&name)).unwrap_or_default();
        assert!(
            on_disk == text,
            "package/crds/{name} is not the generated CRD: run `cargo run -- provider crds` and commit it"
        );
    }
    let extra: Vec<String> = std::fs::read_dir(package_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !s4t_provider::apis::crd_files().iter().any(|(f, _)| f == n))
        .collect();
    assert!(extra.is_empty(), "files no type generates: {extra:?}");
}

#[test]
fn managed_resources_follow_crossplane() {
    for (_, crd) in s4t_provider::apis::crds() {
        let v = serde_json::to_value(&crd).unwrap();
        let version = &v["spec"]["versions"][0];
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        let group = v["spec"]["group"].as_str().unwrap();
        let legacy = group == s4t_provider::apis::legacy::LEGACY_GROUP;
        assert!(legacy || group == s4t_provider::apis::GROUP, "{group}");
        assert!(columns.contains(&"AGE"), "{columns:?}");
        let categories = v["spec"]["names"]["categories"].as_array().unwrap();
        assert!(categories.contains(&serde_json::json!("crossplane")));
        if categories.contains(&serde_json::json!("managed")) {
            // Crossplane v2 managed resources are namespaced; the migration API keeps the
            // upstream provider's cluster scope.
            let scope = if legacy { "Cluster" } else { "Namespaced" };
            assert_eq!(v["spec"]["scope"], scope, "{group}");
            for c in ["READY", "SYNCED", "EXTERNAL-NAME"] {
                assert!(columns.contains(&c), "{c} missing: {columns:?}");
            }
            let status =
                &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
            assert_eq!(status["conditions"]["x-kubernetes-list-type"], "map");
            assert_eq!(
                status["conditions"]["x-kubernetes-list-map-keys"],
                serde_json::json!(["type"])
            );
            let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
            let default = if legacy {
                serde_json::json!({"name": "default"})
            } else {
                serde_json::json!({"kind": "ClusterProviderConfig", "name": "default"})
            };
            assert_eq!(spec["providerConfigRef"]["default"], default, "{group}");
        }
    }
}
