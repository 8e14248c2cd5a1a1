//! Splitting the modem's byte stream into response lines, with bounded memory.

/// Counters kept by a [`LineReader`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Complete non-empty lines returned.
    pub lines: u64,
    /// Lines dropped because they were longer than the limit.
    pub too_long: u64,
    /// NULs and other control bytes removed from lines.
    pub control_bytes: u64,
}

/// Splits a byte stream into lines at `\r` or `\n`, in chunks of any size.
///
/// Empty lines (from `\r\n`, `\r\r\n`, ...) are skipped, NULs and other control bytes except tab
/// are removed, a line longer than the limit is dropped whole (counted in
/// [`LineStats::too_long`]), and the buffer never grows beyond the limit.
#[derive(Clone, Debug)]
pub struct LineReader {
    buffer: Vec<u8>,
    max_len: usize,
    discarding: bool,
    stats: LineStats,
}

impl LineReader {
    /// A reader that keeps at most `max_len` bytes of a line (at least 1).
    pub fn new(max_len: usize) -> Self {
        Self {
            buffer: Vec::new(),
            max_len: max_len.max(1),
            discarding: false,
            stats: LineStats::default(),
        }
    }

    /// Consumes bytes from `input` up to and including the first line terminator that completes
    /// a non-empty line. Returns the number of bytes consumed and that line, if any; when the line
    /// is `None` all of `input` was consumed and the partial line (if any) is kept for the next call.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<String>) {
        for (index, &byte) in input.iter().enumerate() {
            match byte {
                b'\r' | b'\n' => {
                    let discarding = std::mem::replace(&mut self.discarding, false);
                    if discarding || self.buffer.is_empty() {
                        self.buffer.clear();
                        continue;
                    }
                    let line = String::from_utf8_lossy(&self.buffer).into_owned();
                    self.buffer.clear();
                    self.stats.lines += 1;
                    return (index + 1, Some(line));
                }
                b'\t' => self.push(byte),
                0..=0x1f | 0x7f => self.stats.control_bytes += 1,
                _ => self.push(byte),
            }
        }
        (input.len(), None)
    }

    fn push(&mut self, byte: u8) {
        if self.discarding {
            return;
        }
        if self.buffer.len() >= self.max_len {
            self.buffer.clear();
            self.discarding = true;
            self.stats.too_long += 1;
            return;
        }
        self.buffer.push(byte);
    }

    /// The bytes of the current incomplete line.
    pub fn pending(&self) -> &[u8] {
        &self.buffer
    }

    /// Forgets any partial line.
    pub fn clear(&mut self) {
        self.buffer.clear();
        self.discarding = false;
    }

    /// The counters.
    pub fn stats(&self) -> LineStats {
        self.stats
    }
}

/// Watches an online (PPP) byte stream for a `NO CARRIER` line without copying it.
///
/// Only a line that is exactly `NO CARRIER` between two line terminators (or the start of the
/// online stream) matches; state is a few bytes.
#[derive(Clone, Debug, Default)]
pub(crate) struct CarrierWatch {
    line: [u8; 16],
    len: usize,
    overflow: bool,
}

impl CarrierWatch {
    /// Scans `input`; returns the offset just past the terminator of a `NO CARRIER` line.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Option<usize> {
        for (index, &byte) in input.iter().enumerate() {
            if byte == b'\r' || byte == b'\n' {
                let matched = !self.overflow && self.line[..self.len].trim_ascii() == b"NO CARRIER";
                self.len = 0;
                self.overflow = false;
                if matched {
                    return Some(index + 1);
                }
            } else if self.len < self.line.len() {
                self.line[self.len] = byte;
                self.len += 1;
            } else {
                self.overflow = true;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_lines(reader: &mut LineReader, mut input: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        while !input.is_empty() {
            let (used, line) = reader.feed(input);
            input = &input[used..];
            lines.extend(line);
        }
        lines
    }

    #[test]
    fn splits_and_skips_empty_lines() {
        let mut reader = LineReader::new(1024);
        let lines = all_lines(&mut reader, b"\r\nOK\r\n\r\r\n+CSQ: 20,99\r\r\nERROR\n");
        assert_eq!(lines, ["OK", "+CSQ: 20,99", "ERROR"]);
    }

    #[test]
    fn partial_lines_across_chunks() {
        let mut reader = LineReader::new(1024);
        let mut lines = Vec::new();
        for chunk in [
            &b"\r\n+CS"[..],
            b"Q: 2",
            b"0,99\r",
            b"\n\r\nO",
            b"K",
            b"\r\n",
        ] {
            lines.extend(all_lines(&mut reader, chunk));
        }
        assert_eq!(lines, ["+CSQ: 20,99", "OK"]);
    }

    #[test]
    fn nuls_and_controls_removed() {
        let mut reader = LineReader::new(1024);
        let lines = all_lines(&mut reader, b"\0O\0K\x07\r\n");
        assert_eq!(lines, ["OK"]);
        assert_eq!(reader.stats().control_bytes, 3);
    }

    #[test]
    fn long_lines_dropped_and_counted() {
        let mut reader = LineReader::new(8);
        let lines = all_lines(&mut reader, b"0123456789abcdef\r\nOK\r\n12345678\r\n");
        assert_eq!(lines, ["OK", "12345678"]);
        assert_eq!(reader.stats().too_long, 1);
    }

    #[test]
    fn carrier_watch() {
        let mut watch = CarrierWatch::default();
        assert_eq!(watch.feed(b"~\x7d\x23data NO CARRIER"), None);
        assert_eq!(watch.feed(b"\r\n"), None);
        assert_eq!(watch.feed(b"\r\nNO CARR"), None);
        assert_eq!(watch.feed(b"IER\r\nOK"), Some(4));
        let long = [b'x'; 100];
        let mut watch = CarrierWatch::default();
        assert_eq!(watch.feed(&long), None);
        assert_eq!(watch.feed(b"NO CARRIER\r"), None);
        assert_eq!(watch.feed(b"\nNO CARRIER\r"), Some(12));
    }

    proptest! {
        #[test]
        fn bounded_and_never_panics(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
            max_len in 1usize..64,
        ) {
            let mut reader = LineReader::new(max_len);
            let mut watch = CarrierWatch::default();
            for chunk in &chunks {
                for line in all_lines(&mut reader, chunk) {
                    prop_assert!(line.len() <= max_len * 3); // lossy UTF-8 may widen bytes
                    prop_assert!(!line.is_empty());
                }
                prop_assert!(reader.pending().len() <= max_len);
                let _ = watch.feed(chunk);
            }
        }

        #[test]
        fn chunking_does_not_change_lines(
            text in "[A-Z0-9 :,+\r\n]{0,200}",
            split in proptest::collection::vec(1usize..20, 1..20),
        ) {
            let mut whole = LineReader::new(1024);
            let expected = all_lines(&mut whole, text.as_bytes());
            let mut reader = LineReader::new(1024);
            let mut got = Vec::new();
            let mut rest = text.as_bytes();
            for size in split.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at((*size).min(rest.len()));
                got.extend(all_lines(&mut reader, chunk));
                rest = tail;
            }
            prop_assert_eq!(got, expected);
        }
    }
}
