//! Accounting (RFC 2866, RFC 2869): the records of a session (Start, Interim-Update, Stop),
//! their attributes, the Acct-Session-Id, and the stored form the spool keeps on disk.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_core::{CloseReason, Random};

use crate::RadiusError;
use crate::access::{NasIdentity, NasPortType, SessionContext};
use crate::attribute::{Attribute, AttributeType};
use crate::crypto::{Secret, sign_request};
use crate::macros::open_enum;
use crate::packet::{Code, Packet};

open_enum! {
    /// Acct-Status-Type (RFC 2866 §5.1).
    pub struct AcctStatusType(u32) {
        /// 1: the session started.
        START = 1 => "Start",
        /// 2: the session ended.
        STOP = 2 => "Stop",
        /// 3: the session goes on (RFC 2869).
        INTERIM_UPDATE = 3 => "Interim-Update",
        /// 7: the NAS started (no sessions are open).
        ACCOUNTING_ON = 7 => "Accounting-On",
        /// 8: the NAS stops.
        ACCOUNTING_OFF = 8 => "Accounting-Off",
    }
}

open_enum! {
    /// Acct-Authentic (RFC 2866 §5.6): who authenticated the user.
    pub struct AcctAuthentic(u32) {
        /// 1: a RADIUS server.
        RADIUS = 1 => "RADIUS",
        /// 2: the NAS itself (local secrets).
        LOCAL = 2 => "Local",
        /// 3: another server.
        REMOTE = 3 => "Remote",
    }
}

open_enum! {
    /// Acct-Terminate-Cause (RFC 2866 §5.10): why a session ended.
    ///
    /// From a [`CloseReason`] with [`From`]. For the ways a link goes down by itself (ppp-link's
    /// `DownReason`): the peer's Terminate-Request or PADT is [`USER_REQUEST`](Self::USER_REQUEST),
    /// the lower layer lost (carrier, PADT-less Ethernet loss) and echo timeouts are
    /// [`LOST_CARRIER`](Self::LOST_CARRIER), failed negotiation (LCP, no network protocol,
    /// encryption required but refused) is [`SERVICE_UNAVAILABLE`](Self::SERVICE_UNAVAILABLE),
    /// a failed authentication is [`USER_ERROR`](Self::USER_ERROR), a looped-back line is
    /// [`PORT_ERROR`](Self::PORT_ERROR).
    pub struct TerminateCause(u32) {
        /// 1: the user ended it (LCP Terminate-Request, PADT from the client).
        USER_REQUEST = 1 => "User-Request",
        /// 2: carrier or link lost (echo timeout, line dropped).
        LOST_CARRIER = 2 => "Lost-Carrier",
        /// 3: the service the user used is gone.
        LOST_SERVICE = 3 => "Lost-Service",
        /// 4: no traffic for the idle timeout.
        IDLE_TIMEOUT = 4 => "Idle-Timeout",
        /// 5: the session reached its Session-Timeout.
        SESSION_TIMEOUT = 5 => "Session-Timeout",
        /// 6: an administrator (or a Disconnect-Request) ended it.
        ADMIN_RESET = 6 => "Admin-Reset",
        /// 7: the administrator is rebooting the NAS.
        ADMIN_REBOOT = 7 => "Admin-Reboot",
        /// 8: the port failed.
        PORT_ERROR = 8 => "Port-Error",
        /// 9: the NAS failed.
        NAS_ERROR = 9 => "NAS-Error",
        /// 10: the NAS ended it for another reason.
        NAS_REQUEST = 10 => "NAS-Request",
        /// 11: the NAS is restarting.
        NAS_REBOOT = 11 => "NAS-Reboot",
        /// 12: the port is not needed.
        PORT_UNNEEDED = 12 => "Port-Unneeded",
        /// 13: the port was taken for another session (RouterOS `only-one`).
        PORT_PREEMPTED = 13 => "Port-Preempted",
        /// 14: the port was suspended.
        PORT_SUSPENDED = 14 => "Port-Suspended",
        /// 15: the service is not available (negotiation failed).
        SERVICE_UNAVAILABLE = 15 => "Service-Unavailable",
        /// 16: callback.
        CALLBACK = 16 => "Callback",
        /// 17: the user made an error (failed authentication).
        USER_ERROR = 17 => "User-Error",
        /// 18: the host asked.
        HOST_REQUEST = 18 => "Host-Request",
    }
}

