//! The store's behaviour, run against both engines: every test exists as `sqlite::name` and
//! `postgres::name`. PostgreSQL tests need `S4T_TEST_POSTGRES_URL` (an admin URL; each test makes
//! its own database). Without it they fail when `S4T_REQUIRE_POSTGRES=1` (CI) and are skipped
//! with a message otherwise.

use serde_json::json;

use s4t_model::listing::SortDir;
use s4t_model::resources::{FleetFields, NewBoard, Outcome, PluginFields, ServiceFields};
use s4t_model::{BoardStatus, Ident};
use s4t_store::boards::{BoardFilter, BoardOwnership, BoardUpdate};
use s4t_store::plugins::PluginVisibility;
use s4t_store::requests::NewRequest;
use s4t_store::{Page, Scope, Store, StoreError};

async fn sqlite() -> Option<Store> {
    let dir = std::env::temp_dir().join(format!("s4t-store-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    Some(Store::open_sqlite_file(&dir.join("s4t.db")).await.unwrap())
}

async fn postgres() -> Option<Store> {
    let admin = s4t_store::testing::postgres_admin_url()?;
    Some(s4t_store::testing::fresh_postgres(&admin).await.unwrap())
}

fn board(name: &str, code: &str) -> NewBoard {
    NewBoard::from_body(json!({"name": name, "code": code, "type": "server",
        "location": [{"latitude": "38.1", "longitude": "15.5", "altitude": "3"}]}))
    .unwrap()
}

fn own(project: Option<&str>) -> BoardOwnership {
    BoardOwnership {
        owner: Some("u1".into()),
        project: project.map(str::to_string),
        fleet: None,
    }
}

fn page(limit: u32, marker: Option<String>, key: &str, dir: SortDir) -> Page {
    Page {
        limit,
        marker,
        sort_key: key.into(),
        sort_dir: dir,
    }
}

async fn board_round_trip(s: Store) {
    let b = s
        .create_board(&board("b1", "C1"), &own(Some("p1")))
        .await
        .unwrap();
    assert_eq!(b.status, BoardStatus::Registered);
    assert_eq!(b.location.len(), 1);
    assert_eq!(b.location[0].altitude, "3");
    assert_eq!(b.project.as_deref(), Some("p1"));
    assert!(b.config.is_empty());
    let by_name = s
        .board(&Ident::Name("b1".into()), &Scope::All)
        .await
        .unwrap();
    assert_eq!(by_name.uuid, b.uuid);
    let other_project = s
        .board(
            &Ident::Uuid(b.uuid.clone()),
            &Scope::Project(Some("p2".into())),
        )
        .await;
    assert!(matches!(
        other_project,
        Err(StoreError::NotFound { kind: "Board", .. })
    ));
}

async fn duplicate_board_name_and_code_conflict(s: Store) {
    s.create_board(&board("b1", "C1"), &own(None))
        .await
        .unwrap();
    let err = s
        .create_board(&board("b1", "C2"), &own(None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("name b1")),
        "{err}"
    );
    let err = s
        .create_board(&board("b2", "C1"), &own(None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("code C1")),
        "{err}"
    );
    let b2 = s
        .create_board(&board("b2", "C2"), &own(None))
        .await
        .unwrap();
    let err = s
        .update_board(
            &b2.uuid,
            &BoardUpdate {
                name: Some("b1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "a rename onto a taken name is refused: {err}"
    );
}

async fn pagination_by_marker_in_both_directions(s: Store) {
    for i in 0..7 {
        s.create_board(&board(&format!("b{i}"), &format!("C{i}")), &own(None))
            .await
            .unwrap();
    }
    let filter = BoardFilter {
        scope: Scope::All,
        status: None,
        fleet: None,
    };
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let rows = s
            .list_boards(&filter, &page(3, marker.clone(), "name", SortDir::Desc))
            .await
            .unwrap();
        seen.extend(rows.iter().map(|b| b.name.clone()));
        if rows.len() < 3 {
            break;
        }
        marker = Some(rows.last().unwrap().uuid.clone());
    }
    assert_eq!(seen, vec!["b6", "b5", "b4", "b3", "b2", "b1", "b0"]);
    let asc = s
        .list_boards(&filter, &page(100, None, "id", SortDir::Asc))
        .await
        .unwrap();
    assert_eq!(asc.first().unwrap().name, "b0");
    let missing = s
        .list_boards(&filter, &page(3, Some("nope".into()), "id", SortDir::Asc))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
}

async fn lists_are_scoped_by_project(s: Store) {
    s.create_board(&board("a", "CA"), &own(Some("p1")))
        .await
        .unwrap();
    s.create_board(&board("b", "CB"), &own(Some("p2")))
        .await
        .unwrap();
    s.create_board(&board("c", "CC"), &own(None)).await.unwrap();
    let names = |scope: Scope| {
        let s = s.clone();
        async move {
            s.list_boards(
                &BoardFilter {
                    scope,
                    status: None,
                    fleet: None,
                },
                &Page::default(),
            )
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(Scope::Project(Some("p1".into()))).await, vec!["a"]);
    assert_eq!(names(Scope::Project(None)).await, vec!["c"]);
    assert_eq!(names(Scope::All).await.len(), 3);
}

async fn deleting_a_board_cascades(s: Store) {
    let b = s
        .create_board(&board("b1", "C1"), &own(None))
        .await
        .unwrap();
    let p = s
        .create_plugin(
            &PluginFields::for_create(json!({"name": "p", "code": "print(1)"})).unwrap(),
            None,
            "d",
        )
        .await
        .unwrap();
    s.upsert_injection(&b.uuid, &p.uuid, true).await.unwrap();
    let again = s.upsert_injection(&b.uuid, &p.uuid, false).await.unwrap();
    assert_eq!(again.status, "updated");
    assert_eq!(s.injections(&b.uuid).await.unwrap().len(), 1);
    let err = s.delete_plugin(&p.uuid).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("still injected")),
        "{err}"
    );
    s.delete_board(&b.uuid).await.unwrap();
    assert!(s.injections(&b.uuid).await.unwrap().is_empty());
    s.delete_plugin(&p.uuid).await.unwrap();
    assert!(matches!(
        s.delete_board(&b.uuid).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn fleet_with_boards_cannot_be_deleted(s: Store) {
    let f = s
        .create_fleet(
            &FleetFields::read(json!({"name": "f1"}), true).unwrap(),
            Some("p1"),
        )
        .await
        .unwrap();
    let dup = s
        .create_fleet(
            &FleetFields::read(json!({"name": "f1"}), true).unwrap(),
            Some("p1"),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let b = s
        .create_board(
            &board("b1", "C1"),
            &BoardOwnership {
                fleet: Some(f.uuid.clone()),
                ..own(Some("p1"))
            },
        )
        .await
        .unwrap();
    assert_eq!(b.fleet.as_deref(), Some(f.uuid.as_str()));
    let err = s.delete_fleet(&f.uuid).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("still has 1 board")),
        "{err}"
    );
    s.update_board(
        &b.uuid,
        &BoardUpdate {
            fleet: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.delete_fleet(&f.uuid).await.unwrap();
}

async fn service_round_trip(s: Store) {
    let f =
        ServiceFields::read(json!({"name": "ssh", "port": 22, "protocol": "TCP"}), true).unwrap();
    let svc = s.create_service(&f, Some("p1")).await.unwrap();
    assert_eq!(svc.port, 22);
    let upd = s
        .update_service(
            &svc.uuid,
            &ServiceFields {
                port: Some(2222),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(upd.port, 2222);
    assert!(upd.updated_at.is_some());
    assert_eq!(
        s.list_services(&Scope::Project(Some("p2".into())), &Page::default())
            .await
            .unwrap()
            .len(),
        0
    );
    s.delete_service(&svc.uuid).await.unwrap();
}

async fn ambiguous_plugin_names_conflict(s: Store) {
    for _ in 0..2 {
        s.create_plugin(
            &PluginFields::for_create(json!({"name": "same", "code": "x"})).unwrap(),
            Some("u"),
            "d",
        )
        .await
        .unwrap();
    }
    let err = s
        .plugin(&Ident::Name("same".into()), &PluginVisibility::All)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("use its uuid")),
        "{err}"
    );
    let vis = PluginVisibility::Owner {
        owner: Some("other".into()),
        with_public: true,
    };
    assert!(s
        .list_plugins(&vis, &Page::default())
        .await
        .unwrap()
        .is_empty());
}

async fn requests_complete_and_interrupt(s: Store) {
    let b = s
        .create_board(&board("b1", "C1"), &own(None))
        .await
        .unwrap();
    let new = NewRequest {
        destination_uuid: Some(b.uuid.clone()),
        main_request_uuid: None,
        pending_requests: 0,
        project: None,
        request_type: 0,
        action: "DeviceEcho".into(),
    };
    let r1 = s.open_request(&new, &b.uuid).await.unwrap();
    s.close_request(&r1.uuid, &b.uuid, Outcome::Success, "hello")
        .await
        .unwrap();
    let r2 = s.open_request(&new, &b.uuid).await.unwrap();
    assert_eq!(
        s.interrupt_pending_requests("interrupted: the cloud restarted")
            .await
            .unwrap(),
        1
    );
    let done = s.request(&r1.uuid, &Scope::All).await.unwrap();
    assert_eq!(done.status.as_str(), "COMPLETED");
    let res = s.results(&r2.uuid).await.unwrap();
    assert_eq!(res[0].result, Outcome::Error);
    assert!(res[0].message.contains("interrupted"));
    assert_eq!(s.results(&r1.uuid).await.unwrap()[0].message, "hello");
}

async fn reopening_keeps_data_and_schema(s: Store) {
    s.create_board(&board("b1", "C1"), &own(None))
        .await
        .unwrap();
    s4t_store::migrate::run(&s).await.unwrap();
    assert_eq!(
        s.list_boards(
            &BoardFilter {
                scope: Scope::All,
                status: None,
                fleet: None
            },
            &Page::default()
        )
        .await
        .unwrap()
        .len(),
        1
    );
}

async fn unicode_survives(s: Store) {
    let code = "# ÀÉ 日本語 ✓ emoji 🚀\nprint('ok')";
    let p = s
        .create_plugin(
            &PluginFields::for_create(json!({"name": "üñí", "code": code})).unwrap(),
            None,
            "d",
        )
        .await
        .unwrap();
    assert_eq!(p.code, code);
    assert_eq!(p.name, "üñí");
}

async fn board_link_lifecycle(s: Store) {
    use s4t_model::board_link::ConnectionInfo;
    let b = s
        .create_board(&board("b1", "C1"), &own(None))
        .await
        .unwrap();
    // A board that never registered cannot connect.
    assert!(matches!(
        s.connect_board(&b, "100", &ConnectionInfo::default()).await,
        Err(StoreError::Conflict(_))
    ));
    let found = s.board_by_code("C1").await.unwrap();
    assert_eq!(found.uuid, b.uuid);
    assert!(matches!(
        s.board_by_code("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    let doc = json!({"iotronic": {"board": {"uuid": b.uuid}}});
    s.register_board(&found, "100", Some(("s4t", &doc)), "h1")
        .await
        .unwrap();
    let b = s.board_by_code("C1").await.unwrap();
    assert_eq!(b.status, BoardStatus::Offline);
    assert_eq!(b.agent.as_deref(), Some("s4t"));
    assert_eq!(serde_json::Value::Object(b.config.clone()), doc);
    assert_eq!(b.session.as_deref(), Some("100"));

    let info = ConnectionInfo {
        lr_version: Some("0.5.0".into()),
        connectivity: json!({"iface": "lo"}).as_object().cloned(),
    };
    s.connect_board(&b, "200", &info).await.unwrap();
    let b = s.board_by_code("C1").await.unwrap();
    assert_eq!(b.status, BoardStatus::Online);
    assert_eq!(b.session.as_deref(), Some("200"));
    assert_eq!(b.lr_version.as_deref(), Some("0.5.0"));
    assert_eq!(b.connectivity["iface"], "lo");
    // The registration session leaving changes nothing: it is no longer the valid one.
    assert!(s.close_session("100").await.unwrap().is_empty());
    assert_eq!(
        s.board_by_code("C1").await.unwrap().status,
        BoardStatus::Online
    );
    assert_eq!(s.close_session("200").await.unwrap(), vec![b.uuid.clone()]);
    let b = s.board_by_code("C1").await.unwrap();
    assert_eq!(b.status, BoardStatus::Offline);
    assert_eq!(b.session, None);
    // Reconnect in the same session id (row reused), then a router restart: nothing is live.
    s.connect_board(&b, "200", &ConnectionInfo::default())
        .await
        .unwrap();
    let b = s.board_by_code("C1").await.unwrap();
    assert_eq!(
        (b.status, b.lr_version.as_deref()),
        (BoardStatus::Online, Some("0.5.0"))
    );
    assert_eq!(s.reconcile_sessions(&Default::default()).await.unwrap(), 1);
    assert_eq!(
        s.board_by_code("C1").await.unwrap().status,
        BoardStatus::Offline
    );
    // Registering again resends: status offline, config kept.
    s.register_board(&b, "300", None, "h2").await.unwrap();
    assert_eq!(
        s.board_secret_hash(&b.uuid).await.unwrap().as_deref(),
        Some("h2")
    );
    let again = s.board_by_code("C1").await.unwrap();
    assert_eq!(serde_json::Value::Object(again.config), doc);
}

async fn async_results_complete_requests_and_parents(s: Store) {
    let b = s
        .create_board(&board("b1", "C1"), &own(None))
        .await
        .unwrap();
    let parent = s
        .open_request(
            &NewRequest {
                destination_uuid: Some(b.uuid.clone()),
                main_request_uuid: None,
                pending_requests: 2,
                project: None,
                request_type: 0,
                action: "enable_webservice".into(),
            },
            &b.uuid,
        )
        .await
        .unwrap();
    s.close_request(&parent.uuid, &b.uuid, Outcome::Success, "main")
        .await
        .unwrap();
    let sub = |action: &str| NewRequest {
        destination_uuid: Some(b.uuid.clone()),
        main_request_uuid: Some(parent.uuid.clone()),
        pending_requests: 0,
        project: None,
        request_type: 0,
        action: action.into(),
    };
    let r1 = s.open_request(&sub("A"), &b.uuid).await.unwrap();
    let r2 = s.open_request(&sub("B"), &b.uuid).await.unwrap();
    // The parent's own result is done, but its sub-requests still run.
    assert_eq!(
        s.request(&parent.uuid, &Scope::All)
            .await
            .unwrap()
            .status
            .as_str(),
        "PENDING"
    );
    s.close_request(&r1.uuid, &b.uuid, Outcome::Running, "A")
        .await
        .unwrap();
    assert_eq!(
        s.request(&r1.uuid, &Scope::All)
            .await
            .unwrap()
            .status
            .as_str(),
        "PENDING"
    );
    assert!(s
        .notify_result(&b.uuid, &r1.uuid, Outcome::Success, "A done")
        .await
        .unwrap());
    assert!(!s
        .notify_result(&b.uuid, "no-such-request", Outcome::Success, "x")
        .await
        .unwrap());
    let p = s.request(&parent.uuid, &Scope::All).await.unwrap();
    assert_eq!((p.status.as_str(), p.pending_requests), ("PENDING", 1));
    s.close_request(&r2.uuid, &b.uuid, Outcome::Error, "B failed")
        .await
        .unwrap();
    let p = s.request(&parent.uuid, &Scope::All).await.unwrap();
    assert_eq!((p.status.as_str(), p.pending_requests), ("COMPLETED", 0));
    let results = s.results(&parent.uuid).await.unwrap();
    assert_eq!(results.len(), 3);
}

async fn batched_sub_requests(s: Store) {
    use s4t_store::batch::Closed;
    let mut keys = Vec::new();
    for i in 0..450 {
        let b = s
            .create_board(&board(&format!("b{i}"), &format!("C{i}")), &own(Some("p")))
            .await
            .unwrap();
        keys.push((b.uuid, b.project));
    }
    let parent = s
        .open_parent_request(&NewRequest {
            destination_uuid: None,
            main_request_uuid: None,
            pending_requests: keys.len() as i64,
            project: Some("p".into()),
            request_type: 1,
            action: "FleetPluginCall".into(),
        })
        .await
        .unwrap();
    let subs = s
        .open_sub_requests(&parent.uuid, "PluginCall", &keys)
        .await
        .unwrap();
    assert_eq!(subs.len(), 450);
    assert!(subs.iter().all(|r| r.id > 0));
    assert_eq!(s.results(&parent.uuid).await.unwrap().len(), 450);
    let closed: Vec<Closed> = subs
        .iter()
        .zip(&keys)
        .take(449)
        .map(|(r, (b, _))| Closed {
            request_uuid: r.uuid.clone(),
            board_uuid: b.clone(),
            outcome: Outcome::Success,
            message: format!("ok {b}"),
        })
        .collect();
    s.close_sub_requests(&parent.uuid, &closed).await.unwrap();
    let p = s.request(&parent.uuid, &Scope::All).await.unwrap();
    assert_eq!((p.status.as_str(), p.pending_requests), ("PENDING", 1));
    let last = Closed {
        request_uuid: subs[449].uuid.clone(),
        board_uuid: keys[449].0.clone(),
        outcome: Outcome::Error,
        message: "failed".into(),
    };
    s.close_sub_requests(&parent.uuid, &[last]).await.unwrap();
    let p = s.request(&parent.uuid, &Scope::All).await.unwrap();
    assert_eq!((p.status.as_str(), p.pending_requests), ("COMPLETED", 0));
    let results = s.results(&parent.uuid).await.unwrap();
    assert_eq!(
        results
            .iter()
            .filter(|r| r.result == Outcome::Success)
            .count(),
        449
    );
    assert!(results
        .iter()
        .any(|r| r.message == format!("ok {}", keys[3].0)));
    assert_eq!(
        s.request(&subs[0].uuid, &Scope::All)
            .await
            .unwrap()
            .status
            .as_str(),
        "COMPLETED"
    );

    let plugin = s
        .create_plugin(
            &PluginFields::for_create(json!({"name": "p1", "code": "x"})).unwrap(),
            None,
            "d",
        )
        .await
        .unwrap();
    let uuids: Vec<String> = keys.iter().map(|(b, _)| b.clone()).collect();
    s.upsert_injections(&plugin.uuid, &uuids[..10], false)
        .await
        .unwrap();
    s.upsert_injections(&plugin.uuid, &uuids[..20], true)
        .await
        .unwrap();
    let first = s.injections(&uuids[0]).await.unwrap();
    assert_eq!(
        (first[0].status.as_str(), first[0].onboot),
        ("updated", true)
    );
    let later = s.injections(&uuids[15]).await.unwrap();
    assert_eq!(
        (later[0].status.as_str(), later[0].onboot),
        ("injected", true)
    );
    assert!(s.injections(&uuids[30]).await.unwrap().is_empty());
}

async fn public_ports_are_reserved_once(s: Store) {
    use s4t_store::services::ReserveError;
    let b = s
        .create_board(&board("pb", "PB"), &own(None))
        .await
        .unwrap();
    let mut svcs = Vec::new();
    for i in 0..5 {
        let f = ServiceFields::read(
            json!({"name": format!("s{i}"), "port": 1000 + i, "protocol": "TCP"}),
            true,
        )
        .unwrap();
        svcs.push(s.create_service(&f, None).await.unwrap().uuid);
    }
    let range = 50100..=50102;
    let first = s
        .reserve_public_port(&b.uuid, &svcs[0], &range, || 7)
        .await
        .unwrap();
    assert!(range.contains(&(first.public_port as u16)));
    assert_eq!(
        s.exposed_at_port(first.public_port as u16)
            .await
            .unwrap()
            .unwrap()
            .service_uuid,
        svcs[0]
    );
    match s.reserve_public_port(&b.uuid, &svcs[0], &range, || 0).await {
        Err(ReserveError::AlreadyExposed { port, .. }) => assert_eq!(port, first.public_port),
        other => panic!("a second reservation of one service: {other:?}"),
    }
    // Three services race for the two ports left, all drawing the same port first: each port
    // goes to one of them, the third is told the range is full.
    let races: Vec<_> = svcs[1..4]
        .iter()
        .map(|svc| {
            let (s, b, svc, range) = (s.clone(), b.uuid.clone(), svc.clone(), range.clone());
            tokio::spawn(async move { s.reserve_public_port(&b, &svc, &range, || 0).await })
        })
        .collect();
    let mut ports = vec![first.public_port];
    let mut full = 0;
    for r in races {
        match r.await.unwrap() {
            Ok(e) => ports.push(e.public_port),
            Err(ReserveError::Full { first, last, .. }) => {
                assert_eq!((first, last), (50100, 50102));
                full += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    ports.sort();
    assert_eq!((ports, full), (vec![50100, 50101, 50102], 1));
    assert!(ReserveError::Full {
        service: "x".into(),
        first: 1,
        last: 2
    }
    .to_string()
    .contains("--public-ports"));
    // A released port is free again; releasing twice is harmless.
    let freed = s.release_public_port(&b.uuid, &svcs[0]).await.unwrap();
    assert_eq!(freed, Some(first.public_port));
    assert_eq!(
        s.release_public_port(&b.uuid, &svcs[0]).await.unwrap(),
        None
    );
    assert!(s
        .exposed_at_port(first.public_port as u16)
        .await
        .unwrap()
        .is_none());
    let taken: Vec<String> = s
        .exposed_services(&b.uuid)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.service_uuid)
        .collect();
    let waiting = svcs[1..4].iter().find(|u| !taken.contains(u)).unwrap();
    let again = s
        .reserve_public_port(&b.uuid, waiting, &range, || 0)
        .await
        .unwrap();
    assert_eq!(again.public_port, first.public_port);
    // The same service enabled twice at once: one exposure, one clear refusal.
    let twice: Vec<_> = (0..2)
        .map(|_| {
            let (s, b, svc) = (s.clone(), b.uuid.clone(), svcs[4].clone());
            tokio::spawn(async move {
                s.reserve_public_port(&b, &svc, &(50200..=50209), || 0)
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for r in twice {
        match r.await.unwrap() {
            Ok(_) => ok += 1,
            Err(ReserveError::AlreadyExposed { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1);
    // A service still exposed cannot be deleted; deleting the board ends its exposures.
    assert!(matches!(
        s.delete_service(&svcs[4]).await,
        Err(StoreError::Conflict(_))
    ));
    s.delete_board(&b.uuid).await.unwrap();
    assert!(s.exposed_at_port(50200).await.unwrap().is_none());
    s.delete_service(&svcs[4]).await.unwrap();
}

async fn webservices_share_the_port_pool(s: Store) {
    use s4t_store::services::{PortPurpose, ReserveError};
    let b = s
        .create_board(&board("wb", "WB"), &own(None))
        .await
        .unwrap();
    let other = s
        .create_board(&board("wb2", "WB2"), &own(None))
        .await
        .unwrap();
    let svc = s
        .create_service(
            &ServiceFields::read(json!({"name": "ssh", "port": 22, "protocol": "TCP"}), true)
                .unwrap(),
            None,
        )
        .await
        .unwrap();
    let range = 50300..=50301;
    let extra = serde_json::Map::new();
    // Webservices need the board enabled under a name; one name per board, one board per name.
    let e = s
        .enable_webservices(&b.uuid, "Board1", "example.test", (80, 443), &extra)
        .await
        .unwrap();
    assert_eq!(
        (e.dns.as_str(), e.https_port, e.http_port),
        ("Board1", 443, 80)
    );
    let again = s
        .enable_webservices(&b.uuid, "other", "example.test", (80, 443), &extra)
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(ref m)) if m.contains("already enabled")),
        "{again:?}"
    );
    let taken = s
        .enable_webservices(&other.uuid, "board1", "example.test", (80, 443), &extra)
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(ref m)) if m.contains("choose another dns")),
        "{taken:?}"
    );

    let (web, new) = s
        .create_webservice(&b.uuid, "web", 8080, false, &extra, &range, || 0)
        .await
        .unwrap();
    assert!(new);
    let tunnel = web.tunnel_port.unwrap() as u16;
    assert!(range.contains(&tunnel));
    let (same, new) = s
        .create_webservice(&b.uuid, "web", 9999, true, &extra, &range, || 0)
        .await
        .unwrap();
    assert_eq!(
        (same.uuid.as_str(), new, same.port),
        (web.uuid.as_str(), false, 8080)
    );
    let holder = s.port_holder(tunnel).await.unwrap().unwrap();
    assert_eq!(
        (holder.purpose, holder.owner_uuid.as_str()),
        (PortPurpose::Webservice, web.uuid.as_str())
    );
    // Host names are case-insensitive and may end with a dot.
    let routed = s
        .webservice_for_host("WEB.board1.Example.Test.")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(routed.uuid, web.uuid);
    assert!(s
        .webservice_for_host("web.board2.example.test")
        .await
        .unwrap()
        .is_none());
    assert!(s.webservice_for_host("example").await.unwrap().is_none());

    // Services and webservices draw from one pool: never the same port.
    let exposed = s
        .reserve_public_port(&b.uuid, &svc.uuid, &range, || 0)
        .await
        .unwrap();
    assert_ne!(exposed.public_port as u16, tunnel);
    assert_eq!(
        s.port_holder(exposed.public_port as u16)
            .await
            .unwrap()
            .unwrap()
            .purpose,
        PortPurpose::Service
    );
    let full = s
        .create_webservice(&b.uuid, "api", 8081, true, &extra, &range, || 0)
        .await;
    assert!(matches!(full, Err(ReserveError::Full { .. })), "{full:?}");

    // Deleting a webservice frees its port; disabling removes the rest and the enabled row.
    s.delete_webservice(&web.uuid).await.unwrap();
    assert!(s.port_holder(tunnel).await.unwrap().is_none());
    assert!(matches!(
        s.delete_webservice(&web.uuid).await,
        Err(StoreError::NotFound { .. })
    ));
    let (api, _) = s
        .create_webservice(&b.uuid, "api", 8081, true, &extra, &range, || 0)
        .await
        .unwrap();
    assert_eq!(api.tunnel_port, Some(tunnel as i64));
    let removed = s.disable_webservices(&b.uuid).await.unwrap();
    assert_eq!(
        removed.iter().map(|w| w.uuid.as_str()).collect::<Vec<_>>(),
        vec![api.uuid.as_str()]
    );
    assert!(s.port_holder(tunnel).await.unwrap().is_none());
    assert!(s
        .webservice_for_host("api.board1.example.test")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.disable_webservices(&b.uuid).await,
        Err(StoreError::NotFound { .. })
    ));
    // The name is free again; a deleted board takes its ports with it.
    s.enable_webservices(&other.uuid, "board1", "example.test", (80, 443), &extra)
        .await
        .unwrap();
    s.release_public_port(&b.uuid, &svc.uuid).await.unwrap();
    let (w2, _) = s
        .create_webservice(&other.uuid, "web", 80, true, &extra, &range, || 0)
        .await
        .unwrap();
    s.delete_board(&other.uuid).await.unwrap();
    assert!(s
        .port_holder(w2.tunnel_port.unwrap() as u16)
        .await
        .unwrap()
        .is_none());
}

async fn workloads_and_replicas(s: Store) {
    let b1 = s
        .create_board(&board("w1", "W1"), &own(Some("p1")))
        .await
        .unwrap();
    let spec = json!({"name": "w", "runtime": "process", "artifact": {"command": "sleep"}});
    let (w, created) = s
        .apply_workload("w", Some("p1"), &spec, None)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(w.generation, 1);
    // Same spec: no new generation; another spec: one more; another project: another workload.
    let (same, created) = s
        .apply_workload("w", Some("p1"), &spec, None)
        .await
        .unwrap();
    assert_eq!(
        (same.uuid.as_str(), same.generation, created),
        (w.uuid.as_str(), 1, false)
    );
    let spec2 = json!({"name": "w", "runtime": "process", "artifact": {"command": "true"}});
    let (upd, _) = s
        .apply_workload("w", Some("p1"), &spec2, None)
        .await
        .unwrap();
    assert_eq!((upd.generation, &upd.spec), (2, &spec2));
    let (other, created) = s
        .apply_workload("w", Some("p2"), &spec, None)
        .await
        .unwrap();
    assert!(created && other.uuid != w.uuid);
    let (none, created) = s.apply_workload("w", None, &spec, None).await.unwrap();
    assert!(created);
    let (none2, created) = s.apply_workload("w", None, &spec, None).await.unwrap();
    assert_eq!((none2.uuid.as_str(), created), (none.uuid.as_str(), false));
    assert_eq!(
        s.workloads(&Scope::Project(Some("p1".into())))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.workload("w", &Scope::Project(Some("p2".into())))
            .await
            .unwrap()
            .uuid,
        other.uuid
    );
    assert!(matches!(
        s.workload("w", &Scope::All).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.workload("nope", &Scope::All).await,
        Err(StoreError::NotFound { .. })
    ));

    // Placing an ordinal again replaces its replica under a new id.
    let r0 = s
        .place_replica(&w.uuid, 0, Some(&b1.uuid), 2)
        .await
        .unwrap();
    assert_eq!(
        (r0.state.as_str(), r0.board_uuid.as_deref()),
        ("starting", Some(b1.uuid.as_str()))
    );
    let waiting = s.place_replica(&w.uuid, 1, None, 2).await.unwrap();
    assert_eq!(waiting.state, "pending");
    let moved = s.place_replica(&w.uuid, 0, None, 2).await.unwrap();
    assert_ne!(moved.uuid, r0.uuid);
    assert!(s.replica(&r0.uuid).await.unwrap().is_none());
    let back = s
        .place_replica(&w.uuid, 0, Some(&b1.uuid), 2)
        .await
        .unwrap();
    s.report_replica(
        &back.uuid,
        &s4t_store::workloads::ReplicaReport {
            state: "backoff".into(),
            exit_code: Some(3),
            restarts: 4,
            message: Some("exited with code 3; restart 4 in 8 s".into()),
            generation: None,
        },
    )
    .await
    .unwrap();
    let got = s.replica(&back.uuid).await.unwrap().unwrap();
    assert_eq!(
        (got.state.as_str(), got.exit_code, got.restarts),
        ("backoff", Some(3), 4)
    );
    assert!(got.reported_at.is_some());
    assert_eq!(s.replicas_on_board(&b1.uuid).await.unwrap().len(), 1);
    assert_eq!(s.replicas(&w.uuid).await.unwrap().len(), 2);
    // A deleted board leaves its replicas waiting; a deleted workload takes them with it.
    s.delete_board(&b1.uuid).await.unwrap();
    assert_eq!(
        s.replica(&back.uuid).await.unwrap().unwrap().board_uuid,
        None
    );
    let gone = s.delete_workload(&w.uuid).await.unwrap();
    assert_eq!(gone.len(), 2);
    assert!(s.replicas(&w.uuid).await.unwrap().is_empty());
    assert!(matches!(
        s.place_replica(&w.uuid, 0, None, 1).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.delete_workload(&w.uuid).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn networks_allocate_addresses_once(s: Store) {
    use s4t_model::net::NetworkFields;
    use s4t_store::networks::NewPort;
    let b = s
        .create_board(&board("nb", "NB"), &own(Some("p1")))
        .await
        .unwrap();
    let f =
        NetworkFields::read(json!({"name": "n1", "cidr": "10.9.0.0/29", "gateway": "10.9.0.1"}))
            .unwrap();
    let n = s.create_network(&f, Some("p1")).await.unwrap();
    assert_eq!(
        (n.cidr.as_str(), n.mtu, n.gateway.as_deref()),
        ("10.9.0.0/29", 1380, Some("10.9.0.1"))
    );
    assert!(matches!(
        s.create_network(&f, Some("p1")).await,
        Err(StoreError::Conflict(_))
    ));
    s.create_network(&f, Some("p2")).await.unwrap();
    assert_eq!(
        s.network("n1", &Scope::Project(Some("p1".into())))
            .await
            .unwrap()
            .uuid,
        n.uuid
    );
    assert!(matches!(
        s.network("n1", &Scope::All).await,
        Err(StoreError::Conflict(_))
    ));
    let new_port = |i: u32| NewPort {
        uuid: uuid::Uuid::new_v4().to_string(),
        board_uuid: b.uuid.clone(),
        vif_name: format!("s4tport{i}"),
        mac: format!("02:00:00:00:00:{i:02x}"),
    };
    // Five hosts besides the gateway; everyone draws the same one first, at once.
    let races: Vec<_> = (0..6)
        .map(|i| {
            let (s, n, p) = (s.clone(), n.clone(), new_port(i));
            tokio::spawn(async move { s.create_network_port(&n, &p, || 0).await })
        })
        .collect();
    let mut ips = Vec::new();
    let mut full = 0;
    for r in races {
        match r.await.unwrap() {
            Ok(p) => ips.push(p.ip.unwrap()),
            Err(StoreError::Conflict(m)) if m.contains("no free address") => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    ips.sort();
    assert_eq!(
        ips,
        vec!["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
    );
    assert_eq!(full, 1);
    assert_eq!(s.network_addresses_used(&n.uuid).await.unwrap(), 5);
    assert!(
        matches!(s.delete_network(&n.uuid).await, Err(StoreError::Conflict(ref m)) if m.contains("5 port"))
    );
    // Deleting a port frees its address; deleting the board frees the rest.
    let ports = s
        .list_ports(&Scope::All, Some(&b.uuid), &s4t_store::Page::default())
        .await
        .unwrap();
    let freed = ports
        .iter()
        .find(|p| p.ip.as_deref() == Some("10.9.0.4"))
        .unwrap();
    s.delete_port(&freed.uuid).await.unwrap();
    let again = s.create_network_port(&n, &new_port(9), || 0).await.unwrap();
    assert_eq!(again.ip.as_deref(), Some("10.9.0.4"));
    assert_eq!(again.network.as_deref(), Some(n.uuid.as_str()));
    // The hub's view of a port: its network and MTU, and its board's key once reported.
    let peer = s.overlay_peer(&again.uuid).await.unwrap().unwrap();
    assert_eq!(
        (
            peer.board_uuid.as_str(),
            peer.network_uuid.as_str(),
            peer.mtu,
            peer.public_key
        ),
        (b.uuid.as_str(), n.uuid.as_str(), 1380, None)
    );
    s.set_board_overlay_key(&b.uuid, "a2V5").await.unwrap();
    let peer = s.overlay_peer(&again.uuid).await.unwrap().unwrap();
    assert_eq!(peer.public_key.as_deref(), Some("a2V5"));
    assert!(matches!(
        s.set_board_overlay_key("no-such-board", "a2V5").await,
        Err(StoreError::NotFound { .. })
    ));
    s.delete_board(&b.uuid).await.unwrap();
    assert_eq!(s.overlay_peer(&again.uuid).await.unwrap(), None);
    assert_eq!(s.network_addresses_used(&n.uuid).await.unwrap(), 0);
    s.delete_network(&n.uuid).await.unwrap();
    assert!(matches!(
        s.delete_network(&n.uuid).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// The boards' version moves with every committed change of a board, its location or its
/// sessions (cascades included), and only then.
async fn boards_version_moves_with_boards_only(s: Store) {
    use s4t_model::board_link::ConnectionInfo;
    use s4t_model::resources::Location;
    let version = async || {
        s.boards_version()
            .await
            .unwrap()
            .expect("change_versions exists")
    };
    let v0 = version().await;
    assert_eq!(version().await, v0, "reading moves nothing");
    let b = s
        .create_board(&board("b1", "C1"), &own(None))
        .await
        .unwrap();
    let v1 = version().await;
    assert!(v1 > v0, "create: {v0} -> {v1}");
    // Another table: no move.
    s.create_plugin(
        &PluginFields::for_create(json!({"name": "p", "code": "x"})).unwrap(),
        None,
        "d",
    )
    .await
    .unwrap();
    assert_eq!(version().await, v1, "a plugin is not a board");
    let rename = BoardUpdate {
        name: Some("b2".into()),
        ..Default::default()
    };
    s.update_board(&b.uuid, &rename).await.unwrap();
    let v2 = version().await;
    assert!(v2 > v1, "update");
    let moved = BoardUpdate {
        location: Some(Location {
            longitude: "1".into(),
            latitude: "2".into(),
            altitude: "3".into(),
            updated_at: None,
        }),
        ..Default::default()
    };
    s.update_board(&b.uuid, &moved).await.unwrap();
    let v3 = version().await;
    assert!(v3 > v2, "location");
    s.register_board(&b, "100", None, "h").await.unwrap();
    let b = s.board_by_code("C1").await.unwrap();
    s.connect_board(&b, "200", &ConnectionInfo::default())
        .await
        .unwrap();
    let v4 = version().await;
    assert!(v4 > v3, "session");
    s.close_session("200").await.unwrap();
    let v5 = version().await;
    assert!(v5 > v4, "session closed");
    s.delete_board(&b.uuid).await.unwrap();
    let v6 = version().await;
    assert!(v6 > v5, "delete (and its cascades)");
    assert_eq!(version().await, v6);
}

/// Two replicas on one PostgreSQL: a board written through one moves the version the other
/// reads, without a query per read once it hears the notification.
#[tokio::test]
async fn postgres_replicas_hear_each_others_board_writes() {
    let Some(admin) = s4t_store::testing::postgres_admin_url() else {
        return;
    };
    let url = s4t_store::testing::fresh_postgres_url(&admin)
        .await
        .unwrap();
    let a = Store::open(&url).await.unwrap();
    let b = Store::open(&url).await.unwrap();
    let start = std::time::Instant::now();
    while !a.hears_other_writers() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "A never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before = a.boards_version().await.unwrap();
    // Answered from memory now: only the notification can tell A of B's write.
    assert_eq!(a.boards_version().await.unwrap(), before);
    b.create_board(&board("b1", "C1"), &own(None))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if a.boards_version().await.unwrap() != before {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "replica A never saw B's board"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        a.boards_version().await.unwrap(),
        b.boards_version().await.unwrap()
    );
}

macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test] async fn $name() { if let Some(s) = super::sqlite().await { super::$name(s).await } } )* }
        mod postgres { $( #[tokio::test] async fn $name() { if let Some(s) = super::postgres().await { super::$name(s).await } } )* }
    };
}

both_engines!(
    board_round_trip,
    duplicate_board_name_and_code_conflict,
    pagination_by_marker_in_both_directions,
    lists_are_scoped_by_project,
    deleting_a_board_cascades,
    fleet_with_boards_cannot_be_deleted,
    service_round_trip,
    ambiguous_plugin_names_conflict,
    requests_complete_and_interrupt,
    reopening_keeps_data_and_schema,
    unicode_survives,
    board_link_lifecycle,
    async_results_complete_requests_and_parents,
    batched_sub_requests,
    public_ports_are_reserved_once,
    webservices_share_the_port_pool,
    workloads_and_replicas,
    networks_allocate_addresses_once,
    boards_version_moves_with_boards_only,
);
