//! Any text as an iptoasn TSV table (`start  end  AS  country  description`), which comes from
//! outside: parsing must count bad lines and never panic or fail. Rows kept are at most the
//! lines given; a lookup of any address (the ones the file names and a few others) returns
//! only a range of the address's family that holds it, with a routed AS number, a country of
//! two upper-case letters if any, a description of at most 200 characters, and a prefix text
//! that, when it is a CIDR, covers exactly the range.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aranea_notice::asn::AsnTable;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let table = AsnTable::parse(&text);
    assert!(table.len() + table.skipped() <= text.lines().count());
    let mut addresses = vec![
        IpAddr::V4(Ipv4Addr::new(1, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    ];
    for line in text.lines().take(64) {
        for field in line.split('\t').take(2) {
            if let Ok(ip) = field.trim().parse::<IpAddr>() {
                addresses.push(ip);
            }
        }
    }
    for ip in addresses {
        let Some(range) = table.lookup(ip) else {
            continue;
        };
        assert_eq!(range.start.is_ipv4(), ip.is_ipv4());
        assert_eq!(range.end.is_ipv4(), ip.is_ipv4());
        assert!(
            range.start <= ip && ip <= range.end,
            "{ip} not in {range:?}"
        );
        assert_ne!(range.asn, 0);
        if let Some(country) = &range.country {
            assert!(country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()));
        }
        assert!(range.description.chars().count() <= 200);
        let prefix = range.prefix();
        if prefix.contains('/') {
            let net: IpNet = prefix.parse().expect("a CIDR prefix parses");
            assert_eq!((net.network(), net.broadcast()), (range.start, range.end));
        }
    }
});
