//! A PPPoE client and access concentrator on virtual time over a simulated Ethernet segment:
//! discovery, LCP, authentication, IPCP, datagrams, and both ways of ending a session.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_ipcp::{AddressRange, Ipcp, IpcpConfig};
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials};
use ppp_link::pppoe::{ClientStatus, PppoeClient, PppoeClientEvent, PppoeServer, PppoeServerEvent};
use ppp_link::{Datagram, LinkConfig, LinkEvent};
use ppp_sim::{Endpoint, Impairments, Pair};
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};

const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

struct Client {
    inner: PppoeClient,
    events: Vec<PppoeClientEvent>,
    datagrams: Vec<Datagram>,
}

struct Server {
    inner: PppoeServer,
    secrets: SecretsTable,
    events: Vec<PppoeServerEvent>,
    datagrams: Vec<(u16, Datagram)>,
}

impl Client {
    fn collect(&mut self) {
        while let Some(event) = self.inner.poll_event() {
            self.events.push(event);
        }
        while let Some(datagram) = self.inner.poll_datagram() {
            self.datagrams.push(datagram);
        }
    }
    fn address(&self) -> Option<Ipv4Addr> {
        self.events.iter().find_map(|e| match e {
            PppoeClientEvent::Link(LinkEvent::IpUp { local, .. }) => Some(*local),
            _ => None,
        })
    }
}

impl Server {
    fn collect(&mut self, now: Instant) {
        while let Some(event) = self.inner.poll_event() {
            if let PppoeServerEvent::Link {
                session_id,
                event: LinkEvent::SecretNeeded(request),
            } = &event
            {
                let entry = self.secrets.lookup_now(&request.client, &request.server);
                self.inner.provide_secret(now, *session_id, entry);
            }
            self.events.push(event);
        }
        while let Some(datagram) = self.inner.poll_datagram() {
            self.datagrams.push(datagram);
        }
    }
}

impl Endpoint for Client {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.inner.handle_input(now, data);
        self.collect();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.collect();
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.inner.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}

impl Endpoint for Server {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.inner.handle_input(now, data);
        self.collect(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.collect(now);
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.inner.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}

fn setup(
    method: AuthProtocol,
    password: &str,
    line: Impairments,
    seed: u64,
) -> Pair<Client, Server> {
    let start = Instant::now();
    let mut client_link = LinkConfig {
        seed,
        ..LinkConfig::pppoe()
    };
    client_link.lcp.allow = vec![method];
    client_link.auth.credentials = Some(ClientCredentials::password("alice", password));
    let mut server_link = LinkConfig {
        seed: seed + 1,
        ..LinkConfig::pppoe()
    };
    server_link.lcp.allow.clear();
    server_link.lcp.require = vec![method];
    server_link.auth.authenticator = AuthenticatorConfig::new("ac");
    let mut client = PppoeClient::new(
        ClientConfig::default(),
        client_link,
        MacAddr([2, 0, 0, 0, 0, 0x10]),
    );
    client.start(start);
    let mut server = PppoeServer::new(
        AcConfig::default(),
        server_link,
        MacAddr([2, 0, 0, 0, 0, 0x20]),
        start,
    );
    let pool = AddressRange::new(Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 199));
    server.set_ipcp_factory(Box::new(move |_| {
        Ipcp::with_address_pool(
            IpcpConfig::server(SERVER_ADDR, [Some(Ipv4Addr::new(198, 51, 100, 53)), None]),
            pool.clone(),
        )
    }));
    let secrets = SecretsTable::parse_pppd("alice * \"correct horse\"\n").unwrap();
    let mut pair = Pair::new(
        Client {
            inner: client,
            events: vec![],
            datagrams: vec![],
        },
        Server {
            inner: server,
            secrets,
            events: vec![],
            datagrams: vec![],
        },
        line.clone(),
        line,
        seed,
    );
    pair.flush();
    pair
}

