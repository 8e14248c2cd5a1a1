//! Typed AT responses and the line grammar (ITU-T V.250 result codes, 3GPP TS 27.007 information
//! responses), parsed with `nom`.
//!
//! [`parse_response_line`] is total: every byte string maps to some [`ResponseLine`]; lines that
//! match no known shape become [`InfoResponse::Extended`] or [`InfoResponse::Text`]. Nothing here
//! panics on any input, and the work is linear in the line length.

use std::fmt;

use nom::IResult;
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while, take_while1};
use nom::character::complete::{char, digit1, space0};
use nom::combinator::{all_consuming, map, map_res, opt, rest};
use nom::multi::separated_list0;
use nom::sequence::{delimited, preceded, tuple};

/// Defines a `u8` code space as an open enum: named values plus `Unknown(u8)`, whose `Debug`
/// prints the value in hex.
macro_rules! open_u8_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate has no name for.
            Unknown(u8),
        }

        impl From<u8> for $name {
            fn from(value: u8) -> Self {
                match value {
                    $( $value => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                match value {
                    $( $name::$variant => $value, )*
                    $name::Unknown(other) => other,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( Self::$variant => f.write_str(stringify!($variant)), )*
                    Self::Unknown(value) => write!(f, "Unknown({value:#04x})"),
                }
            }
        }
    };
}

/// An error code carried by `+CME ERROR:` or `+CMS ERROR:`: numeric (`AT+CMEE=1`) or verbose
/// (`AT+CMEE=2`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExtendedError {
    /// A numeric code, e.g. 16 for "incorrect password".
    Code(u16),
    /// A verbose message, e.g. "incorrect password".
    Text(String),
}

impl ExtendedError {
    /// `+CME ERROR: 10`: SIM not inserted.
    pub const SIM_NOT_INSERTED: u16 = 10;
    /// `+CME ERROR: 11`: SIM PIN required.
    pub const SIM_PIN_REQUIRED: u16 = 11;
    /// `+CME ERROR: 12`: SIM PUK required.
    pub const SIM_PUK_REQUIRED: u16 = 12;
    /// `+CME ERROR: 16`: incorrect password (a wrong PIN).
    pub const INCORRECT_PASSWORD: u16 = 16;

    /// Whether this error means "the PIN was wrong", numeric or verbose.
    pub fn is_incorrect_password(&self) -> bool {
        match self {
            Self::Code(code) => *code == Self::INCORRECT_PASSWORD,
            Self::Text(text) => text.eq_ignore_ascii_case("incorrect password"),
        }
    }
}

impl fmt::Display for ExtendedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "{code}"),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// A final result code: the line that ends a command (V.250 §5.7, TS 27.007 §9.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FinalResult {
    /// `OK`.
    Ok,
    /// `ERROR`.
    Error,
    /// `+CME ERROR: <err>`: a mobile-equipment error.
    CmeError(ExtendedError),
    /// `+CMS ERROR: <err>`: a message-service error.
    CmsError(ExtendedError),
    /// `NO CARRIER`.
    NoCarrier,
    /// `BUSY`.
    Busy,
    /// `NO DIALTONE` (also accepted as `NO DIAL TONE`).
    NoDialtone,
    /// `NO ANSWER`.
    NoAnswer,
    /// `CONNECT` with the optional text after it (usually a rate such as `115200`).
    Connect(Option<String>),
}

impl FinalResult {
    /// Whether this is `OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok)
    }

    /// Whether this is `CONNECT`.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }

    /// The rate of a `CONNECT <rate>` line: the leading decimal digits of its text, if any.
    pub fn connect_rate(&self) -> Option<u32> {
        match self {
            Self::Connect(Some(text)) => connect_rate(text),
            _ => None,
        }
    }
}

/// The leading decimal digits of a `CONNECT` text (`"115200/V42"` gives 115200).
pub fn connect_rate(text: &str) -> Option<u32> {
    let digits: &str = text
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or_default();
    digits.parse().ok()
}

