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
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use proptest::prelude::*;
    use std::io::Write;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use ContentEncoding::*;

    const MAX: usize = 64 << 10;
    const HELLO: &str = "ev=view&uid=42&msg=καλημέρα";
    /// Made with `brotli -q 11` and `zstd -19` (the reference encoders) from `HELLO`.
    const HELLO_BR: &[u8] = include_bytes!("testdata/hello.br");
    const HELLO_ZST: &[u8] = include_bytes!("testdata/hello.zst");
    /// 50 MB of zeros: `brotli -q 9`, `zstd -3`, and `zstd -3 --no-content-size` from a pipe
    /// (a frame that does not announce its size, decoded against a 2 MiB window).
    const BOMB_BR: &[u8] = include_bytes!("testdata/zeros-50mb.br");
    const BOMB_ZST: &[u8] = include_bytes!("testdata/zeros-50mb.zst");
    const BOMB_ZST_STREAM: &[u8] = include_bytes!("testdata/zeros-50mb-stream.zst");
    const BOMB_BYTES: usize = 50_000_000;

    fn parse(h: &str) -> Result<ContentEncoding, BodyError> {
        ContentEncoding::parse(Some(h.as_bytes()))
    }

    fn decode(body: &[u8], enc: ContentEncoding, max: usize) -> Result<Vec<u8>, BodyError> {
        let mut out = b"stale".to_vec();
        decode_into(body, enc, max, &mut out).map(|()| out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// 50 MB of zeros, gzip-compressed (about 50 KB); built once for all tests.
    fn gzip_bomb() -> &'static [u8] {
        static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
        BOMB.get_or_init(|| gzip(&vec![0; BOMB_BYTES]))
    }

    #[test]
    fn parse_absent_empty_and_identity() {
        assert_eq!(ContentEncoding::parse(None), Ok(Identity));
        for h in [
            "",
            "  ",
            "identity",
            "IDENTITY",
            " identity ",
            "identity, identity",
        ] {
            assert_eq!(parse(h), Ok(Identity), "{h:?}");
        }
    }

    #[test]
    fn parse_known_codings_case_insensitively() {
        for (h, want) in [
            ("gzip", Gzip),
            ("GZip", Gzip),
            ("x-gzip", Gzip),
            ("X-GZIP", Gzip),
            ("\tgzip ", Gzip),
            ("deflate", Deflate),
            ("br", Brotli),
            ("BR", Brotli),
            ("zstd", Zstd),
            ("identity, gzip", Gzip),
            ("gzip,identity", Gzip),
            ("gzip,", Gzip),
        ] {
            assert_eq!(parse(h), Ok(want), "{h:?}");
        }
    }

    #[test]
    fn parse_refuses_unknown_and_stacked_codings() {
        for h in [
            "compress",
            "x-compress",
            "gzip;q=1",
            "gz",
            "gzip br",
            "gzip, br",
            "gzip, gzip",
            "br,zstd",
            "\u{e9}",
        ] {
            assert_eq!(parse(h), Err(BodyError::Unsupported), "{h:?}");
        }
        assert_eq!(
            ContentEncoding::parse(Some(b"\xff")),
            Err(BodyError::Unsupported)
        );
    }

    #[test]
    fn identity_copies_within_the_limit() {
        assert_eq!(decode(b"a=1", Identity, 3).unwrap(), b"a=1");
        assert_eq!(
            decode(b"a=1", Identity, 2),
            Err(BodyError::TooLarge { max: 2 })
        );
    }

    #[test]
    fn empty_body_decodes_to_nothing_whatever_the_coding() {
        for enc in [Identity, Gzip, Deflate, Brotli, Zstd] {
            assert_eq!(decode(b"", enc, 0).unwrap(), b"", "{enc:?}");
        }
    }

    #[test]
    fn gzip_round_trips() {
        let data = HELLO.repeat(100);
        assert_eq!(
            decode(&gzip(data.as_bytes()), Gzip, MAX).unwrap(),
            data.as_bytes()
        );
    }

    #[test]
    fn gzip_members_concatenate() {
        let mut body = gzip(b"ev=view&");
        body.extend(gzip(b""));
        body.extend(gzip(b"uid=42"));
        assert_eq!(decode(&body, Gzip, MAX).unwrap(), b"ev=view&uid=42");
    }

    #[test]
    fn gzip_exactly_at_the_limit_fits() {
        let data = vec![b'x'; 1000];
        let body = gzip(&data);
        assert_eq!(decode(&body, Gzip, 1000).unwrap(), data);
        assert_eq!(
            decode(&body, Gzip, 999),
            Err(BodyError::TooLarge { max: 999 })
        );
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit_quickly() {
        let bomb = gzip_bomb();
        assert!(bomb.len() < 100_000, "bomb is {} bytes", bomb.len());
        let mut out = Vec::new();
        let t = Instant::now();
        let r = decode_into(bomb, Gzip, MAX, &mut out);
        assert_eq!(r, Err(BodyError::TooLarge { max: MAX }));
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
        assert!(out.capacity() <= MAX + 1, "capacity {}", out.capacity());
        assert!(out.is_empty());
    }

    #[test]
    fn truncated_gzip_is_malformed() {
        let body = gzip(HELLO.as_bytes());
        for cut in [1, 5, 10, body.len() / 2, body.len() - 8, body.len() - 1] {
            assert!(
                matches!(
                    decode(&body[..cut], Gzip, MAX),
                    Err(BodyError::Malformed(_))
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn corrupt_gzip_is_malformed() {
        let mut body = gzip(HELLO.as_bytes());
        let crc = body.len() - 8;
        body[crc] ^= 1;
        assert!(matches!(
            decode(&body, Gzip, MAX),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"not gzip", Gzip, MAX),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_after_gzip_is_malformed() {
        let mut body = gzip(HELLO.as_bytes());
        body.extend_from_slice(b"junk");
        assert!(matches!(
            decode(&body, Gzip, MAX),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn deflate_takes_zlib_and_raw() {
        let data = HELLO.repeat(10);
        let z = zlib(data.as_bytes());
        let raw = raw_deflate(data.as_bytes());
        assert!(is_zlib(&z));
        assert!(!is_zlib(&raw));
        assert_eq!(decode(&z, Deflate, MAX).unwrap(), data.as_bytes());
        assert_eq!(decode(&raw, Deflate, MAX).unwrap(), data.as_bytes());
    }

    #[test]
    fn deflate_of_every_level_is_never_taken_for_zlib() {
        for level in 0..=9 {
            for data in [&b""[..], b"a", HELLO.as_bytes()] {
                let mut e = DeflateEncoder::new(Vec::new(), Compression::new(level));
                e.write_all(data).unwrap();
                let raw = e.finish().unwrap();
                assert!(!is_zlib(&raw), "level {level}, {data:?}");
                assert_eq!(decode(&raw, Deflate, MAX).unwrap(), data);
            }
        }
    }

    #[test]
    fn truncated_or_trailing_deflate_is_malformed() {
        for body in [zlib(HELLO.as_bytes()), raw_deflate(HELLO.as_bytes())] {
            for cut in [1, body.len() / 2, body.len() - 1] {
                assert!(
                    matches!(
                        decode(&body[..cut], Deflate, MAX),
                        Err(BodyError::Malformed(_))
                    ),
                    "cut at {cut} of {body:?}"
                );
            }
            let mut long = body.clone();
            long.push(0);
            assert_eq!(decode(&long, Deflate, MAX), Err(trailing_data()));
        }
    }

    #[test]
    fn corrupt_zlib_checksum_is_malformed() {
        let mut body = zlib(HELLO.as_bytes());
        *body.last_mut().unwrap() ^= 1;
        assert!(matches!(
            decode(&body, Deflate, MAX),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn deflate_bomb_stops_at_the_limit() {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::fast());
        e.write_all(&vec![0; 10 << 20]).unwrap();
        let bomb = e.finish().unwrap();
        let mut out = Vec::new();
        let r = decode_into(&bomb, Deflate, MAX, &mut out);
        assert_eq!(r, Err(BodyError::TooLarge { max: MAX }));
        assert!(out.capacity() <= MAX + 1);
    }

    #[test]
    fn brotli_from_the_reference_encoder() {
        assert_eq!(decode(HELLO_BR, Brotli, MAX).unwrap(), HELLO.as_bytes());
        assert_eq!(
            decode(HELLO_BR, Brotli, HELLO.len() - 1),
            Err(BodyError::TooLarge {
                max: HELLO.len() - 1
            })
        );
    }

    #[test]
    fn brotli_truncated_corrupt_or_trailing_is_malformed() {
        for cut in 1..HELLO_BR.len() {
            assert!(
                matches!(
                    decode(&HELLO_BR[..cut], Brotli, MAX),
                    Err(BodyError::Malformed(_))
                ),
                "cut at {cut}"
            );
        }
        let mut long = HELLO_BR.to_vec();
        long.push(0);
        assert_eq!(decode(&long, Brotli, MAX), Err(trailing_data()));
        assert!(matches!(
            decode(b"\xff\xff\xff\xff", Brotli, MAX),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn brotli_bomb_stops_at_the_limit_quickly() {
        let mut out = Vec::new();
        let t = Instant::now();
        let r = decode_into(BOMB_BR, Brotli, MAX, &mut out);
        assert_eq!(r, Err(BodyError::TooLarge { max: MAX }));
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
        assert!(out.capacity() <= MAX + 1);
    }

    #[test]
    fn brotli_large_window_streams_are_refused() {
        // RFC 7932 large-window header (WBITS escape 0x11, then 30): not for HTTP.
        assert!(matches!(
            decode(&[0x11, 0x1e, 0x03], Brotli, MAX),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn zstd_from_the_reference_encoder() {
        assert_eq!(decode(HELLO_ZST, Zstd, MAX).unwrap(), HELLO.as_bytes());
        assert_eq!(
            decode(HELLO_ZST, Zstd, HELLO.len() - 1),
            Err(BodyError::TooLarge {
                max: HELLO.len() - 1
            })
        );
    }

    #[test]
    fn zstd_frames_concatenate_and_skippable_frames_are_skipped() {
        let mut body = HELLO_ZST.to_vec();
        // A skippable frame (RFC 8878 §3.1.2) of 3 bytes.
        body.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        body.extend_from_slice(HELLO_ZST);
        let want = HELLO.repeat(2);
        assert_eq!(decode(&body, Zstd, MAX).unwrap(), want.as_bytes());
        assert_eq!(
            decode(&body, Zstd, want.len() - 1),
            Err(BodyError::TooLarge {
                max: want.len() - 1
            })
        );
    }

    #[test]
    fn zstd_truncated_or_corrupt_is_malformed() {
        for cut in 1..HELLO_ZST.len() {
            assert!(
                matches!(
                    decode(&HELLO_ZST[..cut], Zstd, MAX),
                    Err(BodyError::Malformed(_))
                ),
                "cut at {cut}"
            );
        }
        let mut bad_sum = HELLO_ZST.to_vec();
        *bad_sum.last_mut().unwrap() ^= 1;
        assert_eq!(
            decode(&bad_sum, Zstd, MAX),
            Err(BodyError::Malformed("zstd checksum mismatch"))
        );
        let mut long = HELLO_ZST.to_vec();
        long.push(0);
        assert!(matches!(
            decode(&long, Zstd, MAX),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn zstd_bombs_stop_at_the_limit_quickly() {
        for bomb in [BOMB_ZST, BOMB_ZST_STREAM] {
            let mut out = Vec::new();
            let t = Instant::now();
            let r = decode_into(bomb, Zstd, MAX, &mut out);
            assert_eq!(r, Err(BodyError::TooLarge { max: MAX }));
            assert!(
                t.elapsed() < Duration::from_millis(100),
                "{:?}",
                t.elapsed()
            );
            assert!(out.capacity() <= MAX + 1);
        }
    }

    #[test]
    fn zstd_window_over_8_mib_is_refused() {
        // Frame header: magic, descriptor 0 (no single segment, no checksum), window
        // descriptor exponent 14 → 16 MiB, then one empty last raw block.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 14 << 3, 0x01, 0x00, 0x00];
        assert_eq!(
            decode(&frame, Zstd, 1 << 30),
            Err(window_too_big(16 << 20, 1 << 30))
        );
        assert!(matches!(
            decode(&frame, Zstd, 1 << 30),
            Err(BodyError::Malformed(_))
        ));
        assert_eq!(
            decode(&frame, Zstd, MAX),
            Err(BodyError::TooLarge { max: MAX })
        );
        // Exponent 13 (8 MiB) is fine.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3, 0x01, 0x00, 0x00];
        assert_eq!(decode(&frame, Zstd, MAX).unwrap(), b"");
    }

    #[test]
    fn no_limit_at_all_still_decodes() {
        for (enc, body) in [
            (Identity, HELLO.as_bytes().to_vec()),
            (Gzip, gzip(HELLO.as_bytes())),
            (Deflate, zlib(HELLO.as_bytes())),
            (Brotli, HELLO_BR.to_vec()),
            (Zstd, HELLO_ZST.to_vec()),
        ] {
            assert_eq!(
                decode(&body, enc, usize::MAX).unwrap(),
                HELLO.as_bytes(),
                "{enc:?}"
            );
        }
        // A zstd frame of several 128 KiB blocks.
        let long = HELLO.repeat(10_000);
        let level = ruzstd::encoding::CompressionLevel::Fastest;
        let body = ruzstd::encoding::compress_to_vec(long.as_bytes(), level);
        assert_eq!(decode(&body, Zstd, usize::MAX).unwrap(), long.as_bytes());
    }

    #[test]
    fn max_zero_takes_only_empty_output() {
        assert_eq!(decode(&gzip(b""), Gzip, 0).unwrap(), b"");
        assert_eq!(
            decode(&gzip(b"a"), Gzip, 0),
            Err(BodyError::TooLarge { max: 0 })
        );
    }

    proptest! {
        #[test]
        fn flate_round_trips_within_any_limit(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            max in 0usize..4000,
        ) {
            for (enc, body) in [
                (Gzip, gzip(&data)),
                (Deflate, zlib(&data)),
                (Deflate, raw_deflate(&data)),
            ] {
                let got = decode(&body, enc, max);
                if data.len() <= max {
                    prop_assert_eq!(got, Ok(data.clone()));
                } else {
                    prop_assert_eq!(got, Err(BodyError::TooLarge { max }));
                }
            }
        }

        #[test]
        fn random_bytes_never_panic_nor_pass_the_limit(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            max in 0usize..2048,
        ) {
            for enc in [Identity, Gzip, Deflate, Brotli, Zstd] {
                let mut out = Vec::new();
                match decode_into(&body, enc, max, &mut out) {
                    Ok(()) => prop_assert!(out.len() <= max),
                    Err(_) => prop_assert!(out.is_empty()),
                }
            }
        }
    }
}
