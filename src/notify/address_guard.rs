//! Server-side request forgery guard for user-supplied URLs (Slack, Discord, webhooks).
//! Every address a user's host resolves to is filtered by one resolver, the one the
//! delivery client connects through ([`GuardedResolver`]), so no later DNS answer can
//! point a request elsewhere; a literal address in the URL is checked the same way
//! before the request ([`AddressGuard::check`]). Refused unless private networks are
//! allowed: every non-global range — loopback, private, link-local (cloud metadata at
//! 169.254.169.254), shared, benchmarking, reserved, documentation, multicast, IPv6
//! unique- and site-local — and IPv6 forms that embed a refused IPv4 address
//! (IPv4-mapped and -compatible, NAT64, 6to4, Teredo). The client uses no proxy (a
//! proxy would resolve the name itself) and follows no redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("the URL is not a valid http(s) URL")]
    InvalidUrl,
    #[error("the host does not resolve")]
    Unresolvable,
    #[error("the host resolves to a private, loopback or link-local address")]
    PrivateAddress,
}

/// Checks user-supplied URLs.
#[derive(Debug, Clone, Copy)]
pub struct AddressGuard {
    pub allow_private_networks: bool,
}

/// Whether `ip` is a globally reachable IPv4 address.
fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved (240/4) and broadcast
}

/// Whether `ip` is a globally reachable IPv6 address, judging an embedded IPv4
/// address as IPv4.
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded = |high: u16, low: u16| {
        Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
    };
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (with :: and ::1).
        return is_public_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64, well-known prefix 64:ff9b::/96.
        return is_public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4 2002:a.b.c.d::/48.
        return is_public_v4(embedded(s[1], s[2]));
    }
    let first = s[0];
    !((first & 0xff00) == 0xff00 // multicast
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x64 && s[1] == 0xff9b) // local-use NAT64 64:ff9b:1::/48
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: embeds an address it hides
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || s[0] == 0) // the rest of ::/16 (unspecified, loopback and reserved)
}

/// Whether `ip` is a public address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// The addresses of `host` a request may connect to: all of them when private
/// networks are allowed, else the public ones; refused when none is left.
async fn allowed_addresses(
    host: &str,
    allow_private_networks: bool,
) -> Result<Vec<SocketAddr>, GuardError> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| GuardError::Unresolvable)?
        .collect();
    if resolved.is_empty() {
        return Err(GuardError::Unresolvable);
    }
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|a| allow_private_networks || is_public(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(GuardError::PrivateAddress);
    }
    Ok(allowed)
}

/// The resolver of the delivery client for user URLs: every name it resolves is
/// filtered here, at each connection, whatever the DNS answers this time.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private_networks: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private_networks;
        Box::pin(async move {
            let addresses = allowed_addresses(name.as_str(), allow).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

impl AddressGuard {
    /// Checks `url` before a request: an http(s) URL whose literal address, or some
    /// address its name resolves to now, may be connected to. The connection itself
    /// goes through [`GuardedResolver`], which filters again.
    pub async fn check(&self, url: &str) -> Result<(), GuardError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| GuardError::InvalidUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(GuardError::InvalidUrl);
        }
        let host = parsed.host_str().ok_or(GuardError::InvalidUrl)?;
        match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => self.literal(ip),
            Err(_) => allowed_addresses(host, self.allow_private_networks)
                .await
                .map(drop),
        }
    }

    fn literal(&self, ip: IpAddr) -> Result<(), GuardError> {
        if self.allow_private_networks || is_public(ip) {
            Ok(())
        } else {
            Err(GuardError::PrivateAddress)
        }
    }
}

#[cfg(test)]
#[path = "address_guard_tests.rs"]
mod tests;
