//! The text the programs print, in RouterOS's manner: `monitor` as right-aligned `key: value`
//! lines, `scan` and `sessions` as tables, durations as `1h2m3s`.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use ppp_radius::{ClientStats, DaeStats};
use ppp_tokio::pppoe::{ClientSnapshot, SessionSnapshot};
use pppoe_discovery::ScanResult;

/// A duration as RouterOS prints uptimes: `1w2d3h4m5s`, leaving out zero units (`0s` for
/// nothing).
pub fn uptime(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        let count = secs / size;
        secs %= size;
        if count > 0 {
            let _ = write!(out, "{count}{unit}");
        }
    }
    out
}

/// The uptime of something started at `since`, as of `now`.
pub fn uptime_since(since: SystemTime, now: SystemTime) -> String {
    uptime(now.duration_since(since).unwrap_or_default())
}

fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let _ = writeln!(out, "{key:>width$}: {value}");
    }
    out
}

/// What `pppoe-client monitor` prints (RouterOS `/interface pppoe-client monitor`). Fields that
/// have no value yet are left out, as RouterOS does while dialing.
pub fn monitor(snapshot: &ClientSnapshot, now: SystemTime) -> String {
    let status = if snapshot.status.is_empty() {
        "idle".to_owned()
    } else {
        snapshot.status.clone()
    };
    let mut pairs = vec![("status", status)];
    if let Some(since) = snapshot.connected_since {
        pairs.push(("uptime", uptime_since(since, now)));
    }
    pairs.push(("active-links", snapshot.active_links.to_string()));
    if snapshot.active_links > 0 {
        if let Some(name) = &snapshot.ac_name {
            pairs.push(("ac-name", name.clone()));
        }
        if let Some(mac) = snapshot.ac_mac {
            pairs.push(("ac-mac", mac.to_string().to_ascii_uppercase()));
        }
        if let Some(service) = &snapshot.service_name {
            pairs.push(("service-name", service.clone()));
        }
        if let Some(address) = snapshot.local_address {
            pairs.push(("local-address", address.to_string()));
        }
        if let Some(address) = snapshot.remote_address {
            pairs.push(("remote-address", address.to_string()));
        }
        if let Some(address) = snapshot.local_ipv6 {
            pairs.push(("local-ipv6", address.to_string()));
        }
        if let Some(address) = snapshot.remote_ipv6 {
            pairs.push(("remote-ipv6", address.to_string()));
        }
        if let Some(mtu) = snapshot.mtu {
            pairs.push(("mtu", mtu.to_string()));
        }
        if let Some(mru) = snapshot.mru {
            pairs.push(("mru", mru.to_string()));
        }
        let encoding = if snapshot.encoding.is_empty() {
            "none".to_owned()
        } else {
            snapshot.encoding.clone()
        };
        let encrypted = encoding.starts_with("MPPE");
        pairs.push(("encoding", encoding));
        if encrypted {
            pairs.push(("mppe-resyncs", snapshot.ccp_resyncs.to_string()));
        }
        if let Some(interface) = &snapshot.interface {
            pairs.push(("interface", interface.clone()));
        }
    }
    key_values(&pairs)
}

/// Renders rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, width) in cells.zip(&widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// What `pppoe-client scan` prints: one row per access concentrator and service
/// (RouterOS `/interface pppoe-client scan`).
pub fn scan(results: &[ScanResult]) -> String {
    let mut rows = Vec::new();
    for (index, result) in results.iter().enumerate() {
        let mac = result.ac_mac.to_string().to_ascii_uppercase();
        // A PADO echoes the PADI's empty Service-Name ("any") next to the real ones.
        let named: Vec<&String> = result.services.iter().filter(|s| !s.is_empty()).collect();
        if named.is_empty() {
            rows.push(vec![
                index.to_string(),
                String::new(),
                mac.clone(),
                result.ac_name.clone(),
            ]);
        }
        for service in named {
            rows.push(vec![
                index.to_string(),
                service.clone(),
                mac.clone(),
                result.ac_name.clone(),
            ]);
        }
    }
    table(&["#", "SERVICE", "MAC-ADDRESS", "AC-NAME"], &rows)
}

