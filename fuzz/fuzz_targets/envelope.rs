//! `build_event` over a sequence of requests to one flavor with arbitrary options (mode,
//! zone, required parameters, Kafka key, dedup), limits, meta and params (query strings,
//! raw JSON bodies, structured JSON bodies). Each outcome is predicted from an independent
//! model: the query encoder's own result, the required parameters in order, the last value
//! of the key parameter, an exact model of the dedup store. An accepted event must be one
//! line ending in `\n`, with no raw control characters, parsing to `ts`, `flavor`,
//! `params` (exactly the encoded query or the JSON body) and the enabled meta fields.
#![no_main]

use beacon_fuzz::beacon;

use arbitrary::Arbitrary;
use beacon::clock::{parse_tz, Day, Stamper};
use beacon::envelope::{build_event, Meta, Params, Refusal};
use beacon::flavor::{Flavor, FlavorOptions};
use beacon::query::{encode_query_into, Limits, Mode};
use beacon_fuzz::{check_event_line, json_pairs, ZONES};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::net::IpAddr;

const NAMES: [&str; 8] = ["ev", "uid", "id", "eid", "a", "a[b]", "", "ü"];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

impl Name {
    fn get(&self) -> String {
        match self {
            Name::Known(i) => NAMES[*i as usize % NAMES.len()].to_owned(),
            Name::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(Name, Json)>),
}

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => Value::from(*i),
            Json::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.clone()),
            Json::Arr(a) => Value::Array(a.iter().map(Json::value).collect()),
            Json::Obj(o) => Value::Object(o.iter().map(|(k, v)| (k.get(), v.value())).collect()),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Body {
    Query(Vec<u8>),
    Json(Vec<u8>),
    /// A JSON object body built from a structure, so it parses.
    JsonObject(Vec<(Name, Json)>),
}

#[derive(Arbitrary, Debug)]
struct Step {
    dt_ms: u16,
    body: Body,
    ip: Option<IpAddr>,
    user_agent: Option<Vec<u8>>,
    referer: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    flavor_name: String,
    zone: u8,
    rack: bool,
    required: Vec<Name>,
    key_param: Option<Name>,
    dedup_param: Option<Name>,
    dedup_ttl_ms: i64,
    dedup_max_entries: u8,
    /// None: generous limits.
    limits: Option<(u16, u8, u8)>,
    start_ms: i64,
    steps: Vec<Step>,
}

fuzz_target!(|input: Input| run(input));

