//! The PPP Multilink Protocol (RFC 1990), sans-IO: packets split into fragments across several
//! member links and put back together in order at the other end.
//!
//! This is a crate of its own because Multilink sits between the member links and the network
//! protocols: each member link runs its own framing, LCP and authentication, while the NCPs,
//! CCP and the datagrams run once over the bundle. The crate knows nothing of LCP; it takes what
//! LCP negotiated (MRRU, Short Sequence Number Header Format, Endpoint Discriminator) as plain
//! values.
//!
//! - [`header`]: the MP header in its long (24-bit) and short (12-bit) formats, parsed and
//!   emitted symmetrically, and wrap-safe sequence arithmetic.
//! - [`Fragmenter`]: the sending side. Packets below a threshold go whole on the member that
//!   will be free first; larger ones are split across the members in proportion to their speed
//!   and what they still have queued, within each member's MTU and the peer's MRRU
//!   ([`fragment`] has the policy).
//! - [`Reassembler`]: the receiving side. RFC 1990's loss detection (M, the minimum over the
//!   members of the last sequence number seen on each), strict in-order delivery, duplicates
//!   dropped, a reassembly timeout so an idle member never stalls delivery, and a memory bound
//!   ([`reassembly`] has the rules).
//! - [`Bundle`]: both over a set of member links that may join and leave while it is up; the
//!   last one to leave takes it down.
//! - [`BundleKey`] and [`BundleRegistry`]: which bundle a new link joins, by the peer's
//!   authenticated name and Endpoint Discriminator (RFC 1990 §5.1.3; [`membership`]).
//!
//! Nothing here reads a clock, sleeps, touches a socket or draws random numbers; the same
//! inputs give the same outputs, no input panics, and every queue and buffer is bounded.
//!
//! # Run loop
//!
//! The caller owns the member links. Whenever something happens, it tells the bundle and then
//! drains every `poll_*` until it returns `None`:
//!
//! - a frame of protocol 0x003D arrived on member `m`: [`Bundle::handle_input`]`(now, m, info)`;
//! - a packet is to be sent over the bundle: [`Bundle::send`]`(now, protocol, info)`;
//! - a member link went down: [`Bundle::remove_link`]; one came up: [`Bundle::add_link`];
//! - the deadline from [`Bundle::poll_timeout`] passed: [`Bundle::handle_timeout`]`(now)`;
//!
//! then: [`Bundle::poll_transmit`] gives `(member, MP information field)` to send on that member
//! as protocol 0x003D (in the order given, per member), [`Bundle::poll_packet`] the reassembled
//! packets for the NCPs and the network, [`Bundle::poll_event`] membership changes (`Down` when
//! the last member left), and [`Bundle::poll_timeout`] when to come back if nothing else
//! happens.
//!
//! ```no_run
//! use std::time::Instant;
//! use ppp_mp::{Bundle, BundleConfig, BundleEvent, MemberId, MemberLink};
//!
//! # enum Input { Frame(MemberId, Vec<u8>), Send(u16, Vec<u8>), LinkDown(MemberId), Timeout }
//! # fn wait_for_input(_deadline: Option<Instant>) -> Input { Input::Timeout }
//! # fn send_mp_frame(_member: MemberId, _information: &[u8]) {}
//! # fn deliver(_protocol: u16, _information: &[u8]) {}
//! let mut bundle = Bundle::new(BundleConfig::negotiated(1614, 1614, false, false));
//! bundle.add_link(MemberLink::new(1492))?;
//! loop {
//!     let now = Instant::now();
//!     match wait_for_input(bundle.poll_timeout()) {
//!         Input::Frame(member, information) => {
//!             // Errors are counted in bundle.stats(); nothing to do about them.
//!             let _ = bundle.handle_input(now, member, &information);
//!         }
//!         Input::Send(protocol, information) => {
//!             if let Err(error) = bundle.send(now, protocol, &information) {
//!                 eprintln!("packet not sent: {error}");
//!             }
//!         }
//!         Input::LinkDown(member) => bundle.remove_link(now, member)?,
//!         Input::Timeout => bundle.handle_timeout(now),
//!     }
//!     while let Some((member, information)) = bundle.poll_transmit() {
//!         send_mp_frame(member, &information);
//!     }
//!     while let Some(packet) = bundle.poll_packet() {
//!         deliver(packet.protocol, &packet.information);
//!     }
//!     while let Some(event) = bundle.poll_event() {
//!         if event == BundleEvent::Down {
//!             return Ok(());
//!         }
//!     }
//! }
//! # Ok::<(), ppp_mp::MpError>(())
//! ```
//!
//! Two bundles in memory, exchanging a 3000-byte packet over two member links:
//!
//! ```
//! use std::time::Instant;
//! use ppp_mp::{Bundle, BundleConfig, MemberLink};
//!
//! let now = Instant::now();
//! let config = BundleConfig::negotiated(4000, 4000, false, false);
//! let mut a = Bundle::new(config.clone());
//! let mut b = Bundle::new(config);
//! let link = MemberLink::new(1500);
//! let a_links = [a.add_link(link)?, a.add_link(link)?];
//! let b_links = [b.add_link(link)?, b.add_link(link)?];
//!
//! let datagram = vec![0x45; 3000];
//! a.send(now, 0x0021, &datagram)?;
//! while let Some((member, frame)) = a.poll_transmit() {
//!     // The member link with the same index at the other end.
//!     let index = a_links.iter().position(|&m| m == member).unwrap();
//!     b.handle_input(now, b_links[index], &frame)?;
//! }
//! let packet = b.poll_packet().unwrap();
//! assert_eq!((packet.protocol, packet.information.len()), (0x0021, 3000));
//! assert_eq!(b.poll_packet(), None);
//! # Ok::<(), ppp_mp::MpError>(())
//! ```
//!
//! # Memory bound
//!
//! A bundle's receiving side holds at most [`Bundle::memory_bound`] bytes: the fragments kept out
//! of order and the packet being reassembled (at most
//! [`ReassemblerConfig::max_buffered_bytes`], 256 KiB by default), the reassembled packets not
//! yet polled (as much again: what one call can release), and the slots of the reorder window
//! ([`ReassemblerConfig::max_buffered_fragments`] sequence numbers, 1024 by default): about
//! 576 KiB per bundle with the defaults. When a fragment would go beyond the bound, the oldest
//! incomplete packet is dropped and counted in [`ReassemblyStats::overflows`]; nothing else
//! grows with the input. The sending side queues at most
//! [`FragmenterConfig::max_queued_fragments`] fragments; [`Bundle::send`] refuses a packet that
//! does not fit.
//!
//! # Logs
//!
//! At `debug` level, through `tracing`, in pppd's style: `sent [MP seq=0x000123 B E len=700] on
//! link 1`, `rcvd [MP sseq=0x0ab E len=3] on link 2`, and a line for every packet reassembled or
//! dropped.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bundle;
mod error;
pub mod fragment;
pub mod header;
pub mod membership;
pub mod reassembly;

pub use bundle::{
    Bundle, BundleConfig, BundleEvent, BundleStats, MAX_MEMBERS, MAX_QUEUED_EVENTS, MemberId,
};
pub use error::MpError;
pub use fragment::{FragmentationStats, Fragmenter, FragmenterConfig, MemberLink};
pub use header::{MpHeader, SequenceFormat};
pub use membership::{BundleKey, BundleRegistry, EndpointDiscriminator, Join};
pub use reassembly::{MemoryLimits, Packet, Reassembler, ReassemblerConfig, ReassemblyStats};

/// The PPP protocol number of Multilink fragments.
pub const PROTOCOL_MP: u16 = 0x003D;
