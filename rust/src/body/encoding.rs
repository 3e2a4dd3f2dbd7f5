//! Content codings of a POST body (RFC 9110 §8.4): which one a `Content-Encoding` names,
//! and undoing it into a buffer that never grows past the caller's limit.
//!
//! Decoders, all pure Rust (no C compiler or system library, so maturin and cargo-fuzz
//! build them like the rest of the crate):
//! - gzip, zlib and raw deflate: `flate2` on its default `miniz_oxide` backend;
//! - br: `brotli-decompressor`, Dropbox's port of Google's reference decoder, driven
//!   through its streaming call so the output lands in our capped buffer;
//! - zstd: `ruzstd`, the maintained pure-Rust decoder (it raises the crate's
//!   `rust-version` to 1.87; the C `zstd` binding would add a C build for one coding).
//!
//! Every decoder writes into a [`Sink`]: `out` grown on demand and never past `max + 1`
//! bytes, the extra byte being how a body that inflates past `max` is told apart from one
//! that fills it exactly. A gzip bomb therefore stops after `max + 1` decoded bytes, never
//! decode-then-check. The window a format may demand is allocated by its decoder, though,
//! not by us; it is bounded by the format and only touched as far as data is written:
//! brotli at most 16 MiB (RFC 7932's largest window; large-window streams are refused),
//! zstd 8 MiB (RFC 9659's window limit for the `zstd` content coding, enforced here).

use std::io::{ErrorKind, Read};

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use super::BodyError;

/// A content coding beacon can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

/// Registered names (RFC 9110 §8.4.1, RFC 7932 §13 for `br`, RFC 8878 §7.2 for `zstd`),
/// matched case-insensitively. `x-gzip` is `gzip` (RFC 9110 §8.4.1.3); `compress` (LZW) and
/// anything else is not taken.
const NAMES: [(&[u8], ContentEncoding); 7] = [
    (b"", ContentEncoding::Identity),
    (b"identity", ContentEncoding::Identity),
    (b"gzip", ContentEncoding::Gzip),
    (b"x-gzip", ContentEncoding::Gzip),
    (b"deflate", ContentEncoding::Deflate),
    (b"br", ContentEncoding::Brotli),
    (b"zstd", ContentEncoding::Zstd),
];

/// RFC 9659 §3: `zstd` content-coding encoders must not need a window over 8 MB.
const ZSTD_MAX_WINDOW: u64 = 8 << 20;

/// The first growth step of the output buffer: most beacon bodies decode to less.
const FIRST_CHUNK: usize = 4096;

impl ContentEncoding {
    /// From the Content-Encoding header value (None: absent → Identity). Case-insensitive,
    /// optional whitespace trimmed; "identity" and empty → Identity; "x-gzip" = gzip;
    /// a list of codings ("gzip, br") → Err(Unsupported) unless all but one are "identity";
    /// anything unknown → Err(Unsupported).
    pub fn parse(header: Option<&[u8]>) -> Result<ContentEncoding, BodyError> {
        let mut found = ContentEncoding::Identity;
        for coding in header.unwrap_or_default().split(|&b| b == b',') {
            let coding = trim_ows(coding);
            let (_, enc) = NAMES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(coding))
                .ok_or(BodyError::Unsupported)?;
            if *enc == ContentEncoding::Identity {
                continue;
            }
            // Stacked codings are legal (RFC 9110 §8.4) but no browser sends them.
            if found != ContentEncoding::Identity {
                return Err(BodyError::Unsupported);
            }
            found = *enc;
        }
        Ok(found)
    }
}

