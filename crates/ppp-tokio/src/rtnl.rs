//! rtnetlink for the servers' session interfaces: configuring a TUN device (MTU, link up,
//! point-to-point IPv4 address, netdev group), reading an interface's counters (accounting on
//! the kernel data path) and deleting all of a server's devices at once, without spawning a
//! process.
//!
//! [`crate::netconfig`] runs `ip` for each change, which is right for a client's one interface
//! but costs two to four process spawns per session on a server (a few milliseconds each, and
//! the whole set-up rate of the access concentrator). Here the same requests go to the
//! kernel's rtnetlink socket directly: one `sendmsg(2)` carrying every request of a session
//! and one read of the acknowledgements, which the kernel writes while it handles the
//! `sendmsg` (so reading them never waits).
//!
//! Every device of a server gets the same netdev group ([`PointToPoint::group`]); stopping
//! deletes the group with one request, which the kernel does as one batch (one RCU grace
//! period for all devices instead of one each: 500 devices go in milliseconds instead of
//! seconds). The group is also what firewall rules can match (`iifgroup`).
//!
//! The socket acts in the network namespace of the thread that opened it.
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use ppp_tokio::rtnl::{PointToPoint, RouteSocket};
//!
//! # fn run() -> std::io::Result<()> {
//! let mut rtnl = RouteSocket::open()?;
//! rtnl.configure_point_to_point(&PointToPoint {
//!     index: 7,
//!     mtu: 1492,
//!     group: 0x5050_0001,
//!     local: Ipv4Addr::new(192, 0, 2, 1),
//!     peer: Ipv4Addr::new(192, 0, 2, 100),
//! })?;
//! rtnl.delete_group(0x5050_0001)?;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute, LinkFlags, LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// What one session interface gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointToPoint {
    /// The interface index.
    pub index: u32,
    /// Its MTU.
    pub mtu: u32,
    /// The netdev group of the server's interfaces (not 0, the default group of every
    /// device).
    pub group: u32,
    /// Our address.
    pub local: Ipv4Addr,
    /// The peer's address (`/32`; the kernel adds the host route).
    pub peer: Ipv4Addr,
}

/// What moved through an interface, from the kernel's 64-bit counters (`IFLA_STATS64`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Octets received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Octets sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
}

/// What the kernel counted on a session's interface, as RADIUS accounts it: received is what
/// came from the user (input).
impl From<LinkCounters> for ppp_radius::Counters {
    fn from(counters: LinkCounters) -> Self {
        ppp_radius::Counters {
            input_octets: counters.rx_bytes,
            input_packets: counters.rx_packets,
            output_octets: counters.tx_bytes,
            output_packets: counters.tx_packets,
        }
    }
}

/// A blocking rtnetlink socket whose requests are answered at once (see the module docs).
#[derive(Debug)]
pub struct RouteSocket {
    socket: Socket,
    sequence: u32,
    buf: Vec<u8>,
}

