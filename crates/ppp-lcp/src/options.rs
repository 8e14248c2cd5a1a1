//! Option-list helpers shared by every control protocol (RFC 1661 §5.1–5.4 "Options" field).
//!
//! An option list is a sequence of type-length-value items: one type byte, one length byte
//! counting the type, length and data bytes, then `length - 2` data bytes.

use crate::LcpError;

/// One option of a Configure-* packet, borrowed from the list it came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// The option type.
    pub kind: u8,
    /// The option data, excluding the type and length bytes.
    pub data: &'a [u8],
}

impl RawOption<'_> {
    /// Length of the encoded option (type and length bytes included).
    pub fn encoded_len(&self) -> usize {
        self.data.len() + 2
    }

    /// Append the encoded option to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        push_option(out, self.kind, self.data);
    }
}

impl core::fmt::Debug for RawOption<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RawOption {{ kind: {:#04x}, data: [", self.kind)?;
        for (i, b) in self.data.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        f.write_str("] }")
    }
}

/// Iterator over a TLV option list; see [`iter_options`].
#[derive(Clone, Debug)]
pub struct OptionIter<'a> {
    list: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<RawOption<'a>, LcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.list.len() {
            return None;
        }
        let rest = &self.list[self.offset..];
        let malformed = LcpError::MalformedOption {
            offset: self.offset,
        };
        let (kind, len) = match rest {
            [kind, len, ..] => (*kind, usize::from(*len)),
            _ => {
                self.failed = true;
                return Some(Err(malformed));
            }
        };
        if len < 2 || len > rest.len() {
            self.failed = true;
            return Some(Err(malformed));
        }
        self.offset += len;
        Some(Ok(RawOption {
            kind,
            data: &rest[2..len],
        }))
    }
}

/// Iterate a TLV option list.
///
/// Yields `Err(LcpError::MalformedOption)` once (for a length below 2 or past the end of the list)
/// and then stops. Never panics.
pub fn iter_options(list: &[u8]) -> OptionIter<'_> {
    OptionIter {
        list,
        offset: 0,
        failed: false,
    }
}

/// Whether the whole list is well-formed.
pub fn validate_options(list: &[u8]) -> Result<(), LcpError> {
    iter_options(list).try_for_each(|option| option.map(|_| ()))
}

/// Append one option (type, length = `data.len() + 2`, data) to `out`.
///
/// Data longer than 253 bytes cannot be encoded; it is truncated to 253 bytes (no control protocol
/// defines such an option).
pub fn push_option(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let data = &data[..data.len().min(253)];
    out.push(kind);
    // Fits: at most 253 + 2.
    out.push((data.len() + 2) as u8);
    out.extend_from_slice(data);
}

/// Whether every option of `subset` appears, byte for byte and in the same order, in `list`.
///
/// Used to check that a Configure-Reject only names options we asked for (RFC 1661 §5.4).
/// Malformed lists never match.
pub fn is_subsequence(subset: &[u8], list: &[u8]) -> bool {
    let mut candidates = iter_options(list);
    for wanted in iter_options(subset) {
        let Ok(wanted) = wanted else { return false };
        loop {
            match candidates.next() {
                Some(Ok(candidate)) if candidate == wanted => break,
                Some(Ok(_)) => continue,
                _ => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_well_formed_lists() {
        let list = [1, 4, 0x05, 0xdc, 7, 2, 5, 6, 1, 2, 3, 4];
        let options: Vec<_> = iter_options(&list).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            options,
            vec![
                RawOption {
                    kind: 1,
                    data: &[0x05, 0xdc]
                },
                RawOption { kind: 7, data: &[] },
                RawOption {
                    kind: 5,
                    data: &[1, 2, 3, 4]
                },
            ]
        );
        assert_eq!(validate_options(&list), Ok(()));
        assert_eq!(validate_options(&[]), Ok(()));
    }

    #[test]
    fn malformed_lists_yield_one_error_then_stop() {
        let cases: &[(&[u8], usize, usize)] = &[
            // (list, good options before the error, error offset)
            (&[1], 0, 0),
            (&[1, 0], 0, 0),
            (&[1, 1], 0, 0),
            (&[1, 5, 0, 0], 0, 0),
            (&[7, 2, 8, 0, 7, 2], 1, 2),
            (&[7, 2, 1, 4, 5], 1, 2),
        ];
        for &(list, good, offset) in cases {
            let items: Vec<_> = iter_options(list).collect();
            assert_eq!(items.len(), good + 1, "{list:?}");
            assert_eq!(
                items[good],
                Err(LcpError::MalformedOption { offset }),
                "{list:?}"
            );
            assert!(validate_options(list).is_err());
        }
    }

    #[test]
    fn push_option_encodes_tlv() {
        let mut out = Vec::new();
        push_option(&mut out, 1, &[0x05, 0xdc]);
        push_option(&mut out, 8, &[]);
        assert_eq!(out, [1, 4, 0x05, 0xdc, 8, 2]);
        let mut long = Vec::new();
        push_option(&mut long, 99, &[0; 300]);
        assert_eq!(long.len(), 255);
        assert_eq!(long[1], 255);
    }

    #[test]
    fn subsequence_check() {
        let sent = [1, 4, 5, 0xdc, 5, 6, 1, 2, 3, 4, 7, 2];
        assert!(is_subsequence(&[5, 6, 1, 2, 3, 4], &sent));
        assert!(is_subsequence(&[1, 4, 5, 0xdc, 7, 2], &sent));
        assert!(is_subsequence(&[], &sent));
        assert!(!is_subsequence(&[7, 2, 1, 4, 5, 0xdc], &sent));
        assert!(!is_subsequence(&[5, 6, 1, 2, 3, 5], &sent));
        assert!(!is_subsequence(&[5], &sent));
    }

    proptest::proptest! {
        #[test]
        fn iter_never_panics_and_covers_valid_lists(list in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut total = 0;
            let mut ok = true;
            for item in iter_options(&list) {
                match item {
                    Ok(option) => total += option.encoded_len(),
                    Err(_) => ok = false,
                }
            }
            if ok {
                proptest::prop_assert_eq!(total, list.len());
                let mut rebuilt = Vec::new();
                for option in iter_options(&list) {
                    option.unwrap().emit(&mut rebuilt);
                }
                proptest::prop_assert_eq!(rebuilt, list);
            }
        }
    }
}