/// Decodes `body` into `out` (cleared first). Never lets `out` grow past `max` bytes:
/// a body that inflates beyond `max` → Err(TooLarge{max}) after reading at most max+1
/// decoded bytes. Corrupt or truncated data, or bytes after the end of the compressed
/// stream → Err(Malformed(..)). Identity copies (with the same limit). `deflate` takes
/// both the zlib format RFC 9110 names (RFC 1950) and the raw deflate (RFC 1951) many
/// clients send. A gzip body of several members (RFC 1952 §2.2) and a zstd body of several
/// frames decode them all, in order. An empty body decodes to nothing whatever the coding:
/// clients set `Content-Encoding` on keepalive requests that carry no payload.
/// On error `out` is left empty.
pub fn decode_into(
    body: &[u8],
    enc: ContentEncoding,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    out.clear();
    if body.is_empty() {
        return Ok(());
    }
    let mut sink = Sink { out, len: 0, max };
    let r = match enc {
        ContentEncoding::Identity => sink.copy(body),
        ContentEncoding::Gzip => gunzip(body, &mut sink),
        ContentEncoding::Deflate => inflate(body, is_zlib(body), &mut sink),
        ContentEncoding::Brotli => unbrotli(body, &mut sink),
        ContentEncoding::Zstd => unzstd(body, &mut sink),
    };
    let len = if r.is_ok() { sink.len } else { 0 };
    out.truncate(len);
    r
}

/// `out` as a decoder's destination: zero-filled room handed out in growing steps, never
/// past `max + 1` bytes in all. `len` bytes of it are decoded data.
struct Sink<'a> {
    out: &'a mut Vec<u8>,
    len: usize,
    max: usize,
}

impl Sink<'_> {
    /// Room to decode into; never empty, as `len <= max` holds between calls.
    fn spare(&mut self) -> &mut [u8] {
        if self.len == self.out.len() {
            let room = self.max.saturating_add(1) - self.len;
            let grow = self.len.max(FIRST_CHUNK).min(room);
            self.out.reserve_exact(grow);
            self.out.resize(self.len + grow, 0);
        }
        &mut self.out[self.len..]
    }

    /// Counts `n` bytes written into the last `spare()`.
    fn advance(&mut self, n: usize) -> Result<(), BodyError> {
        self.len += n;
        if self.len > self.max {
            return Err(BodyError::TooLarge { max: self.max });
        }
        Ok(())
    }

    fn copy(&mut self, body: &[u8]) -> Result<(), BodyError> {
        if body.len() > self.max {
            return Err(BodyError::TooLarge { max: self.max });
        }
        self.out.extend_from_slice(body);
        self.len = body.len();
        Ok(())
    }

    /// Reads `r` to its end; any read error is `corrupt`.
    fn read_all(&mut self, mut r: impl Read, corrupt: &'static str) -> Result<(), BodyError> {
        loop {
            match r.read(self.spare()) {
                Ok(0) => return Ok(()),
                Ok(n) => self.advance(n)?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(BodyError::Malformed(corrupt)),
            }
        }
    }
}

/// flate2's multi-member reader checks each member's CRC-32 and length, and fails on
/// anything after the last member that is not another gzip header.
fn gunzip(body: &[u8], sink: &mut Sink) -> Result<(), BodyError> {
    sink.read_all(
        flate2::bufread::MultiGzDecoder::new(body),
        "corrupt or truncated gzip data",
    )
}

/// RFC 1950 §2.2: CM 8 (deflate), CINFO at most 7 (32 KiB window), and the header as a
/// big-endian u16 a multiple of 31. A raw deflate stream written by a real encoder never
/// passes: CM 8 would need a first block that is stored, not final, with a non-zero
/// padding bit.
fn is_zlib(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && u16::from_be_bytes([*cmf, *flg]).is_multiple_of(31)
        }
        _ => false,
    }
}

/// One zlib (RFC 1950) or raw deflate (RFC 1951) stream filling all of `body`. flate2's
/// readers fail on a stream cut short and stop at its end, leaving what follows unread.
fn inflate(body: &[u8], zlib: bool, sink: &mut Sink) -> Result<(), BodyError> {
    const CORRUPT: &str = "corrupt or truncated deflate data";
    let rest = if zlib {
        let mut d = flate2::bufread::ZlibDecoder::new(body);
        sink.read_all(&mut d, CORRUPT)?;
        d.into_inner()
    } else {
        let mut d = flate2::bufread::DeflateDecoder::new(body);
        sink.read_all(&mut d, CORRUPT)?;
        d.into_inner()
    };
    if rest.is_empty() {
        Ok(())
    } else {
        Err(trailing_data())
    }
}

