//! Internal helpers: a type-length-value walker that also yields each option's raw bytes (needed to
//! Configure-Reject options verbatim), and a hex renderer for `Debug`.

use std::fmt;

use crate::IpcpError;

/// One option of a list, with its header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    /// Option type.
    pub(crate) kind: u8,
    /// Data field (after type and length).
    pub(crate) data: &'a [u8],
    /// The whole option, header included.
    pub(crate) raw: &'a [u8],
}

/// Iterator over a TLV option list; yields one `Err` on the first malformed option, then stops.
pub(crate) struct TlvIter<'a> {
    list: &'a [u8],
    offset: usize,
    failed: bool,
}

pub(crate) fn iter(list: &[u8]) -> TlvIter<'_> {
    TlvIter {
        list,
        offset: 0,
        failed: false,
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, IpcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.list.get(self.offset..)?;
        if rest.is_empty() {
            return None;
        }
        let offset = self.offset;
        let (kind, length) = match rest {
            [kind, length, ..] => (*kind, *length),
            _ => {
                self.failed = true;
                return Some(Err(IpcpError::TruncatedHeader {
                    offset,
                    remaining: rest.len(),
                }));
            }
        };
        let len = usize::from(length);
        if len < 2 || len > rest.len() {
            self.failed = true;
            return Some(Err(IpcpError::BadOptionLength {
                offset,
                kind,
                length,
                remaining: rest.len(),
            }));
        }
        let raw = &rest[..len];
        self.offset += len;
        Some(Ok(Tlv {
            kind,
            data: &raw[2..],
            raw,
        }))
    }
}

/// Longest data field an option can carry (the length byte counts the 2 header bytes).
pub(crate) const MAX_OPTION_DATA: usize = 253;

/// Append one option; data longer than [`MAX_OPTION_DATA`] is truncated so the length byte stays
/// truthful.
pub(crate) fn push(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let data = &data[..data.len().min(MAX_OPTION_DATA)];
    out.push(kind);
    // `data.len() + 2 <= 255` by the truncation above.
    out.push(u8::try_from(data.len() + 2).unwrap_or(u8::MAX));
    out.extend_from_slice(data);
}

/// Renders bytes as `[01 02 ff]` in `Debug` output.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_well_formed_list() {
        let list = [3, 6, 192, 0, 2, 1, 0x81, 2];
        let items: Vec<_> = iter(&list).collect::<Result<_, _>>().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].kind, 3);
        assert_eq!(items[0].data, &[192, 0, 2, 1]);
        assert_eq!(items[0].raw, &list[..6]);
        assert_eq!(items[1].kind, 0x81);
        assert!(items[1].data.is_empty());
    }

    #[test]
    fn malformed_lists_yield_one_error() {
        let cases: &[(&[u8], IpcpError)] = &[
            (
                &[3],
                IpcpError::TruncatedHeader {
                    offset: 0,
                    remaining: 1,
                },
            ),
            (
                &[3, 1, 0],
                IpcpError::BadOptionLength {
                    offset: 0,
                    kind: 3,
                    length: 1,
                    remaining: 3,
                },
            ),
            (
                &[3, 2, 3, 7, 0],
                IpcpError::BadOptionLength {
                    offset: 2,
                    kind: 3,
                    length: 7,
                    remaining: 3,
                },
            ),
        ];
        for (list, expected) in cases {
            let items: Vec<_> = iter(list).collect();
            assert_eq!(items.last().unwrap().as_ref().unwrap_err(), expected);
            assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
        }
    }

    #[test]
    fn push_truncates_oversized_data() {
        let mut out = Vec::new();
        push(&mut out, 9, &[0; 300]);
        assert_eq!(out.len(), 255);
        assert_eq!(out[1], 255);
    }

    #[test]
    fn hex_debug() {
        assert_eq!(format!("{:?}", Hex(&[1, 0xab])), "[01 ab]");
    }
}
