//! Real exchanges on virtual time, recorded: two `Link`s over an async serial line (every
//! authentication method, MPPE, Deflate, IPv6CP, Multilink, LCP echo, rejects, termination) and
//! a PPPoE client and access concentrator over a simulated Ethernet segment.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_ccp::{CcpConfig, Encryption};
use ppp_frame::{AsyncDecoder, DecoderConfig, FcsKind, Protocol};
use ppp_ipcp::{AddressRange, Ipcp, IpcpConfig, Ipv6cpConfig};
use ppp_lcp::{EndpointClass, EndpointDiscriminator};
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials};
use ppp_link::pppoe::{PppoeClient, PppoeClientState, PppoeServer};
use ppp_link::{CloseReason, Link, LinkConfig, Random};
use ppp_sim::{Impairments, Pair, TappedFrame};
use ppp_tokio::icmp;
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr, decapsulate};

pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);
const AC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x20]);

/// One PPP frame of a recorded exchange.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Sent by the client (else by the server).
    pub from_client: bool,
    /// The protocol field.
    pub protocol: u16,
    /// The information field.
    pub payload: Vec<u8>,
}

/// A recorded exchange.
pub struct Session {
    /// What it exercised.
    pub name: String,
    /// The client's bytes on an async line (empty for PPPoE).
    pub client_stream: Vec<u8>,
    /// The server's bytes on an async line (empty for PPPoE).
    pub server_stream: Vec<u8>,
    /// Ethernet frames (PPPoE), `(sent by the client, frame)`.
    pub ethernet: Vec<(bool, Vec<u8>)>,
    /// Every PPP frame, in the order sent.
    pub frames: Vec<Frame>,
}

/// An IPv4 datagram that MPPE accepts as decrypted (right header checksum): an ICMP echo
/// request with `len` bytes of data.
pub fn ping(src: Ipv4Addr, dst: Ipv4Addr, seq: u16, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i % 7) as u8 + b'a').collect();
    icmp::echo_request(src, dst, 0x4242, seq, &data)
}

/// An IPv6 datagram: no next header, from and to documentation addresses.
pub fn ipv6_packet(payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[59, 64]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend_from_slice(payload);
    p
}

fn secrets() -> Arc<SecretsTable> {
    Arc::new(SecretsTable::parse_pppd("alice * \"correct horse\"\n").unwrap())
}

fn client_config() -> LinkConfig {
    let mut config = LinkConfig::default();
    config.lcp.allow.clear();
    config
}

fn server_config() -> LinkConfig {
    let mut config = LinkConfig {
        ipcp: Some(IpcpConfig {
            remote_address: Some(CLIENT_ADDR),
            ..IpcpConfig::server(SERVER_ADDR, [Some(DNS), None])
        }),
        ..LinkConfig::default()
    };
    config.lcp.allow.clear();
    config
}

/// A client that authenticates as alice with `password` and a server that requires `method`.
fn with_auth(method: AuthProtocol, password: &str) -> (LinkConfig, LinkConfig) {
    let mut client = client_config();
    client.lcp.allow = vec![method];
    client.auth.credentials = Some(ClientCredentials::password("alice", password));
    let mut server = server_config();
    server.lcp.require = vec![method];
    server.auth.authenticator = AuthenticatorConfig::new("server");
    server.auth.secrets = Some(secrets());
    (client, server)
}

fn opened(config: LinkConfig, seed: u64, now: Instant) -> Link {
    let mut link = Link::new(config, Random::seeded(seed));
    link.open(now);
    link.up(now);
    link
}

fn ready(pair: &Pair<Link, Link>) -> bool {
    pair.a.ipcp_negotiated().is_some() && pair.b.ipcp_negotiated().is_some()
}

/// Runs a client and a server from `seed` through `script`, recording the line.
fn link_session(
    name: &str,
    (client, server): (LinkConfig, LinkConfig),
    seed: u64,
    script: impl FnOnce(&mut Pair<Link, Link>, &mut Vec<Frame>),
) -> Session {
    let start = Instant::now();
    let line = Impairments::delay(Duration::from_millis(5));
    let mut pair = Pair::new_at(
        start,
        opened(client, seed, start),
        opened(server, seed ^ 0x5eed, start),
        line.clone(),
        line,
        seed,
    );
    pair.enable_tap();
    let mut injected = Vec::new();
    script(&mut pair, &mut injected);
    let tap = pair.take_tap();
    let stream = |from_client: bool| -> Vec<u8> {
        tap.iter()
            .filter(|t| t.from_a == from_client)
            .flat_map(|t| t.bytes.iter().copied())
            .collect()
    };
    let mut frames = decode_tap(&tap);
    frames.extend(injected);
    Session {
        name: name.into(),
        client_stream: stream(true),
        server_stream: stream(false),
        ethernet: Vec::new(),
        frames,
    }
}

