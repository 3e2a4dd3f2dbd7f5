//! `flat` mode against an independent WHATWG reference: the output must be exactly the
//! object README.md specifies (byte for byte, as serde_json prints it), `on_pair` must see
//! every decoded pair in order, and under generous limits flat never errors. Tight limits
//! must fail with the matching error, never panic.
#![no_main]

use beacon_fuzz::beacon;

use beacon::query::{encode_query_into, Limits, Mode, QueryError};
use beacon_fuzz::{check_json_object, flat_reference, whatwg_pairs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &[u8]| {
    let generous = Limits {
        max_bytes: usize::MAX,
        max_params: usize::MAX,
        max_depth: 100,
    };
    let mut out = b"prefix".to_vec();
    let mut seen: Vec<(String, Option<String>)> = Vec::new();
    encode_query_into(query, Mode::Flat, &generous, &mut out, |n, v| {
        seen.push((n.to_owned(), v.map(str::to_owned)))
    })
    .unwrap_or_else(|e| panic!("flat must not fail under generous limits: {e}"));
    assert_eq!(&out[..6], b"prefix", "encoder must append, not overwrite");
    let got = check_json_object(&out[6..], "flat").expect("flat output is flat");

    let pairs = whatwg_pairs(query);
    let expected = flat_reference(&pairs);
    assert_eq!(
        got, expected,
        "flat object differs from the WHATWG reference"
    );
    assert_eq!(
        &out[6..],
        serde_json::to_string(&expected).unwrap().as_bytes(),
        "flat bytes differ from the reference's compact JSON"
    );
    let want: Vec<(String, Option<String>)> = pairs
        .iter()
        .map(|(n, v)| (n.clone(), Some(v.clone())))
        .collect();
    assert_eq!(seen, want, "on_pair must see every decoded pair in order");

    // Same input again: the thread-local scratch must not leak state between calls.
    let again = beacon::query::encode_query(query, Mode::Flat, &generous).unwrap();
    assert_eq!(again, &out[6..], "flat is not deterministic");

    // Just over each limit: the matching error.
    if !query.is_empty() {
        let short = Limits {
            max_bytes: query.len() - 1,
            ..generous
        };
        let r = beacon::query::encode_query(query, Mode::Flat, &short);
        assert!(matches!(r, Err(QueryError::TooLong { .. })), "{r:?}");
    }
    if !pairs.is_empty() {
        let few = Limits {
            max_params: pairs.len() - 1,
            ..generous
        };
        let r = beacon::query::encode_query(query, Mode::Flat, &few);
        assert!(matches!(r, Err(QueryError::TooManyParams { .. })), "{r:?}");
        let exact = Limits {
            max_params: pairs.len(),
            max_bytes: query.len(),
            ..generous
        };
        assert!(beacon::query::encode_query(query, Mode::Flat, &exact).is_ok());
    }
});
