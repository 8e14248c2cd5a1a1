//! What an Access-Accept (or a CoA-Request) says about the session: addresses, timeouts,
//! accounting interval, Class, rate limit, message.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use tracing::debug;

use crate::RadiusError;
use crate::attribute::{AttributeType, VENDOR_MIKROTIK, mikrotik};
use crate::packet::Packet;

/// The session attributes of an Access-Accept, typed. Attributes that are absent or malformed
/// are `None` (a malformed one is logged at debug level and ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authorization {
    /// Framed-IP-Address: the peer's address. 255.255.255.254 means "the NAS picks one" and
    /// 255.255.255.255 "the peer may pick" (RFC 2865 §5.8); both are given as they came.
    pub framed_ip_address: Option<Ipv4Addr>,
    /// Framed-Pool: the name of the pool to take the peer's address from.
    pub framed_pool: Option<String>,
    /// Framed-IPv6-Prefix: the prefix to advertise on the link (where IPv6 is on).
    pub framed_ipv6_prefix: Option<(Ipv6Addr, u8)>,
    /// Session-Timeout: the longest the session may last.
    pub session_timeout: Option<Duration>,
    /// Idle-Timeout: how long the session may stay without traffic.
    pub idle_timeout: Option<Duration>,
    /// Acct-Interim-Interval: how often to send Interim-Update records.
    pub interim_interval: Option<Duration>,
    /// Class: opaque values to echo in every accounting record of the session.
    pub class: Vec<Vec<u8>>,
    /// Mikrotik-Rate-Limit.
    pub rate_limit: Option<RateLimit>,
    /// Reply-Message: several are joined with newlines.
    pub reply_message: Option<String>,
}

impl Authorization {
    /// Reads the session attributes of `packet` (Access-Accept, CoA-Request).
    pub fn from_packet(packet: &Packet) -> Self {
        let seconds = |kind| {
            packet.get(kind).and_then(|a| match a.as_u32() {
                Ok(s) => Some(Duration::from_secs(u64::from(s))),
                Err(e) => {
                    debug!("ignoring {e}");
                    None
                }
            })
        };
        let rate_limit = packet
            .vendor(VENDOR_MIKROTIK, mikrotik::RATE_LIMIT)
            .and_then(|v| match RateLimit::from_str(&String::from_utf8_lossy(v)) {
                Ok(r) => Some(r),
                Err(e) => {
                    debug!("ignoring Mikrotik-Rate-Limit: {e}");
                    None
                }
            });
        let messages: Vec<String> = packet
            .all(AttributeType::REPLY_MESSAGE)
            .map(|a| a.as_text())
            .collect();
        Authorization {
            framed_ip_address: packet
                .get(AttributeType::FRAMED_IP_ADDRESS)
                .and_then(|a| a.as_ipv4().ok()),
            framed_pool: packet.get(AttributeType::FRAMED_POOL).map(|a| a.as_text()),
            framed_ipv6_prefix: packet
                .get(AttributeType::FRAMED_IPV6_PREFIX)
                .and_then(|a| a.as_ipv6_prefix().ok()),
            session_timeout: seconds(AttributeType::SESSION_TIMEOUT),
            idle_timeout: seconds(AttributeType::IDLE_TIMEOUT),
            interim_interval: seconds(AttributeType::ACCT_INTERIM_INTERVAL),
            class: packet
                .all(AttributeType::CLASS)
                .map(|a| a.value.clone())
                .collect(),
            rate_limit,
            reply_message: (!messages.is_empty()).then(|| messages.join("\n")),
        }
    }
}

/// A pair of rates (or sizes, or times) in the RouterOS order: `rx/tx`, what the NAS receives
/// from the user (upload) and what it transmits to the user (download).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RxTx<T> {
    /// What the NAS receives from the user (the user's upload).
    pub rx: T,
    /// What the NAS sends to the user (the user's download).
    pub tx: T,
}

/// A RouterOS rate limit (`Mikrotik-Rate-Limit`, `/ppp profile rate-limit`):
/// `rx/tx [burst-rx/burst-tx [threshold-rx/threshold-tx [time-rx/time-tx [priority
/// [min-rx/min-tx]]]]]`, rates in bits per second with `k`, `M` or `G` suffixes (powers of
/// 1000, as RouterOS), times in seconds. A single value instead of a pair applies to both
/// directions. [`Display`](fmt::Display) writes the same syntax back.
///
/// ```
/// use std::time::Duration;
/// use ppp_radius::RateLimit;
///
/// let limit: RateLimit = "2M/1M 4M/2M 1500k/750k 8/8 5".parse()?;
/// assert_eq!((limit.rate.rx, limit.rate.tx), (2_000_000, 1_000_000));
/// assert_eq!(limit.burst_rate.map(|b| b.tx), Some(2_000_000));
/// assert_eq!(limit.burst_time.map(|t| t.rx), Some(Duration::from_secs(8)));
/// assert_eq!(limit.priority, Some(5));
/// assert_eq!(limit.to_string(), "2M/1M 4M/2M 1500k/750k 8/8 5");
/// # Ok::<(), ppp_radius::RadiusError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateLimit {
    /// The limit (bits per second; 0 is unlimited).
    pub rate: RxTx<u64>,
    /// The rate allowed while bursting.
    pub burst_rate: Option<RxTx<u64>>,
    /// Bursting is allowed while the average rate stays below this.
    pub burst_threshold: Option<RxTx<u64>>,
    /// The window the average is taken over.
    pub burst_time: Option<RxTx<Duration>>,
    /// Priority, 1 (highest) to 8.
    pub priority: Option<u8>,
    /// The guaranteed rate.
    pub min_rate: Option<RxTx<u64>>,
}