fn run(input: Input) {
    let opts = FlavorOptions {
        mode: if input.rack { Mode::Rack } else { Mode::Flat },
        // At most 64: the precondition `add_flavor` (ingest_py.rs) enforces.
        required: input.required.iter().take(64).map(Name::get).collect(),
        key_param: input.key_param.as_ref().map(Name::get),
        dedup_param: input.dedup_param.as_ref().map(Name::get),
        dedup_ttl_ms: input.dedup_ttl_ms,
        dedup_max_entries: input.dedup_max_entries as usize,
        ..FlavorOptions::default()
    };
    let zone = parse_tz(ZONES[input.zone as usize % ZONES.len()]).unwrap();
    let mut flavor = Flavor::new(&input.flavor_name, Stamper::new(zone), opts.clone());
    let limits = match input.limits {
        None => Limits {
            max_bytes: usize::MAX,
            max_params: usize::MAX,
            max_depth: 100,
        },
        Some((b, p, d)) => Limits {
            max_bytes: b as usize,
            max_params: p as usize,
            max_depth: d as usize,
        },
    };
    // The store evicts only when full: below that the dedup model is exact.
    let exact_dedup = input.steps.len() <= opts.dedup_max_entries.max(1);
    let mut dedup_model: HashMap<String, i64> = HashMap::new();
    let mut scratch = Vec::new();
    let mut ts = input.start_ms;
    for (n, step) in input.steps.iter().enumerate() {
        ts = ts.saturating_add(step.dt_ms as i64);
        let json_text;
        let (params, expected) = match &step.body {
            Body::Query(q) => {
                let mut encoded = Vec::new();
                let mut pairs = Vec::new();
                let r = encode_query_into(q, opts.mode, &limits, &mut encoded, |k, v| {
                    pairs.push((k.to_owned(), v.map(str::to_owned)))
                });
                (
                    Params::Query(q),
                    Expected::from(r.map(|()| (encoded, pairs))),
                )
            }
            Body::Json(b) => (Params::Json(b), json_expectation(b, &limits)),
            Body::JsonObject(members) => {
                let obj: Map<String, Value> =
                    members.iter().map(|(k, v)| (k.get(), v.value())).collect();
                json_text = serde_json::to_vec(&Value::Object(obj)).unwrap();
                (
                    Params::Json(&json_text),
                    json_expectation(&json_text, &limits),
                )
            }
        };
        let meta = Meta {
            id: None,
            ip: step.ip,
            user_agent: step.user_agent.as_deref(),
            referer: step.referer.as_deref(),
        };
        let got = build_event(3, &mut flavor, ts, params, &meta, &limits, &mut scratch);
        let (encoded, pairs) = match expected {
            Expected::Sure(e) => e,
            Expected::Refused(e) => {
                assert_eq!(got, Err(Refusal::Malformed(e)), "step {n}");
                continue;
            }
            // A JSON body over a limit: refused as malformed, whichever limit.
            Expected::Unsure => {
                if let Err(e) = &got {
                    assert!(matches!(e, Refusal::Malformed(_)), "step {n}: {e:?}");
                    continue;
                }
                unreachable!("over-limit JSON accepted: {got:?}");
            }
        };
        let value_of = |name: &str| -> Option<String> {
            pairs
                .iter()
                .filter(|(k, _)| k == name)
                .last()
                .map(|(_, v)| v.clone().unwrap_or_default())
        };
        let present = |name: &str| {
            pairs
                .iter()
                .any(|(k, v)| k == name && v.as_deref().is_some_and(|v| !v.is_empty()))
        };
        if let Some(missing) = opts.required.iter().find(|r| !present(r)) {
            assert_eq!(got, Err(Refusal::MissingParam(missing.clone())), "step {n}");
            continue;
        }
        let dedup_value = opts.dedup_param.as_deref().and_then(|d| {
            pairs
                .iter()
                .filter(|(k, v)| k == d && v.as_deref().is_some_and(|v| !v.is_empty()))
                .last()
                .and_then(|(_, v)| v.clone())
        });
        if let Some(v) = &dedup_value {
            let live = dedup_model.get(v).is_some_and(|&expires| expires > ts);
            if got == Err(Refusal::Duplicate) {
                assert!(
                    live,
                    "step {n}: duplicate of {v:?}, never seen within the TTL"
                );
                continue;
            }
            assert!(
                !(exact_dedup && live),
                "step {n}: {v:?} seen within the TTL: {got:?}"
            );
            let expires = ts.saturating_add(opts.dedup_ttl_ms);
            let slot = dedup_model.entry(v.clone()).or_insert(expires);
            *slot = (*slot).max(expires);
        }
        let ev = got.unwrap_or_else(|e| panic!("step {n}: refused {e:?}"));
        let Some(obj) = check_event_line(&ev.line, &input.flavor_name) else {
            continue; // rack output too deep for serde_json: checked structurally
        };
        let mut params_text = b"\"params\":".to_vec();
        params_text.extend_from_slice(&encoded);
        assert!(
            ev.line.windows(params_text.len()).any(|w| w == params_text),
            "params are not the encoded query/body verbatim"
        );
        let ts_text = obj["ts"].as_str().unwrap();
        let day: u32 = ts_text[..10].replace('-', "").parse().unwrap();
        assert_eq!((ev.flavor, ev.ts_ms, ev.day), (3, ts, Day(day)));
        assert_eq!(
            ev.key.as_deref().map(<[u8]>::to_vec),
            opts.key_param
                .as_deref()
                .and_then(value_of)
                .map(String::into_bytes)
        );
        assert_eq!(
            obj.get("ip").and_then(Value::as_str),
            step.ip.map(|i| i.to_string()).as_deref()
        );
        for (k, v) in [("ua", &step.user_agent), ("referer", &step.referer)] {
            let want = v.as_deref().map(String::from_utf8_lossy);
            assert_eq!(obj.get(k).and_then(Value::as_str), want.as_deref(), "{k}");
        }
    }
}

enum Expected {
    /// Accepted as far as the params go: the params JSON and the pairs reported.
    Sure((Vec<u8>, Vec<(String, Option<String>)>)),
    Refused(beacon::query::QueryError),
    Unsure,
}

impl From<Result<(Vec<u8>, Vec<(String, Option<String>)>), beacon::query::QueryError>>
    for Expected
{
    fn from(
        r: Result<(Vec<u8>, Vec<(String, Option<String>)>), beacon::query::QueryError>,
    ) -> Self {
        match r {
            Ok(x) => Expected::Sure(x),
            Err(e) => Expected::Refused(e),
        }
    }
}

/// What a JSON body should give: refused when it is not a JSON object, unsure when it is
/// one but over a limit, else the compact object and its top-level pairs.
fn json_expectation(body: &[u8], limits: &Limits) -> Expected {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Expected::Unsure;
    };
    if body.len() > limits.max_bytes
        || map.len() > limits.max_params
        || depth(&map) > limits.max_depth
    {
        return Expected::Unsure;
    }
    Expected::Sure((serde_json::to_vec(&map).unwrap(), json_pairs(&map)))
}

/// Nesting below the top-level object.
fn depth(map: &Map<String, Value>) -> usize {
    fn d(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(d).max().unwrap_or(0),
            Value::Object(o) => 1 + o.values().map(d).max().unwrap_or(0),
            _ => 0,
        }
    }
    map.values().map(d).max().unwrap_or(0)
}