/// The PPP frames of an async line's recording, both directions, in order.
fn decode_tap(tap: &[TappedFrame]) -> Vec<Frame> {
    let config = DecoderConfig {
        accm: 0,
        fcs: FcsKind::Fcs16,
        max_frame_len: 1 << 16,
    };
    let mut decoders = [AsyncDecoder::new(config.clone()), AsyncDecoder::new(config)];
    let mut frames = Vec::new();
    for t in tap {
        let mut input = &t.bytes[..];
        while let Some(result) = decoders[usize::from(t.from_a)].decode(&mut input) {
            let frame = result.expect("a recorded frame decodes");
            frames.push(Frame {
                from_client: t.from_a,
                protocol: u16::from(frame.protocol),
                payload: frame.payload.to_vec(),
            });
        }
    }
    frames
}

/// Up, pings both ways (`size` bytes of data), echo while idle, then the client closes.
fn up_ping_close(pair: &mut Pair<Link, Link>, size: usize) {
    assert!(
        pair.run_until_pair(Duration::from_secs(10), ready),
        "{pair:?} {:?}",
        pair.a_events
    );
    for seq in 1..=3 {
        let now = pair.now();
        pair.a
            .send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, seq, size))
            .unwrap();
        pair.b
            .send_ipv4(now, &ping(SERVER_ADDR, CLIENT_ADDR, seq, size))
            .unwrap();
        pair.run_for(pair.elapsed() + Duration::from_millis(50));
    }
    while pair.a.poll_datagram().is_some() | pair.b.poll_datagram().is_some() {}
    pair.run_for(pair.elapsed() + Duration::from_secs(3));
    let now = pair.now();
    pair.a.close(now, CloseReason::UserRequest);
    pair.run_for(pair.elapsed() + Duration::from_secs(5));
}

fn ccp(encryption: Encryption, bits: [bool; 3], stateful: bool) -> CcpConfig {
    CcpConfig {
        encryption,
        mppe_128: bits[0],
        mppe_56: bits[1],
        mppe_40: bits[2],
        mppe_stateful: stateful,
        ..CcpConfig::default()
    }
}

