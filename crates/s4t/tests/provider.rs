//! The provider's Board controller end to end: the real `kube` client and controller against
//! the **test API server** (tests/support/test_apiserver.rs; its gaps are listed there), and a
//! real `s4t cloud` as the site. A Board resource makes a board; drift made through the REST
//! API is patched back; a board deleted out of band is made again; a spec change is applied;
//! deleting the resource deletes the board and releases the finalizer. A Fleet resource is
//! made and deleted the same way.

use std::time::{Duration, Instant};

use s4t_provider::apis::{
    Board, BoardParameters, BoardSpec, ClusterProviderConfig, ClusterProviderConfigSpec,
    Credentials, Fleet, FleetParameters, FleetSpec, Location, ProviderConfig,
    ProviderConfigReference, ProviderConfigSpec, SecretKeySelector, SiteSpec,
};
use s4t_provider::k8s_openapi::api::core::v1::Secret;
use s4t_provider::k8s_openapi::ByteString;
use s4t_provider::kube::api::{Patch, PatchParams, PostParams};
use s4t_provider::kube::{self, Api as KubeApi, ResourceExt};
use serde_json::{json, Value};

mod common;
use common::*;

#[path = "support/test_apiserver.rs"]
mod test_apiserver;

async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    // A board deleted within 30 s of its creation is waited for first (Crossplane's creation
    // grace period), so re-creation can take that long.
    let limit = Duration::from_secs(60);
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition(b: &Board, kind: &str) -> Option<(String, String)> {
    b.status
        .as_ref()?
        .managed
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_follow_their_managed_resources() {
    let dir = temp_dir("provider-cloud");
    let (_cloud, base) = start_cloud(&dir, free_port(), free_port());
    let s4t = Api::of(&dir, base.clone());
    let (server, url) = test_apiserver::TestApiServer::start().await;
    let kube = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();

    // The site: a ClusterProviderConfig and the Secret with its token.
    let mut secret = Secret::default();
    secret.metadata.name = Some("site-a".into());
    secret.data = Some(
        [(
            "token".to_string(),
            ByteString(s4t.token.clone().into_bytes()),
        )]
        .into(),
    );
    KubeApi::<Secret>::namespaced(kube.clone(), "crossplane-system")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let site = ClusterProviderConfig::new(
        "default",
        ClusterProviderConfigSpec {
            site: SiteSpec {
                endpoint: base.clone(),
                ca_bundle: None,
                credentials: Credentials {
                    source: "Secret".into(),
                    secret_ref: SecretKeySelector {
                        namespace: Some("crossplane-system".into()),
                        name: "site-a".into(),
                        key: "token".into(),
                    },
                },
            },
        },
    );
    KubeApi::<ClusterProviderConfig>::all(kube.clone())
        .create(&PostParams::default(), &site)
        .await
        .unwrap();
    let controller = tokio::spawn(s4t_provider::controller::run(
        kube.clone(),
        s4t_provider::controller::RunConfig {
            poll: Duration::from_millis(500),
            max_reconcile_rate: 10,
        },
    ));

    let boards = KubeApi::<Board>::namespaced(kube.clone(), "lab");
    let spec = BoardSpec {
        for_provider: BoardParameters {
            name: None,
            code: "PROV-1".into(),
            board_type: None,
            location: Location {
                latitude: "38.19".into(),
                longitude: "15.55".into(),
                altitude: "10".into(),
            },
            mobile: None,
            fleet: None,
            extra: Default::default(),
        },
        management_policies: None,
        provider_config_ref: ProviderConfigReference::default(),
        write_connection_secret_to_ref: None,
    };
    let b_spec = spec.clone();
    boards
        .create(&PostParams::default(), &Board::new("b1", spec))
        .await
        .unwrap();

    // Created once, named by its uuid, synced; not ready while no agent is connected.
    let (uuid, b) = until("the board is created", async || {
        let b = boards.get("b1").await.ok()?;
        let uuid = b.annotations().get("crossplane.io/external-name")?.clone();
        (condition(&b, "Synced")? == ("True".into(), "ReconcileSuccess".into()))
            .then_some((uuid, b))
    })
    .await;
    assert_eq!(
        condition(&b, "Ready"),
        Some(("False".into(), "Unavailable".into()))
    );
    assert!(b
        .finalizers()
        .contains(&"finalizer.managedresource.crossplane.io".to_string()));
    let (status, remote) = s4t
        .call(reqwest::Method::GET, &format!("/v1/boards/{uuid}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (remote["name"].as_str(), remote["code"].as_str()),
        (Some("b1"), Some("PROV-1"))
    );
    let (_, all) = s4t.call(reqwest::Method::GET, "/v1/boards", None).await;
    assert_eq!(
        all["boards"].as_array().unwrap().len(),
        1,
        "created twice: {all}"
    );
    // Late-initialised from what S4T chose.
    until("late initialisation", async || {
        let b = boards.get("b1").await.ok()?;
        (b.spec.for_provider.board_type.as_deref() == Some("virtual")).then_some(())
    })
    .await;
    let b = boards.get("b1").await.unwrap();
    assert_eq!(
        b.status.unwrap().at_provider.status.as_deref(),
        Some("registered")
    );

    // Drift made through the REST API is patched back.
    let (status, _) = s4t
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/boards/{uuid}"),
            Some(json!({"code": "CHANGED"})),
        )
        .await;
    assert_eq!(status, 200);
    until("drift corrected", async || {
        let (_, b) = s4t
            .call(reqwest::Method::GET, &format!("/v1/boards/{uuid}"), None)
            .await;
        (b["code"] == "PROV-1").then_some(())
    })
    .await;

    // Deleted out of band: made again, under a new uuid.
    let (status, _) = s4t
        .call(reqwest::Method::DELETE, &format!("/v1/boards/{uuid}"), None)
        .await;
    assert_eq!(status, 204);
    let again = until("the board is made again", async || {
        let b = boards.get("b1").await.ok()?;
        let u = b.annotations().get("crossplane.io/external-name")?.clone();
        (u != uuid).then_some(u)
    })
    .await;
    let (status, _) = s4t
        .call(reqwest::Method::GET, &format!("/v1/boards/{again}"), None)
        .await;
    assert_eq!(status, 200);

    // A spec change reaches S4T.
    boards
        .patch(
            "b1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"forProvider": {"code": "PROV-2"}}})),
        )
        .await
        .unwrap();
    until("spec change applied", async || {
        let (_, b) = s4t
            .call(reqwest::Method::GET, &format!("/v1/boards/{again}"), None)
            .await;
        (b["code"] == "PROV-2").then_some(())
    })
    .await;

    // Events went to core/v1.
    let reasons: Vec<String> = server
        .objects("events")
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect();
    for r in ["CreatedExternalResource", "UpdatedExternalResource"] {
        assert!(reasons.iter().any(|x| x == r), "no {r} event: {reasons:?}");
    }

    // A Fleet goes the same way: made with its uuid as external name, deleted with it.
    let fleets = KubeApi::<Fleet>::namespaced(kube.clone(), "lab");
    let fleet = Fleet::new(
        "lab-fleet",
        FleetSpec {
            for_provider: FleetParameters {
                name: None,
                description: Some("boards of the lab".into()),
                extra: Default::default(),
            },
            management_policies: None,
            provider_config_ref: ProviderConfigReference::default(),
            write_connection_secret_to_ref: None,
        },
    );
    fleets.create(&PostParams::default(), &fleet).await.unwrap();
    let fleet_uuid = until("the fleet is created", async || {
        let f = fleets.get("lab-fleet").await.ok()?;
        let synced = f
            .status
            .as_ref()?
            .managed
            .conditions
            .iter()
            .any(|c| c.kind == "Synced" && c.status == "True");
        let ready = f
            .status
            .as_ref()?
            .managed
            .conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.reason == "Available");
        (synced && ready).then(|| f.annotations().get("crossplane.io/external-name").cloned())?
    })
    .await;
    let (status, f) = s4t
        .call(
            reqwest::Method::GET,
            &format!("/v1/fleets/{fleet_uuid}"),
            None,
        )
        .await;
    assert_eq!(
        (status, f["description"].as_str()),
        (200, Some("boards of the lab"))
    );
    fleets
        .delete("lab-fleet", &Default::default())
        .await
        .unwrap();
    until("the fleet resource is gone", async || {
        fleets.get("lab-fleet").await.is_err().then_some(())
    })
    .await;
    let (status, _) = s4t
        .call(
            reqwest::Method::GET,
            &format!("/v1/fleets/{fleet_uuid}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "the fleet outlived its resource");

    // A namespaced ProviderConfig with its Secret in the resource's namespace works as well;
    // a reference to a site that does not exist says so in Synced, and creates nothing.
    let mut local = secret.clone();
    local.metadata.namespace = None;
    KubeApi::<Secret>::namespaced(kube.clone(), "lab")
        .create(&PostParams::default(), &local)
        .await
        .unwrap();
    let mut pc_site = site.spec.site.clone();
    pc_site.credentials.secret_ref.namespace = None;
    KubeApi::<ProviderConfig>::namespaced(kube.clone(), "lab")
        .create(
            &PostParams::default(),
            &ProviderConfig::new("site-a", ProviderConfigSpec { site: pc_site }),
        )
        .await
        .unwrap();
    let board_with = |name: &str, code: &str, kind: &str, config: &str| {
        let mut spec = b_spec.clone();
        spec.for_provider.code = code.into();
        spec.provider_config_ref = ProviderConfigReference {
            kind: kind.into(),
            name: config.into(),
        };
        Board::new(name, spec)
    };
    boards
        .create(
            &PostParams::default(),
            &board_with("b2", "PROV-B2", "ProviderConfig", "site-a"),
        )
        .await
        .unwrap();
    boards
        .create(
            &PostParams::default(),
            &board_with("b3", "PROV-B3", "ClusterProviderConfig", "nowhere"),
        )
        .await
        .unwrap();
    until("b2 through the namespaced ProviderConfig", async || {
        let b = boards.get("b2").await.ok()?;
        b.annotations().get("crossplane.io/external-name")?;
        (condition(&b, "Synced")? == ("True".into(), "ReconcileSuccess".into())).then_some(())
    })
    .await;
    let message = until("b3 reports its missing site", async || {
        let b = boards.get("b3").await.ok()?;
        let c = b
            .status?
            .managed
            .conditions
            .into_iter()
            .find(|c| c.kind == "Synced")?;
        (c.status == "False" && c.reason == "ReconcileError").then_some(c.message)
    })
    .await;
    assert!(
        message.starts_with("connect failed: ClusterProviderConfig nowhere"),
        "{message}"
    );
    let (_, all) = s4t.call(reqwest::Method::GET, "/v1/boards", None).await;
    let codes: Vec<&str> = all["boards"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["code"].as_str())
        .collect();
    assert!(
        !codes.contains(&"PROV-B3"),
        "a board without a site was made: {codes:?}"
    );
    for name in ["b2", "b3"] {
        boards.delete(name, &Default::default()).await.unwrap();
    }
    until("b2 and b3 are gone", async || {
        (boards.get("b2").await.is_err() && boards.get("b3").await.is_err()).then_some(())
    })
    .await;

    // Deleting the resource deletes the board, then the resource goes.
    boards.delete("b1", &Default::default()).await.unwrap();
    until("the resource is gone", async || {
        boards.get("b1").await.is_err().then_some(())
    })
    .await;
    let (status, _): (u16, Value) = s4t
        .call(reqwest::Method::GET, &format!("/v1/boards/{again}"), None)
        .await;
    assert_eq!(status, 404, "the board outlived its resource");
    controller.abort();
}