impl From<&CloseReason> for TerminateCause {
    /// The cause RADIUS hears when the owner closed a session.
    fn from(reason: &CloseReason) -> Self {
        match reason {
            CloseReason::UserRequest => TerminateCause::USER_REQUEST,
            CloseReason::AdminReset => TerminateCause::ADMIN_RESET,
            CloseReason::IdleTimeout => TerminateCause::IDLE_TIMEOUT,
            CloseReason::SessionTimeout => TerminateCause::SESSION_TIMEOUT,
            CloseReason::Shutdown => TerminateCause::NAS_REBOOT,
            CloseReason::Replaced => TerminateCause::PORT_PREEMPTED,
            _ => TerminateCause::NAS_REQUEST,
        }
    }
}

/// An Acct-Session-Id: 16 uppercase hex digits of 64 random bits, so two sessions never share
/// one, across restarts and across NASes.
///
/// ```
/// use ppp_radius::AcctSessionId;
///
/// let id = AcctSessionId::random(&ppp_core::Random::seeded(1));
/// assert_eq!(id.as_str().len(), 16);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AcctSessionId(String);

impl AcctSessionId {
    /// A fresh id from `random`.
    pub fn random(random: &Random) -> Self {
        AcctSessionId(format!("{:016X}", random.u64()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AcctSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AcctSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AcctSessionId({})", self.0)
    }
}

/// What a session moved, from the NAS's point of view: input is what the user sent, output
/// what the user received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    /// Octets received from the user (Acct-Input-Octets and -Gigawords).
    pub input_octets: u64,
    /// Octets sent to the user (Acct-Output-Octets and -Gigawords).
    pub output_octets: u64,
    /// Packets received from the user (Acct-Input-Packets, modulo 2^32).
    pub input_packets: u64,
    /// Packets sent to the user (Acct-Output-Packets, modulo 2^32).
    pub output_packets: u64,
}

/// One accounting record.
///
/// ```
/// use std::time::Duration;
/// use ppp_radius::{AccountingRecord, Counters, TerminateCause};
///
/// let mut stop = AccountingRecord::stop("4F2A9C0D11E2B377", "alice");
/// stop.session_time = Some(Duration::from_secs(120));
/// stop.counters = Some(Counters { input_octets: 5_000_000_000, ..Counters::default() });
/// stop.terminate_cause = Some(TerminateCause::USER_REQUEST);
/// // The form the spool keeps on disk reads back the same.
/// assert_eq!(AccountingRecord::from_bytes(&stop.to_bytes()?)?, stop);
/// # Ok::<(), ppp_radius::RadiusError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountingRecord {
    /// Start, Interim-Update, Stop, ...
    pub status: AcctStatusType,
    /// Acct-Session-Id: the same in every record of one session
    /// ([`AcctSessionId::random`]).
    pub session_id: String,
    /// User-Name: the name the user authenticated as.
    pub user_name: Option<String>,
    /// Where the session is (port, station).
    pub session: SessionContext,
    /// Framed-IP-Address: the user's address.
    pub framed_ip_address: Option<Ipv4Addr>,
    /// Acct-Session-Time (Interim-Update and Stop).
    pub session_time: Option<Duration>,
    /// Octets and packets (Interim-Update and Stop).
    pub counters: Option<Counters>,
    /// Acct-Terminate-Cause (Stop).
    pub terminate_cause: Option<TerminateCause>,
    /// Class values from the Access-Accept, echoed unchanged.
    pub class: Vec<Vec<u8>>,
    /// Acct-Authentic.
    pub authentic: Option<AcctAuthentic>,
    /// Event-Timestamp: when the event happened, in seconds since 1970 (the adapter sets it
    /// from the wall clock; the core never reads one).
    pub event_timestamp: Option<u32>,
    /// How long the record had already waited when it was given to the client (for a record
    /// read back from the spool after a restart); the client adds its own waiting to give
    /// Acct-Delay-Time.
    pub delay: Duration,
}

impl AccountingRecord {
    /// A record of `status` for a session.
    pub fn new(
        status: AcctStatusType,
        session_id: impl Into<String>,
        user_name: impl Into<String>,
    ) -> Self {
        AccountingRecord {
            status,
            session_id: session_id.into(),
            user_name: Some(user_name.into()),
            session: SessionContext::default(),
            framed_ip_address: None,
            session_time: None,
            counters: None,
            terminate_cause: None,
            class: Vec::new(),
            authentic: None,
            event_timestamp: None,
            delay: Duration::ZERO,
        }
    }