fn trailing_data() -> BodyError {
    BodyError::Malformed("data after the end of the compressed stream")
}

/// One brotli stream (RFC 7932) filling all of `body`.
fn unbrotli(body: &[u8], sink: &mut Sink) -> Result<(), BodyError> {
    // `new_strict`: no large-window extension, so the ring buffer stays within 16 MiB.
    let mut state = BrotliState::new_strict(
        StandardAlloc::default(),
        StandardAlloc::default(),
        StandardAlloc::default(),
    );
    let (mut avail_in, mut in_off, mut total_out) = (body.len(), 0, 0);
    loop {
        let spare = sink.spare();
        let (mut avail_out, mut out_off) = (spare.len(), 0);
        let r = BrotliDecompressStream(
            &mut avail_in,
            &mut in_off,
            body,
            &mut avail_out,
            &mut out_off,
            spare,
            &mut total_out,
            &mut state,
        );
        sink.advance(out_off)?;
        match r {
            BrotliResult::NeedsMoreOutput => {}
            BrotliResult::ResultSuccess if avail_in == 0 => return Ok(()),
            BrotliResult::ResultSuccess => return Err(trailing_data()),
            BrotliResult::NeedsMoreInput => {
                return Err(BodyError::Malformed("truncated brotli data"))
            }
            BrotliResult::ResultFailure => return Err(BodyError::Malformed("corrupt brotli data")),
        }
    }
}

/// Zstandard frames (RFC 8878 §3.1), skippable frames skipped, each frame's content
/// checksum checked when it has one.
fn unzstd(mut body: &[u8], sink: &mut Sink) -> Result<(), BodyError> {
    const CORRUPT: BodyError = BodyError::Malformed("corrupt or truncated zstd data");
    let mut dec = FrameDecoder::new();
    dec.set_max_window_size(ZSTD_MAX_WINDOW);
    while !body.is_empty() {
        match dec.reset(&mut body) {
            Ok(()) => {}
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                body = body.get(length as usize..).ok_or(CORRUPT)?;
                continue;
            }
            Err(FrameDecoderError::WindowSizeTooBig { requested, .. }) => {
                return Err(window_too_big(requested, sink.max))
            }
            Err(_) => return Err(CORRUPT),
        }
        // Decoding stops once the frame has produced more than the room left, so a bomb
        // costs about `max` plus one block (128 KiB), not its window.
        let room = sink.max - sink.len;
        let finished = dec
            .decode_blocks(
                &mut body,
                BlockDecodingStrategy::UptoBytes(room.saturating_add(1)),
            )
            .map_err(|_| CORRUPT)?;
        if !finished {
            return Err(BodyError::TooLarge { max: sink.max });
        }
        sink.read_all(&mut dec, "corrupt or truncated zstd data")?;
        if let Some(expected) = dec.get_checksum_from_data() {
            if dec.get_calculated_checksum() != Some(expected) {
                return Err(BodyError::Malformed("zstd checksum mismatch"));
            }
        }
    }
    Ok(())
}

/// A zstd frame needing more than RFC 9659's 8 MB window. A single-segment frame's window
/// is its content size, so past `max` it is simply too large; otherwise the encoder broke
/// RFC 9659.
fn window_too_big(requested: u64, max: usize) -> BodyError {
    if requested > max as u64 {
        BodyError::TooLarge { max }
    } else {
        BodyError::Malformed("zstd window over 8 MiB (RFC 9659)")
    }
}

/// Strips RFC 9110 optional whitespace (SP, HTAB) from both ends.
fn trim_ows(s: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
#[path = "encoding_tests.rs"]
mod tests;
