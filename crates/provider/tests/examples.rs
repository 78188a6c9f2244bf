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

/// The federation Composition's template makes only the provider's kinds, with fields its
/// types know: rendered here with every template action replaced by a plain value (Go
/// templates cannot run in this test), each document is parsed strictly as its kind.
#[test]
fn the_federation_template_makes_valid_resources() {
    use s4t_provider::apis::{Fleet, Plugin, PluginInjection};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/federation");
    let composition: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.join("composition.yaml")).unwrap())
            .unwrap();
    let template = composition["spec"]["pipeline"][0]["input"]["inline"]["template"]
        .as_str()
        .unwrap();
    let mut rendered = String::new();
    for line in template.lines() {
        let t = line.trim();
        // Control actions (range, with, end, assignments) make no text.
        if t.starts_with("{{-") && t.ends_with("}}") {
            continue;
        }
        let mut out = String::new();
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("closed action") + start + 2;
            let action = &rest[start..end];
            out.push_str(if action.contains("onboot") {
                "true"
            } else if line.contains("parameters:") {
                "{}"
            } else if action.contains("toJson") {
                "\"x\""
            } else {
                "x"
            });
            rest = &rest[end..];
        }
        out.push_str(rest);
        rendered.push_str(&out);
        rendered.push('\n');
    }
    let mut kinds = Vec::new();
    for doc in rendered.split("\n---\n").filter(|d| d.contains("kind:")) {
        let v: serde_json::Value =
            serde_norway::from_str(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let kind = v["kind"].as_str().unwrap().to_string();
        /// Every key of `a` is in `b`, at every depth.
        fn within(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
            if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
                for (k, v) in a {
                    let inner = b
                        .get(k)
                        .unwrap_or_else(|| panic!("{at}.{k} is no field of the kind"));
                    within(v, inner, &format!("{at}.{k}"));
                }
            }
        }
        /// Parsed as the kind, and nothing in it left out by the kind's types.
        fn strict<K: serde::de::DeserializeOwned + serde::Serialize>(
            v: &serde_json::Value,
            doc: &str,
        ) -> K {
            let k: K = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {doc}"));
            within(
                &v["spec"],
                &serde_json::to_value(&k).unwrap()["spec"],
                "spec",
            );
            k
        }
        match kind.as_str() {
            "Fleet" => drop(strict::<Fleet>(&v, doc)),
            "Plugin" => drop(strict::<Plugin>(&v, doc)),
            "PluginInjection" => {
                let i: PluginInjection = strict(&v, doc);
                let p = &i.spec.for_provider;
                assert!(p.fleet_ref.is_some() && p.plugin_ref.is_some());
            }
            other => panic!("the template makes {other}"),
        }
        assert_eq!(
            v["spec"]["providerConfigRef"]["kind"],
            "ClusterProviderConfig"
        );
        kinds.push(kind);
    }
    assert_eq!(kinds, ["Fleet", "Plugin", "PluginInjection"]);
}