    /// A Start record.
    pub fn start(session_id: impl Into<String>, user_name: impl Into<String>) -> Self {
        Self::new(AcctStatusType::START, session_id, user_name)
    }

    /// An Interim-Update record.
    pub fn interim(session_id: impl Into<String>, user_name: impl Into<String>) -> Self {
        Self::new(AcctStatusType::INTERIM_UPDATE, session_id, user_name)
    }

    /// A Stop record.
    pub fn stop(session_id: impl Into<String>, user_name: impl Into<String>) -> Self {
        Self::new(AcctStatusType::STOP, session_id, user_name)
    }

    /// The record's attributes with Acct-Delay-Time `delay` (whole seconds).
    pub fn attributes(&self, delay: Duration) -> Vec<Attribute> {
        let mut out = vec![
            Attribute::integer(AttributeType::ACCT_STATUS_TYPE, self.status.0),
            Attribute::text(AttributeType::ACCT_SESSION_ID, &self.session_id),
        ];
        if let Some(name) = &self.user_name {
            out.push(Attribute::text(AttributeType::USER_NAME, name));
        }
        out.extend(self.session.attributes());
        if let Some(ip) = self.framed_ip_address {
            out.push(Attribute::ipv4(AttributeType::FRAMED_IP_ADDRESS, ip));
        }
        if let Some(a) = self.authentic {
            out.push(Attribute::integer(AttributeType::ACCT_AUTHENTIC, a.0));
        }
        if let Some(t) = self.session_time {
            let secs = u32::try_from(t.as_secs()).unwrap_or(u32::MAX);
            out.push(Attribute::integer(AttributeType::ACCT_SESSION_TIME, secs));
        }
        if let Some(c) = self.counters {
            let split = |n: u64| ((n >> 32) as u32, n as u32);
            let (in_giga, in_low) = split(c.input_octets);
            let (out_giga, out_low) = split(c.output_octets);
            out.push(Attribute::integer(AttributeType::ACCT_INPUT_OCTETS, in_low));
            out.push(Attribute::integer(
                AttributeType::ACCT_OUTPUT_OCTETS,
                out_low,
            ));
            if in_giga > 0 {
                out.push(Attribute::integer(
                    AttributeType::ACCT_INPUT_GIGAWORDS,
                    in_giga,
                ));
            }
            if out_giga > 0 {
                out.push(Attribute::integer(
                    AttributeType::ACCT_OUTPUT_GIGAWORDS,
                    out_giga,
                ));
            }
            // Packet counters wrap at 2^32 (RFC 2866 §5.8).
            out.push(Attribute::integer(
                AttributeType::ACCT_INPUT_PACKETS,
                c.input_packets as u32,
            ));
            out.push(Attribute::integer(
                AttributeType::ACCT_OUTPUT_PACKETS,
                c.output_packets as u32,
            ));
        }
        if let Some(cause) = self.terminate_cause {
            out.push(Attribute::integer(
                AttributeType::ACCT_TERMINATE_CAUSE,
                cause.0,
            ));
        }
        for class in &self.class {
            out.push(Attribute::new(AttributeType::CLASS, class.clone()));
        }
        if let Some(ts) = self.event_timestamp {
            out.push(Attribute::integer(AttributeType::EVENT_TIMESTAMP, ts));
        }
        let delay = u32::try_from(delay.as_secs()).unwrap_or(u32::MAX);
        out.push(Attribute::integer(AttributeType::ACCT_DELAY_TIME, delay));
        out
    }

    /// The signed Accounting-Request: the NAS's identity, the record's attributes with
    /// Acct-Delay-Time `delay`, and a Message-Authenticator.
    ///
    /// # Errors
    ///
    /// [`RadiusError`] when an attribute or the packet is too long.
    pub fn encode(
        &self,
        identifier: u8,
        secret: &Secret,
        nas: &NasIdentity,
        delay: Duration,
    ) -> Result<Vec<u8>, RadiusError> {
        let mut packet = Packet::new(Code::ACCOUNTING_REQUEST, identifier);
        packet.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
        packet.attributes.extend(nas.attributes());
        packet.attributes.extend(self.attributes(delay));
        let mut bytes = packet.to_bytes()?;
        sign_request(&mut bytes, secret);
        Ok(bytes)
    }

