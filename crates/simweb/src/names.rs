//! Word lists for generated names: sites, providers and page slugs look like a web, not hex.

use crate::rng::Rng;

const WORDS: &[&str] = &[
    "amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor", "island", "juniper",
    "kestrel", "lagoon", "meadow", "nectar", "orchid", "pebble", "quartz", "river", "summit",
    "tundra", "umber", "valley", "willow", "yarrow", "zephyr", "alpine", "basalt", "canyon",
    "dune", "estuary", "fern", "glacier", "heath", "iris", "jade", "kelp", "lichen", "moss",
    "nimbus", "oak", "prairie", "reed", "sierra", "thistle", "upland", "vine", "wren",
];

const COMPANY: &[&str] = &[
    "Nordhost",
    "Bitfarm",
    "Cloudline",
    "Datavault",
    "Edgeworks",
    "Fastrack",
    "Gigaserve",
    "Hostbridge",
    "Ironrack",
    "Jetweb",
    "Kilobyte",
    "Lumenet",
    "Metrohost",
    "Netcove",
    "Orbitel",
    "Pixelhost",
    "Quickrack",
    "Rackline",
    "Serverfarm",
    "Terahost",
    "Uplink",
    "Vectorweb",
    "Webharbor",
    "Xenonet",
    "Yottahost",
    "Zonehost",
];

const SUFFIX: &[&str] = &[
    "Hosting",
    "Cloud",
    "Networks",
    "Datacenter",
    "Internet",
    "Telecom",
];

pub fn word(rng: &mut Rng) -> &'static str {
    rng.pick(WORDS).copied().unwrap_or("site")
}

pub fn company(rng: &mut Rng) -> String {
    let base = rng.pick(COMPANY).copied().unwrap_or("Host");
    let suffix = rng.pick(SUFFIX).copied().unwrap_or("Hosting");
    format!("{base} {suffix}")
}