impl RouteSocket {
    /// Opens an rtnetlink socket in the calling thread's network namespace.
    ///
    /// # Errors
    ///
    /// Creating or binding the socket fails.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(RouteSocket {
            socket,
            sequence: 0,
            buf: vec![0; 16_384],
        })
    }

    /// Configures a TUN device for a session: IPv6 address generation off (the link-local
    /// addresses are the ones IPv6CP negotiates; ignored where the kernel has no IPv6), MTU,
    /// group and up, then `local peer PEER/32`. One `sendmsg`, one read.
    ///
    /// # Errors
    ///
    /// The kernel refused the MTU, the link change or the address (the first such error).
    pub fn configure_point_to_point(&mut self, config: &PointToPoint) -> io::Result<()> {
        if config.group == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "session interfaces need a group other than 0",
            ));
        }
        let mut addr_gen = LinkMessage::default();
        addr_gen.header.index = config.index;
        addr_gen.attributes = vec![LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
        )])];
        let mut link = LinkMessage::default();
        link.header.index = config.index;
        link.header.flags = LinkFlags::Up;
        link.header.change_mask = LinkFlags::Up;
        link.attributes = vec![
            LinkAttribute::Mtu(config.mtu),
            LinkAttribute::Group(config.group),
        ];
        let mut address = AddressMessage::default();
        address.header.family = AddressFamily::Inet;
        address.header.prefix_len = 32;
        address.header.scope = AddressScope::Universe;
        address.header.index = config.index;
        address.attributes = vec![
            AddressAttribute::Local(IpAddr::V4(config.local)),
            AddressAttribute::Address(IpAddr::V4(config.peer)),
        ];
        let create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let results = self.batch(vec![
            (
                RouteNetlinkMessage::SetLink(addr_gen),
                NLM_F_REQUEST | NLM_F_ACK,
            ),
            (
                RouteNetlinkMessage::SetLink(link),
                NLM_F_REQUEST | NLM_F_ACK,
            ),
            (RouteNetlinkMessage::NewAddress(address), create),
        ])?;
        // The first request may fail without IPv6; the others must not.
        results.into_iter().skip(1).collect()
    }

    /// Moves device `index` into netdev group `group` (to be deleted with it later; a change of
    /// group costs the kernel next to nothing, unlike deleting a device on its own).
    ///
    /// # Errors
    ///
    /// The kernel's refusal (`ENODEV` for a device gone).
    pub fn move_to_group(&mut self, index: u32, group: u32) -> io::Result<()> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.attributes = vec![LinkAttribute::Group(group)];
        let mut results = self.batch(vec![(
            RouteNetlinkMessage::SetLink(link),
            NLM_F_REQUEST | NLM_F_ACK,
        )])?;
        results.pop().unwrap_or(Ok(()))
    }

    /// Deletes every device of netdev group `group` in one batch.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for group 0 (every device is in it); the kernel's refusal otherwise.
    pub fn delete_group(&mut self, group: u32) -> io::Result<()> {
        if group == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "group 0 holds every device; refusing to delete it",
            ));
        }
        let mut link = LinkMessage::default();
        link.attributes = vec![LinkAttribute::Group(group)];
        let mut results = self.batch(vec![(
            RouteNetlinkMessage::DelLink(link),
            NLM_F_REQUEST | NLM_F_ACK,
        )])?;
        results.pop().unwrap_or(Ok(()))
    }

    /// The counters of the interface named `name` (`RTM_GETLINK`): what the kernel moved
    /// through it, for accounting a session whose datagrams never cross this process (the
    /// kernel data path).
    ///
    /// # Errors
    ///
    /// The kernel's refusal (`ENODEV` for a device gone), or a reply without counters.
    pub fn link_counters(&mut self, name: &str) -> io::Result<LinkCounters> {
        let mut request = LinkMessage::default();
        request.attributes = vec![LinkAttribute::IfName(name.to_owned())];
        let sequence = self.send(vec![(RouteNetlinkMessage::GetLink(request), NLM_F_REQUEST)])?;
        let mut answer = None;
        self.read_replies(sequence, |slot, message| {
            if slot != 0 {
                return false;
            }
            answer = match message {
                Some(NetlinkMessage {
                    payload: NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)),
                    ..
                }) => Some(counters_of(&link)),
                Some(NetlinkMessage {
                    payload: NetlinkPayload::Error(error),
                    ..
                }) => Some(Err(match error.code {
                    Some(code) => io::Error::from_raw_os_error(-code.get()),
                    None => io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the kernel acknowledged a link query without answering it",
                    ),
                })),
                _ => None,
            };
            answer.is_some()
        })?;
        answer.unwrap_or_else(|| Err(io::Error::from(io::ErrorKind::InvalidData)))
    }

    /// Sends `requests` in one datagram and returns each one's outcome, in order.
    fn batch(
        &mut self,
        requests: Vec<(RouteNetlinkMessage, u16)>,
    ) -> io::Result<Vec<io::Result<()>>> {
        let count = requests.len();
        let first = self.send(requests)?;
        let mut results: Vec<Option<io::Result<()>>> = (0..count).map(|_| None).collect();
        self.read_replies(first, |slot, message| {
            if let (
                Some(result),
                Some(NetlinkMessage {
                    payload: NetlinkPayload::Error(error),
                    ..
                }),
            ) = (results.get_mut(slot), message)
            {
                *result = Some(match error.code {
                    None => Ok(()),
                    Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                });
            }
            results.iter().all(Option::is_some)
        })?;
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }

    /// Sends `requests` in one datagram, numbered from the returned sequence number on.
    fn send(&mut self, requests: Vec<(RouteNetlinkMessage, u16)>) -> io::Result<u32> {
        let first = self.sequence.wrapping_add(1);
        let mut out = Vec::new();
        for (request, flags) in requests {
            self.sequence = self.sequence.wrapping_add(1);
            let mut header = NetlinkHeader::default();
            header.flags = flags;
            header.sequence_number = self.sequence;
            let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
            message.finalize();
            let start = out.len();
            out.resize(start + message.buffer_len(), 0);
            message.serialize(&mut out[start..]);
        }
        self.socket.send(&out, 0)?;
        Ok(first)
    }

    /// Hands each message the kernel sent back to `take`, with its request's place counted from
    /// sequence number `first` (`None` for one that does not parse), until `take` says it has
    /// all it waits for. The kernel answered while it handled `send`: nothing left to read
    /// means an answer was lost (a full receive buffer), not one still to come, and is an
    /// error (`WouldBlock`).
    fn read_replies(
        &mut self,
        first: u32,
        mut take: impl FnMut(usize, Option<NetlinkMessage<RouteNetlinkMessage>>) -> bool,
    ) -> io::Result<()> {
        loop {
            let len = self
                .socket
                .recv(&mut &mut self.buf[..], libc::MSG_DONTWAIT)?;
            let mut offset = 0;
            while offset < len {
                let Ok(frame) = NetlinkBuffer::new_checked(&self.buf[offset..len]) else {
                    break;
                };
                let length = frame.length() as usize;
                if length == 0 {
                    break;
                }
                let slot = frame.sequence_number().wrapping_sub(first) as usize;
                let message =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..len]).ok();
                offset += (length + 3) & !3;
                if take(slot, message) {
                    return Ok(());
                }
            }
        }
    }
}

