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
            ..Default::default()
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

/// Any kind of the provider's group, as JSON.
/// The site `default`: a ClusterProviderConfig for the cloud of `s4t`, with its token in the
/// Secret crossplane-system/site-a.
async fn add_default_site(kube: &kube::Client, s4t: &Api) {
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
    let site: ClusterProviderConfig = serde_json::from_value(json!({
        "apiVersion": "iot.s4t.m.crossplane.io/v1alpha1", "kind": "ClusterProviderConfig",
        "metadata": {"name": "default"},
        "spec": {"endpoint": s4t.base, "credentials": {"source": "Secret",
                 "secretRef": {"namespace": "crossplane-system", "name": "site-a", "key": "token"}}},
    }))
    .unwrap();
    KubeApi::<ClusterProviderConfig>::all(kube.clone())
        .create(&PostParams::default(), &site)
        .await
        .unwrap();
}

fn resource(kind: &str) -> s4t_provider::kube::api::ApiResource {
    s4t_provider::kube::api::ApiResource::from_gvk(
        &s4t_provider::kube::core::GroupVersionKind::gvk(
            s4t_provider::apis::GROUP,
            s4t_provider::apis::VERSION,
            kind,
        ),
    )
}

fn dynamic(kube: &kube::Client, kind: &str, ns: &str) -> KubeApi<kube::api::DynamicObject> {
    KubeApi::namespaced_with(kube.clone(), ns, &resource(kind))
}

