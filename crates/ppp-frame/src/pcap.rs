//! A pcap file writer, so any session can be opened in Wireshark or read by tshark.
//!
//! Timestamps come from the caller: this module never reads a clock.
//!
//! ```
//! use std::time::Duration;
//! use ppp_frame::pcap::{Direction, LinkType, PcapWriter};
//! use ppp_frame::Protocol;
//!
//! let mut pcap = PcapWriter::new(Vec::new(), LinkType::PppWithDirection)?;
//! pcap.write_ppp(Duration::from_secs(1), Direction::Sent, Protocol::Lcp, &[9, 1, 0, 8, 0, 0, 0, 0])?;
//! let bytes = pcap.into_inner();
//! assert_eq!(bytes.len(), 24 + 16 + 1 + 4 + 8);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Write};
use std::time::Duration;

use crate::Protocol;

/// The link-layer header type of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet frames, for PPPoE captures.
    Ethernet,
    /// `LINKTYPE_PPP` (9): PPP frames starting with address/control or the protocol field.
    Ppp,
    /// `LINKTYPE_PPP_WITH_DIR` (204): a direction byte (0 received, 1 sent), then a PPP frame.
    PppWithDirection,
}

impl LinkType {
    /// The number in the pcap header.
    pub const fn number(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::Ppp => 9,
            LinkType::PppWithDirection => 204,
        }
    }
}

/// Which way a packet went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from the peer.
    Received,
    /// Sent to the peer.
    Sent,
}

/// The largest packet recorded whole; longer packets are truncated in the file.
pub const SNAPLEN: u32 = 65_535;

/// Writes packets to a classic (microsecond) pcap file.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    link_type: LinkType,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header to `out`.
    ///
    /// # Errors
    ///
    /// Any error of `out`.
    pub fn new(mut out: W, link_type: LinkType) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&link_type.number().to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out, link_type })
    }

    /// The link type given at creation.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// Records one packet whose link-layer header matches the file's link type. `timestamp` is
    /// the time since the Unix epoch.
    ///
    /// # Errors
    ///
    /// Any error of the underlying writer.
    pub fn write_packet(&mut self, timestamp: Duration, packet: &[u8]) -> io::Result<()> {
        self.write_parts(timestamp, &[packet])
    }

    /// Records a PPP packet as `protocol` and `payload` in the file's PPP link type, with the
    /// address/control field so Wireshark recognises it.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for an Ethernet capture, and any error of the writer.
    pub fn write_ppp(
        &mut self,
        timestamp: Duration,
        direction: Direction,
        protocol: Protocol,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut header = [0u8; 5];
        let start = match self.link_type {
            LinkType::PppWithDirection => {
                header[0] = u8::from(direction == Direction::Sent);
                0
            }
            LinkType::Ppp => 1,
            LinkType::Ethernet => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a PPP packet cannot go into an Ethernet capture",
                ));
            }
        };
        header[1] = 0xFF;
        header[2] = 0x03;
        header[3..5].copy_from_slice(&protocol.number().to_be_bytes());
        self.write_parts(timestamp, &[&header[start..], payload])
    }

    fn write_parts(&mut self, timestamp: Duration, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let orig_len = u32::try_from(len).unwrap_or(u32::MAX);
        let mut remaining = orig_len.min(SNAPLEN) as usize;
        let mut record = [0u8; 16];
        let seconds = u32::try_from(timestamp.as_secs()).unwrap_or(u32::MAX);
        record[0..4].copy_from_slice(&seconds.to_le_bytes());
        record[4..8].copy_from_slice(&timestamp.subsec_micros().to_le_bytes());
        record[8..12].copy_from_slice(&(remaining as u32).to_le_bytes());
        record[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&record)?;
        for part in parts {
            let take = part.len().min(remaining);
            self.out.write_all(&part[..take])?;
            remaining -= take;
        }
        Ok(())
    }

    /// Flushes the underlying writer.
    ///
    /// # Errors
    ///
    /// Any error of the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut pcap = PcapWriter::new(Vec::new(), LinkType::Ppp).unwrap();
        pcap.write_ppp(
            Duration::new(3, 5_000),
            Direction::Received,
            Protocol::Ipv4,
            &[0x45],
        )
        .unwrap();
        let bytes = pcap.into_inner();
        assert_eq!(&bytes[..4], &[0xD4, 0xC3, 0xB2, 0xA1]);
        assert_eq!(&bytes[20..24], &9u32.to_le_bytes());
        assert_eq!(&bytes[24..28], &3u32.to_le_bytes());
        assert_eq!(&bytes[28..32], &5u32.to_le_bytes());
        assert_eq!(&bytes[32..36], &5u32.to_le_bytes());
        assert_eq!(&bytes[40..], &[0xFF, 0x03, 0x00, 0x21, 0x45]);
    }

    #[test]
    fn ethernet_rejects_ppp_records() {
        let mut pcap = PcapWriter::new(Vec::new(), LinkType::Ethernet).unwrap();
        assert!(
            pcap.write_ppp(Duration::ZERO, Direction::Sent, Protocol::Lcp, &[])
                .is_err()
        );
        pcap.write_packet(Duration::ZERO, &[0u8; 14]).unwrap();
    }
}
