use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn strict() -> AddressPolicy {
    AddressPolicy::new(&GuardConfig::default())
}

#[test]
fn every_special_ipv4_range_is_refused_at_both_ends() {
    let ranges = [
        ("0.0.0.0", "0.255.255.255"),
        ("10.0.0.0", "10.255.255.255"),
        ("100.64.0.0", "100.127.255.255"),
        ("127.0.0.0", "127.255.255.255"),
        ("169.254.0.0", "169.254.255.255"),
        ("172.16.0.0", "172.31.255.255"),
        ("192.0.0.0", "192.0.0.255"),
        ("192.0.2.0", "192.0.2.255"),
        ("192.88.99.0", "192.88.99.255"),
        ("192.168.0.0", "192.168.255.255"),
        ("198.18.0.0", "198.19.255.255"),
        ("198.51.100.0", "198.51.100.255"),
        ("203.0.113.0", "203.0.113.255"),
        ("224.0.0.0", "239.255.255.255"),
        ("240.0.0.0", "255.255.255.255"),
    ];
    let policy = strict();
    for (first, last) in ranges {
        assert!(policy.check_ip(ip(first)).is_err(), "{first}");
        assert!(policy.check_ip(ip(last)).is_err(), "{last}");
    }
    assert!(policy.check_ip(ip("169.254.169.254")).is_err());
}

#[test]
fn addresses_just_outside_the_ipv4_ranges_are_public() {
    let policy = strict();
    for public in [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
    ] {
        assert_eq!(policy.check_ip(ip(public)), Ok(()), "{public}");
    }
}

#[test]
fn every_special_ipv6_range_is_refused() {
    let policy = strict();
    for refused in [
        "::",
        "::1",
        "::a00:1",                // IPv4-compatible ::10.0.0.1
        "::ffff:127.0.0.1",       // mapped loopback
        "::ffff:10.0.0.1",        // mapped private
        "::ffff:169.254.169.254", // mapped metadata
        "64:ff9b::a00:1",         // NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",        // NAT64 of 127.0.0.1
        "64:ff9b:1::1",           // local-use NAT64
        "2002:a00:1::1",          // 6to4 of 10.0.0.1
        "2002:a9fe:a9fe::1",      // 6to4 of 169.254.169.254
        "2001::1",                // Teredo
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2001:2::1", // benchmarking
        "2001:db8::1",
        "3fff::1",
        "5f00::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "100::1", // discard-only
        "4000::1",
    ] {
        assert!(policy.check_ip(ip(refused)).is_err(), "{refused}");
    }
}

#[test]
fn public_ipv6_and_embedded_public_ipv4_pass() {
    let policy = strict();
    for public in [
        "2606:4700:4700::1111",
        "2a00:1450:4001::1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
        "2001:4860::8888",
    ] {
        assert_eq!(policy.check_ip(ip(public)), Ok(()), "{public}");
    }
}

#[test]
fn allowlist_admits_only_its_blocks() {
    let config = GuardConfig {
        allow_cidrs: vec!["127.10.0.0/16".parse().unwrap()],
        ..GuardConfig::default()
    };
    let policy = AddressPolicy::new(&config);
    assert_eq!(policy.check_ip(ip("127.10.1.1")), Ok(()));
    assert_eq!(policy.check_ip(ip("::ffff:127.10.1.1")), Ok(()));
    assert!(policy.check_ip(ip("127.0.0.1")).is_err());
    assert!(policy.check_ip(ip("127.11.0.1")).is_err());
    assert!(policy.check_ip(ip("10.0.0.1")).is_err());
}

#[test]
fn urls_are_checked_for_scheme_port_and_literal_address() {
    let policy = strict();
    let check = |u: &str| policy.check_url(&Url::parse(u).unwrap());
    assert_eq!(check("https://example.com/"), Ok(()));
    assert_eq!(check("http://example.com:8080/"), Ok(()));
    assert!(matches!(
        check("ftp://example.com/"),
        Err(GuardError::SchemeNotAllowed { .. })
    ));
    assert!(matches!(
        check("file:///etc/passwd"),
        Err(GuardError::SchemeNotAllowed { .. })
    ));
    assert!(matches!(
        check("http://example.com:25/"),
        Err(GuardError::PortNotAllowed { port: 25 })
    ));
    assert!(matches!(
        check("http://example.com:22/"),
        Err(GuardError::PortNotAllowed { port: 22 })
    ));
    for literal in [
        "http://127.0.0.1/",
        "http://0x7f.1/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:7f00:1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
        "http://0/",
    ] {
        assert!(
            matches!(check(literal), Err(GuardError::NonPublicAddress { .. })),
            "{literal}"
        );
    }
    assert_eq!(check("http://8.8.8.8/"), Ok(()));
}
