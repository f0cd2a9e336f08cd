//! Image URLs come from clients, so every address the worker connects to is checked: no loopback,
//! private, link-local (cloud metadata lives there), shared, multicast or unspecified addresses,
//! only http(s), a bounded number of redirects, each of them checked again.
//!
//! Names are checked after DNS resolution by [`GuardedResolver`] (reqwest resolves through it for
//! every new connection, redirects included), so a public name pointing at 10.0.0.1 is refused;
//! IP literals never reach a resolver and are checked by [`Guard::check_url`] before the request
//! and in the redirect policy. An explicit allow-list (`IMAGE_ALLOW_HOSTS`, for local development
//! and tests: `127.0.0.1,localhost`) lets named hosts or addresses through.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused: {0}")]
pub struct Refused(pub String);

/// The address policy, shared by the resolver and the redirect policy.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Host names and addresses let through although they are not public.
    allow: Vec<String>,
}

impl Guard {
    /// `allow`: comma-separated host names or IP addresses (`IMAGE_ALLOW_HOSTS`).
    pub fn new(allow: &str) -> Self {
        Guard {
            allow: allow
                .split(',')
                .map(|h| {
                    h.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    fn allowed_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.allow.iter().any(|a| a.eq_ignore_ascii_case(host))
    }

    /// Checks the scheme and, for an IP literal, the address. Names are checked when resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!("scheme {:?} is not http(s)", url.scheme())));
        }
        let host = url.host_str().ok_or_else(|| Refused("URL has no host".into()))?;
        if self.allowed_host(host) {
            return Ok(());
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            _ => Ok(()),
        }
    }

    /// Refuses addresses that are not public unicast, unless allow-listed.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.allowed_host(&ip.to_string()) || is_public(ip) {
            Ok(())
        } else {
            Err(Refused(format!("{ip} is not a public address")))
        }
    }

    /// The redirect policy: at most [`MAX_REDIRECTS`], each target checked like the first URL.
    pub fn redirect_policy(self: &Arc<Self>) -> reqwest::redirect::Policy {
        let guard = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
            }
            match guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        })
    }
}

/// True for globally routable unicast addresses.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // Only global unicast (2000::/3); that leaves out ::/96 (which embeds IPv4 the old
            // way), SIIT, unique local (fd00:ec2::254 is EC2's metadata), link-local, multicast.
            (s[0] & 0xe000) == 0x2000
                && !(s[0] == 0x2001 && s[1] == 0x0000) // Teredo (embeds an IPv4)
                && !(s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                && !(s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking
                && s[0] != 0x2002 // 6to4 (embeds an IPv4)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // 169.254.0.0/16, incl. 169.254.169.254 (metadata)
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space (carrier NAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 240) // reserved
}

/// Resolves names with the system resolver and refuses any name with a non-public address
/// (all or nothing, so a name cannot mix a public and a private address).
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            if !guard.allowed_host(&host) {
                for addr in &addrs {
                    guard
                        .check_ip(addr.ip())
                        .map_err(|r| Refused(format!("{host} resolves to {}", r.0.trim_start_matches("refused: "))))?;
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_unicast_addresses_pass() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::7f00:1",
            "::a9fe:a9fe",
            "::ffff:0:a00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2002:a00:1::1",
        ] {
            assert!(!is_public(ip(bad)), "{bad} passed");
        }
        for good in ["8.8.8.8", "142.250.74.99", "2a00:1450:4001:82b::2004", "::ffff:8.8.8.8"] {
            assert!(is_public(ip(good)), "{good} refused");
        }
    }

    #[test]
    fn urls_are_checked_by_scheme_and_literal_address() {
        let guard = Guard::new("");
        let check = |u: &str| guard.check_url(&Url::parse(u).unwrap());
        assert!(check("https://example.com/a.jpg").is_ok());
        assert!(check("http://93.184.216.34/a.jpg").is_ok());
        assert!(check("file:///etc/passwd").is_err());
        assert!(check("ftp://example.com/a.jpg").is_err());
        assert!(check("http://127.0.0.1:8080/a.jpg").is_err());
        assert!(check("http://169.254.169.254/latest/meta-data/").is_err());
        assert!(check("http://[::1]/a.jpg").is_err());
        assert!(check("http://2130706433/a.jpg").is_err(), "decimal form of 127.0.0.1");
        assert!(check("http://0x7f.1/a.jpg").is_err(), "hex form of 127.0.0.1");
    }

    #[test]
    fn the_allow_list_lets_named_hosts_and_addresses_through() {
        let guard = Guard::new(" 127.0.0.1 , LocalHost,[::1]");
        assert!(
            guard
                .check_url(&Url::parse("http://127.0.0.1:9/a.png").unwrap())
                .is_ok()
        );
        assert!(guard.check_url(&Url::parse("http://[::1]:9/a.png").unwrap()).is_ok());
        assert!(guard.check_ip(ip("127.0.0.1")).is_ok());
        assert!(guard.check_ip(ip("10.0.0.1")).is_err());
        assert!(guard.allowed_host("localhost"));
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let resolver = GuardedResolver {
            guard: Arc::new(Guard::new("")),
        };
        let err = resolver.resolve("localhost".parse().unwrap()).await.err().unwrap();
        assert!(err.to_string().contains("localhost resolves to"), "{err}");
        let allowed = GuardedResolver {
            guard: Arc::new(Guard::new("localhost")),
        };
        assert!(allowed.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