impl RateLimit {
    /// A plain limit without bursts.
    pub fn new(rx: u64, tx: u64) -> Self {
        RateLimit {
            rate: RxTx { rx, tx },
            burst_rate: None,
            burst_threshold: None,
            burst_time: None,
            priority: None,
            min_rate: None,
        }
    }
}

fn syntax(problem: &'static str) -> RadiusError {
    RadiusError::RateLimitSyntax { problem }
}

fn parse_rate(text: &str) -> Result<u64, RadiusError> {
    let (digits, factor) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 1_000),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 1_000_000),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 1_000_000_000),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax("has a rate that is not a number with k, M or G"));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or(syntax("has a rate too large"))
}

fn parse_seconds(text: &str) -> Result<Duration, RadiusError> {
    let digits = text.strip_suffix('s').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 9 {
        return Err(syntax("has a burst time that is not whole seconds"));
    }
    digits
        .parse()
        .map(Duration::from_secs)
        .map_err(|_| syntax("has a burst time that is not whole seconds"))
}

fn pair<T: Copy>(
    text: &str,
    each: impl Fn(&str) -> Result<T, RadiusError>,
) -> Result<RxTx<T>, RadiusError> {
    match text.split_once('/') {
        Some((rx, tx)) => Ok(RxTx {
            rx: each(rx)?,
            tx: each(tx)?,
        }),
        None => {
            let both = each(text)?;
            Ok(RxTx { rx: both, tx: both })
        }
    }
}

impl FromStr for RateLimit {
    type Err = RadiusError;

    fn from_str(text: &str) -> Result<Self, RadiusError> {
        let mut words = text.split_ascii_whitespace();
        let rate = pair(words.next().ok_or(syntax("is empty"))?, parse_rate)?;
        let mut limit = RateLimit::new(rate.rx, rate.tx);
        if let Some(w) = words.next() {
            limit.burst_rate = Some(pair(w, parse_rate)?);
        }
        if let Some(w) = words.next() {
            limit.burst_threshold = Some(pair(w, parse_rate)?);
        }
        if let Some(w) = words.next() {
            limit.burst_time = Some(pair(w, parse_seconds)?);
        }
        if let Some(w) = words.next() {
            let p: u8 = w
                .parse()
                .map_err(|_| syntax("has a priority that is not 1..8"))?;
            if !(1..=8).contains(&p) {
                return Err(syntax("has a priority that is not 1..8"));
            }
            limit.priority = Some(p);
        }
        if let Some(w) = words.next() {
            limit.min_rate = Some(pair(w, parse_rate)?);
        }
        if words.next().is_some() {
            return Err(syntax("has more than six fields"));
        }
        Ok(limit)
    }
}

