//! The SSRF guard: which addresses a callback may reach, checked on the
//! address actually connected to.
//!
//! A `callback_url` is chosen by whoever uploads, so without a guard Peedy
//! would POST wherever it is told: to the cloud metadata service, to an admin
//! port on `127.0.0.1`, to the office network. Checking the URL's host name at
//! upload time is not enough — a name can resolve to a public address then
//! and to `127.0.0.1` a second later (DNS rebinding), and a public receiver
//! can redirect. So the guard sits where the socket is opened:
//!
//! - [`GuardedResolver`] is the HTTP client's DNS resolver: it resolves a name
//!   and hands the client only the addresses [`AddressPolicy`] allows, so the
//!   client can connect to nothing else;
//! - the client never calls a resolver for an IP-literal host, so
//!   [`check_url`] checks those before the request is sent;
//! - redirects are not followed and proxies are not used (see
//!   [`crate::Deliverer`]), so the address resolved is the one connected to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The longest callback URL accepted, in bytes. URLs are stored with each
/// document and shown in `/status`; real callback URLs are far shorter.
pub const MAX_URL_LEN: usize = 2048;

/// Why an address is not a callback target by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`: this machine.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, `fc00::/7`
    /// (unique local) and the deprecated site-local `fec0::/10`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (RFC 6598); also where some clouds
    /// put their metadata service (Alibaba's `100.100.100.200`).
    SharedAddressSpace,
    /// `169.254.0.0/16` and `fe80::/10`, except the metadata address.
    LinkLocal,
    /// `169.254.169.254`: the instance metadata service of AWS, GCP, Azure and
    /// others, which hands out credentials to anything that asks.
    Metadata,
    /// `0.0.0.0/8` and `::`. On Linux, connecting to `0.0.0.0` reaches this
    /// machine, so it is loopback in disguise.
    Unspecified,
    /// `224.0.0.0/4` and `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4`, reserved for future use.
    Reserved,
}

impl AddressClass {
    /// The class of `ip`, or `None` for an ordinary public address.
    ///
    /// IPv6 addresses that embed an IPv4 address — IPv4-mapped
    /// (`::ffff:127.0.0.1`), IPv4-compatible (`::127.0.0.1`) and NAT64
    /// (`64:ff9b::7f00:1`) — are classified by the IPv4 address, because
    /// that is where a connection to them ends up.
    pub fn of(ip: IpAddr) -> Option<AddressClass> {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => Self::of_v6(v6),
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Option<AddressClass> {
        let [a, b, ..] = ip.octets();
        Some(if ip.is_loopback() {
            AddressClass::Loopback
        } else if a == 0 {
            AddressClass::Unspecified
        } else if ip.is_private() {
            AddressClass::Private
        } else if a == 100 && (64..128).contains(&b) {
            AddressClass::SharedAddressSpace
        } else if ip == Ipv4Addr::new(169, 254, 169, 254) {
            AddressClass::Metadata
        } else if ip.is_link_local() {
            AddressClass::LinkLocal
        } else if ip.is_multicast() {
            AddressClass::Multicast
        } else if ip.is_broadcast() {
            AddressClass::Broadcast
        } else if a >= 240 {
            AddressClass::Reserved
        } else {
            return None;
        })
    }

    fn of_v6(ip: Ipv6Addr) -> Option<AddressClass> {
        if ip.is_unspecified() {
            return Some(AddressClass::Unspecified);
        }
        if ip.is_loopback() {
            return Some(AddressClass::Loopback);
        }
        if let Some(v4) = embedded_v4(ip) {
            return Self::of_v4(v4);
        }
        let first = ip.segments()[0];
        Some(if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
            AddressClass::Private
        } else if first & 0xffc0 == 0xfe80 {
            AddressClass::LinkLocal
        } else if first & 0xff00 == 0xff00 {
            AddressClass::Multicast
        } else {
            return None;
        })
    }

