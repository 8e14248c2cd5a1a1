//! pppd-style one-line summaries of control packets, for debug logs.
//!
//! `[LCP ConfReq id=0x1 <mru 1492> <asyncmap 0x0> <magic 0x5d3c1a2b> <pcomp> <accomp>]`,
//! `[LCP EchoReq id=0x3 magic=0x5d3c1a2b]`, `[LCP TermReq id=0x2 "User request"]`.

use core::fmt::{self, Write as _};

use crate::packet::{Code, ControlPacket};

/// Bytes rendered as space-separated lowercase hex.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Longest data rendered before a summary is cut with "...".
const MAX_RENDERED: usize = 64;

/// Write `bytes` as a quoted string when it is printable text, as hex otherwise.
pub(crate) fn write_text_or_hex(out: &mut String, bytes: &[u8]) {
    let shown = &bytes[..bytes.len().min(MAX_RENDERED)];
    let printable = shown.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    if printable {
        out.push('"');
        for &b in shown {
            if b == b'"' || b == b'\\' {
                out.push('\\');
            }
            out.push(char::from(b));
        }
        out.push('"');
    } else {
        let _ = write!(out, "{}", Hex(shown));
    }
    if bytes.len() > shown.len() {
        out.push_str(" ...");
    }
}

/// Render an option list whose options have no protocol-specific names: `<01 04 05 dc>`.
pub fn describe_raw_options(options: &[u8]) -> String {
    let mut out = String::new();
    for (i, option) in crate::options::iter_options(options).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match option {
            Ok(option) => {
                let _ = write!(out, "<{:02x} {:02x}", option.kind, option.encoded_len());
                if !option.data.is_empty() {
                    let _ = write!(out, " {}", Hex(option.data));
                }
                out.push('>');
            }
            Err(_) => out.push_str("<malformed>"),
        }
    }
    out
}

/// Render a control packet pppd-style: `[LCP ConfReq id=0x1 <mru 1492> <magic 0x5d3c1a2b>]`.
///
/// `protocol_name` is the short protocol name ("LCP", "IPCP"); `describe_options` renders the
/// option list of Configure-* packets (see `ControlProtocol::describe_options`). Never panics;
/// a packet that does not parse renders as `[LCP malformed: N bytes]`.
pub fn describe_packet(
    protocol_name: &str,
    packet: &[u8],
    describe_options: &dyn Fn(&[u8]) -> String,
) -> String {
    let mut out = String::with_capacity(64);
    out.push('[');
    out.push_str(protocol_name);
    let parsed = match ControlPacket::parse(packet) {
        Ok(parsed) => parsed,
        Err(_) => {
            let _ = write!(out, " malformed: {} bytes]", packet.len());
            return out;
        }
    };
    let _ = write!(out, " {} id={:#x}", parsed.code, parsed.identifier);
    let data = parsed.data;
    match parsed.code {
        Code::ConfigureRequest
        | Code::ConfigureAck
        | Code::ConfigureNak
        | Code::ConfigureReject => {
            if !data.is_empty() {
                out.push(' ');
                out.push_str(&describe_options(data));
            }
        }
        Code::TerminateRequest | Code::TerminateAck => {
            if !data.is_empty() {
                out.push(' ');
                write_text_or_hex(&mut out, data);
            }
        }
        Code::CodeReject => {
            if let Some(&code) = data.first() {
                let _ = write!(out, " code={:?}", Code::from(code));
            }
        }
        Code::ProtocolReject => {
            if let [hi, lo, ..] = *data {
                let protocol = ppp_frame::Protocol::from(u16::from_be_bytes([hi, lo]));
                let _ = write!(out, " proto={protocol}");
            }
        }
        Code::EchoRequest | Code::EchoReply | Code::DiscardRequest | Code::Identification => {
            if let [a, b, c, d, ref rest @ ..] = *data {
                let _ = write!(out, " magic={:#x}", u32::from_be_bytes([a, b, c, d]));
                if !rest.is_empty() {
                    out.push(' ');
                    write_text_or_hex(&mut out, rest);
                }
            } else if !data.is_empty() {
                let _ = write!(out, " {}", Hex(data));
            }
        }
        Code::TimeRemaining => {
            if let [a, b, c, d, e, f, g, h, ..] = *data {
                let _ = write!(
                    out,
                    " magic={:#x} seconds={}",
                    u32::from_be_bytes([a, b, c, d]),
                    u32::from_be_bytes([e, f, g, h])
                );
            } else if !data.is_empty() {
                let _ = write!(out, " {}", Hex(data));
            }
        }
        _ => {
            if !data.is_empty() {
                out.push(' ');
                let shown = &data[..data.len().min(MAX_RENDERED)];
                let _ = write!(out, "{}", Hex(shown));
                if data.len() > shown.len() {
                    out.push_str(" ...");
                }
            }
        }
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_pppd_style() {
        let cases: &[(&[u8], &str)] = &[
            (
                &[1, 1, 0, 8, 1, 4, 5, 0xdc],
                "[LCP ConfReq id=0x1 <01 04 05 dc>]",
            ),
            (
                &[
                    5, 2, 0, 16, b'U', b's', b'e', b'r', b' ', b'r', b'e', b'q', b'u', b'e', b's',
                    b't',
                ],
                "[LCP TermReq id=0x2 \"User request\"]",
            ),
            (&[6, 2, 0, 4], "[LCP TermAck id=0x2]"),
            (
                &[9, 3, 0, 8, 0x5d, 0x3c, 0x1a, 0x2b],
                "[LCP EchoReq id=0x3 magic=0x5d3c1a2b]",
            ),
            (
                &[7, 4, 0, 8, 0x20, 1, 0, 4],
                "[LCP CodeRej id=0x4 code=Unknown(0x20)]",
            ),
            (
                &[8, 5, 0, 8, 0x80, 0x21, 1, 2],
                "[LCP ProtRej id=0x5 proto=IPCP]",
            ),
            (&[0x20, 6, 0, 6, 0xab, 0xcd], "[LCP code=0x20 id=0x6 ab cd]"),
            (&[1, 1, 0], "[LCP malformed: 3 bytes]"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                &describe_packet("LCP", bytes, &describe_raw_options),
                expected
            );
        }
    }
}