impl fmt::Display for FinalResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("OK"),
            Self::Error => f.write_str("ERROR"),
            Self::CmeError(err) => write!(f, "+CME ERROR: {err}"),
            Self::CmsError(err) => write!(f, "+CMS ERROR: {err}"),
            Self::NoCarrier => f.write_str("NO CARRIER"),
            Self::Busy => f.write_str("BUSY"),
            Self::NoDialtone => f.write_str("NO DIALTONE"),
            Self::NoAnswer => f.write_str("NO ANSWER"),
            Self::Connect(None) => f.write_str("CONNECT"),
            Self::Connect(Some(text)) => write!(f, "CONNECT {text}"),
        }
    }
}

/// `+CSQ: <rssi>,<ber>` (TS 27.007 §8.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalQuality {
    /// The received signal strength index: 0..=31, 99 = not known.
    pub rssi: u8,
    /// The channel bit error rate index: 0..=7, 99 = not known.
    pub ber: u8,
}

impl SignalQuality {
    /// The signal strength in dBm: rssi 0 is -113 dBm or less, each step adds 2 dB, 31 is
    /// -51 dBm or more; `None` for 99 (not known) and anything else out of range.
    pub fn dbm(&self) -> Option<i16> {
        match self.rssi {
            0..=31 => Some(-113 + 2 * i16::from(self.rssi)),
            _ => None,
        }
    }
}

/// Which registration a `+CxREG` line reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegistrationKind {
    /// `+CREG`: circuit-switched (GSM/UMTS) registration.
    CircuitSwitched,
    /// `+CGREG`: GPRS packet-switched registration.
    Gprs,
    /// `+CEREG`: EPS (LTE) registration.
    Eps,
    /// `+C5GREG`: 5GS registration.
    FiveG,
}

impl RegistrationKind {
    /// The response prefix, e.g. `+CREG`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::CircuitSwitched => "+CREG",
            Self::Gprs => "+CGREG",
            Self::Eps => "+CEREG",
            Self::FiveG => "+C5GREG",
        }
    }
}

open_u8_enum! {
    /// `<stat>` of `+CREG`/`+CGREG`/`+CEREG` (TS 27.007 §7.2).
    pub enum RegistrationStatus {
        /// 0: not registered, not searching.
        NotRegistered = 0,
        /// 1: registered, home network.
        Home = 1,
        /// 2: not registered, searching.
        Searching = 2,
        /// 3: registration denied.
        Denied = 3,
        /// 4: unknown (for example out of coverage).
        Undetermined = 4,
        /// 5: registered, roaming.
        Roaming = 5,
    }
}

impl RegistrationStatus {
    /// Whether the device is registered (home or roaming).
    pub fn is_registered(self) -> bool {
        matches!(self, Self::Home | Self::Roaming)
    }
}

open_u8_enum! {
    /// `<AcT>` access technology (TS 27.007 §7.3).
    pub enum AccessTechnology {
        /// 0: GSM.
        Gsm = 0,
        /// 1: GSM Compact.
        GsmCompact = 1,
        /// 2: UTRAN.
        Utran = 2,
        /// 3: GSM with EGPRS.
        GsmEgprs = 3,
        /// 4: UTRAN with HSDPA.
        UtranHsdpa = 4,
        /// 5: UTRAN with HSUPA.
        UtranHsupa = 5,
        /// 6: UTRAN with HSDPA and HSUPA.
        UtranHsdpaHsupa = 6,
        /// 7: E-UTRAN (LTE).
        Eutran = 7,
        /// 8: EC-GSM-IoT.
        EcGsmIot = 8,
        /// 9: E-UTRAN NB-S1 (NB-IoT).
        EutranNbIot = 9,
        /// 10: E-UTRA connected to a 5GCN.
        Eutra5gcn = 10,
        /// 11: NR connected to a 5GCN.
        Nr5gcn = 11,
        /// 12: NG-RAN.
        NgRan = 12,
        /// 13: E-UTRA-NR dual connectivity.
        EutraNr = 13,
    }
}

/// A `+CREG`/`+CGREG`/`+CEREG`/`+C5GREG` line, in either of its forms.
///
/// The read-command response (`AT+CREG?`) is `+CREG: <n>,<stat>[,<lac>,<ci>[,<AcT>]]`; the
/// unsolicited form is `+CREG: <stat>[,<lac>,<ci>[,<AcT>]]`. The two are told apart by their
/// second field (a number in the first, a quoted string in the second), so `mode` is `None` exactly
/// for the unsolicited form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Registration {
    /// Which registration this is.
    pub kind: RegistrationKind,
    /// `<n>`, the URC mode, present only in a read-command response.
    pub mode: Option<u8>,
    /// `<stat>`.
    pub status: RegistrationStatus,
    /// `<lac>` / `<tac>`, as sent (hex digits).
    pub area_code: Option<String>,
    /// `<ci>`, as sent (hex digits).
    pub cell_id: Option<String>,
    /// `<AcT>`.
    pub access_technology: Option<AccessTechnology>,
}

