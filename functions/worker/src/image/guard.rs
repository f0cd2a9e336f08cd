//! Image URLs come from clients, so every address the worker connects to is checked: no loopback,
//! private, link-local (cloud metadata lives there), shared, multicast or unspecified addresses,
//! only http(s) on the allowed ports (`IMAGE_ALLOW_PORTS`, 80 and 443), no credentials in the URL,
//! a bounded number of redirects, each of them checked again.
//!
//! Names are checked after DNS resolution by [`GuardedResolver`] (reqwest resolves through it for
//! every new connection, redirects included), so a public name pointing at 10.0.0.1 is refused;
//! IP literals never reach a resolver and are checked by [`Guard::check_url`] before the request
//! and in the redirect policy. An explicit allow-list (`IMAGE_ALLOW_HOSTS`, for local development
//! and tests: `127.0.0.1,localhost`) lets named hosts or addresses through (on allowed ports).
//!
//! Refusals of the client's own URL may quote it; refusals of a redirect's target say only why,
//! never what the server's `Location` said (those texts are stored on jobs).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused: {0}")]
pub struct Refused(pub String);

/// A name that did not resolve (the resolver's own error goes to the debug log only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the host name did not resolve")]
pub struct Unresolved;

/// The ports image URLs may use (`IMAGE_ALLOW_PORTS`: `80,443` by default; ranges as `8000-8099`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports(Vec<RangeInclusive<u16>>);

impl Default for Ports {
    fn default() -> Self {
        Ports(vec![80..=80, 443..=443])
    }
}

impl Ports {
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|r| r.contains(&port))
    }
}

/// Why a list of ports (`IMAGE_ALLOW_PORTS`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPorts {
    #[error("{0:?} is not a port (1-65535) or a range of ports")]
    NotAPort(String),
    #[error("{0:?} is an empty range")]
    EmptyRange(String),
    #[error("no ports")]
    Empty,
}

impl FromStr for Ports {
    type Err = BadPorts;

    /// `80,443,8000-8099`: ports and inclusive ranges, 1 to 65535.
    fn from_str(s: &str) -> Result<Self, BadPorts> {
        let mut ranges = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let port = |p: &str| {
                p.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| BadPorts::NotAPort(item.to_owned()))
            };
            let range = match item.split_once('-') {
                Some((from, to)) => port(from)?..=port(to)?,
                None => port(item)?..=port(item)?,
            };
            if range.is_empty() {
                return Err(BadPorts::EmptyRange(item.to_owned()));
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err(BadPorts::Empty);
        }
        Ok(Ports(ranges))
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|r| match r.start() == r.end() {
                true => r.start().to_string(),
                false => format!("{}-{}", r.start(), r.end()),
            })
            .collect();
        f.write_str(&items.join(", "))
    }
}

/// Why a URL is not fetched, with the values it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    Scheme(String),
    NoHost,
    Credentials,
    Port(u16),
    Address(IpAddr),
}

impl Why {
    /// For the client's own URL: may quote it (all but the credentials).
    fn of_url(&self, ports: &Ports) -> String {
        match self {
            Why::Scheme(s) => format!("scheme {s:?} is not http(s)"),
            Why::NoHost => "URL has no host".into(),
            Why::Credentials => "credentials in the URL (user:password@) are not allowed".into(),
            Why::Port(p) => format!("port {p} is not allowed (allowed: {ports})"),
            Why::Address(ip) => format!("{ip} is not a public address"),
        }
    }

    /// For a redirect's target: why, in our words only (the target came from the server).
    fn of_redirect(&self, ports: &Ports) -> String {
        match self {
            Why::Scheme(_) => "a redirect to a scheme other than http(s)".into(),
            Why::NoHost => "a redirect to a URL without a host".into(),
            Why::Credentials => "a redirect to a URL with credentials (user:password@)".into(),
            Why::Port(_) => format!("a redirect to a port that is not allowed (allowed: {ports})"),
            Why::Address(_) => "a redirect to an address that is not public".into(),
        }
    }
}

/// The address policy, shared by the resolver and the redirect policy.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Host names and addresses let through although they are not public.
    allow: Vec<String>,
    /// Ports URLs may name (their scheme's default when they name none).
    ports: Ports,
}