#[test]
fn a_session_comes_up_carries_datagrams_and_ends_with_a_padt() {
    for method in [
        AuthProtocol::ChapMd5,
        AuthProtocol::MsChapV2,
        AuthProtocol::Pap,
    ] {
        let mut pair = setup(
            method,
            "correct horse",
            Impairments::delay(Duration::from_micros(200)),
            1,
        );
        assert!(
            pair.run_until(Duration::from_secs(5), |c, _| c.inner.status()
                == &ClientStatus::Connected)
        );
        assert!(
            pair.elapsed() < Duration::from_millis(50),
            "{:?}",
            pair.elapsed()
        );
        let session = pair.a.inner.session().unwrap().clone();
        assert_eq!(
            (session.ac_name.as_str(), session.mtu.ppp_mtu),
            ("pppoe-ac", 1492)
        );
        let local = pair.a.address().expect("an address from the pool");
        assert_eq!(local, Ipv4Addr::new(192, 0, 2, 100));
        let lcp = pair
            .a
            .inner
            .link()
            .unwrap()
            .lcp_negotiated()
            .unwrap()
            .clone();
        assert_eq!(
            (lcp.our_mru, lcp.peer_mru, lcp.auth_peer_requires),
            (1492, 1492, Some(method))
        );

        let now = pair.now();
        let ping = ppp_tokio::icmp::echo_request(local, SERVER_ADDR, 1, 1, b"pppoe");
        pair.a.inner.send_ipv4(now, &ping).unwrap();
        pair.run_for(pair.elapsed() + Duration::from_millis(10));
        let id = session.session_id;
        assert_eq!(pair.b.datagrams, vec![(id, Datagram::Ipv4(ping))]);
        let reply = ppp_tokio::icmp::echo_reply(
            match &pair.b.datagrams[0].1 {
                Datagram::Ipv4(p) => p,
                _ => unreachable!(),
            },
            SERVER_ADDR,
        )
        .unwrap();
        let now = pair.now();
        pair.b.inner.send_ipv4(now, id, &reply).unwrap();
        pair.run_for(pair.elapsed() + Duration::from_millis(10));
        assert_eq!(pair.a.datagrams, vec![Datagram::Ipv4(reply)]);
        assert_eq!(pair.b.inner.sessions().count(), 1);

        let now = pair.now();
        pair.a.inner.close(now, "user request");
        pair.a.collect();
        pair.run_for(pair.elapsed() + Duration::from_secs(5));
        assert_eq!(
            pair.a.inner.status(),
            &ClientStatus::Disconnected("user request".into())
        );
        assert_eq!(
            pair.b.inner.sessions().count(),
            0,
            "the AC forgot the session"
        );
        assert!(
            pair.b
                .events
                .iter()
                .any(|e| matches!(e, PppoeServerEvent::SessionDown { .. }))
        );
    }
}

#[test]
fn the_server_ending_a_session_reaches_the_client() {
    let mut pair = setup(
        AuthProtocol::ChapMd5,
        "correct horse",
        Impairments::delay(Duration::from_micros(200)),
        2,
    );
    assert!(
        pair.run_until(Duration::from_secs(5), |c, _| c.inner.status()
            == &ClientStatus::Connected)
    );
    let id = pair.a.inner.session().unwrap().session_id;
    let now = pair.now();
    pair.b
        .inner
        .close_session(now, id, "administratively closed");
    pair.b.collect(now);
    assert!(pair.run_until(Duration::from_secs(10), |c, _| matches!(
        c.inner.status(),
        ClientStatus::Disconnected(_)
    )));
    assert_eq!(pair.b.inner.sessions().count(), 0);
}

#[test]
fn a_wrong_password_ends_the_session_and_frees_it() {
    let mut pair = setup(
        AuthProtocol::MsChapV2,
        "wrong",
        Impairments::delay(Duration::from_micros(200)),
        3,
    );
    assert!(pair.run_until(Duration::from_secs(30), |c, _| matches!(
        c.inner.status(),
        ClientStatus::Disconnected(_)
    )));
    let ClientStatus::Disconnected(reason) = pair.a.inner.status() else {
        unreachable!()
    };
    assert!(reason.contains("authentication"), "{reason}");
    pair.run_for(pair.elapsed() + Duration::from_secs(5));
    assert_eq!(pair.b.inner.sessions().count(), 0);
}

#[test]
fn sessions_come_up_over_a_lossy_segment() {
    for seed in 0..40 {
        let mut pair = setup(
            AuthProtocol::MsChapV2,
            "correct horse",
            Impairments::lossy(0.2, Duration::from_millis(1)),
            100 + seed,
        );
        assert!(
            pair.run_until(Duration::from_secs(120), |c, _| c.inner.status()
                == &ClientStatus::Connected),
            "seed {seed}: {:?}",
            pair.a.inner
        );
    }
}