impl Registration {
    /// Whether this is the unsolicited (URC) form.
    pub fn is_unsolicited(&self) -> bool {
        self.mode.is_none()
    }
}

/// `+CPIN: <code>` (TS 27.007 §8.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PinStatus {
    /// `READY`: no PIN needed.
    Ready,
    /// `SIM PIN`: the SIM PIN is needed.
    SimPin,
    /// `SIM PUK`: the SIM is blocked and needs its PUK.
    SimPuk,
    /// `SIM PIN2`.
    SimPin2,
    /// `SIM PUK2`.
    SimPuk2,
    /// `PH-SIM PIN`: the phone-to-SIM password.
    PhoneSimPin,
    /// Any other code, as sent.
    Other(String),
}

impl PinStatus {
    /// The code as the modem sends it after `+CPIN: ` (`SIM PIN`, `READY`, ...).
    pub fn code(&self) -> &str {
        match self {
            PinStatus::Ready => "READY",
            PinStatus::SimPin => "SIM PIN",
            PinStatus::SimPuk => "SIM PUK",
            PinStatus::SimPin2 => "SIM PIN2",
            PinStatus::SimPuk2 => "SIM PUK2",
            PinStatus::PhoneSimPin => "PH-SIM PIN",
            PinStatus::Other(code) => code,
        }
    }
}

/// `+COPS: <mode>[,<format>,<oper>[,<AcT>]]` (TS 27.007 §7.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OperatorInfo {
    /// `<mode>`: 0 automatic, 1 manual, 2 deregister, 3 set format, 4 manual/automatic.
    pub mode: u8,
    /// `<format>`: 0 long alphanumeric, 1 short alphanumeric, 2 numeric.
    pub format: Option<u8>,
    /// `<oper>`, without its quotes.
    pub name: Option<String>,
    /// `<AcT>`.
    pub access_technology: Option<AccessTechnology>,
}

/// An information response: a line that is not a final result code.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InfoResponse {
    /// `+CSQ: <rssi>,<ber>`.
    SignalQuality(SignalQuality),
    /// `+CREG`, `+CGREG`, `+CEREG` or `+C5GREG`.
    Registration(Registration),
    /// `+CGATT: <state>`: packet-domain attach.
    Attached(bool),
    /// `+CPIN: <code>`.
    Pin(PinStatus),
    /// `+COPS: ...`.
    Operator(OperatorInfo),
    /// Any other `+NAME: value` line (or one of the above that did not parse).
    Extended {
        /// The name with its `+`, e.g. `+CGMR`.
        name: String,
        /// Everything after the colon, trimmed.
        value: String,
    },
    /// A plain text line, such as a model name or an IMEI.
    Text(String),
}

/// One classified response line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseLine {
    /// A final result code.
    Final(FinalResult),
    /// `RING` or `+CRING: <type>`: an incoming call.
    Ring,
    /// Anything else.
    Info(InfoResponse),
}

/// Classifies one response line (without its line terminator; surrounding whitespace is ignored).
///
/// This is the parser's entry point: total, panic-free and linear in the input length. Invalid
/// UTF-8 is replaced (lossy), so binary noise becomes [`InfoResponse::Text`].
pub fn parse_response_line(line: &[u8]) -> ResponseLine {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
    if let Ok((_, result)) = all_consuming(final_result)(text) {
        return ResponseLine::Final(result);
    }
    if text == "RING" || text.starts_with("+CRING:") {
        return ResponseLine::Ring;
    }
    ResponseLine::Info(info_response(text))
}