struct Rate(u64);

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match n {
            0 => f.write_str("0"),
            n if n % 1_000_000_000 == 0 => write!(f, "{}G", n / 1_000_000_000),
            n if n % 1_000_000 == 0 => write!(f, "{}M", n / 1_000_000),
            n if n % 1_000 == 0 => write!(f, "{}k", n / 1_000),
            n => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rates =
            |f: &mut fmt::Formatter<'_>, p: RxTx<u64>| write!(f, "{}/{}", Rate(p.rx), Rate(p.tx));
        rates(f, self.rate)?;
        // Later fields need the earlier ones written; missing ones are written as 0 (RouterOS
        // reads 0 as "not set").
        let last = if self.min_rate.is_some() {
            5
        } else if self.priority.is_some() {
            4
        } else if self.burst_time.is_some() {
            3
        } else if self.burst_threshold.is_some() {
            2
        } else if self.burst_rate.is_some() {
            1
        } else {
            0
        };
        let zero = RxTx { rx: 0, tx: 0 };
        if last >= 1 {
            f.write_str(" ")?;
            rates(f, self.burst_rate.unwrap_or(zero))?;
        }
        if last >= 2 {
            f.write_str(" ")?;
            rates(f, self.burst_threshold.unwrap_or(zero))?;
        }
        if last >= 3 {
            let t = self.burst_time.unwrap_or(RxTx {
                rx: Duration::ZERO,
                tx: Duration::ZERO,
            });
            write!(f, " {}/{}", t.rx.as_secs(), t.tx.as_secs())?;
        }
        if last >= 4 {
            write!(f, " {}", self.priority.unwrap_or(8))?;
        }
        if last >= 5 {
            f.write_str(" ")?;
            rates(f, self.min_rate.unwrap_or(zero))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::Attribute;
    use crate::packet::Code;
    use proptest::prelude::*;

    #[test]
    fn rate_limit_forms() {
        let l: RateLimit = "2M/1M".parse().unwrap();
        assert_eq!(l, RateLimit::new(2_000_000, 1_000_000));
        let l: RateLimit = "512k".parse().unwrap();
        assert_eq!(l, RateLimit::new(512_000, 512_000));
        let l: RateLimit = "10M/10M 20M/20M 8M/8M 10/10 8 1M/1M".parse().unwrap();
        assert_eq!(
            l.min_rate,
            Some(RxTx {
                rx: 1_000_000,
                tx: 1_000_000
            })
        );
        assert_eq!(l.priority, Some(8));
        assert_eq!(l.to_string(), "10M/10M 20M/20M 8M/8M 10/10 8 1M/1M");
        let l: RateLimit = "1G/1500 0/0 0/0 10s/20s".parse().unwrap();
        assert_eq!(l.rate.tx, 1500);
        assert_eq!(l.burst_time.unwrap().tx, Duration::from_secs(20));
        for bad in [
            "",
            "x",
            "1M/",
            "1T",
            "1M 1M 1M 1/1 9",
            "1M 1M 1M 1/1 1 1M 7",
            "99999999999999999999G",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn authorization_from_an_accept() {
        let mut p = Packet::new(Code::ACCESS_ACCEPT, 1);
        p.push(Attribute::ipv4(
            AttributeType::FRAMED_IP_ADDRESS,
            Ipv4Addr::new(192, 0, 2, 10),
        ));
        p.push(Attribute::integer(AttributeType::SESSION_TIMEOUT, 3600));
        p.push(Attribute::integer(AttributeType::IDLE_TIMEOUT, 300));
        p.push(Attribute::integer(AttributeType::ACCT_INTERIM_INTERVAL, 60));
        p.push(Attribute::text(AttributeType::FRAMED_POOL, "pool1"));
        p.push(Attribute::new(AttributeType::CLASS, b"c1".to_vec()));
        p.push(Attribute::new(AttributeType::CLASS, b"c2".to_vec()));
        p.push(Attribute::text(AttributeType::REPLY_MESSAGE, "Hello"));
        p.push(Attribute::text(AttributeType::REPLY_MESSAGE, "there"));
        p.push(Attribute::vendor(
            VENDOR_MIKROTIK,
            mikrotik::RATE_LIMIT,
            b"2M/1M",
        ));
        p.push(Attribute::ipv6_prefix(
            AttributeType::FRAMED_IPV6_PREFIX,
            "2001:db8:5::".parse().unwrap(),
            64,
        ));
        let a = Authorization::from_packet(&p);
        assert_eq!(a.framed_ip_address, Some(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(a.session_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(a.idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!(a.interim_interval, Some(Duration::from_secs(60)));
        assert_eq!(a.framed_pool.as_deref(), Some("pool1"));
        assert_eq!(a.class, [b"c1".to_vec(), b"c2".to_vec()]);
        assert_eq!(a.reply_message.as_deref(), Some("Hello\nthere"));
        assert_eq!(a.rate_limit, Some(RateLimit::new(2_000_000, 1_000_000)));
        assert_eq!(a.framed_ipv6_prefix.map(|p| p.1), Some(64));
        // Malformed values are ignored.
        let mut p = Packet::new(Code::ACCESS_ACCEPT, 1);
        p.push(Attribute::new(AttributeType::SESSION_TIMEOUT, [1]));
        p.push(Attribute::vendor(
            VENDOR_MIKROTIK,
            mikrotik::RATE_LIMIT,
            b"fast",
        ));
        assert_eq!(Authorization::from_packet(&p), Authorization::default());
    }

    fn rate() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..10_000,
            (1u64..10_000).prop_map(|n| n * 1000),
            (1u64..10_000).prop_map(|n| n * 1_000_000)
        ]
    }

    proptest! {
        #[test]
        fn rate_limit_round_trip(rx in rate(), tx in rate(), brx in rate(), btx in rate(), fields in 0usize..6, secs in 0u64..1000, prio in 1u8..=8) {
            let mut l = RateLimit::new(rx, tx);
            if fields >= 1 { l.burst_rate = Some(RxTx { rx: brx, tx: btx }); }
            if fields >= 2 { l.burst_threshold = Some(RxTx { rx: btx, tx: brx }); }
            if fields >= 3 { l.burst_time = Some(RxTx { rx: Duration::from_secs(secs), tx: Duration::from_secs(secs + 1) }); }
            if fields >= 4 { l.priority = Some(prio); }
            if fields >= 5 { l.min_rate = Some(RxTx { rx, tx: brx }); }
            let text = l.to_string();
            prop_assert_eq!(text.parse::<RateLimit>().unwrap(), l);
        }

        #[test]
        fn rate_limit_never_panics(text in "\\PC{0,60}") {
            let _ = text.parse::<RateLimit>();
        }
    }
}
