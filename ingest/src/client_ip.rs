//! Who sent a request: the peer address, or, behind trusted proxies, the X-Forwarded-For entry
//! they vouch for. An entry the walk reaches but cannot read refuses the request, because skipping
//! it would let a client-written entry to its left pass for the proxy's.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use poem::Request;

/// Why X-Forwarded-For from a trusted proxy could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("X-Forwarded-For entry {0:?} is not an IP address (with an optional port)")]
pub struct UnreadableForwardedFor(pub String);

/// The requester's address. From an untrusted peer the peer itself (its X-Forwarded-For is
/// ignored, and reported at most once a minute); from a trusted proxy, the rightmost entry of
/// X-Forwarded-For that is not itself a trusted proxy (the peer when the header is absent).
pub fn client_ip(
    request: &Request,
    trusted_proxies: &[IpAddr],
) -> Option<Result<IpAddr, UnreadableForwardedFor>> {
    let peer = request.remote_addr().as_socket_addr().map(|a| a.ip())?;
    let headers = request.headers().get_all("x-forwarded-for");
    let mut lines = Vec::new();
    for value in headers.iter() {
        match value.to_str() {
            Ok(text) => lines.push(text),
            Err(_) if trusted_proxies.contains(&normalise(peer)) => {
                return Some(Err(UnreadableForwardedFor("<not text>".into())));
            }
            Err(_) => lines.push(""),
        }
    }
    Some(from_hops(peer, &lines, trusted_proxies))
}

/// The walk itself: `lines` are the X-Forwarded-For header lines in the order received.
pub fn from_hops(
    peer: IpAddr,
    lines: &[&str],
    trusted_proxies: &[IpAddr],
) -> Result<IpAddr, UnreadableForwardedFor> {
    let peer = normalise(peer);
    if !trusted_proxies.contains(&peer) {
        if !lines.is_empty() {
            warn_untrusted(peer);
        }
        return Ok(peer);
    }
    let mut nearest = peer;
    for hop in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
        let hop = hop.trim();
        if hop.is_empty() {
            continue;
        }
        let ip = parse_hop(hop).ok_or_else(|| UnreadableForwardedFor(hop.chars().take(64).collect()))?;
        if !trusted_proxies.contains(&ip) {
            return Ok(ip);
        }
        nearest = ip;
    }
    // Every hop is one of our proxies: the request started inside.
    Ok(nearest)
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(normalise(ip));
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(normalise(addr.ip()));
    }
    let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|ip| normalise(IpAddr::V6(ip)))
}

/// An IPv4 address written as IPv4-mapped IPv6 is the IPv4 address (dual-stack sockets report so).
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// X-Forwarded-For from a peer we do not trust is ignored, so every client behind an unlisted
/// proxy shares the proxy's failed-auth budget: say so, once a minute at most.
fn warn_untrusted(peer: IpAddr) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 60
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            %peer,
            "X-Forwarded-For from a peer outside TRUSTED_PROXIES is ignored; if this peer is your proxy, \
             add it, or all its clients share one failed-authentication budget"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop_and_refuses_what_it_cannot_read() {
        let proxies = [ip("10.0.0.1"), ip("10.0.0.2"), ip("2001:db8::a")];
        let bad = |s: &str| Err(UnreadableForwardedFor(s.into()));
        // (peer, X-Forwarded-For lines, expected source)
        let table: Vec<(&str, Vec<&str>, Result<IpAddr, UnreadableForwardedFor>)> = vec![
            // An untrusted peer is the source, whatever it claims.
            ("203.0.113.9", vec!["1.1.1.1"], Ok(ip("203.0.113.9"))),
            ("203.0.113.9", vec![], Ok(ip("203.0.113.9"))),
            // A trusted proxy without the header: the proxy itself.
            ("10.0.0.1", vec![], Ok(ip("10.0.0.1"))),
            ("10.0.0.1", vec!["198.51.100.7"], Ok(ip("198.51.100.7"))),
            // Ports and brackets are read.
            ("10.0.0.1", vec!["198.51.100.7:4711"], Ok(ip("198.51.100.7"))),
            ("10.0.0.1", vec!["[2001:db8::7]"], Ok(ip("2001:db8::7"))),
            ("10.0.0.1", vec!["[2001:db8::7]:443"], Ok(ip("2001:db8::7"))),
            ("10.0.0.1", vec!["2001:db8::7"], Ok(ip("2001:db8::7"))),
            // The client's own entries left of the first untrusted hop are never trusted.
            (
                "10.0.0.1",
                vec!["6.6.6.6, 198.51.100.7:80"],
                Ok(ip("198.51.100.7")),
            ),
            (
                "10.0.0.1",
                vec!["6.6.6.6, [2001:db8::7]:80"],
                Ok(ip("2001:db8::7")),
            ),
            // Chains of our own proxies are walked through, across header lines too.
            (
                "10.0.0.1",
                vec!["6.6.6.6, 198.51.100.7, 10.0.0.2"],
                Ok(ip("198.51.100.7")),
            ),
            (
                "10.0.0.1",
                vec!["6.6.6.6, 198.51.100.7", "[2001:db8::a]:1"],
                Ok(ip("198.51.100.7")),
            ),
            ("10.0.0.1", vec!["10.0.0.2"], Ok(ip("10.0.0.2"))),
            // An entry the walk reaches but cannot read refuses the request (it used to be skipped,
            // so the client-written 6.6.6.6 was taken for the source).
            ("10.0.0.1", vec!["6.6.6.6, unknown"], bad("unknown")),
            ("10.0.0.1", vec!["6.6.6.6, 198.51.100.7:x"], bad("198.51.100.7:x")),
            ("10.0.0.1", vec!["6.6.6.6, [2001:db8::7"], bad("[2001:db8::7")),
            ("10.0.0.1", vec!["6.6.6.6, _hidden, 10.0.0.2"], bad("_hidden")),
            // Left of the source, junk is the client's business.
            ("10.0.0.1", vec!["unknown, 198.51.100.7"], Ok(ip("198.51.100.7"))),
            // Empty entries are no hop.
            ("10.0.0.1", vec!["198.51.100.7, ,"], Ok(ip("198.51.100.7"))),
            // IPv4-mapped IPv6 is the IPv4 address, for the peer and for hops.
            (
                "::ffff:10.0.0.1",
                vec!["::ffff:198.51.100.7"],
                Ok(ip("198.51.100.7")),
            ),
        ];
        for (peer, lines, expected) in table {
            assert_eq!(
                from_hops(ip(peer), &lines, &proxies),
                expected,
                "peer {peer}, X-Forwarded-For {lines:?}"
            );
        }
    }
}
