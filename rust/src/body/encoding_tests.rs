use super::*;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::Compression;
use proptest::prelude::*;
use std::io::Write;
use std::sync::OnceLock;

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
fn gzip_bomb_stops_at_the_limit() {
    let bomb = gzip_bomb();
    assert!(bomb.len() < 100_000, "bomb is {} bytes", bomb.len());
    let mut out = Vec::new();
    let r = decode_into(bomb, Gzip, MAX, &mut out);
    assert_eq!(r, Err(BodyError::TooLarge { max: MAX }));
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
fn brotli_bomb_stops_at_the_limit() {
    let mut out = Vec::new();
    let r = decode_into(BOMB_BR, Brotli, MAX, &mut out);
    assert_eq!(r, Err(BodyError::TooLarge { max: MAX }));
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
fn zstd_bombs_stop_at_the_limit() {
    for bomb in [BOMB_ZST, BOMB_ZST_STREAM] {
        let mut out = Vec::new();
        let r = decode_into(bomb, Zstd, MAX, &mut out);
        assert_eq!(r, Err(BodyError::TooLarge { max: MAX }));
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