    /// A short phrase for messages: "a loopback address".
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private network address",
            AddressClass::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Metadata => "the cloud metadata service address",
            AddressClass::Unspecified => "the unspecified address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// The IPv4 address an IPv6 address stands for, if it embeds one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d, IPv4-mapped.
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // ::a.b.c.d, IPv4-compatible (deprecated; `::` and `::1` are handled
        // before this is called).
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        // 64:ff9b::a.b.c.d, the NAT64 well-known prefix: a NAT64 gateway
        // connects to a.b.c.d on our behalf.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        _ => None,
    }
}

/// Which addresses callbacks may reach.
///
/// | class | default | `allow_loopback` | `allow_private` |
/// |---|---|---|---|
/// | public | yes | yes | yes |
/// | loopback | no | yes | yes |
/// | private, shared (CGNAT), link-local, metadata | no | no | yes |
/// | unspecified, multicast, broadcast, reserved | no | no | no |
///
/// The last row is never allowed: no HTTP receiver lives at a multicast,
/// broadcast or reserved address, and `0.0.0.0` is loopback in disguise —
/// whoever means this machine can write `127.0.0.1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Permit loopback addresses (a server that itself listens on loopback).
    pub allow_loopback: bool,
    /// Permit loopback, private, shared, link-local and metadata addresses.
    pub allow_private: bool,
}

impl AddressPolicy {
    /// Why `ip` is refused, or `None` when a callback may connect to it.
    pub fn refusal(self, ip: IpAddr) -> Option<AddressClass> {
        let class = AddressClass::of(ip)?;
        let allowed = match class {
            AddressClass::Loopback => self.allow_loopback || self.allow_private,
            AddressClass::Private
            | AddressClass::SharedAddressSpace
            | AddressClass::LinkLocal
            | AddressClass::Metadata => self.allow_private,
            AddressClass::Unspecified
            | AddressClass::Multicast
            | AddressClass::Broadcast
            | AddressClass::Reserved => false,
        };
        (!allowed).then_some(class)
    }
}

/// Why a callback URL is not accepted. The `Display` text is a sentence meant
/// for the `detail` of a 400 response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not a URL at all.
    #[error("callback_url is not a valid URL: {0}")]
    Invalid(String),
    /// Longer than [`MAX_URL_LEN`].
    #[error("callback_url is {0} bytes long; at most {MAX_URL_LEN} are accepted")]
    TooLong(usize),
    /// A scheme other than `http` or `https`.
    #[error("callback_url must be an http or https URL, not {0}:")]
    Scheme(String),
    /// No host, e.g. `http:///path`.
    #[error("callback_url has no host")]
    NoHost,
    /// `user:password@` in the URL.
    #[error("callback_url must not contain a user name or password")]
    UserInfo,
    /// An IP-literal host the [`AddressPolicy`] refuses.
    #[error("callback_url points to {ip}, {}, which callbacks may not reach", .class.describe())]
    RefusedAddress {
        /// The address in the URL.
        ip: IpAddr,
        /// Why it is refused.
        class: AddressClass,
    },
}

/// Parses and checks a callback URL: `http` or `https`, a host, no user
/// info, at most [`MAX_URL_LEN`] bytes, and an IP-literal host that `policy`
/// allows. Host names are not resolved here; [`GuardedResolver`] checks what
/// they resolve to when connecting.
pub fn check_url(url: &str, policy: AddressPolicy) -> Result<Url, UrlError> {
    if url.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong(url.len()));
    }
    let parsed = Url::parse(url).map_err(|e| match e {
        url::ParseError::EmptyHost => UrlError::NoHost,
        e => UrlError::Invalid(e.to_string()),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlError::Scheme(parsed.scheme().to_owned()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlError::UserInfo);
    }
    let ip = match parsed.host() {
        None => return Err(UrlError::NoHost),
        Some(Host::Domain("")) => return Err(UrlError::NoHost),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = ip
        && let Some(class) = policy.refusal(ip)
    {
        return Err(UrlError::RefusedAddress { ip, class });
    }
    Ok(parsed)
}

/// The error [`GuardedResolver`] fails a connection with when a name
/// resolves only to refused addresses. The delivery code finds it in the
/// HTTP client's error chain to report a permanent failure, not a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedName {
    /// The host name looked up.
    pub host: String,
    /// What it resolved to, each with why it is refused.
    pub addrs: Vec<(IpAddr, AddressClass)>,
}