/// Creates a managed resource from its manifest (as a user's YAML would give it).
async fn apply(kube: &kube::Client, ns: &str, manifest: Value) {
    let kind = manifest["kind"].as_str().unwrap().to_string();
    let mut m = manifest;
    m["apiVersion"] = json!(format!(
        "{}/{}",
        s4t_provider::apis::GROUP,
        s4t_provider::apis::VERSION
    ));
    let object: kube::api::DynamicObject = serde_json::from_value(m).unwrap();
    dynamic(kube, &kind, ns)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

async fn read(kube: &kube::Client, kind: &str, ns: &str, name: &str) -> Option<Value> {
    let o = dynamic(kube, kind, ns).get_opt(name).await.ok()??;
    Some(serde_json::to_value(o).unwrap())
}

/// A condition of a resource as JSON: (status, reason, message).
fn cond(v: &Value, kind: &str) -> Option<(String, String, String)> {
    let c = v["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    ))
}

fn is_true(v: &Value, kind: &str) -> bool {
    cond(v, kind).is_some_and(|c| c.0 == "True")
}

fn external_name(v: &Value) -> Option<String> {
    v["metadata"]["annotations"]["crossplane.io/external-name"]
        .as_str()
        .map(str::to_string)
}

/// The managed kinds beyond Board and Fleet, end to end with a real agent: a Board comes
/// online and is Ready; a Plugin injected through a PluginInjection (pluginRef, boardSelector)
/// runs on the board, and runs again after it is stopped out of band; a ServiceExposure
/// (serviceRef, boardRef) writes host and port into its connection Secret; a spec the cloud
/// refuses says why in Synced; deleting the resources cleans the cloud up; a Board applied
/// while the cloud is down is made exactly once when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_services_and_failures_follow_their_resources() {
    let dir = temp_dir("provider-kinds");
    let (api_port, wamp_port) = (free_port(), free_port());
    let (cloud, base) = start_cloud(&dir, api_port, wamp_port);
    let mut cloud = Some(cloud);
    let s4t = Api::of(&dir, base.clone());
    let (_server, url) = test_apiserver::TestApiServer::start().await;
    let kube = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    add_default_site(&kube, &s4t).await;
    let _controller = AbortOnDrop(tokio::spawn(s4t_provider::controller::run(
        kube.clone(),
        s4t_provider::controller::RunConfig {
            poll: Duration::from_millis(500),
            max_reconcile_rate: 10,
            ..Default::default()
        },
    )));
    let k = &kube;

    // A board whose agent connects is Ready, with its status from the cloud.
    apply(
        k,
        "lab",
        json!({"kind": "Board", "metadata": {"name": "rpi", "labels": {"site": "a"}},
        "spec": {"forProvider": {"code": "PROV-AGENT",
                 "location": {"latitude": "38.19", "longitude": "15.55", "altitude": "10"}}}}),
    )
    .await;
    let board = until("the board is created", async || {
        external_name(&read(k, "Board", "lab", "rpi").await?)
    })
    .await;
    let agent_dir = temp_dir("provider-agent");
    let _agent = start_agent_at(
        &agent_dir,
        "PROV-AGENT",
        &format!("ws://127.0.0.1:{wamp_port}/"),
        &["--python", "python3"],
    );
    until("the board is Ready", async || {
        let b = read(k, "Board", "lab", "rpi").await?;
        (is_true(&b, "Ready") && b["status"]["atProvider"]["status"] == "online").then_some(())
    })
    .await;

    // A plugin injected by reference and selector runs on the board.
    apply(
        k,
        "lab",
        json!({"kind": "Plugin", "metadata": {"name": "ticker"},
        "spec": {"forProvider": {"code": TICKER_PLUGIN, "callable": false}}}),
    )
    .await;
    apply(
        k,
        "lab",
        json!({"kind": "PluginInjection", "metadata": {"name": "ticker-on-rpi"},
        "spec": {"forProvider": {"pluginRef": {"name": "ticker"},
                 "boardSelector": {"matchLabels": {"site": "a"}}}}}),
    )
    .await;
    let injection = until("the plugin runs", async || {
        let i = read(k, "PluginInjection", "lab", "ticker-on-rpi").await?;
        (is_true(&i, "Ready") && i["status"]["atProvider"]["state"] == "ALIVE").then_some(i)
    })
    .await;
    let plugin = external_name(&read(k, "Plugin", "lab", "ticker").await.unwrap()).unwrap();
    assert_eq!(external_name(&injection), Some(format!("{board}/{plugin}")));
    // The references were resolved into the spec.
    assert_eq!(injection["spec"]["forProvider"]["board"], json!(board));
    assert_eq!(injection["spec"]["forProvider"]["plugin"], json!(plugin));
    let status = async || {
        s4t.call(
            reqwest::Method::POST,
            &format!("/v1/boards/{board}/plugins/{plugin}"),
            Some(json!({"action": "PluginStatus"})),
        )
        .await
    };
    assert_eq!(status().await, (200, json!("ALIVE")));
    // Stopped out of band: started again.
    let (code, _) = s4t
        .call(
            reqwest::Method::POST,
            &format!("/v1/boards/{board}/plugins/{plugin}"),
            Some(json!({"action": "PluginStop"})),
        )
        .await;
    assert_eq!(code, 200);
    until("the plugin runs again", async || {
        (status().await == (200, json!("ALIVE"))).then_some(())
    })
    .await;

    // A service exposed on the board: its public port in the connection Secret.
    apply(
        k,
        "lab",
        json!({"kind": "Service", "metadata": {"name": "ssh"},
        "spec": {"forProvider": {"port": 22, "protocol": "TCP"}}}),
    )
    .await;
    apply(
        k,
        "lab",
        json!({"kind": "ServiceExposure", "metadata": {"name": "ssh-on-rpi"},
        "spec": {"forProvider": {"serviceRef": {"name": "ssh"}, "boardRef": {"name": "rpi"}},
                 "writeConnectionSecretToRef": {"name": "ssh-on-rpi"}}}),
    )
    .await;
    let secrets = KubeApi::<Secret>::namespaced(kube.clone(), "lab");
    let details = until("the connection secret", async || {
        let s = secrets.get_opt("ssh-on-rpi").await.ok()??;
        let data = s.data?;
        let text = |k: &str| String::from_utf8(data.get(k)?.0.clone()).ok();
        Some((text("host")?, text("port")?, s.type_))
    })
    .await;
    let (_, exposed) = s4t
        .call(
            reqwest::Method::GET,
            &format!("/v1/boards/{board}/services"),
            None,
        )
        .await;
    assert_eq!(
        details,
        (
            "127.0.0.1".to_string(),
            exposed["exposed"][0]["public_port"].to_string(),
            Some("connection.crossplane.io/v1alpha1".to_string())
        ),
        "{exposed}"
    );

    // A spec the cloud refuses: Synced=False with the cloud's message, nothing made.
    apply(
        k,
        "lab",
        json!({"kind": "Network", "metadata": {"name": "bad"},
        "spec": {"forProvider": {"cidr": "10.20.0.0/24", "gateway": "10.30.0.1"}}}),
    )
    .await;
    let refused = until("the refusal", async || {
        let n = read(k, "Network", "lab", "bad").await?;
        cond(&n, "Synced")
            .filter(|c| c.0 == "False")
            .map(|c| (c, n))
    })
    .await;
    assert_eq!(refused.0 .1, "ReconcileError");
    assert!(
        refused.0 .2.starts_with("create failed: ") && refused.0 .2.contains("gateway 10.30.0.1"),
        "{:?}",
        refused.0
    );
    assert_eq!(external_name(&refused.1), None);
    let (_, nets) = s4t.call(reqwest::Method::GET, "/v1/networks", None).await;
    assert_eq!(nets["networks"].as_array().map(Vec::len), Some(0), "{nets}");

    // Deleting the resources cleans the cloud up, the connection Secret with them.
    for (kind, name) in [
        ("PluginInjection", "ticker-on-rpi"),
        ("ServiceExposure", "ssh-on-rpi"),
    ] {
        dynamic(k, kind, "lab")
            .delete(name, &Default::default())
            .await
            .unwrap();
        until("the resource goes", async || {
            read(k, kind, "lab", name).await.is_none().then_some(())
        })
        .await;
    }
    let (_, injections) = s4t
        .call(
            reqwest::Method::GET,
            &format!("/v1/boards/{board}/plugins"),
            None,
        )
        .await;
    assert_eq!(injections["injections"], json!([]), "{injections}");
    let (_, exposed) = s4t
        .call(
            reqwest::Method::GET,
            &format!("/v1/boards/{board}/services"),
            None,
        )
        .await;
    assert_eq!(exposed["exposed"], json!([]), "{exposed}");
    assert!(secrets.get_opt("ssh-on-rpi").await.unwrap().is_none());

    // The cloud goes down: a Board applied meanwhile is not Synced, and is made once when
    // the cloud returns.
    cloud.take().unwrap().kill9();
    apply(
        k,
        "lab",
        json!({"kind": "Board", "metadata": {"name": "late"},
        "spec": {"forProvider": {"code": "PROV-LATE",
                 "location": {"latitude": "1", "longitude": "2", "altitude": "3"}}}}),
    )
    .await;
    let down = until("the outage is reported", async || {
        let b = read(k, "Board", "lab", "late").await?;
        cond(&b, "Synced").filter(|c| c.0 == "False")
    })
    .await;
    assert!(down.2.contains("cannot reach the s4t API"), "{down:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_cloud, _) = start_cloud(&dir, api_port, wamp_port);
    let late = until("the board is made after the outage", async || {
        let b = read(k, "Board", "lab", "late").await?;
        is_true(&b, "Synced").then(|| external_name(&b)).flatten()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, all) = s4t.call(reqwest::Method::GET, "/v1/boards", None).await;
    let made: Vec<&Value> = all["boards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["name"] == "late")
        .collect();
    assert_eq!(made.len(), 1, "made more than once: {all}");
    assert_eq!(made[0]["uuid"], json!(late));
}

/// Stops a spawned task when the test ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the real `kubectl` with `kubeconfig`; its exit status, stdout and stderr.
async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let kubeconfig = kubeconfig.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("kubectl")
            .env("KUBECONFIG", &kubeconfig)
            .arg("--cache-dir")
            .arg(kubeconfig.with_extension("cache"))
            .args(&args)
            .output()
            .expect("kubectl runs (scripts/test.sh installs it)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
    .await
    .unwrap()
}

/// The rows of `kubectl get` output, split on runs of blanks.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The real `kubectl` against the test API server: it applies the CRDs of `package/crds/`
/// and every manifest of `examples/provider/`, and `kubectl get` shows the printer columns
/// with what the provider wrote (reconciling against a real cloud).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_the_examples_and_shows_the_columns() {
    let dir = temp_dir("provider-kubectl");
    let (_cloud, base) = start_cloud(&dir, free_port(), free_port());
    let s4t = Api::of(&dir, base.clone());
    let (_server, url) = test_apiserver::TestApiServer::start().await;
    let kubeconfig = dir.join("kubeconfig");
    test_apiserver::TestApiServer::write_kubeconfig(&kubeconfig, &url, Some("lab"));
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let crds = repo.join("package/crds");
    let examples = repo.join("examples/provider");
    let k = async |args: &[&str]| {
        let (ok, out, err) = kubectl(&kubeconfig, args).await;
        assert!(ok, "kubectl {args:?}: {err}{out}");
        out
    };

    // The test API server serves no OpenAPI, so kubectl's client-side validation is off.
    let out = k(&["apply", "--validate=false", "-f", crds.to_str().unwrap()]).await;
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/boards.iot.s4t.m.crossplane.io created"
        ),
        "{out}"
    );
    // (`kubectl create secret` would send protobuf, which the test API server does not read.)
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(&s4t.token);
    let secret = dir.join("secret.yaml");
    std::fs::write(
        &secret,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: site-a\n  namespace: crossplane-system\n\
             data:\n  token: {token}\n"
        ),
    )
    .unwrap();
    k(&["apply", "--validate=false", "-f", secret.to_str().unwrap()]).await;
    k(&[
        "apply",
        "--validate=false",
        "-f",
        examples.join("site.yaml").to_str().unwrap(),
    ])
    .await;
    // The example's endpoint is a site's public name; here the site is on loopback.
    let endpoint = format!("{{\"spec\":{{\"endpoint\":\"{base}\"}}}}");
    k(&[
        "patch",
        "clusterproviderconfig",
        "default",
        "--type",
        "merge",
        "-p",
        &endpoint,
    ])
    .await;
    let kube = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let _controller = AbortOnDrop(tokio::spawn(s4t_provider::controller::run(
        kube.clone(),
        s4t_provider::controller::RunConfig {
            poll: Duration::from_millis(500),
            max_reconcile_rate: 10,
            ..Default::default()
        },
    )));
    // Every other example (site.yaml again would put its public endpoint back).
    let mut args = vec!["apply".to_string(), "--validate=false".to_string()];
    for e in std::fs::read_dir(&examples).unwrap() {
        let path = e.unwrap().path();
        if path.file_name().unwrap() != "site.yaml" {
            args.extend(["-f".to_string(), path.to_string_lossy().to_string()]);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = k(&args).await;
    for made in [
        "board.iot.s4t.m.crossplane.io/lab-01 created",
        "plugininjection.iot.s4t.m.crossplane.io/temperature-on-lab-01 created",
        "workload.iot.s4t.m.crossplane.io/sampler created",
    ] {
        assert!(out.contains(made), "{made}: {out}");
    }

    // The Board's columns: READY False (no agent), SYNCED True, its uuid, its S4T status.
    let board = until("kubectl shows the board", async || {
        let out = k(&["get", "boards"]).await;
        let rows = rows(&out);
        let row = rows
            .iter()
            .find(|r| r.first().map(String::as_str) == Some("lab-01"))?;
        (row.len() == 6 && row[2] == "True").then(|| (rows[0].clone(), row.clone()))
    })
    .await;
    assert_eq!(
        board.0,
        ["NAME", "READY", "SYNCED", "EXTERNAL-NAME", "STATUS", "AGE"]
    );
    assert_eq!(board.1[1], "False");
    assert_eq!(board.1[4], "registered");
    let (status, remote) = s4t
        .call(
            reqwest::Method::GET,
            &format!("/v1/boards/{}", board.1[3]),
            None,
        )
        .await;
    assert_eq!((status, remote["code"].as_str()), (200, Some("LAB-01")));

    // A kind-specific column, filled from the cloud.
    let network = until("kubectl shows the network", async || {
        let rows = rows(&k(&["get", "networks"]).await);
        let row = rows
            .iter()
            .find(|r| r.first().map(String::as_str) == Some("lab-net"))?;
        (row.len() == 6 && row[1] == "True").then(|| (rows[0].clone(), row.clone()))
    })
    .await;
    assert_eq!(
        network.0,
        ["NAME", "READY", "SYNCED", "EXTERNAL-NAME", "CIDR", "AGE"]
    );
    assert_eq!(network.1[4], "10.10.0.0/24");
    // The injection cannot be made while the board is offline, and says so.
    let injection = until("kubectl shows the injection", async || {
        let out = k(&[
            "get",
            "plugininjection",
            "temperature-on-lab-01",
            "-o",
            "json",
        ])
        .await;
        let v: Value = serde_json::from_str(&out).ok()?;
        // (References wait for the Plugin and the Board to be made first.)
        cond(&v, "Synced").filter(|c| c.0 == "False" && c.2.starts_with("create failed"))
    })
    .await;
    assert!(injection.2.contains("not connected"), "{injection:?}");
    // Every managed kind of the site at once, by category.
    let all = k(&["get", "s4t"]).await;
    for name in [
        "board.iot.s4t.m.crossplane.io/lab-01",
        "network.iot.s4t.m.crossplane.io/lab-net",
    ] {
        assert!(all.contains(name), "{name}: {all}");
    }
}

fn legacy(kube: &kube::Client, kind: &str) -> KubeApi<kube::api::DynamicObject> {
    let gvk = s4t_provider::kube::core::GroupVersionKind::gvk(
        s4t_provider::apis::legacy::LEGACY_GROUP,
        "v1alpha1",
        kind,
    );
    KubeApi::all_with(
        kube.clone(),
        &s4t_provider::kube::api::ApiResource::from_gvk(&gvk),
    )
}

/// A manifest of `examples/migration/`, with `edit` applied, created as it is.
async fn apply_legacy(kube: &kube::Client, file: &str, edit: impl FnOnce(&mut Value)) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/migration")
        .join(file);
    let mut v: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    let kind = v["kind"].as_str().unwrap().to_string();
    let name = v["metadata"]["name"].as_str().unwrap().to_string();
    let object: kube::api::DynamicObject = serde_json::from_value(v).unwrap();
    legacy(kube, &kind)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    name
}

async fn read_legacy(kube: &kube::Client, kind: &str, name: &str) -> Option<Value> {
    let o = legacy(kube, kind).get_opt(name).await.ok()??;
    Some(serde_json::to_value(o).unwrap())
}

/// The upstream provider's manifests (examples/migration: Device, Plugin,
/// BoardPluginInjection, Service, Fleet) reconcile through the migration API: each is made
/// in the cloud under its uuid, the Device is Ready once its agent connects, the injection
/// puts the plugin on the board; a Device naming an existing board by uuid adopts it instead
/// of making another; deleting a Device with `deletionPolicy: Orphan` keeps the board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_manifests_reconcile() {
    let dir = temp_dir("provider-legacy");
    let (api_port, wamp_port) = (free_port(), free_port());
    let (_cloud, base) = start_cloud(&dir, api_port, wamp_port);
    let s4t = Api::of(&dir, base.clone());
    let (_server, url) = test_apiserver::TestApiServer::start().await;
    let kube = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    add_default_site(&kube, &s4t).await;
    let _controller = AbortOnDrop(tokio::spawn(s4t_provider::controller::run(
        kube.clone(),
        s4t_provider::controller::RunConfig {
            poll: Duration::from_millis(500),
            max_reconcile_rate: 10,
            ..Default::default()
        },
    )));
    let k = &kube;
    for file in ["device.yaml", "plugin.yaml", "service.yaml", "fleet.yaml"] {
        apply_legacy(k, file, |_| {}).await;
    }
    let made = async |kind: &str, name: &str| {
        until("made in the cloud", async || {
            let v = read_legacy(k, kind, name).await?;
            is_true(&v, "Synced").then(|| external_name(&v)).flatten()
        })
        .await
    };
    let board = made("Device", "device-lab-02").await;
    let plugin = made("Plugin", "plugin-hello").await;
    let service = made("Service", "service-ssh").await;
    let fleet = made("Fleet", "fleet-lab").await;
    for (path, field, want) in [
        (format!("/v1/boards/{board}"), "code", "LAB-02"),
        (format!("/v1/plugins/{plugin}"), "name", "hello"),
        (format!("/v1/services/{service}"), "name", "ssh-legacy"),
        (
            format!("/v1/fleets/{fleet}"),
            "description",
            "the lab's boards",
        ),
    ] {
        let (status, v) = s4t.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(
            (status, v[field].as_str()),
            (200, Some(want)),
            "{path}: {v}"
        );
    }
    let agent_dir = temp_dir("provider-legacy-agent");
    let _agent = start_agent_at(
        &agent_dir,
        "LAB-02",
        &format!("ws://127.0.0.1:{wamp_port}/"),
        &["--python", "python3"],
    );
    until("the device is Ready", async || {
        let d = read_legacy(k, "Device", "device-lab-02").await?;
        is_true(&d, "Ready").then_some(())
    })
    .await;
    apply_legacy(k, "boardplugininjection.yaml", |v| {
        v["spec"]["forProvider"]["boardUuid"] = json!(board);
        v["spec"]["forProvider"]["pluginUuid"] = json!(plugin);
    })
    .await;
    until("the plugin is injected", async || {
        let i = read_legacy(k, "BoardPluginInjection", "hello-on-lab-02").await?;
        (is_true(&i, "Ready") && external_name(&i)? == format!("{board}/{plugin}")).then_some(())
    })
    .await;
    let (_, injections) = s4t
        .call(
            reqwest::Method::GET,
            &format!("/v1/boards/{board}/plugins"),
            None,
        )
        .await;
    assert_eq!(
        injections["injections"][0]["plugin"],
        json!(plugin),
        "{injections}"
    );

    // A Device with the uuid of a board that exists is that board.
    let existing = s4t.create_board("adopted", "ADOPT-1").await;
    let uuid = existing["uuid"].as_str().unwrap().to_string();
    apply_legacy(k, "device.yaml", |v| {
        v["metadata"]["name"] = json!("device-adopted");
        v["spec"]["forProvider"]["uuid"] = json!(uuid);
        v["spec"]["forProvider"]["code"] = json!("ADOPT-1");
        v["spec"]["forProvider"]["name"] = json!("adopted");
        v["spec"]["deletionPolicy"] = json!("Orphan");
    })
    .await;
    assert_eq!(made("Device", "device-adopted").await, uuid);
    let (_, all) = s4t.call(reqwest::Method::GET, "/v1/boards", None).await;
    let named: Vec<&Value> = all["boards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["name"] == "adopted")
        .collect();
    assert_eq!(named.len(), 1, "adopted, not made again: {all}");
    // Orphan: the resource goes, the board stays.
    legacy(k, "Device")
        .delete("device-adopted", &Default::default())
        .await
        .unwrap();
    until("the device goes", async || {
        read_legacy(k, "Device", "device-adopted")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    let (status, _) = s4t
        .call(reqwest::Method::GET, &format!("/v1/boards/{uuid}"), None)
        .await;
    assert_eq!(status, 200, "an orphaned board stays");
}

/// `s4t provider run` as a process, with leader election and its counters on a port of its
/// own; the kubeconfig points at the test API server.
fn start_provider_replica(kubeconfig: &std::path::Path, metrics_port: u16) -> Proc {
    Proc(
        std::process::Command::new(BIN)
            .args(["provider", "run", "--poll", "1s", "--leader-election"])
            .args(["--leader-election-lease-duration", "3s"])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .env("KUBECONFIG", kubeconfig)
            .env_remove("POD_NAMESPACE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A replica's counters: (leading, reconciles so far), or None while it does not answer.
async fn replica_state(metrics_port: u16) -> Option<(bool, u64)> {
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |name: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    Some((
        value("s4t_provider_leader ") == 1,
        value("s4t_provider_reconciles_total"),
    ))
}

/// Two replicas with `--leader-election`: only the holder of the Lease reconciles; when it
/// is killed, the other takes the Lease over once it has run out and reconciles, making no
/// board twice; a replica stopped with SIGTERM gives the Lease up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_another_takes_over() {
    use s4t_provider::k8s_openapi::api::coordination::v1::Lease;
    let dir = temp_dir("provider-leader");
    let (_cloud, base) = start_cloud(&dir, free_port(), free_port());
    let s4t = Api::of(&dir, base.clone());
    let (_server, url) = test_apiserver::TestApiServer::start().await;
    let kube = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    add_default_site(&kube, &s4t).await;
    let kubeconfig = dir.join("kubeconfig");
    test_apiserver::TestApiServer::write_kubeconfig(&kubeconfig, &url, None);
    let leases = KubeApi::<Lease>::namespaced(kube.clone(), "crossplane-system");
    let holder = async || -> Option<String> {
        leases
            .get_opt("s4t-provider")
            .await
            .ok()??
            .spec?
            .holder_identity
    };

    let (port_a, port_b) = (free_port(), free_port());
    let mut a = start_provider_replica(&kubeconfig, port_a);
    until("replica A leads", async || {
        replica_state(port_a).await.filter(|s| s.0).map(|_| ())
    })
    .await;
    let first_holder = holder().await.expect("the Lease names A");
    let b = start_provider_replica(&kubeconfig, port_b);
    until("replica B is up", async || replica_state(port_b).await).await;

    let k = &kube;
    let board = |name: &str, code: &str| {
        json!({"kind": "Board", "metadata": {"name": name},
        "spec": {"forProvider": {"code": code,
                 "location": {"latitude": "38.19", "longitude": "15.55", "altitude": "10"}}}})
    };
    apply(k, "lab", board("one", "LEAD-1")).await;
    until("A makes the first board", async || {
        external_name(&read(k, "Board", "lab", "one").await?)
    })
    .await;
    // B has been up all along, following: it has reconciled nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(replica_state(port_b).await, Some((false, 0)), "B follows");
    assert_eq!(holder().await.as_deref(), Some(first_holder.as_str()));

    // A dies without giving the Lease up: B takes it over once it has run out (3 s).
    a.kill9();
    let killed = Instant::now();
    until("B leads", async || {
        replica_state(port_b).await.filter(|s| s.0).map(|_| ())
    })
    .await;
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "B waited for the Lease to run out ({took:?})"
    );
    let second_holder = holder().await.expect("the Lease names B");
    assert_ne!(second_holder, first_holder);
    let lease = leases.get("s4t-provider").await.unwrap();
    assert_eq!(lease.spec.unwrap().lease_transitions, Some(1));

    apply(k, "lab", board("two", "LEAD-2")).await;
    until("B makes the second board", async || {
        external_name(&read(k, "Board", "lab", "two").await?)
    })
    .await;
    assert!(replica_state(port_b).await.unwrap().1 > 0, "B reconciles");
    let (_, boards) = s4t.call(reqwest::Method::GET, "/v1/boards", None).await;
    let mut codes: Vec<&str> = boards["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, ["LEAD-1", "LEAD-2"], "each board made once");

    // SIGTERM: B gives the Lease up as it stops.
    b.signal("TERM");
    until("the Lease is released", async || {
        let lease = leases.get_opt("s4t-provider").await.ok()??;
        lease.spec?.holder_identity.is_none().then_some(())
    })
    .await;
}

/// The board status feed: at a ten-minute poll, a Board learns within seconds that its board
/// connected and that it disconnected, because the provider follows the site's board
/// listing (its ETag) and wakes the Board's reconcile when the status moves. Without the
/// feed, the disconnection would be seen at the next poll, ten minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_status_changes_reach_boards_through_the_feed() {
    let dir = temp_dir("provider-feed");
    let (api_port, wamp_port) = (free_port(), free_port());
    let (_cloud, base) = start_cloud(&dir, api_port, wamp_port);
    let s4t = Api::of(&dir, base.clone());
    let (_server, url) = test_apiserver::TestApiServer::start().await;
    let kube = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    add_default_site(&kube, &s4t).await;
    let _controller = AbortOnDrop(tokio::spawn(s4t_provider::controller::run(
        kube.clone(),
        s4t_provider::controller::RunConfig {
            poll: Duration::from_secs(600),
            max_reconcile_rate: 10,
            ..Default::default()
        },
    )));
    let k = &kube;
    // A first Board starts the site's feed; once the feed answers, a Board not Ready is
    // polled at the ten-minute poll, so nothing but the feed (or a change) reconciles it.
    let observed = async |name: &str| {
        until("the board is made and observed not Ready", async || {
            let b = read(k, "Board", "lab", name).await?;
            let ready = cond(&b, "Ready")?;
            let observed = b["status"]["atProvider"]["status"] == "registered";
            (is_true(&b, "Synced") && ready.0 == "False" && observed).then_some(b)
        })
        .await
    };
    let apply_board = async |name: &str, code: &str| {
        apply(
            k,
            "lab",
            json!({"kind": "Board", "metadata": {"name": name},
            "spec": {"forProvider": {"code": code,
                     "location": {"latitude": "38.19", "longitude": "15.55", "altitude": "10"}}}}),
        )
        .await
    };
    apply_board("first", "PROV-FEED-FIRST").await;
    observed("first").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    apply_board("followed", "PROV-FEED").await;
    let made = observed("followed").await;
    // The observation late-initialised the spec (a new generation) and reports that
    // generation as observed, although the echo of its own write started no reconcile.
    assert_eq!(made["metadata"]["generation"], 2, "{made}");
    assert_eq!(
        made["status"]["observedGeneration"], made["metadata"]["generation"],
        "{made}"
    );
    let feed_wakeups = || {
        s4t_provider::metrics::render()
            .lines()
            .find_map(|l| l.strip_prefix("s4t_provider_board_feed_wakeups_total "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap()
    };
    assert_eq!(feed_wakeups(), 0);

    let agent_dir = temp_dir("provider-feed-agent");
    let mut agent = start_agent_at(
        &agent_dir,
        "PROV-FEED",
        &format!("ws://127.0.0.1:{wamp_port}/"),
        &[],
    );
    let connected = Instant::now();
    until("the Board is Ready", async || {
        let b = read(k, "Board", "lab", "followed").await?;
        (is_true(&b, "Ready") && b["status"]["atProvider"]["status"] == "online").then_some(())
    })
    .await;
    assert!(feed_wakeups() >= 1);
    eprintln!("Ready {:?} after the agent started", connected.elapsed());

    agent.kill9();
    let killed = Instant::now();
    until("the Board is no longer Ready", async || {
        let b = read(k, "Board", "lab", "followed").await?;
        (cond(&b, "Ready")?.0 == "False").then_some(())
    })
    .await;
    // Within the 60 s of `until`, far inside the ten-minute poll.
    assert!(
        killed.elapsed() < Duration::from_secs(30),
        "{:?}",
        killed.elapsed()
    );
    assert!(feed_wakeups() >= 2);
}