fn final_result(input: &str) -> IResult<&str, FinalResult> {
    alt((
        map(tag("OK"), |_| FinalResult::Ok),
        map(tag("ERROR"), |_| FinalResult::Error),
        map(
            preceded(tag("+CME ERROR:"), extended_error),
            FinalResult::CmeError,
        ),
        map(
            preceded(tag("+CMS ERROR:"), extended_error),
            FinalResult::CmsError,
        ),
        map(tag("NO CARRIER"), |_| FinalResult::NoCarrier),
        map(tag("BUSY"), |_| FinalResult::Busy),
        map(alt((tag("NO DIALTONE"), tag("NO DIAL TONE"))), |_| {
            FinalResult::NoDialtone
        }),
        map(tag("NO ANSWER"), |_| FinalResult::NoAnswer),
        map(preceded(tag("CONNECT"), connect_text), FinalResult::Connect),
    ))(input)
}

fn extended_error(input: &str) -> IResult<&str, ExtendedError> {
    preceded(
        space0,
        alt((
            map(
                all_consuming(map_res(digit1, str::parse::<u16>)),
                ExtendedError::Code,
            ),
            map(rest, |text: &str| {
                ExtendedError::Text(text.trim().to_owned())
            }),
        )),
    )(input)
}

fn connect_text(input: &str) -> IResult<&str, Option<String>> {
    // "CONNECT" alone, or "CONNECT" + separator + text; "CONNECTED" is not a result code.
    if input.is_empty() {
        return Ok((input, None));
    }
    let (text, _) = take_while1(|c: char| c == ' ' || c == '\t' || c == ':')(input)?;
    let text = text.trim();
    Ok(("", (!text.is_empty()).then(|| text.to_owned())))
}

/// A comma-separated field of an information response.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Field<'a> {
    Number(u32),
    Quoted(&'a str),
    Empty,
    Other(&'a str),
}

fn field(input: &str) -> IResult<&str, Field<'_>> {
    delimited(
        space0,
        alt((
            map(
                delimited(char('"'), take_while(|c| c != '"'), char('"')),
                Field::Quoted,
            ),
            map(map_res(digit1, str::parse::<u32>), Field::Number),
            map(take_while1(|c| c != ','), |s: &str| {
                if s.trim().is_empty() {
                    Field::Empty
                } else {
                    Field::Other(s.trim())
                }
            }),
            map(space0, |_| Field::Empty),
        )),
        space0,
    )(input)
}

fn fields(input: &str) -> Option<Vec<Field<'_>>> {
    all_consuming(separated_list0(char(','), field))(input)
        .ok()
        .map(|(_, fields)| fields)
}

fn number_u8(field: Option<&Field<'_>>) -> Option<u8> {
    match field {
        Some(Field::Number(n)) => u8::try_from(*n).ok(),
        _ => None,
    }
}

fn quoted(field: Option<&Field<'_>>) -> Option<String> {
    match field {
        Some(Field::Quoted(s)) => Some((*s).to_owned()),
        _ => None,
    }
}

fn extended_name(input: &str) -> IResult<&str, &str> {
    let (after, name) = preceded(
        char('+'),
        take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    )(input)?;
    let (after, _) = tuple((space0, char(':')))(after)?;
    Ok((after, &input[..=name.len()]))
}