impl Guard {
    /// `allow`: comma-separated host names or IP addresses (`IMAGE_ALLOW_HOSTS`); ports 80 and 443.
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
            ports: Ports::default(),
        }
    }

    /// The ports URLs may use (`IMAGE_ALLOW_PORTS`).
    pub fn with_ports(mut self, ports: Ports) -> Self {
        self.ports = ports;
        self
    }

    fn allowed_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.allow.iter().any(|a| a.eq_ignore_ascii_case(host))
    }

    /// Checks the client's URL: scheme, credentials, port and, for an IP literal, the address.
    /// Names are checked when resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        self.check(url).map_err(|why| Refused(why.of_url(&self.ports)))
    }

    /// Checks a redirect's target like [`Guard::check_url`]; the refusal does not quote it.
    pub fn check_redirect(&self, url: &Url) -> Result<(), Refused> {
        self.check(url).map_err(|why| Refused(why.of_redirect(&self.ports)))
    }

    fn check(&self, url: &Url) -> Result<(), Why> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Why::Scheme(url.scheme().to_string()));
        }
        // reqwest would send them as a Basic authorization, to wherever the URL points.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Why::Credentials);
        }
        let host = url.host_str().ok_or(Why::NoHost)?;
        let port = url.port_or_known_default().ok_or(Why::NoHost)?;
        if !self.ports.contains(port) {
            return Err(Why::Port(port));
        }
        if self.allowed_host(host) {
            return Ok(());
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        match self.public_or_allowed(ip) {
            true => Ok(()),
            false => Err(Why::Address(ip)),
        }
    }

    fn public_or_allowed(&self, ip: IpAddr) -> bool {
        self.allowed_host(&ip.to_string()) || is_public(ip)
    }

    /// Refuses addresses that are not public unicast, unless allow-listed.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        match self.public_or_allowed(ip) {
            true => Ok(()),
            false => Err(Refused(Why::Address(ip).of_url(&self.ports))),
        }
    }

    /// The redirect policy: at most [`MAX_REDIRECTS`], each target checked like the first URL.
    pub fn redirect_policy(self: &Arc<Self>) -> reqwest::redirect::Policy {
        let guard = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
            }
            match guard.check_redirect(attempt.url()) {
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
/// (all or nothing, so a name cannot mix a public and a private address). Its errors name
/// neither the host (it may come from a redirect) nor its addresses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    tracing::debug!(%host, error = %e, "image host did not resolve");
                    return Err(Unresolved.into());
                }
            };
            if addrs.is_empty() {
                return Err(Unresolved.into());
            }
            if !guard.allowed_host(&host) && addrs.iter().any(|a| !guard.public_or_allowed(a.ip())) {
                tracing::debug!(%host, ?addrs, "image host resolves to a non-public address");
                return Err(Refused("the host name resolves to an address that is not public".into()).into());
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
    fn only_the_allowed_ports_pass_80_and_443_by_default() {
        let guard = Guard::new("");
        let check = |g: &Guard, u: &str| g.check_url(&Url::parse(u).unwrap());
        assert!(
            check(&guard, "http://example.com/a.jpg").is_ok(),
            "80, the scheme's default"
        );
        assert!(check(&guard, "https://example.com:443/a.jpg").is_ok());
        assert!(check(&guard, "https://example.com:80/a.jpg").is_ok());
        for bad in [
            "http://example.com:8080/a.jpg",
            "https://example.com:8443/a.jpg",
            "http://example.com:22/",
            "http://example.com:0/",
        ] {
            let refused = check(&guard, bad).unwrap_err().to_string();
            assert!(
                refused.contains("is not allowed (allowed: 80, 443)"),
                "{bad}: {refused}"
            );
        }
        // An allow-listed host is still held to the ports.
        let local = Guard::new("127.0.0.1");
        assert!(check(&local, "http://127.0.0.1:8090/a.png").is_err());
        let local = local.with_ports("80,443,8090".parse().unwrap());
        assert!(check(&local, "http://127.0.0.1:8090/a.png").is_ok());
        assert!(check(&local, "http://127.0.0.1:8091/a.png").is_err());
    }

    #[test]
    fn allowed_ports_are_a_list_of_ports_and_ranges() {
        let ports: Ports = " 80, 443,8000-8099 ".parse().unwrap();
        assert!(ports.contains(80) && ports.contains(8000) && ports.contains(8099));
        assert!(!ports.contains(8100) && !ports.contains(81));
        assert_eq!(ports.to_string(), "80, 443, 8000-8099");
        assert_eq!(Ports::default().to_string(), "80, 443");
        assert!("1-65535".parse::<Ports>().unwrap().contains(65535));
        for bad in ["", " , ", "http", "0", "65536", "9-3", "80,x", "*"] {
            assert!(bad.parse::<Ports>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(" , ".parse::<Ports>().unwrap_err(), BadPorts::Empty);
        assert_eq!("9-3".parse::<Ports>().unwrap_err(), BadPorts::EmptyRange("9-3".into()));
        assert_eq!(
            "80,x".parse::<Ports>().unwrap_err().to_string(),
            "\"x\" is not a port (1-65535) or a range of ports"
        );
    }

    #[test]
    fn credentials_in_urls_are_refused_without_quoting_them() {
        let guard = Guard::new("127.0.0.1");
        for bad in [
            "http://alice:s3cret@example.com/a.jpg",
            "https://alice@example.com/a.jpg",
            "http://:s3cret@example.com/a.jpg",
            "http://alice:s3cret@127.0.0.1/a.jpg",
        ] {
            let url = Url::parse(bad).unwrap();
            for refused in [guard.check_url(&url), guard.check_redirect(&url)] {
                let text = refused.unwrap_err().to_string();
                assert!(text.contains("credentials"), "{bad}: {text}");
                assert!(!text.contains("s3cret") && !text.contains("alice"), "{bad}: {text}");
            }
        }
    }

    #[test]
    fn a_redirect_is_refused_for_the_same_reasons_but_in_our_words_only() {
        let guard = Guard::new("");
        for (target, why) in [
            ("http://10.0.0.1/ok.png", "a redirect to an address that is not public"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "a redirect to an address that is not public",
            ),
            (
                "http://example.com:6379/",
                "a redirect to a port that is not allowed (allowed: 80, 443)",
            ),
            ("ftp://example.com/a.png", "a redirect to a scheme other than http(s)"),
        ] {
            let url = Url::parse(target).unwrap();
            assert_eq!(
                guard.check_redirect(&url).unwrap_err().to_string(),
                format!("refused: {why}")
            );
            // The client's own URL may be quoted back to it.
            assert!(guard.check_url(&url).is_err());
        }
        assert!(
            guard
                .check_redirect(&Url::parse("https://example.com/b.png").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn the_allow_list_lets_named_hosts_and_addresses_through() {
        let guard = Guard::new(" 127.0.0.1 , LocalHost,[::1]").with_ports("9".parse().unwrap());
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
        assert_eq!(
            err.to_string(),
            "refused: the host name resolves to an address that is not public"
        );
        let err = resolver
            .resolve("no-such-host.invalid".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "the host name did not resolve");
        let allowed = GuardedResolver {
            guard: Arc::new(Guard::new("localhost")),
        };
        assert!(allowed.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