/// What `access-concentrator sessions` prints (RouterOS `/ppp active print`).
pub fn sessions(sessions: &[SessionSnapshot], now: SystemTime) -> String {
    let mut sorted: Vec<&SessionSnapshot> = sessions.iter().collect();
    sorted.sort_by_key(|s| s.session_id);
    let rows: Vec<Vec<String>> = sorted
        .into_iter()
        .enumerate()
        .map(|(index, session)| {
            vec![
                index.to_string(),
                format!("{:#06x}", session.session_id),
                session.user.clone().unwrap_or_default(),
                session.client_mac.to_string().to_ascii_uppercase(),
                session.address.map(|a| a.to_string()).unwrap_or_default(),
                uptime_since(session.started, now),
                session.service_name.clone(),
                session.interface.clone().unwrap_or_default(),
                session.state.clone(),
                session.encoding.clone(),
                session
                    .bundle
                    .map_or_else(String::new, |bundle| bundle.to_string()),
                session.rate_limit.clone().unwrap_or_default(),
                session.ccp_resyncs.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "#",
            "SESSION-ID",
            "NAME",
            "CALLER-ID",
            "ADDRESS",
            "UPTIME",
            "SERVICE",
            "INTERFACE",
            "STATE",
            "ENCODING",
            "BUNDLE",
            "RATE-LIMIT",
            "RESYNCS",
        ],
        &rows,
    )
}

/// What `access-concentrator radius` prints (RouterOS `/radius monitor` and `/radius incoming
/// monitor`): the RADIUS client's counters and the dynamic-authorization listener's.
pub fn radius(client: Option<ClientStats>, incoming: Option<DaeStats>) -> String {
    let mut pairs = Vec::new();
    match client {
        Some(c) => pairs.extend([
            ("requests", c.requests.to_string()),
            ("resends", c.retransmissions.to_string()),
            ("answers", c.answers.to_string()),
            ("timeouts", c.access_timeouts.to_string()),
            (
                "bad-replies",
                (c.malformed + c.unexpected_code + c.unsolicited).to_string(),
            ),
            ("forged-replies", c.forged.to_string()),
            ("accounting-spooled", c.spooled.to_string()),
            ("accounting-dropped", c.spool_dropped.to_string()),
        ]),
        None => pairs.push(("radius", "not configured".to_owned())),
    }
    if let Some(d) = incoming {
        pairs.extend([
            ("incoming-requests", d.requests.to_string()),
            ("incoming-acks", d.acks.to_string()),
            ("incoming-naks", d.naks.to_string()),
            ("incoming-duplicates", d.duplicates.to_string()),
            ("incoming-forged", d.forged.to_string()),
            ("incoming-unknown-clients", d.unknown_client.to_string()),
            ("incoming-malformed", d.malformed.to_string()),
            ("incoming-stale", d.stale.to_string()),
        ]);
    }
    key_values(&pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pppoe_discovery::MacAddr;
    use std::net::Ipv4Addr;

    #[test]
    fn uptimes() {
        let table = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3_725, "1h2m5s"),
            (694_861, "1w1d1h1m1s"),
        ];
        for (secs, text) in table {
            assert_eq!(uptime(Duration::from_secs(secs)), text);
        }
        let now = SystemTime::now();
        assert_eq!(uptime_since(now + Duration::from_secs(5), now), "0s");
    }

    #[test]
    fn monitor_connected() {
        let mut snapshot = ClientSnapshot::default();
        snapshot.status = "connected".into();
        snapshot.active_links = 1;
        let now = SystemTime::now();
        snapshot.connected_since = Some(now - Duration::from_secs(65));
        snapshot.ac_name = Some("ac1".into());
        snapshot.ac_mac = Some(MacAddr([0x02, 0, 0, 0, 0xab, 1]));
        snapshot.service_name = Some("internet".into());
        snapshot.local_address = Some(Ipv4Addr::new(192, 0, 2, 100));
        snapshot.remote_address = Some(Ipv4Addr::new(192, 0, 2, 1));
        snapshot.mtu = Some(1492);
        snapshot.mru = Some(1492);
        snapshot.encoding = "none".into();
        let text = monitor(&snapshot, now);
        let expected = [
            "        status: connected",
            "        uptime: 1m5s",
            "  active-links: 1",
            "       ac-name: ac1",
            "        ac-mac: 02:00:00:00:AB:01",
            "  service-name: internet",
            " local-address: 192.0.2.100",
            "remote-address: 192.0.2.1",
            "           mtu: 1492",
            "           mru: 1492",
            "      encoding: none",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn monitor_shows_mppe_resyncs_when_encrypted() {
        let mut snapshot = ClientSnapshot::default();
        snapshot.status = "connected".into();
        snapshot.active_links = 1;
        snapshot.local_address = Some(Ipv4Addr::new(192, 0, 2, 100));
        snapshot.encoding = "MPPE128 stateless".into();
        snapshot.ccp_resyncs = 2;
        let text = monitor(&snapshot, SystemTime::now());
        assert!(text.contains("mppe-resyncs: 2"), "{text}");
        snapshot.encoding = "none".into();
        let text = monitor(&snapshot, SystemTime::now());
        assert!(!text.contains("mppe-resyncs"), "{text}");
    }

    #[test]
    fn monitor_dialing_shows_little() {
        let mut snapshot = ClientSnapshot::default();
        snapshot.status = "dialing".into();
        let text = monitor(&snapshot, SystemTime::now());
        assert_eq!(text, "      status: dialing\nactive-links: 0\n");
    }

    #[test]
    fn scan_table() {
        let results = vec![ScanResult {
            ac_name: "ac1".into(),
            ac_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            services: vec![String::new(), "internet".into(), "voip".into()],
        }];
        let text = scan(&results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#  SERVICE   MAC-ADDRESS        AC-NAME");
        assert_eq!(lines[1], "0  internet  02:00:00:00:00:01  ac1");
        assert_eq!(lines[2], "0  voip      02:00:00:00:00:01  ac1");
    }
}
