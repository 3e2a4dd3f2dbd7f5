//! Inputs the fuzz targets in fuzz/ found, kept as ordinary unit tests.

use crate::clock::{parse_tz, Stamper};
use crate::envelope::{build_event, Meta, Params};
use crate::flavor::{Flavor, FlavorOptions};
use crate::query::Limits;

fn json_event(body: &[u8]) -> String {
    let mut f = Flavor::new(
        "f",
        Stamper::new(parse_tz("UTC").unwrap()),
        FlavorOptions::default(),
    );
    let ev = build_event(
        0,
        &mut f,
        0,
        Params::Json(body),
        &Meta::default(),
        &Limits::default(),
        &mut Vec::new(),
    )
    .unwrap();
    String::from_utf8(ev.line.into_vec()).unwrap()
}

/// fuzz/envelope: serde_json's default float parser is not correctly rounded, so a JSON
/// body's number came back 1 ULP off (`...617e304` written as `...616e304`). Fixed by
/// serde_json's `float_roundtrip` feature.
#[test]
fn json_body_floats_are_kept_exactly() {
    for n in [
        "-7.592714127052617e304",
        "2.2250738585072014e-308",
        "1.7976931348623157e308",
        "0.30000000000000004",
        "5e-324",
    ] {
        let want: f64 = n.parse().unwrap();
        let line = json_event(format!("{{\"x\":{n}}}").as_bytes());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let got = v["params"]["x"].as_f64().unwrap();
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{n} became {got:e} in {line}"
        );
        let printed = line
            .split("\"x\":")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap();
        assert_eq!(
            printed.parse::<f64>().unwrap().to_bits(),
            want.to_bits(),
            "{line}"
        );
    }
}

/// fuzz/envelope: a required parameter listed twice (`required_params: ["ev", "ev"]`) set
/// only its first bit, so every request was refused as missing `ev`, `ev` present or not.
#[test]
fn a_required_parameter_listed_twice_is_satisfied_once_present() {
    let opts = FlavorOptions {
        required: vec!["".into(), "".into(), "ev".into(), "ev".into()],
        ..FlavorOptions::default()
    };
    let mut f = Flavor::new("f", Stamper::new(parse_tz("UTC").unwrap()), opts);
    let mut build = |q: &'static [u8]| {
        build_event(
            0,
            &mut f,
            0,
            Params::Query(q),
            &Meta::default(),
            &Limits::default(),
            &mut Vec::new(),
        )
    };
    assert!(build(b"=1&ev=x").is_ok());
    assert_eq!(
        build(b"=1").unwrap_err(),
        crate::envelope::Refusal::MissingParam("ev".into())
    );
}