    /// The stored form (for the spool on disk): an unsigned Accounting-Request holding the
    /// record's attributes, with [`delay`](Self::delay) as Acct-Delay-Time.
    ///
    /// # Errors
    ///
    /// [`RadiusError`] when the record does not fit a packet.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RadiusError> {
        let mut packet = Packet::new(Code::ACCOUNTING_REQUEST, 0);
        packet.attributes = self.attributes(self.delay);
        packet.to_bytes()
    }

    /// Reads a record back from [`to_bytes`](Self::to_bytes) (or from a received
    /// Accounting-Request).
    ///
    /// # Errors
    ///
    /// [`RadiusError`] when the bytes are not a packet, or miss Acct-Status-Type or
    /// Acct-Session-Id.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RadiusError> {
        let packet = Packet::parse(bytes)?;
        Self::from_packet(&packet)
    }

    /// Reads a record from an Accounting-Request's attributes.
    ///
    /// # Errors
    ///
    /// [`RadiusError::BadRecord`] when Acct-Status-Type or Acct-Session-Id is missing or
    /// malformed.
    pub fn from_packet(packet: &Packet) -> Result<Self, RadiusError> {
        if packet.code != Code::ACCOUNTING_REQUEST {
            return Err(RadiusError::BadRecord {
                problem: "not an Accounting-Request",
            });
        }
        let int = |kind| packet.get(kind).and_then(|a| a.as_u32().ok());
        let status = int(AttributeType::ACCT_STATUS_TYPE).ok_or(RadiusError::BadRecord {
            problem: "no Acct-Status-Type",
        })?;
        let session_id = packet
            .get(AttributeType::ACCT_SESSION_ID)
            .map(|a| a.as_text())
            .ok_or(RadiusError::BadRecord {
                problem: "no Acct-Session-Id",
            })?;
        let mut record = AccountingRecord::new(AcctStatusType(status), session_id, "");
        record.user_name = packet.get(AttributeType::USER_NAME).map(|a| a.as_text());
        record.session = SessionContext {
            nas_port: int(AttributeType::NAS_PORT),
            nas_port_id: packet.get(AttributeType::NAS_PORT_ID).map(|a| a.as_text()),
            nas_port_type: int(AttributeType::NAS_PORT_TYPE).map(NasPortType),
            calling_station_id: packet
                .get(AttributeType::CALLING_STATION_ID)
                .map(|a| a.as_text()),
            called_station_id: packet
                .get(AttributeType::CALLED_STATION_ID)
                .map(|a| a.as_text()),
        };
        record.framed_ip_address = packet
            .get(AttributeType::FRAMED_IP_ADDRESS)
            .and_then(|a| a.as_ipv4().ok());
        record.authentic = int(AttributeType::ACCT_AUTHENTIC).map(AcctAuthentic);
        record.session_time =
            int(AttributeType::ACCT_SESSION_TIME).map(|s| Duration::from_secs(u64::from(s)));
        if let (Some(input), Some(output)) = (
            int(AttributeType::ACCT_INPUT_OCTETS),
            int(AttributeType::ACCT_OUTPUT_OCTETS),
        ) {
            let giga = |kind| u64::from(int(kind).unwrap_or(0)) << 32;
            record.counters = Some(Counters {
                input_octets: giga(AttributeType::ACCT_INPUT_GIGAWORDS) | u64::from(input),
                output_octets: giga(AttributeType::ACCT_OUTPUT_GIGAWORDS) | u64::from(output),
                input_packets: u64::from(int(AttributeType::ACCT_INPUT_PACKETS).unwrap_or(0)),
                output_packets: u64::from(int(AttributeType::ACCT_OUTPUT_PACKETS).unwrap_or(0)),
            });
        }
        record.terminate_cause = int(AttributeType::ACCT_TERMINATE_CAUSE).map(TerminateCause);
        record.class = packet
            .all(AttributeType::CLASS)
            .map(|a| a.value.clone())
            .collect();
        record.event_timestamp = int(AttributeType::EVENT_TIMESTAMP);
        record.delay =
            Duration::from_secs(u64::from(int(AttributeType::ACCT_DELAY_TIME).unwrap_or(0)));
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::verify_request;
    use proptest::prelude::*;

    #[test]
    fn close_reasons_map_to_causes() {
        assert_eq!(
            TerminateCause::from(&CloseReason::UserRequest),
            TerminateCause::USER_REQUEST
        );
        assert_eq!(
            TerminateCause::from(&CloseReason::AdminReset),
            TerminateCause::ADMIN_RESET
        );
        assert_eq!(
            TerminateCause::from(&CloseReason::IdleTimeout),
            TerminateCause::IDLE_TIMEOUT
        );
        assert_eq!(
            TerminateCause::from(&CloseReason::SessionTimeout),
            TerminateCause::SESSION_TIMEOUT
        );
        assert_eq!(
            TerminateCause::from(&CloseReason::Shutdown),
            TerminateCause::NAS_REBOOT
        );
        assert_eq!(
            TerminateCause::from(&CloseReason::Replaced),
            TerminateCause::PORT_PREEMPTED
        );
        assert_eq!(
            TerminateCause::from(&CloseReason::from("x")),
            TerminateCause::NAS_REQUEST
        );
        assert_eq!(TerminateCause::LOST_CARRIER.to_string(), "Lost-Carrier");
    }

    #[test]
    fn session_ids_differ() {
        let r = Random::seeded(3);
        assert_ne!(AcctSessionId::random(&r), AcctSessionId::random(&r));
    }

    #[test]
    fn stop_record_attributes_and_signature() {
        let mut stop = AccountingRecord::stop("ABC", "alice");
        stop.counters = Some(Counters {
            input_octets: (3 << 32) + 5,
            output_octets: 7,
            input_packets: 1,
            output_packets: 2,
        });
        stop.terminate_cause = Some(TerminateCause::IDLE_TIMEOUT);
        stop.class = vec![b"gold".to_vec()];
        stop.session.nas_port_type = Some(NasPortType::ETHERNET);
        let secret = Secret::from("acct");
        let bytes = stop
            .encode(
                4,
                &secret,
                &NasIdentity::named("ac"),
                Duration::from_secs(9),
            )
            .unwrap();
        assert_eq!(verify_request(&bytes, &secret, true), Ok(()));
        let p = Packet::parse(&bytes).unwrap();
        let int = |k| p.get(k).unwrap().as_u32().unwrap();
        assert_eq!(int(AttributeType::ACCT_INPUT_OCTETS), 5);
        assert_eq!(int(AttributeType::ACCT_INPUT_GIGAWORDS), 3);
        assert!(p.get(AttributeType::ACCT_OUTPUT_GIGAWORDS).is_none());
        assert_eq!(int(AttributeType::ACCT_DELAY_TIME), 9);
        assert_eq!(int(AttributeType::ACCT_TERMINATE_CAUSE), 4);
        assert_eq!(p.get(AttributeType::CLASS).unwrap().value, b"gold");
        let back = AccountingRecord::from_packet(&p).unwrap();
        assert_eq!(back.counters, stop.counters);
        assert_eq!(back.delay, Duration::from_secs(9));
        assert!(
            AccountingRecord::from_bytes(&[
                4, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ])
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn stored_records_round_trip(
            status in 1u32..10,
            id in "[0-9A-F]{1,32}",
            name in "[a-z@.]{0,40}",
            octets in any::<[u64; 2]>(),
            packets in any::<[u32; 2]>(),
            time in any::<u32>(),
            delay in any::<u32>(),
            cause in proptest::option::of(1u32..20),
            ts in proptest::option::of(any::<u32>()),
            class in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..3),
        ) {
            let mut r = AccountingRecord::new(AcctStatusType(status), id, name);
            r.counters = Some(Counters {
                input_octets: octets[0],
                output_octets: octets[1],
                input_packets: u64::from(packets[0]),
                output_packets: u64::from(packets[1]),
            });
            r.session_time = Some(Duration::from_secs(u64::from(time)));
            r.delay = Duration::from_secs(u64::from(delay));
            r.terminate_cause = cause.map(TerminateCause);
            r.event_timestamp = ts;
            r.class = class;
            prop_assert_eq!(AccountingRecord::from_bytes(&r.to_bytes().unwrap()).unwrap(), r);
        }

        #[test]
        fn stored_form_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = AccountingRecord::from_bytes(&bytes);
        }
    }
}
