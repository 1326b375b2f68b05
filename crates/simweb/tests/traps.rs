//! Crawler traps with photos: every trap page of a site of interest shows photos from the
//! site's pool, the first one known, so matching keeps a crawler inside the trap.

mod common;

use std::collections::BTreeSet;

use aranea_simweb::{SimWeb, scenario};
use common::{get, links};

const TRAPS: &str = r#"
name = "traps"
tlds = ["sim"]
known_images = 4

[[provider]]
name = "Trapworks"
country = "NL"
asn = 64501
blocks = ["127.10.9.0/24"]

[[site]]
host = "events.trap.sim"
provider = "Trapworks"
kind = "gallery"
pages = 2
known_share = 0.5
traps = ["calendar", "session_id", "deep_path"]
trap_images = 3

[[site]]
host = "quiet.trap.sim"
provider = "Trapworks"
kind = "plain"
pages = 2
traps = ["calendar"]
trap_images = 2
"#;

fn photos(html: &str) -> Vec<String> {
    links(html)
        .into_iter()
        .filter(|l| l.starts_with("/media/events/"))
        .collect()
}

#[test]
fn every_trap_page_shows_pool_photos_the_first_one_known() {
    let world = SimWeb::new(scenario::parse(TRAPS).unwrap())
        .seed(3)
        .start()
        .unwrap();
    let host = "events.trap.sim";
    let home = links(&get(&world, host, "/").text());
    let shop = home.iter().find(|l| l.starts_with("/shop/")).unwrap();
    assert!(home.iter().any(|l| l == "/calendar/2026/01/"), "{home:?}");
    assert!(home.iter().any(|l| l == "/topics/"), "{home:?}");

    let mut first_photos = BTreeSet::new();
    let mut all_photos = BTreeSet::new();
    let mut walked = 0;
    for start in ["/calendar/2026/01/", shop.as_str(), "/topics/"] {
        let mut path = start.to_owned();
        for _ in 0..6 {
            let page = get(&world, host, &path);
            assert_eq!(page.status, 200, "{path}");
            let text = page.text();
            let shown = photos(&text);
            assert!(!shown.is_empty() && shown.len() <= 2, "{path}: {shown:?}");
            first_photos.insert(shown[0].clone());
            all_photos.extend(shown);
            walked += 1;
            path = links(&text)
                .into_iter()
                .find(|l| {
                    l.contains("/calendar/2026/0") && !l.contains("day=")
                        || l.contains("sid=")
                        || l == "topics/"
                })
                .map(|l| match l.strip_prefix("topics/") {
                    Some(_) => format!("{path}topics/"),
                    None => l,
                })
                .unwrap();
        }
    }
    assert_eq!(walked, 18);
    // The deep path repeats itself: six levels of the same segment.
    assert_eq!(
        first_photos.len(),
        1,
        "the pool's first photo on every page"
    );
    assert!(all_photos.len() >= 2, "{all_photos:?}");
    let first = first_photos.first().unwrap();
    let url = world.url(host, first);
    assert_eq!(world.pdq_distance_to_bank(&url), Some(0), "{url}");
    for photo in &all_photos {
        let served = get(&world, host, photo);
        assert_eq!(served.status, 200, "{photo}");
        aranea_hash::hash_media(&served.body, &aranea_hash::Limits::default()).unwrap();
        let image = world.image_at(&world.url(host, photo), std::time::Duration::ZERO);
        assert!(image.is_some(), "{photo} is in the ground truth");
    }

    // A trap on a site without known photos shows unknown photos only.
    let quiet = get(&world, "quiet.trap.sim", "/calendar/2026/01/").text();
    let shown = photos(&quiet);
    assert!(!shown.is_empty());
    for photo in shown {
        let url = world.url("quiet.trap.sim", &photo);
        assert!(
            !world
                .image_at(&url, std::time::Duration::ZERO)
                .unwrap()
                .known
        );
    }
}

#[test]
fn the_deep_path_trap_ends_at_its_level_cap_and_traps_stay_off_sites_without_them() {
    let world = SimWeb::new(scenario::parse(TRAPS).unwrap())
        .seed(3)
        .start()
        .unwrap();
    let host = "events.trap.sim";
    let deep = "/topics/".to_owned() + &"older/".repeat(62);
    assert_eq!(get(&world, host, &deep).status, 200);
    let deeper = deep.clone() + "older/older/";
    assert_eq!(get(&world, host, &deeper).status, 404);
    assert_eq!(get(&world, host, "/topics/no-slash").status, 404);
    assert_eq!(get(&world, "quiet.trap.sim", "/topics/").status, 404);
    assert_eq!(get(&world, "quiet.trap.sim", "/shop/").status, 404);
}
