//! The guard's ranges: examples, and a property test over addresses generated inside
//! and just outside every refused range.

use super::*;
use proptest::prelude::*;

#[tokio::test]
async fn private_loopback_and_metadata_addresses_are_refused() {
    let guard = AddressGuard {
        allow_private_networks: false,
    };
    for url in [
        "http://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3:8080/x",
        "http://192.168.0.1/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:7f00:1::]/",
        "http://[fec0::1]/",
        "http://198.18.0.1/",
        "http://192.0.0.8/",
        "http://240.0.0.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://localhost:9/",
    ] {
        assert_eq!(
            guard.check(url).await,
            Err(GuardError::PrivateAddress),
            "{url}"
        );
    }
    assert_eq!(
        guard.check("ftp://example.com/").await,
        Err(GuardError::InvalidUrl)
    );
    assert_eq!(guard.check("not a url").await, Err(GuardError::InvalidUrl));
    let allowed = AddressGuard {
        allow_private_networks: true,
    };
    assert!(allowed.check("http://127.0.0.1:9/").await.is_ok());
    assert!(is_public("93.184.216.34".parse().unwrap()));
    assert!(is_public(
        "2606:2800:220:1:248:1893:25c8:1946".parse().unwrap()
    ));
}

#[tokio::test]
async fn the_resolver_never_answers_a_refused_address() {
    use reqwest::dns::Resolve;
    use std::str::FromStr;
    let guarded = GuardedResolver {
        allow_private_networks: false,
    };
    let name = reqwest::dns::Name::from_str("localhost").unwrap();
    assert!(
        guarded.resolve(name).await.is_err(),
        "loopback only: refused"
    );
    let open = GuardedResolver {
        allow_private_networks: true,
    };
    let name = reqwest::dns::Name::from_str("localhost").unwrap();
    let addresses: Vec<SocketAddr> = open.resolve(name).await.unwrap().collect();
    assert!(addresses.iter().all(|a| a.ip().is_loopback()));
}

/// Refused IPv4 ranges as (first address, prefix length).
const REFUSED_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 3),
];

/// Refused IPv6 ranges that embed no IPv4 address.
const REFUSED_V6: &[(u128, u32)] = &[
    (0xff00 << 112, 8),
    (0xfc00 << 112, 7),
    (0xfe80 << 112, 10),
    (0xfec0 << 112, 10),
    (0x0064_ff9b_0001 << 80, 48),
    (0x2001_0000 << 96, 32),
    (0x2001_0db8 << 96, 32),
    (0x0100 << 112, 64),
];

fn in_range(base: u128, prefix: u32, offset: u128, bits: u32) -> u128 {
    let host_bits = bits - prefix;
    let mask = if host_bits == 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    base | (offset & mask)
}

/// The address just below a range and just above it (when they exist).
fn neighbours(base: u128, prefix: u32, bits: u32) -> [Option<u128>; 2] {
    let size = 1u128 << (bits - prefix);
    let top = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    [
        base.checked_sub(1),
        base.checked_add(size).filter(|&next| next <= top),
    ]
}

fn v4(n: u128) -> Ipv4Addr {
    Ipv4Addr::from(n as u32)
}

fn refused_v4(ip: Ipv4Addr) -> bool {
    let n = u32::from(ip);
    REFUSED_V4.iter().any(|&(base, prefix)| {
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        n & mask == u32::from(Ipv4Addr::from(base))
    })
}

/// The IPv6 forms that carry `ip`: mapped, compatible, NAT64 and 6to4.
fn embeddings(ip: Ipv4Addr) -> [Ipv6Addr; 4] {
    let n = u128::from(u32::from(ip));
    [
        Ipv6Addr::from(0xffff_u128 << 32 | n),
        Ipv6Addr::from(n),
        Ipv6Addr::from(0x0064_ff9b_u128 << 96 | n),
        Ipv6Addr::from(0x2002_u128 << 112 | n << 80),
    ]
}

proptest! {
    #[test]
    fn every_refused_v4_range_is_refused_and_its_neighbours_judged_alone(
        range in 0..REFUSED_V4.len(),
        offset in any::<u32>(),
    ) {
        let (base, prefix) = REFUSED_V4[range];
        let base = u128::from(u32::from(Ipv4Addr::from(base)));
        let inside = v4(in_range(base, prefix, u128::from(offset), 32));
        prop_assert!(!is_public(IpAddr::V4(inside)), "{inside}");
        for embedded in embeddings(inside) {
            prop_assert!(!is_public(IpAddr::V6(embedded)), "{embedded}");
        }
        for outside in neighbours(base, prefix, 32).into_iter().flatten().map(v4) {
            // Just outside: refused only if another range holds it.
            prop_assert_eq!(is_public(IpAddr::V4(outside)), !refused_v4(outside), "{}", outside);
            for embedded in embeddings(outside) {
                prop_assert_eq!(
                    is_public(IpAddr::V6(embedded)),
                    !refused_v4(outside),
                    "{}", embedded
                );
            }
        }
    }

    #[test]
    fn every_refused_v6_range_is_refused_and_its_neighbours_are_not(
        range in 0..REFUSED_V6.len(),
        offset in any::<u128>(),
    ) {
        let (base, prefix) = REFUSED_V6[range];
        let inside = Ipv6Addr::from(in_range(base, prefix, offset, 128));
        prop_assert!(!is_public(IpAddr::V6(inside)), "{inside}");
        for outside in neighbours(base, prefix, 128).into_iter().flatten() {
            let outside = Ipv6Addr::from(outside);
            let refused = REFUSED_V6.iter().any(|&(b, p)| {
                u128::from(outside) >> (128 - p) == b >> (128 - p)
            }) || outside.segments()[0] == 0x2002
                || outside.segments()[0] == 0
                || outside.segments()[..2] == [0x64, 0xff9b];
            if !refused {
                prop_assert!(is_public(IpAddr::V6(outside)), "{outside}");
            }
        }
    }

    #[test]
    fn global_unicast_addresses_outside_every_range_are_allowed(n in any::<u32>()) {
        let ip = Ipv4Addr::from(n);
        prop_assert_eq!(is_public(IpAddr::V4(ip)), !refused_v4(ip));
    }
}
