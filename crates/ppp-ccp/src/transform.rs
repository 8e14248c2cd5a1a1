//! The data transforms built from what CCP negotiated: one [`Compressor`] for what we send,
//! one [`Decompressor`] for what we receive.

use ppp_auth::mppe_keys::MppeKeyLength;
use ppp_frame::Protocol;

use crate::CcpError;
use crate::deflate::{DeflateCompressor, DeflateDecompressor};
use crate::mppe::{MppeDecryptor, MppeEncryptor, MppeKeys, MppeParams};

/// The method negotiated for one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompressionMethod {
    /// MPPE encryption (no MPPC compression).
    Mppe(MppeParams),
    /// Deflate with this window (base-two logarithm, 8–15).
    Deflate {
        /// Window size of the compressing side, as negotiated.
        window_bits: u8,
    },
}

impl CompressionMethod {
    /// Whether this is MPPE.
    pub fn is_mppe(self) -> bool {
        matches!(self, CompressionMethod::Mppe(_))
    }

    /// pppd's wording for logs: "MPPE 128-bit stateless", "Deflate 15".
    pub fn describe(self) -> String {
        match self {
            CompressionMethod::Mppe(params) => {
                let bits = match params.key_length {
                    MppeKeyLength::Bits40 => 40,
                    MppeKeyLength::Bits56 => 56,
                    MppeKeyLength::Bits128 => 128,
                };
                let mode = if params.stateful {
                    "stateful"
                } else {
                    "stateless"
                };
                format!("MPPE {bits}-bit {mode}")
            }
            CompressionMethod::Deflate { window_bits } => format!("Deflate {window_bits}"),
        }
    }
}

/// Transforms what we send.
#[derive(Debug)]
pub enum Compressor {
    /// MPPE encryption.
    Mppe(Box<MppeEncryptor>),
    /// Deflate compression.
    Deflate(DeflateCompressor),
}

impl Compressor {
    /// The compressor for `method`; MPPE needs `keys`.
    pub fn new(method: CompressionMethod, keys: Option<&MppeKeys>) -> Result<Self, CcpError> {
        Ok(match method {
            CompressionMethod::Mppe(params) => {
                let keys = keys.ok_or(CcpError::MissingKeys)?;
                Compressor::Mppe(Box::new(MppeEncryptor::new(&keys.send, params)))
            }
            CompressionMethod::Deflate { window_bits } => {
                Compressor::Deflate(DeflateCompressor::new(window_bits))
            }
        })
    }

    /// The 0x00FD information field for a datagram, or `None`: send it uncompressed (MPPE:
    /// protocols outside 0x0021–0x00FA; Deflate: protocols it does not handle or no gain).
    pub fn compress(&mut self, protocol: Protocol, payload: &[u8]) -> Option<Vec<u8>> {
        match self {
            Compressor::Mppe(mppe) => mppe.encrypt(protocol, payload),
            Compressor::Deflate(deflate) => deflate.compress(protocol, payload),
        }
    }

    /// The peer sent a Reset-Request (we answer with a Reset-Ack): reset the compressor.
    pub fn reset(&mut self) {
        match self {
            Compressor::Mppe(mppe) => mppe.reset(),
            Compressor::Deflate(deflate) => deflate.reset(),
        }
    }
}

/// Transforms what we receive.
#[derive(Debug)]
pub enum Decompressor {
    /// MPPE decryption.
    Mppe(Box<MppeDecryptor>),
    /// Deflate decompression.
    Deflate(DeflateDecompressor),
}

impl Decompressor {
    /// The decompressor for `method`; MPPE needs `keys`.
    pub fn new(method: CompressionMethod, keys: Option<&MppeKeys>) -> Result<Self, CcpError> {
        Ok(match method {
            CompressionMethod::Mppe(params) => {
                let keys = keys.ok_or(CcpError::MissingKeys)?;
                Decompressor::Mppe(Box::new(MppeDecryptor::new(&keys.recv, params)))
            }
            CompressionMethod::Deflate { .. } => Decompressor::Deflate(DeflateDecompressor::new()),
        })
    }

    /// Decompress a 0x00FD information field. On error the packet is dropped; see
    /// [`CcpError::needs_reset_request`] and [`CcpError::is_fatal`].
    pub fn decompress(&mut self, info: &[u8]) -> Result<(Protocol, Vec<u8>), CcpError> {
        match self {
            Decompressor::Mppe(mppe) => mppe.decrypt(info),
            Decompressor::Deflate(deflate) => deflate.decompress(info),
        }
    }

    /// A datagram arrived uncompressed: Deflate adds it to its history; MPPE ignores it.
    pub fn add_uncompressed(&mut self, protocol: Protocol, payload: &[u8]) {
        if let Decompressor::Deflate(deflate) = self {
            deflate.add_uncompressed(protocol, payload);
        }
    }

    /// Our Reset-Request was answered with a Reset-Ack: reset the decompressor (Deflate;
    /// stateful MPPE resynchronises on the flushed bit instead).
    pub fn reset(&mut self) {
        if let Decompressor::Deflate(deflate) = self {
            deflate.reset();
        }
    }
}