impl fmt::Display for RefusedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves only to addresses callbacks may not reach: ",
            self.host
        )?;
        for (i, (ip, class)) in self.addrs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{ip} ({})", class.describe())?;
        }
        Ok(())
    }
}

impl std::error::Error for RefusedName {}

/// A DNS resolver for the HTTP client that drops refused addresses.
///
/// It resolves with the system resolver (`getaddrinfo`, through tokio) every
/// time a connection is opened, so what it filters is what the client
/// connects to. When some addresses of a name are refused and others are not,
/// only the allowed ones are used; when none are allowed the connection fails
/// with [`RefusedName`].
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: AddressPolicy) -> GuardedResolver {
        GuardedResolver { policy }
    }

    /// Resolves `host` and keeps only the addresses `policy` allows.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, LookupError> {
        let resolved = tokio::net::lookup_host((host, 0))
            .await
            .map_err(LookupError::Dns)?;
        self.filter(host, resolved)
    }

    /// Keeps the addresses `policy` allows; fails when none remain.
    fn filter(
        &self,
        host: &str,
        resolved: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, LookupError> {
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for addr in resolved {
            match self.policy.refusal(addr.ip()) {
                None => allowed.push(addr),
                Some(class) => refused.push((addr.ip(), class)),
            }
        }
        if allowed.is_empty() {
            if refused.is_empty() {
                return Err(LookupError::Dns(std::io::Error::other(format!(
                    "{host} has no addresses"
                ))));
            }
            refused.dedup();
            return Err(LookupError::Refused(RefusedName {
                host: host.to_owned(),
                addrs: refused,
            }));
        }
        Ok(allowed)
    }
}