/// Every async-line exchange.
pub fn link_sessions() -> Vec<Session> {
    let mut sessions = Vec::new();
    let mut plain = (client_config(), server_config());
    plain.0.lcp.echo_interval = Some(Duration::from_secs(1));
    sessions.push(link_session("plain", plain, 1, |p, _| up_ping_close(p, 16)));
    let methods = [
        ("pap", AuthProtocol::Pap),
        ("chap-md5", AuthProtocol::ChapMd5),
        ("ms-chap-v1", AuthProtocol::MsChapV1),
        ("ms-chap-v2", AuthProtocol::MsChapV2),
    ];
    for (i, (name, method)) in methods.into_iter().enumerate() {
        let seed = 10 + i as u64;
        sessions.push(link_session(
            name,
            with_auth(method, "correct horse"),
            seed,
            |p, _| up_ping_close(p, 8),
        ));
        sessions.push(link_session(
            &format!("{name}-wrong-password"),
            with_auth(method, "battery staple"),
            seed + 10,
            |p, _| p.run_for(Duration::from_secs(20)),
        ));
    }
    let encrypted = [
        (
            "mppe-128-stateless",
            AuthProtocol::MsChapV2,
            [true, false, false],
            false,
        ),
        (
            "mppe-40-stateful",
            AuthProtocol::MsChapV1,
            [false, false, true],
            true,
        ),
        (
            "mppe-56-stateless",
            AuthProtocol::MsChapV2,
            [false, true, false],
            false,
        ),
    ];
    for (i, (name, method, bits, stateful)) in encrypted.into_iter().enumerate() {
        let (mut client, mut server) = with_auth(method, "correct horse");
        client.ccp = Some(ccp(Encryption::Required, bits, stateful));
        server.ccp = Some(ccp(Encryption::Required, bits, stateful));
        sessions.push(link_session(
            name,
            (client, server),
            30 + i as u64,
            |p, _| {
                assert!(p.run_until(Duration::from_secs(10), |a, b| {
                    a.ccp_negotiated().is_some_and(|n| n.fully_encrypted())
                        && b.ccp_negotiated().is_some()
                }));
                up_ping_close(p, 40);
            },
        ));
    }
    let (mut client, mut server) = (client_config(), server_config());
    client.ccp = Some(CcpConfig::deflate(15));
    server.ccp = Some(CcpConfig::deflate(12));
    sessions.push(link_session("deflate", (client, server), 40, |p, _| {
        assert!(p.run_until(Duration::from_secs(10), |a, b| {
            a.ccp_negotiated().is_some() && b.ccp_negotiated().is_some()
        }));
        up_ping_close(p, 200);
    }));
    let (mut client, mut server) = (client_config(), server_config());
    client.ipv6cp = Some(Ipv6cpConfig::default());
    server.ipv6cp = Some(Ipv6cpConfig::default());
    sessions.push(link_session("ipv6cp", (client, server), 50, |p, _| {
        assert!(p.run_until(Duration::from_secs(10), |a, b| {
            a.ipv6cp_negotiated().is_some() && b.ipv6cp_negotiated().is_some()
        }));
        let now = p.now();
        p.a.send_ipv6(now, &ipv6_packet(b"across the link"))
            .unwrap();
        up_ping_close(p, 8);
    }));
    let mut client = client_config();
    client.ipv6cp = Some(Ipv6cpConfig::default());
    sessions.push(link_session(
        "ipv6cp-rejected",
        (client, server_config()),
        51,
        |p, _| up_ping_close(p, 8),
    ));
    for (name, ssnhf) in [("multilink-long", false), ("multilink-short", true)] {
        let (mut client, mut server) = with_auth(AuthProtocol::ChapMd5, "correct horse");
        for (config, endpoint) in [(&mut client, 1u8), (&mut server, 2)] {
            config.lcp.mrru = Some(1614);
            config.lcp.ssnhf = ssnhf;
            config.lcp.endpoint_discriminator = Some(EndpointDiscriminator {
                class: EndpointClass::Local,
                address: vec![0x5e, 0xed, endpoint],
            });
        }
        sessions.push(link_session(
            name,
            (client, server),
            60 + u64::from(ssnhf),
            |p, _| {
                assert!(p.run_until_pair(Duration::from_secs(10), ready));
                assert!(p.a.is_multilink());
                let now = p.now();
                p.a.send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, 9, 1560))
                    .unwrap();
                p.b.send_ipv4(now, &ping(SERVER_ADDR, CLIENT_ADDR, 9, 300))
                    .unwrap();
                up_ping_close(p, 32);
            },
        ));
    }
    let (mut client, mut server) = (client_config(), server_config());
    client.lcp.mru = 1400;
    client.lcp.accm = Some(0x000a_0000);
    client.lcp.lqr_period = Some(1000);
    server.lcp.pfc = false;
    server.lcp.magic = false;
    sessions.push(link_session("lcp-options", (client, server), 70, |p, _| {
        up_ping_close(p, 8)
    }));
    sessions.push(link_session(
        "rejects",
        (client_config(), server_config()),
        80,
        |p, injected| {
            assert!(p.run_until_pair(Duration::from_secs(10), ready));
            // An unknown protocol (Protocol-Reject), an unknown LCP code (Code-Reject), a
            // Discard-Request, an Echo-Request and an Identification to the server.
            let frames: [(u16, &[u8]); 5] = [
                (0x8235, &[1, 1, 0, 4]),
                (0xC021, &[0x20, 7, 0, 6, 1, 2]),
                (0xC021, &[11, 8, 0, 8, 0, 0, 0, 0]),
                (0xC021, &[9, 9, 0, 12, 0, 0, 0, 0, b'p', b'i', b'n', b'g']),
                (0xC021, &[12, 10, 0, 12, 0, 0, 0, 0, b'h', b'e', b'l', b'o']),
            ];
            for (protocol, payload) in frames {
                let now = p.now();
                p.b.handle_frame(now, Protocol::from(protocol), payload);
                injected.push(Frame {
                    from_client: true,
                    protocol,
                    payload: payload.to_vec(),
                });
                p.run_for(p.elapsed() + Duration::from_millis(20));
            }
            let now = p.now();
            p.b.close(now, CloseReason::AdminReset);
            p.run_for(p.elapsed() + Duration::from_secs(5));
        },
    ));
    sessions
}

