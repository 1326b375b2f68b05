//! Any JSON as an RDAP (RFC 9083) answer about an IP network, which comes from a server we do
//! not control: reading it must give a network or a `Malformed` error, never panic. A network
//! read keeps its documented bounds: texts cut to 200 characters, a two-letter country,
//! contacts only of the five known roles in order of preference, each a distinct plausible
//! address in lower case.
#![no_main]

use aranea_notice::rdap::{RdapError, parse_network, plausible_email};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const URL: &str = "https://rdap.fuzz.sim/ip/192.0.2.1";
const ROLES: [&str; 5] = ["abuse", "technical", "administrative", "registrant", "noc"];

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let network = match parse_network(URL, &body) {
        Ok(network) => network,
        Err(RdapError::Malformed { url, .. }) => {
            assert_eq!(url, URL);
            let class = body.get("objectClassName").and_then(Value::as_str);
            assert!(!body.is_object() || class.is_some_and(|c| c != "ip network"));
            return;
        }
        Err(other) => panic!("reading an answer is not {other}"),
    };
    assert!(body.is_object());
    assert_eq!(network.source, URL);
    for text in [&network.handle, &network.name, &network.organisation]
        .into_iter()
        .flatten()
    {
        assert!(text.chars().count() <= 200);
    }
    if let Some(country) = &network.country {
        assert_eq!(country.len(), 2, "{country:?}");
    }
    let mut last_rank = 0;
    for (index, (role, email)) in network.contacts.iter().enumerate() {
        let rank = ROLES
            .iter()
            .position(|r| r == role)
            .expect("a contact has a known role");
        assert!(
            rank >= last_rank,
            "{:?} out of preference order",
            network.contacts
        );
        last_rank = rank;
        assert!(plausible_email(email), "{email:?}");
        assert_eq!(email, &email.trim().to_ascii_lowercase());
        assert!(
            network.contacts[..index].iter().all(|(_, e)| e != email),
            "{email} twice"
        );
    }
    assert_eq!(
        network.best_role(),
        network.contacts.first().map(|(role, _)| role.as_str())
    );
});