/// Why [`GuardedResolver::lookup`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The system resolver failed (no such name, no DNS server, …).
    #[error("DNS lookup failed: {0}")]
    Dns(#[source] std::io::Error),
    /// Every address the name resolves to is refused.
    #[error(transparent)]
    Refused(RefusedName),
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = *self;
        Box::pin(async move {
            match this.lookup(name.as_str()).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                // Boxed as the bare `RefusedName` so the delivery code can
                // downcast it out of the client's error chain.
                Err(LookupError::Refused(refused)) => Err(Box::new(refused) as _),
                Err(e) => Err(Box::new(e) as _),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<AddressClass> {
        AddressClass::of(ip.parse().expect("test IP parses"))
    }

    #[test]
    fn classifies_ipv4() {
        use AddressClass::*;
        for (ip, want) in [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.1.2", Some(Loopback)),
            ("10.1.2.3", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(Metadata)),
            ("169.254.1.1", Some(LinkLocal)),
            ("100.64.0.1", Some(SharedAddressSpace)),
            ("100.100.100.200", Some(SharedAddressSpace)),
            ("100.128.0.1", None),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("224.0.0.1", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("240.0.0.1", Some(Reserved)),
            ("8.8.8.8", None),
            ("93.184.215.14", None),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn classifies_ipv6_and_embedded_ipv4() {
        use AddressClass::*;
        for (ip, want) in [
            ("::1", Some(Loopback)),
            ("::", Some(Unspecified)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(Metadata)),
            ("::ffff:10.0.0.1", Some(Private)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("64:ff9b::192.168.0.1", Some(Private)),
            ("64:ff9b::8.8.8.8", None),
            ("fc00::1", Some(Private)),
            ("fd00:ec2::254", Some(Private)),
            ("fec0::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:4860:4860::8888", None),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn policy_table() {
        let ip = |s: &str| -> IpAddr { s.parse().expect("test IP parses") };
        let strict = AddressPolicy::default();
        let loopback = AddressPolicy {
            allow_loopback: true,
            allow_private: false,
        };
        let private = AddressPolicy {
            allow_loopback: false,
            allow_private: true,
        };
        assert_eq!(strict.refusal(ip("8.8.8.8")), None);
        assert!(strict.refusal(ip("127.0.0.1")).is_some());
        assert_eq!(loopback.refusal(ip("127.0.0.1")), None);
        assert_eq!(loopback.refusal(ip("::1")), None);
        assert_eq!(loopback.refusal(ip("::ffff:127.0.0.1")), None);
        assert_eq!(
            loopback.refusal(ip("169.254.169.254")),
            Some(AddressClass::Metadata)
        );
        assert_eq!(
            loopback.refusal(ip("192.168.0.1")),
            Some(AddressClass::Private)
        );
        assert_eq!(private.refusal(ip("127.0.0.1")), None);
        assert_eq!(private.refusal(ip("192.168.0.1")), None);
        assert_eq!(private.refusal(ip("169.254.169.254")), None);
        assert_eq!(private.refusal(ip("100.64.0.1")), None);
        for never in ["0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "240.0.0.1"] {
            assert!(private.refusal(ip(never)).is_some(), "{never}");
            assert!(loopback.refusal(ip(never)).is_some(), "{never}");
        }
    }

    #[test]
    fn check_url_rules() {
        let strict = AddressPolicy::default();
        assert!(check_url("https://example.com/hook?x=1", strict).is_ok());
        assert_eq!(
            check_url("ftp://example.com/", strict),
            Err(UrlError::Scheme("ftp".into()))
        );
        assert_eq!(
            check_url("https://user:pw@example.com/", strict),
            Err(UrlError::UserInfo)
        );
        assert_eq!(
            check_url("https://user@example.com/", strict),
            Err(UrlError::UserInfo)
        );
        assert_eq!(check_url("http://", strict), Err(UrlError::NoHost));
        assert_eq!(check_url("https://:8080/x", strict), Err(UrlError::NoHost));
        assert!(matches!(
            check_url("not a url", strict),
            Err(UrlError::Invalid(_))
        ));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(
            check_url(&long, strict),
            Err(UrlError::TooLong(_))
        ));
        // The `url` crate normalises IPv4 written in odd forms, so these
        // cannot slip past as "domain names".
        for sneaky in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(
                matches!(
                    check_url(sneaky, strict),
                    Err(UrlError::RefusedAddress {
                        class: AddressClass::Loopback,
                        ..
                    })
                ),
                "{sneaky}"
            );
        }
    }

    #[test]
    fn the_resolver_keeps_only_allowed_addresses() {
        let sock = |s: &str| -> SocketAddr { s.parse().expect("test address parses") };
        let resolver = GuardedResolver::new(AddressPolicy::default());
        // A name with a public and a private address (DNS rebinding, or a
        // split-horizon name): only the public one is connected to.
        let mixed = [sock("10.0.0.5:0"), sock("93.184.215.14:0"), sock("[::1]:0")];
        let kept = resolver
            .filter("mixed.example", mixed)
            .expect("one allowed");
        assert_eq!(kept, [sock("93.184.215.14:0")]);
        let only_private = [sock("169.254.169.254:0"), sock("[fd00:ec2::254]:0")];
        match resolver.filter("metadata.google.internal", only_private) {
            Err(LookupError::Refused(refused)) => {
                assert_eq!(refused.host, "metadata.google.internal");
                assert_eq!(refused.addrs.len(), 2);
                let text = refused.to_string();
                assert!(
                    text.contains("169.254.169.254 (the cloud metadata"),
                    "{text}"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(matches!(
            resolver.filter("empty.example", []),
            Err(LookupError::Dns(_))
        ));
    }

    #[test]
    fn refusal_message_names_the_address() {
        let err = check_url("http://169.254.169.254/latest/", AddressPolicy::default())
            .expect_err("metadata refused");
        let text = err.to_string();
        assert!(text.contains("169.254.169.254"), "{text}");
        assert!(text.contains("metadata"), "{text}");
    }
}
