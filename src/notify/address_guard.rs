//! Server-side request forgery guard for user-supplied URLs (Slack, Discord, webhooks):
//! the host is resolved here and every address checked — loopback, private, link-local
//! (cloud metadata at 169.254.169.254), unspecified, multicast, shared (100.64/10) and
//! IPv6 unique-local are refused unless private networks are allowed — and the request
//! is then pinned to the checked address, so a second DNS answer cannot redirect it.
//! Redirects are never followed.

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

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

/// Whether `ip` is a public address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

impl AddressGuard {
    /// The host of `url` and the checked address to connect to.
    pub async fn check(&self, url: &str) -> Result<(String, SocketAddr), GuardError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| GuardError::InvalidUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(GuardError::InvalidUrl);
        }
        let host = parsed.host_str().ok_or(GuardError::InvalidUrl)?.to_owned();
        let port = parsed
            .port_or_known_default()
            .ok_or(GuardError::InvalidUrl)?;
        let lookup = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((lookup.as_str(), port))
            .await
            .map_err(|_| GuardError::Unresolvable)?
            .collect();
        if addresses.is_empty() {
            return Err(GuardError::Unresolvable);
        }
        if !self.allow_private_networks && addresses.iter().any(|a| !is_public(a.ip())) {
            return Err(GuardError::PrivateAddress);
        }
        Ok((host, addresses[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
