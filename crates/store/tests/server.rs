//! The server's API clients on both back-ends: names unique, revocation, hostile input, and
//! the demand the servers of a deployment share to split each client's rate.

#[macro_use]
mod common;

use aranea_store::{NewApiClient, OthersDemand, StoreError};
use common::{NOW, TestDb};

contract_tests!(
    clients_round_trip_and_names_stay_unique,
    revoked_clients_stay_listed_with_their_time,
    hostile_client_fields_are_refused,
    clients_bound_to_a_hotline_name_a_registered_one,
    servers_share_their_clients_demand,
);

fn client(name: &str, fill: u8) -> NewApiClient {
    NewApiClient {
        name: name.to_owned(),
        secret_sha256: [fill; 32],
        scopes: vec!["shield".to_owned(), "intake".to_owned()],
        rate_per_second: Some(50),
        hotline: None,
    }
}

async fn clients_round_trip_and_names_stay_unique(db: &TestDb) {
    let store = db.open().await;
    let added = store
        .api_clients()
        .add(&client("acme", 7), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(added.name, "acme");
    assert_eq!(added.secret_sha256, [7; 32]);
    assert_eq!(added.scopes, ["shield", "intake"]);
    assert_eq!(added.rate_per_second, Some(50));
    assert_eq!(added.created_at, NOW);
    assert_eq!(added.revoked_at, None);
    let again = store
        .api_clients()
        .add(&client("acme", 9), NOW + 1)
        .await
        .unwrap();
    assert!(again.is_none(), "a taken name is refused");
    let mut unlimited = client("beta", 1);
    unlimited.rate_per_second = None;
    unlimited.scopes.clear();
    store
        .api_clients()
        .add(&unlimited, NOW)
        .await
        .unwrap()
        .unwrap();
    let listed = store.api_clients().list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], added, "the first secret is kept");
    assert_eq!(listed[1].rate_per_second, None);
    assert!(listed[1].scopes.is_empty());
}

async fn revoked_clients_stay_listed_with_their_time(db: &TestDb) {
    let store = db.open().await;
    store
        .api_clients()
        .add(&client("acme", 7), NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(store.api_clients().revoke("acme", NOW + 5).await.unwrap());
    assert!(
        !store.api_clients().revoke("acme", NOW + 6).await.unwrap(),
        "already revoked"
    );
    assert!(!store.api_clients().revoke("nobody", NOW).await.unwrap());
    let listed = store.api_clients().list().await.unwrap();
    assert_eq!(listed[0].revoked_at, Some(NOW + 5));
    assert!(
        store
            .api_clients()
            .add(&client("acme", 8), NOW)
            .await
            .unwrap()
            .is_none()
    );
}

async fn hostile_client_fields_are_refused(db: &TestDb) {
    let store = db.open().await;
    let clients = store.api_clients();
    let empty = clients.add(&client("", 1), NOW).await;
    assert!(matches!(empty, Err(StoreError::Empty { .. })), "{empty:?}");
    let long = clients.add(&client(&"x".repeat(101), 1), NOW).await;
    assert!(matches!(long, Err(StoreError::TooLong { .. })), "{long:?}");
    let nul = clients.add(&client("a\0b", 1), NOW).await;
    assert!(matches!(nul, Err(StoreError::NulInText { .. })), "{nul:?}");
    let mut zero = client("zero", 1);
    zero.rate_per_second = Some(0);
    let zero = clients.add(&zero, NOW).await;
    assert!(
        matches!(zero, Err(StoreError::OutOfRange { .. })),
        "{zero:?}"
    );
    let mut huge = client("huge", 1);
    huge.scopes = vec!["s".repeat(2000)];
    assert!(matches!(
        clients.add(&huge, NOW).await,
        Err(StoreError::TooLong { .. })
    ));
    assert!(clients.list().await.unwrap().is_empty());
}

async fn clients_bound_to_a_hotline_name_a_registered_one(db: &TestDb) {
    use aranea_store::NewHotline;
    let store = db.open().await;
    let clients = store.api_clients();
    let mut bound = client("se-partner", 3);
    bound.hotline = Some("se".to_owned());
    let unknown = clients.add(&bound, NOW).await;
    assert!(
        matches!(&unknown, Err(StoreError::UnknownHotline { code }) if code == "se"),
        "{unknown:?}"
    );
    assert!(clients.list().await.unwrap().is_empty(), "nothing written");
    let hotline = NewHotline {
        code: "se".into(),
        name: "Hotline se".into(),
        country: "SE".into(),
        languages: vec!["sv".into()],
        jurisdiction: "SE".into(),
        shares_review_pool: true,
        shares_banks: true,
        daily_cap: 100,
    };
    store
        .review_desk()
        .add_hotline(&hotline, NOW)
        .await
        .unwrap();
    let added = clients.add(&bound, NOW).await.unwrap().unwrap();
    assert_eq!(added.hotline.as_deref(), Some("se"));
    let platform = clients.add(&client("ops", 4), NOW).await.unwrap().unwrap();
    assert_eq!(platform.hotline, None);
    let listed = clients.list().await.unwrap();
    assert_eq!(listed, [platform, added]);
    // A taken name stays `None`, not an unknown hotline, whatever the hotline.
    assert!(clients.add(&bound, NOW).await.unwrap().is_none());
}

fn others(client: &str, servers: u32, demand_milli: i64) -> OthersDemand {
    OthersDemand {
        client: client.to_owned(),
        servers,
        demand_milli,
    }
}

/// Each server sees the others' latest demand per client (never its own), summed; a second
/// write replaces a server's row; a row not written since the freshness cut is not counted; a
/// negative demand is kept as zero.
async fn servers_share_their_clients_demand(db: &TestDb) {
    let store = db.open().await;
    let clients = store.api_clients();
    let a = clients
        .share_demand("a", &[("acme".into(), 4_000), ("beta".into(), 500)], NOW, 0)
        .await
        .unwrap();
    assert_eq!(a, []);
    let b = clients
        .share_demand("b", &[("acme".into(), 1_000)], NOW + 100, 0)
        .await
        .unwrap();
    assert_eq!(b, [others("acme", 1, 4_000), others("beta", 1, 500)]);
    let c = clients
        .share_demand("c", &[("acme".into(), -5)], NOW + 200, 0)
        .await
        .unwrap();
    assert_eq!(c, [others("acme", 2, 5_000), others("beta", 1, 500)]);
    // a's demand changed: its row is replaced, not added to.
    let a = clients
        .share_demand("a", &[("acme".into(), 2_000)], NOW + 1_000, 0)
        .await
        .unwrap();
    assert_eq!(a, [others("acme", 2, 1_000)]);
    // Rows written at or before the cut count no more, for everyone: b's, and a's for beta
    // (a wrote beta's at NOW and did not write it again); a server asked nothing only reads.
    let c = clients
        .share_demand("c", &[], NOW + 4_000, NOW + 100)
        .await
        .unwrap();
    assert_eq!(c, [others("acme", 1, 2_000)]);
    let a = clients
        .share_demand("a", &[], NOW + 4_100, NOW + 100)
        .await
        .unwrap();
    assert_eq!(a, [others("acme", 1, 0)]);
    assert!(matches!(
        clients.share_demand("", &[], NOW, 0).await,
        Err(StoreError::Empty { .. })
    ));
    store.close().await;
}