/// The PPPoE client and access concentrator for `method`.
fn pppoe_machines(
    method: AuthProtocol,
    ccp: Option<CcpConfig>,
    seed: u64,
) -> (PppoeClient, PppoeServer) {
    let mut client_link = LinkConfig::pppoe();
    client_link.lcp.allow = vec![method];
    client_link.lcp.echo_interval = Some(Duration::from_secs(1));
    client_link.auth.credentials = Some(ClientCredentials::password("alice", "correct horse"));
    client_link.ccp = ccp.clone();
    let mut server_link = LinkConfig::pppoe();
    server_link.lcp.allow.clear();
    server_link.lcp.require = vec![method];
    server_link.auth.authenticator = AuthenticatorConfig::new("ac");
    server_link.auth.secrets = Some(secrets());
    server_link.ccp = ccp;
    let discovery = ClientConfig {
        service_name: "internet".into(),
        host_uniq: Some(vec![0x11, 0x22, 0x33, 0x44]),
        ..ClientConfig::default()
    };
    let client = PppoeClient::new(discovery, client_link, CLIENT_MAC, Random::seeded(seed));
    let mut server = PppoeServer::new(
        AcConfig::default(),
        server_link,
        AC_MAC,
        Random::seeded(seed + 1),
    );
    let pool = AddressRange::new(Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 199));
    server.set_ipcp_factory(Box::new(move |_| {
        Ipcp::with_address_pool(
            IpcpConfig::server(SERVER_ADDR, [Some(DNS), None]),
            pool.clone(),
        )
    }));
    (client, server)
}

/// A PPPoE session: discovery, the link up, pings, echo, then `close_by_ac` decides who ends it
/// (with a PADT).
fn pppoe_session(
    name: &str,
    method: AuthProtocol,
    ccp: Option<CcpConfig>,
    seed: u64,
    close_by_ac: bool,
) -> Session {
    let start = Instant::now();
    let (mut client, server) = pppoe_machines(method, ccp, seed);
    client.open(start);
    let line = Impairments::delay(Duration::from_micros(200));
    let mut pair = Pair::new_at(start, client, server, line.clone(), line, seed);
    pair.enable_tap();
    let connected = |p: &Pair<PppoeClient, PppoeServer>| {
        p.a.state() == &PppoeClientState::Connected
            && p.a.link().is_some_and(|l| l.ipcp_negotiated().is_some())
    };
    assert!(
        pair.run_until_pair(Duration::from_secs(5), connected),
        "{name}"
    );
    let local = pair.a.link().unwrap().ipcp_negotiated().unwrap().local;
    for seq in 1..=2 {
        let now = pair.now();
        pair.a
            .send_ipv4(now, &ping(local, SERVER_ADDR, seq, 24))
            .unwrap();
        pair.run_for(pair.elapsed() + Duration::from_millis(20));
    }
    pair.run_for(pair.elapsed() + Duration::from_secs(2));
    let now = pair.now();
    if close_by_ac {
        let id = pair.b.sessions().next().map(|(id, _)| id).unwrap();
        pair.b.close_session(now, id, CloseReason::AdminReset);
    } else {
        pair.a.close(now, CloseReason::UserRequest);
    }
    pair.run_for(pair.elapsed() + Duration::from_secs(5));
    let ethernet: Vec<(bool, Vec<u8>)> = pair
        .take_tap()
        .into_iter()
        .map(|t| (t.from_a, t.bytes))
        .collect();
    let frames = ethernet
        .iter()
        .filter_map(|(from_client, frame)| {
            let session = decapsulate(frame).ok()?;
            Some(Frame {
                from_client: *from_client,
                protocol: u16::from(session.protocol),
                payload: session.payload.to_vec(),
            })
        })
        .collect();
    Session {
        name: name.into(),
        client_stream: Vec::new(),
        server_stream: Vec::new(),
        ethernet,
        frames,
    }
}

/// Every PPPoE exchange.
pub fn pppoe_sessions() -> Vec<Session> {
    let mppe = CcpConfig {
        encryption: Encryption::Required,
        mppe_40: false,
        ..CcpConfig::default()
    };
    vec![
        pppoe_session("pppoe-pap", AuthProtocol::Pap, None, 1, false),
        pppoe_session("pppoe-chap-md5", AuthProtocol::ChapMd5, None, 3, true),
        pppoe_session(
            "pppoe-ms-chap-v2-mppe",
            AuthProtocol::MsChapV2,
            Some(mppe),
            5,
            false,
        ),
    ]
}