fn info_response(text: &str) -> InfoResponse {
    let Ok((value, name)) = extended_name(text) else {
        return InfoResponse::Text(text.to_owned());
    };
    let value = value.trim();
    let upper = name.to_ascii_uppercase();
    let parsed = match upper.as_str() {
        "+CSQ" => parse_csq(value),
        "+CREG" => parse_registration(RegistrationKind::CircuitSwitched, value),
        "+CGREG" => parse_registration(RegistrationKind::Gprs, value),
        "+CEREG" => parse_registration(RegistrationKind::Eps, value),
        "+C5GREG" => parse_registration(RegistrationKind::FiveG, value),
        "+CGATT" => match fields(value).as_deref() {
            Some([Field::Number(0)]) => Some(InfoResponse::Attached(false)),
            Some([Field::Number(1)]) => Some(InfoResponse::Attached(true)),
            _ => None,
        },
        "+CPIN" => Some(InfoResponse::Pin(parse_pin(value))),
        "+COPS" => parse_cops(value),
        _ => None,
    };
    parsed.unwrap_or_else(|| InfoResponse::Extended {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

fn parse_csq(value: &str) -> Option<InfoResponse> {
    let fields = fields(value)?;
    match fields.as_slice() {
        [rssi, ber] => Some(InfoResponse::SignalQuality(SignalQuality {
            rssi: number_u8(Some(rssi))?,
            ber: number_u8(Some(ber))?,
        })),
        _ => None,
    }
}

fn parse_registration(kind: RegistrationKind, value: &str) -> Option<InfoResponse> {
    let fields = fields(value)?;
    let first = number_u8(fields.first())?;
    let (mode, rest) = match fields.get(1) {
        // Read-command response: <n>,<stat>,...
        Some(Field::Number(_)) => (Some(first), &fields[1..]),
        // Unsolicited: <stat>[,<lac>,<ci>[,<AcT>]]
        None | Some(Field::Quoted(_)) | Some(Field::Empty) => (None, &fields[..]),
        Some(Field::Other(_)) => return None,
    };
    let status = RegistrationStatus::from(number_u8(rest.first())?);
    Some(InfoResponse::Registration(Registration {
        kind,
        mode,
        status,
        area_code: quoted(rest.get(1)),
        cell_id: quoted(rest.get(2)),
        access_technology: number_u8(rest.get(3)).map(AccessTechnology::from),
    }))
}

fn parse_pin(value: &str) -> PinStatus {
    let code = value.trim_matches('"').trim();
    match code.to_ascii_uppercase().as_str() {
        "READY" => PinStatus::Ready,
        "SIM PIN" => PinStatus::SimPin,
        "SIM PUK" => PinStatus::SimPuk,
        "SIM PIN2" => PinStatus::SimPin2,
        "SIM PUK2" => PinStatus::SimPuk2,
        "PH-SIM PIN" => PinStatus::PhoneSimPin,
        _ => PinStatus::Other(code.to_owned()),
    }
}

fn parse_cops(value: &str) -> Option<InfoResponse> {
    let fields = fields(value)?;
    // The test command's answer (`+COPS: (2,"Op",...),...`) is left as Extended.
    if matches!(fields.first(), Some(Field::Other(_))) {
        return None;
    }
    Some(InfoResponse::Operator(OperatorInfo {
        mode: number_u8(fields.first())?,
        format: number_u8(fields.get(1)),
        name: match fields.get(2) {
            Some(Field::Quoted(s)) => Some((*s).to_owned()),
            Some(Field::Number(n)) => Some(n.to_string()),
            _ => None,
        },
        access_technology: number_u8(fields.get(3)).map(AccessTechnology::from),
    }))
}

/// Whether `line` reads as an echo of `command` (case-insensitive, surrounding whitespace ignored).
pub(crate) fn is_echo_of(line: &str, command: &str) -> bool {
    line.trim().eq_ignore_ascii_case(command.trim())
}

/// The `+NAME`s of the extended commands in a command line (`AT+CSQ;+COPS?` gives `CSQ` and
/// `COPS`), upper-cased, used to tell a command's own information lines from unsolicited ones.
pub(crate) fn command_names(command: &str) -> Vec<String> {
    command
        .split(';')
        .filter_map(|segment| {
            let result: IResult<&str, &str> = preceded(
                tuple((space0, opt(tag_no_case("AT")), char('+'))),
                take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_'),
            )(segment);
            result.ok().map(|(_, name)| name.to_ascii_uppercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_codes_read_back_as_sent() {
        for code in [
            "READY",
            "SIM PIN",
            "SIM PUK",
            "SIM PIN2",
            "SIM PUK2",
            "PH-SIM PIN",
            "PH-NET PIN",
        ] {
            assert_eq!(parse_pin(code).code(), code);
        }
    }
    use proptest::prelude::*;

    fn info(line: &str) -> InfoResponse {
        match parse_response_line(line.as_bytes()) {
            ResponseLine::Info(info) => info,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn final_result_codes() {
        let table: &[(&str, FinalResult)] = &[
            ("OK", FinalResult::Ok),
            ("  OK  ", FinalResult::Ok),
            ("ERROR", FinalResult::Error),
            (
                "+CME ERROR: 16",
                FinalResult::CmeError(ExtendedError::Code(16)),
            ),
            (
                "+CME ERROR:10",
                FinalResult::CmeError(ExtendedError::Code(10)),
            ),
            (
                "+CME ERROR: incorrect password",
                FinalResult::CmeError(ExtendedError::Text("incorrect password".into())),
            ),
            (
                "+CMS ERROR: 500",
                FinalResult::CmsError(ExtendedError::Code(500)),
            ),
            ("NO CARRIER", FinalResult::NoCarrier),
            ("BUSY", FinalResult::Busy),
            ("NO DIALTONE", FinalResult::NoDialtone),
            ("NO DIAL TONE", FinalResult::NoDialtone),
            ("NO ANSWER", FinalResult::NoAnswer),
            ("CONNECT", FinalResult::Connect(None)),
            (
                "CONNECT 115200",
                FinalResult::Connect(Some("115200".into())),
            ),
            (
                "CONNECT 150000000",
                FinalResult::Connect(Some("150000000".into())),
            ),
            (
                "CONNECT 28800/V42BIS",
                FinalResult::Connect(Some("28800/V42BIS".into())),
            ),
        ];
        for (line, expected) in table {
            assert_eq!(
                parse_response_line(line.as_bytes()),
                ResponseLine::Final(expected.clone()),
                "{line:?}"
            );
        }
    }

    #[test]
    fn near_misses_are_not_final() {
        for line in [
            "OKAY",
            "ERRORS",
            "CONNECTED",
            "BUSYNESS",
            "NO CARRIERS",
            "ok",
        ] {
            assert!(
                matches!(parse_response_line(line.as_bytes()), ResponseLine::Info(_)),
                "{line:?}"
            );
        }
    }

    #[test]
    fn connect_rates() {
        let table = [
            ("CONNECT 115200", Some(115200)),
            ("CONNECT 28800/V42BIS", Some(28800)),
            ("CONNECT", None),
            ("CONNECT LTE", None),
        ];
        for (line, rate) in table {
            match parse_response_line(line.as_bytes()) {
                ResponseLine::Final(result) => assert_eq!(result.connect_rate(), rate, "{line}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn ring() {
        assert_eq!(parse_response_line(b"RING"), ResponseLine::Ring);
        assert_eq!(parse_response_line(b"+CRING: VOICE"), ResponseLine::Ring);
    }

    #[test]
    fn signal_quality_and_dbm() {
        let table = [
            ("+CSQ: 20,99", 20, 99, Some(-73)),
            ("+CSQ: 0,0", 0, 0, Some(-113)),
            ("+CSQ: 31,7", 31, 7, Some(-51)),
            ("+CSQ: 99,99", 99, 99, None),
            ("+CSQ:5, 3", 5, 3, Some(-103)),
        ];
        for (line, rssi, ber, dbm) in table {
            let InfoResponse::SignalQuality(q) = info(line) else {
                panic!("{line}");
            };
            assert_eq!((q.rssi, q.ber, q.dbm()), (rssi, ber, dbm), "{line}");
        }
    }

    #[test]
    fn registrations() {
        let reg = |kind, mode, stat: u8, lac: Option<&str>, ci: Option<&str>, act: Option<u8>| {
            InfoResponse::Registration(Registration {
                kind,
                mode,
                status: stat.into(),
                area_code: lac.map(Into::into),
                cell_id: ci.map(Into::into),
                access_technology: act.map(Into::into),
            })
        };
        use RegistrationKind::*;
        let table = [
            (
                "+CREG: 0,1",
                reg(CircuitSwitched, Some(0), 1, None, None, None),
            ),
            ("+CREG: 1", reg(CircuitSwitched, None, 1, None, None, None)),
            ("+CREG: 5", reg(CircuitSwitched, None, 5, None, None, None)),
            (
                "+CREG: 2,1,\"00C3\",\"A1B2\",7",
                reg(
                    CircuitSwitched,
                    Some(2),
                    1,
                    Some("00C3"),
                    Some("A1B2"),
                    Some(7),
                ),
            ),
            (
                "+CREG: 1,\"00C3\",\"A1B2\",2",
                reg(
                    CircuitSwitched,
                    None,
                    1,
                    Some("00C3"),
                    Some("A1B2"),
                    Some(2),
                ),
            ),
            ("+CEREG: 0,3", reg(Eps, Some(0), 3, None, None, None)),
            ("+CEREG: 2", reg(Eps, None, 2, None, None, None)),
            ("+CGREG: 0,5", reg(Gprs, Some(0), 5, None, None, None)),
            ("+C5GREG: 0,1", reg(FiveG, Some(0), 1, None, None, None)),
        ];
        for (line, expected) in table {
            assert_eq!(info(line), expected, "{line}");
        }
    }

    #[test]
    fn registration_status_is_open() {
        assert!(RegistrationStatus::from(1).is_registered());
        assert!(RegistrationStatus::from(5).is_registered());
        assert!(!RegistrationStatus::from(3).is_registered());
        assert_eq!(
            format!("{:?}", RegistrationStatus::from(0x2a)),
            "Unknown(0x2a)"
        );
        assert_eq!(u8::from(RegistrationStatus::from(0x2a)), 0x2a);
        assert_eq!(format!("{:?}", AccessTechnology::from(7)), "Eutran");
    }

    #[test]
    fn other_info_lines() {
        assert_eq!(info("+CGATT: 1"), InfoResponse::Attached(true));
        assert_eq!(info("+CGATT: 0"), InfoResponse::Attached(false));
        assert_eq!(info("+CPIN: READY"), InfoResponse::Pin(PinStatus::Ready));
        assert_eq!(info("+CPIN: SIM PIN"), InfoResponse::Pin(PinStatus::SimPin));
        assert_eq!(info("+CPIN: SIM PUK"), InfoResponse::Pin(PinStatus::SimPuk));
        assert_eq!(
            info("+CPIN: PH-NET PIN"),
            InfoResponse::Pin(PinStatus::Other("PH-NET PIN".into()))
        );
        assert_eq!(
            info("+COPS: 0,0,\"Operator\",7"),
            InfoResponse::Operator(OperatorInfo {
                mode: 0,
                format: Some(0),
                name: Some("Operator".into()),
                access_technology: Some(AccessTechnology::Eutran),
            })
        );
        assert_eq!(
            info("+COPS: 0"),
            InfoResponse::Operator(OperatorInfo {
                mode: 0,
                format: None,
                name: None,
                access_technology: None,
            })
        );
        assert_eq!(
            info("+CGMR: \"rev 1.2\""),
            InfoResponse::Extended {
                name: "+CGMR".into(),
                value: "\"rev 1.2\"".into()
            }
        );
        // A known name with a malformed value falls back to Extended.
        assert_eq!(
            info("+CSQ: abc"),
            InfoResponse::Extended {
                name: "+CSQ".into(),
                value: "abc".into()
            }
        );
        assert_eq!(info("Quectel"), InfoResponse::Text("Quectel".into()));
        assert_eq!(info("EC25"), InfoResponse::Text("EC25".into()));
        assert_eq!(
            info("+COPS: (2,\"Op\",\"Op\",\"26201\",7),,(0-4),(0-2)"),
            InfoResponse::Extended {
                name: "+COPS".into(),
                value: "(2,\"Op\",\"Op\",\"26201\",7),,(0-4),(0-2)".into()
            }
        );
    }

    #[test]
    fn binary_noise_is_text() {
        let line = [0xff, 0xfe, b'O', b'K', 0x80];
        assert!(matches!(
            parse_response_line(&line),
            ResponseLine::Info(InfoResponse::Text(_))
        ));
    }

    #[test]
    fn command_names_of_lines() {
        assert_eq!(command_names("AT+CSQ"), ["CSQ"]);
        assert_eq!(command_names("at+creg?"), ["CREG"]);
        assert_eq!(command_names("AT+CSQ;+COPS?"), ["CSQ", "COPS"]);
        assert!(command_names("ATZ").is_empty());
        assert!(command_names("ATD*99#").is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_response_line(&bytes);
        }

        #[test]
        fn never_panics_on_plausible_lines(
            prefix in prop::sample::select(vec!["+CSQ:", "+CREG:", "+CEREG:", "+COPS:", "+CPIN:",
                "+CGATT:", "+CME ERROR:", "CONNECT", "+X:"]),
            body in "[0-9,\" A-Za-z()-]{0,40}",
        ) {
            let _ = parse_response_line(format!("{prefix}{body}").as_bytes());
        }

        #[test]
        fn final_results_round_trip(code in 0u16..1000, rate in 300u32..1_000_000_000) {
            for result in [
                FinalResult::CmeError(ExtendedError::Code(code)),
                FinalResult::CmsError(ExtendedError::Code(code)),
                FinalResult::Connect(Some(rate.to_string())),
            ] {
                prop_assert_eq!(
                    parse_response_line(result.to_string().as_bytes()),
                    ResponseLine::Final(result)
                );
            }
        }
    }
}
