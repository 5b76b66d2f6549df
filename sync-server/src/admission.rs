//! Who may come in, and how fast: the relay-wide half of admission control that every
//! connection's session consults. It holds the admission mode (open, or creation tokens
//! only) and two per-address rate limits, on what a stranger can do without being anyone:
//! creating spaces, and failing to log in. Nothing a member does is charged here, so a
//! stranger's flood from the same address (a NAT, a proxy) never stops a couple's sync.
//!
//! An address is the client's IP, or for IPv6 its /64 (one host usually holds a whole
//! /64, so counting single addresses would let it through 2^64 times). Behind a reverse
//! proxy the TCP peer is the proxy; when it is one of the configured `trusted_proxies`,
//! the address it appended last to `X-Forwarded-For` counts instead ([`client_address`]).
//!
//! The limiters are [`governor`]'s keyed GCRA on an injected clock, so the session tests
//! step time by hand; [`Gate::forget_idle`] drops the addresses whose budget is full
//! again, so a flood from many addresses does not grow memory for ever.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::{Admission, RelayConfig};

type Limiter<C> =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The admission mode and the per-address limits; shared by every connection.
#[derive(Debug)]
pub(crate) struct Gate<C: Clock = MonotonicClock> {
    mode: Admission,
    creations: Option<Limiter<C>>,
    failed_logins: Option<Limiter<C>>,
    clock: C,
}

impl<C: Clock + Clone> Gate<C> {
    /// The gate `config` describes, on `clock`.
    pub(crate) fn new(config: &RelayConfig, clock: C) -> Self {
        let limiter =
            |quota: Option<Quota>| quota.map(|q| RateLimiter::hashmap_with_clock(q, clock.clone()));
        let per = config.per_address;
        Self {
            mode: config.admission(),
            creations: limiter(NonZeroU32::new(per.creations_per_hour).map(Quota::per_hour)),
            failed_logins: limiter(
                NonZeroU32::new(per.failed_logins_per_minute).map(Quota::per_minute),
            ),
            clock,
        }
    }
}

impl<C: Clock> Gate<C> {
    /// Who may create spaces.
    pub(crate) fn mode(&self) -> Admission {
        self.mode
    }

    /// Counts an attempt by `address` to create a space; `Err` with how long until it may
    /// try again if it is over its hourly budget.
    pub(crate) fn creation(&self, address: IpAddr) -> Result<(), Duration> {
        self.charge(self.creations.as_ref(), address)
    }

    /// Counts a failed login from `address`; `Err` with how long until its budget has
    /// room again if it is over it.
    pub(crate) fn failed_login(&self, address: IpAddr) -> Result<(), Duration> {
        self.charge(self.failed_logins.as_ref(), address)
    }

    fn charge(&self, limiter: Option<&Limiter<C>>, address: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets the addresses whose budget is whole again.
    pub(crate) fn forget_idle(&self) {
        for limiter in [&self.creations, &self.failed_logins].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many addresses the limiters remember (for tests).
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        [&self.creations, &self.failed_logins]
            .into_iter()
            .flatten()
            .map(|l| l.len())
            .sum()
    }
}

/// The address a connection is counted under: its IPv4 address, or its IPv6 /64 (an
/// IPv4-mapped IPv6 address counts as the IPv4 one).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
    }
}

/// The client's address for a connection from `peer`: the last `X-Forwarded-For` entry
/// when `peer` is a trusted proxy and that entry is an IP address, else `peer`'s own.
pub(crate) fn client_address(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let ip = address_key(peer.ip());
    if !trusted.iter().any(|t| address_key(*t) == ip) {
        return ip;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .map_or(ip, address_key)
}

/// A wait as people read it: "42 seconds", "3 minutes".
pub(crate) fn wait_words(wait: Duration) -> String {
    let secs = wait.as_secs().max(1);
    match secs {
        1 => "1 second".into(),
        2..=119 => format!("{secs} seconds"),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;
    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::config::PerAddress;

    fn gate(creations: u32, failed: u32) -> (Gate<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let config = RelayConfig {
            per_address: PerAddress {
                creations_per_hour: creations,
                failed_logins_per_minute: failed,
            },
            ..RelayConfig::default()
        };
        (Gate::new(&config, clock.clone()), clock)
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_address_may_create_its_hourly_budget_then_waits_while_others_go_on() {
        let (gate, clock) = gate(3, 30);
        for _ in 0..3 {
            gate.creation(A).unwrap();
        }
        let wait = gate.creation(A).unwrap_err();
        assert!(wait > Duration::from_secs(60) && wait <= Duration::from_secs(1200));
        gate.creation(B)
            .expect("another address has its own budget");
        clock.advance(Duration::from_secs(1200));
        gate.creation(A).expect("one more after a third of an hour");
        assert!(gate.creation(A).is_err());
    }

    #[test]
    fn failed_logins_have_their_own_budget() {
        let (gate, _) = gate(1, 2);
        gate.creation(A).unwrap();
        gate.failed_login(A).unwrap();
        gate.failed_login(A).unwrap();
        assert!(gate.failed_login(A).is_err());
        assert!(gate.creation(A).is_err());
    }

    #[test]
    fn a_zero_limit_is_no_limit() {
        let (gate, _) = gate(0, 0);
        for _ in 0..1000 {
            gate.creation(A).unwrap();
            gate.failed_login(A).unwrap();
        }
    }

    #[test]
    fn addresses_whose_budget_is_whole_again_are_forgotten() {
        let (gate, clock) = gate(10, 10);
        gate.creation(A).unwrap();
        gate.failed_login(B).unwrap();
        assert_eq!(gate.remembered(), 2);
        clock.advance(Duration::from_secs(3600));
        gate.forget_idle();
        assert_eq!(gate.remembered(), 0);
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64_and_a_mapped_ipv4_as_itself() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(one), address_key(other));
        assert_ne!(address_key(one), address_key(elsewhere));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), A);
    }

    #[test]
    fn only_a_trusted_proxy_may_name_the_client() {
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 192.0.2.1"),
        );
        let trusted = [IpAddr::from([127, 0, 0, 1])];
        assert_eq!(client_address(proxy, &headers, &trusted), A, "the last hop");
        assert_eq!(
            client_address(proxy, &headers, &[]),
            IpAddr::from([127, 0, 0, 1]),
            "an untrusted peer's header is ignored"
        );
        let stranger: SocketAddr = "198.51.100.4:6000".parse().unwrap();
        assert_eq!(
            client_address(stranger, &headers, &trusted),
            IpAddr::from([198, 51, 100, 4])
        );
        let mut garbled = HeaderMap::new();
        garbled.append("x-forwarded-for", HeaderValue::from_static("unknown"));
        assert_eq!(
            client_address(proxy, &garbled, &trusted),
            IpAddr::from([127, 0, 0, 1]),
            "no address in it: the proxy's own"
        );
    }

    #[test]
    fn waits_read_as_seconds_or_minutes() {
        assert_eq!(wait_words(Duration::from_millis(200)), "1 second");
        assert_eq!(wait_words(Duration::from_secs(42)), "42 seconds");
        assert_eq!(wait_words(Duration::from_secs(601)), "11 minutes");
    }
}