/// The counters in a link message (`IFLA_STATS64`).
fn counters_of(link: &LinkMessage) -> io::Result<LinkCounters> {
    link.attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::Stats64(stats) => Some(LinkCounters {
                rx_bytes: stats.rx_bytes,
                rx_packets: stats.rx_packets,
                tx_bytes: stats.tx_bytes,
                tx_packets: stats.tx_packets,
            }),
            _ => None,
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the kernel's link reply has no counters",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_zero_is_refused_before_anything_is_sent() {
        let mut rtnl = RouteSocket::open().expect("an rtnetlink socket needs no privilege");
        let error = rtnl.delete_group(0).expect_err("group 0");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let error = rtnl
            .configure_point_to_point(&PointToPoint {
                index: 1,
                mtu: 1492,
                group: 0,
                local: Ipv4Addr::new(192, 0, 2, 1),
                peer: Ipv4Addr::new(192, 0, 2, 2),
            })
            .expect_err("group 0");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(rtnl.sequence, 0, "nothing sent");
    }

    #[test]
    fn the_loopback_devices_counters_are_read_and_a_missing_device_is_an_error() {
        let mut rtnl = RouteSocket::open().expect("socket");
        // Every network namespace has `lo`; reading needs no privilege.
        let before = rtnl.link_counters("lo").expect("lo's counters");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = socket.local_addr().expect("address");
        for _ in 0..3 {
            socket.send_to(&[0u8; 100], to).expect("send");
        }
        let after = rtnl.link_counters("lo").expect("lo's counters");
        assert!(
            after.tx_packets >= before.tx_packets + 3,
            "{before:?} -> {after:?}"
        );
        assert!(
            after.tx_bytes >= before.tx_bytes + 300,
            "{before:?} -> {after:?}"
        );
        let error = rtnl
            .link_counters("no-such-ppp9")
            .expect_err("no such device");
        assert_eq!(error.raw_os_error(), Some(libc::ENODEV), "{error}");
    }

    #[test]
    fn the_kernels_refusal_comes_back_as_an_error() {
        let mut rtnl = RouteSocket::open().expect("socket");
        // No device has index u32::MAX: the kernel answers ENODEV (or EPERM unprivileged).
        let error = rtnl
            .configure_point_to_point(&PointToPoint {
                index: u32::MAX,
                mtu: 1492,
                group: 0x0100_0001,
                local: Ipv4Addr::new(192, 0, 2, 1),
                peer: Ipv4Addr::new(192, 0, 2, 2),
            })
            .expect_err("no such device");
        assert!(error.raw_os_error().is_some(), "{error}");
        assert_eq!(rtnl.sequence, 3, "three requests in one batch");
    }
}
