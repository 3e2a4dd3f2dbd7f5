//! `rack` mode: what Ruby's `Rack::Utils.parse_nested_query(qs)` returns, as JSON.
//!
//! Mirrors Rack 2.2.22, `lib/rack/query_parser.rb` (`parse_nested_query`, `normalize_params`,
//! `params_hash_has_key?`) with `Rack::Utils.unescape` = Ruby 3.1's
//! `URI.decode_www_form_component`, as shipped by Debian's `ruby-rack`. The query is taken as
//! binary (Rack SPEC: CGI values with non-ASCII bytes are ASCII-8BIT), decoded strings are
//! UTF-8. Quirks reproduced on purpose, because a team leaving Rails must see the same params:
//! - separators are `&` and `;`, and spaces right after a separator are dropped (`/[&;] */`);
//! - a name is `\A[\[\]]*([^\[\]]+)\]*` then the rest (`after`): leading brackets are
//!   dropped (`[a]` is `a`), `a[` keys the hash by the whole name, a name with no
//!   non-bracket character is ignored;
//! - the `after` regexes use Ruby's line anchors `^`/`$`, so a decoded newline in a name
//!   starts a new "line" they can match on;
//! - `normalize_params` returns `nil` for an ignored sub-name and `[v]` for `[]`, and that
//!   return value is stored (`a[[]]=1` gives `{"a":null}`, `a[][]=1` gives `{"a":[["1"]]}`);
//! - a Ruby regex match on a name that is not valid UTF-8 raises, so such a name fails the
//!   whole query even if it would be ignored; an invalid value fails only if it is still in
//!   the result (Rails checks the finished params).
//!
//! Not mirrored: Rack's key-space limit (65536 bytes of keys per hash) and its own byte and
//! parameter-count limits, all far above what `Limits` allows.

use super::percent::decode_into;
use super::{Limits, QueryError};
use crate::json::write_str;

/// Hard ceiling on `Limits::max_depth`: parsing, writing and dropping the tree all recurse
/// once per level, and a configured limit in the tens of thousands would overflow the stack
/// (a crash, not a 400). Rack's own limit is 100.
pub const DEPTH_CEILING: usize = 1000;

/// A Ruby value in the parsed params.
#[derive(Debug)]
enum Node {
    Null,
    /// Decoded bytes, checked for UTF-8 only when written: a value overwritten later
    /// never reaches Rails' encoding check.
    Str(Vec<u8>),
    Arr(Vec<Node>),
    Hash(Hash),
}

impl Node {
    /// Ruby's class name, for `ParameterTypeError` messages.
    fn class_name(&self) -> &'static str {
        match self {
            Node::Null => "NilClass",
            Node::Str(_) => "String",
            Node::Arr(_) => "Array",
            Node::Hash(_) => "Rack::QueryParser::Params",
        }
    }
}

/// An insertion-ordered string-keyed hash, like Ruby's `Hash`. Lookups are linear: a query
/// has at most a few hundred keys and rack mode is not the hot path.
#[derive(Debug, Default)]
struct Hash {
    entries: Vec<(String, Node)>,
}

impl Hash {
    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    fn get(&self, key: &str) -> Option<&Node> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// `h[key] = v`: replaces in place (keeping the key's position) or appends.
    fn set(&mut self, key: &str, value: Node) {
        match self.position(key) {
            Some(i) => self.entries[i].1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    /// `h[key] ||= init()`, returning the slot.
    fn or_init(&mut self, key: &str, init: fn() -> Node) -> &mut Node {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                self.entries.push((key.to_string(), Node::Null));
                self.entries.len() - 1
            }
        };
        let slot = &mut self.entries[i].1;
        if matches!(slot, Node::Null) {
            *slot = init();
        }
        slot
    }
}

/// What Ruby's `normalize_params` returns: callers store it in two places.
enum Ret {
    /// The hash it was given.
    Params,
    /// `nil`: the name had no key.
    Nil,
    /// `Array(v)`: the name was exactly `[]`.
    Array(Node),
}

/// Appends the rack JSON object for `query` to `out`; see the module docs.
pub fn encode_into<F: FnMut(&str, Option<&str>)>(
    query: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
    mut on_pair: F,
) -> Result<(), QueryError> {
    let max_depth = limits.max_depth.min(DEPTH_CEILING);
    let mut root = Hash::default();
    let mut count = 0;
    for piece in pieces(query).filter(|p| !p.is_empty()) {
        count += 1;
        if count > limits.max_params {
            return Err(QueryError::TooManyParams {
                max: limits.max_params,
            });
        }
        let (name, value) = decode_pair(piece)?;
        // Lossy: an invalid value is an error only if it survives into the result.
        on_pair(
            &name,
            value.as_deref().map(String::from_utf8_lossy).as_deref(),
        );
        let value = value.map_or(Node::Null, Node::Str);
        normalize(&mut root, &name, value, max_depth).map_err(|e| match e {
            QueryError::TooDeep { .. } => QueryError::TooDeep { max: max_depth },
            e => e,
        })?;
    }
    let start = out.len();
    write_hash(&root, out).inspect_err(|_| out.truncate(start))
}

/// Splits like Ruby's `qs.split(/[&;] */n)`. Ruby also drops trailing empty pieces and the
/// caller ignores empty ones, so yielding them is harmless.
fn pieces(query: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(query);
    std::iter::from_fn(move || {
        let q = rest?;
        match q.iter().position(|&b| b == b'&' || b == b';') {
            Some(i) => {
                let after = &q[i + 1..];
                let spaces = after.iter().take_while(|&&b| b == b' ').count();
                rest = Some(&after[spaces..]);
                Some(&q[..i])
            }
            None => {
                rest = None;
                Some(q)
            }
        }
    })
}

/// `p.split('=', 2).map! { unescape }`: both halves are unescaped (and may raise) before
/// the name is looked at; then the name must be UTF-8 because Ruby's regex match on it
/// raises otherwise.
fn decode_pair(piece: &[u8]) -> Result<(String, Option<Vec<u8>>), QueryError> {
    let (raw_name, raw_value) = match piece.iter().position(|&b| b == b'=') {
        Some(i) => (&piece[..i], Some(&piece[i + 1..])),
        None => (piece, None),
    };
    let name = unescape(raw_name)?;
    let value = raw_value.map(unescape).transpose()?;
    let name = String::from_utf8(name).map_err(|_| QueryError::InvalidUtf8)?;
    Ok((name, value))
}

/// `URI.decode_www_form_component`: raises on any `%` not followed by two hex digits.
fn unescape(raw: &[u8]) -> Result<Vec<u8>, QueryError> {
    let mut out = Vec::with_capacity(raw.len());
    if decode_into(raw, &mut out, false) {
        Ok(out)
    } else {
        Err(QueryError::BadEscape)
    }
}

fn is_bracket(b: u8) -> bool {
    b == b'[' || b == b']'
}

/// `name =~ \A[\[\]]*([^\[\]]+)\]*`: the key and the rest after it, or `None` when the
/// regex does not match (Ruby then uses `k = ''`).
fn split_name(name: &str) -> Option<(&str, &str)> {
    let b = name.as_bytes();
    let lead = b.iter().take_while(|&&c| is_bracket(c)).count();
    let len = b[lead..].iter().take_while(|&&c| !is_bracket(c)).count();
    if len == 0 {
        return None;
    }
    let rest = &name[lead + len..];
    let closing = rest.bytes().take_while(|&c| c == b']').count();
    Some((&name[lead..lead + len], &rest[closing..]))
}

/// Where Ruby's `^` can match: the start and after every newline.
fn line_starts(s: &str) -> impl Iterator<Item = &str> {
    std::iter::once(s).chain(s.match_indices('\n').map(move |(i, _)| &s[i + 1..]))
}

/// `after =~ %r(^\[\]\[([^\[\]]+)\]$)`: `$1`.
fn array_hash_child(after: &str) -> Option<&str> {
    line_starts(after).find_map(|line| {
        let r = line.strip_prefix("[][")?;
        let len = r.bytes().take_while(|&c| !is_bracket(c)).count();
        let end = r[len..].strip_prefix(']')?;
        (len > 0 && (end.is_empty() || end.starts_with('\n'))).then(|| &r[..len])
    })
}

/// `after =~ %r(^\[\](.+)$)`: `$1` (`.` stops at a newline).
fn array_rest_child(after: &str) -> Option<&str> {
    line_starts(after).find_map(|line| {
        let r = line.strip_prefix("[]")?;
        let len = r.find('\n').unwrap_or(r.len());
        (len > 0).then(|| &r[..len])
    })
}

/// Rack's `normalize_params(params, name, v, depth)`.
fn normalize(params: &mut Hash, name: &str, v: Node, depth: usize) -> Result<Ret, QueryError> {
    if depth == 0 {
        // `max` is filled in by `encode_into`, which knows the limit.
        return Err(QueryError::TooDeep { max: 0 });
    }
    let Some((k, after)) = split_name(name) else {
        let is_value = !matches!(v, Node::Null);
        return Ok(if is_value && name == "[]" {
            Ret::Array(v)
        } else {
            Ret::Nil
        });
    };
    match after {
        "" => params.set(k, v),
        "[" => params.set(name, v),
        "[]" => expect_array(params, k)?.push(v),
        _ => {
            if let Some(child) = array_hash_child(after).or_else(|| array_rest_child(after)) {
                push_into_array(expect_array(params, k)?, child, v, depth)?;
            } else {
                nest_into_hash(params, k, after, v, depth)?;
            }
        }
    }
    Ok(Ret::Params)
}

/// `params[k] ||= []` and the `ParameterTypeError` unless it is an Array.
fn expect_array<'h>(params: &'h mut Hash, k: &str) -> Result<&'h mut Vec<Node>, QueryError> {
    match params.or_init(k, || Node::Arr(Vec::new())) {
        Node::Arr(a) => Ok(a),
        other => Err(type_conflict("Array", other, k)),
    }
}

fn type_conflict(expected: &str, got: &Node, k: &str) -> QueryError {
    QueryError::TypeConflict(format!(
        "expected {expected} (got {}) for param `{k}'",
        got.class_name()
    ))
}

/// The `a[][child]` branch: fill the last hash unless it already has `child`, else push a
/// new element (whatever `normalize_params` returns for it).
fn push_into_array(
    arr: &mut Vec<Node>,
    child: &str,
    v: Node,
    depth: usize,
) -> Result<(), QueryError> {
    if let Some(Node::Hash(last)) = arr.last_mut() {
        if !hash_has_key(last, child) {
            normalize(last, child, v, depth - 1)?;
            return Ok(());
        }
    }
    let mut fresh = Hash::default();
    let element = match normalize(&mut fresh, child, v, depth - 1)? {
        Ret::Params => Node::Hash(fresh),
        Ret::Nil => Node::Null,
        Ret::Array(x) => Node::Arr(vec![x]),
    };
    arr.push(element);
    Ok(())
}

/// The `a[b]...` branch: `params[k] = normalize_params(params[k] ||= {}, after, v)`.
fn nest_into_hash(
    params: &mut Hash,
    k: &str,
    after: &str,
    v: Node,
    depth: usize,
) -> Result<(), QueryError> {
    let slot = params.or_init(k, || Node::Hash(Hash::default()));
    let Node::Hash(inner) = slot else {
        return Err(type_conflict("Hash", slot, k));
    };
    match normalize(inner, after, v, depth - 1)? {
        Ret::Params => {}
        Ret::Nil => *slot = Node::Null,
        // Unreachable: `after == "[]"` is handled by the caller; kept for fidelity.
        Ret::Array(x) => *slot = Node::Arr(vec![x]),
    }
    Ok(())
}

/// Rack's `params_hash_has_key?`: does the bracket path `key` already exist under `hash`?
fn hash_has_key(hash: &Hash, key: &str) -> bool {
    if key.contains("[]") {
        return false;
    }
    let mut h = hash;
    let mut parts = key.split(['[', ']']).filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        match h.get(part) {
            None => return false,
            Some(Node::Hash(inner)) => h = inner,
            // A non-hash is fine only as the last part.
            Some(_) => return parts.peek().is_none(),
        }
    }
    true
}

fn write_hash(h: &Hash, out: &mut Vec<u8>) -> Result<(), QueryError> {
    out.push(b'{');
    for (i, (k, v)) in h.entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_node(v, out)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_node(n: &Node, out: &mut Vec<u8>) -> Result<(), QueryError> {
    match n {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Str(b) => write_str(
            out,
            std::str::from_utf8(b).map_err(|_| QueryError::InvalidUtf8)?,
        ),
        Node::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_node(item, out)?;
            }
            out.push(b']');
        }
        Node::Hash(h) => write_hash(h, out)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits {
            max_bytes: 1 << 20,
            max_params: 10_000,
            max_depth: 100,
        }
    }

    fn parse(q: &[u8]) -> Result<String, QueryError> {
        let mut out = Vec::new();
        encode_into(q, &limits(), &mut out, |_, _| {})?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn ok(q: &str) -> String {
        parse(q.as_bytes()).unwrap()
    }

    fn conflict(q: &str) -> String {
        match parse(q.as_bytes()) {
            Err(QueryError::TypeConflict(msg)) => msg,
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn plain_pairs_and_last_value_wins() {
        assert_eq!(ok(""), "{}");
        assert_eq!(ok("a=1&b=2&a=3"), r#"{"a":"3","b":"2"}"#);
    }

    #[test]
    fn semicolons_separate_and_spaces_after_separators_vanish() {
        assert_eq!(
            ok("a=1;b=2& c=3;  d=4"),
            r#"{"a":"1","b":"2","c":"3","d":"4"}"#
        );
        assert_eq!(ok(" a=1 &b=2"), r#"{" a":"1 ","b":"2"}"#);
    }

    #[test]
    fn name_without_equals_is_null() {
        assert_eq!(ok("a&b=&c"), r#"{"a":null,"b":"","c":null}"#);
    }

    #[test]
    fn empty_names_are_ignored() {
        assert_eq!(ok("=1&&;=&[]=2&[]&a=1"), r#"{"a":"1"}"#);
    }

    #[test]
    fn plus_and_escapes_decode() {
        assert_eq!(
            ok("a+b=c+d%20%2B&%61[%62]=1"),
            r#"{"a b":"c d +","a":{"b":"1"}}"#
        );
    }

    #[test]
    fn invalid_escapes_fail() {
        for q in ["a=%", "a=%4", "%zz=1", "a=%%41", "=%g0"] {
            assert_eq!(parse(q.as_bytes()), Err(QueryError::BadEscape), "{q}");
        }
    }

    #[test]
    fn nested_hashes() {
        assert_eq!(
            ok("a[b][c]=1&a[b][d]=2&a[e]=3"),
            r#"{"a":{"b":{"c":"1","d":"2"},"e":"3"}}"#
        );
    }

    #[test]
    fn arrays() {
        assert_eq!(ok("a[]=1&a[]=2&a[]"), r#"{"a":["1","2",null]}"#);
        assert_eq!(ok("a&a[]=1"), r#"{"a":["1"]}"#);
    }

    #[test]
    fn arrays_of_hashes() {
        assert_eq!(
            ok("a[][x]=1&a[][y]=2&a[][x]=3"),
            r#"{"a":[{"x":"1","y":"2"},{"x":"3"}]}"#
        );
        assert_eq!(
            ok("a[][x][y]=1&a[][x][z]=2"),
            r#"{"a":[{"x":{"y":"1","z":"2"}}]}"#
        );
        assert_eq!(ok("a[][x][]=1&a[][x][]=2"), r#"{"a":[{"x":["1","2"]}]}"#);
    }

    #[test]
    fn weird_bracket_names() {
        assert_eq!(ok("a]=1"), r#"{"a":"1"}"#);
        assert_eq!(ok("[a]=1"), r#"{"a":"1"}"#);
        assert_eq!(ok("]]a=1"), r#"{"a":"1"}"#);
        assert_eq!(ok("a[=1"), r#"{"a[":"1"}"#);
        assert_eq!(ok("x[a[=1"), r#"{"x":{"[a[":"1"}}"#);
        assert_eq!(ok("a[b=1"), r#"{"a":{"b":"1"}}"#);
        assert_eq!(ok("a[]b=1"), r#"{"a":[{"b":"1"}]}"#);
        assert_eq!(ok("a[b]c=1"), r#"{"a":{"b":{"c":"1"}}}"#);
        assert_eq!(ok("a[[]]=1"), r#"{"a":null}"#);
        assert_eq!(ok("a[][]=1"), r#"{"a":[["1"]]}"#);
        assert_eq!(ok("a[]]=1"), r#"{"a":[null]}"#);
    }

    #[test]
    fn newlines_let_ruby_line_anchors_match_later() {
        assert_eq!(ok("d[%0A[]x]=1"), r#"{"d":[{"x":"1"}]}"#);
        assert_eq!(ok("d[%0A[][x]=1"), r#"{"d":[{"x":"1"}]}"#);
    }

    #[test]
    fn type_conflicts() {
        assert_eq!(
            conflict("a=1&a[b]=2"),
            "expected Hash (got String) for param `a'"
        );
        assert_eq!(
            conflict("a[]=1&a[b]=2"),
            "expected Hash (got Array) for param `a'"
        );
        assert_eq!(
            conflict("a[b]=1&a[]=2"),
            "expected Array (got Rack::QueryParser::Params) for param `a'"
        );
        assert_eq!(
            conflict("a=1&a[][b]=2"),
            "expected Array (got String) for param `a'"
        );
    }

    #[test]
    fn plain_key_overwrites_any_type() {
        assert_eq!(ok("a[b]=1&a=2"), r#"{"a":"2"}"#);
    }

    #[test]
    fn depth_limit_counts_normalize_calls() {
        let name = |n: usize| format!("a{}=1", "[x]".repeat(n));
        assert!(parse(name(99).as_bytes()).is_ok());
        assert_eq!(
            parse(name(100).as_bytes()),
            Err(QueryError::TooDeep { max: 100 })
        );
    }

    #[test]
    fn depth_limit_has_a_ceiling_that_keeps_the_stack_safe() {
        let q = format!("a{}=1", "[x]".repeat(200_000));
        let l = Limits {
            max_depth: usize::MAX,
            ..limits()
        };
        let err = encode_into(q.as_bytes(), &l, &mut Vec::new(), |_, _| {});
        assert_eq!(err, Err(QueryError::TooDeep { max: DEPTH_CEILING }));
        let ok = format!("a{}=1", "[x]".repeat(DEPTH_CEILING - 1));
        assert!(encode_into(ok.as_bytes(), &l, &mut Vec::new(), |_, _| {}).is_ok());
    }

    #[test]
    fn invalid_utf8_name_fails_even_if_ignored() {
        assert_eq!(parse(b"%ff=1"), Err(QueryError::InvalidUtf8));
        assert_eq!(parse(b"[\xff]"), Err(QueryError::InvalidUtf8));
    }

    #[test]
    fn invalid_utf8_value_fails_only_if_kept() {
        assert_eq!(parse(b"a=%ff"), Err(QueryError::InvalidUtf8));
        assert_eq!(ok("a=%ff&a=1"), r#"{"a":"1"}"#);
        assert_eq!(ok("=%ff"), "{}");
    }

    #[test]
    fn too_many_params() {
        let mut out = Vec::new();
        let l = Limits {
            max_params: 2,
            ..limits()
        };
        assert!(encode_into(b"a;;b&", &l, &mut out, |_, _| {}).is_ok());
        let err = encode_into(b"a;b;c", &l, &mut out, |_, _| {});
        assert_eq!(err, Err(QueryError::TooManyParams { max: 2 }));
    }

    #[test]
    fn on_pair_sees_decoded_names_and_null_values() {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        encode_into(b"a[b]=%41&c;d=%ff", &limits(), &mut out, |n, v| {
            seen.push(format!("{n}={v:?}"))
        })
        .unwrap_err();
        assert_eq!(seen, ["a[b]=Some(\"A\")", "c=None", "d=Some(\"\u{fffd}\")"]);
    }

    #[test]
    fn error_leaves_out_as_it_was() {
        let mut out = b"x".to_vec();
        assert!(encode_into(b"a=1&b=%ff", &limits(), &mut out, |_, _| {}).is_err());
        assert_eq!(out, b"x");
    }

    /// A tree of hashes with string or string-array leaves, as `serde_json` and as pairs.
    #[derive(Clone, Debug)]
    enum Tree {
        Leaf(String),
        List(Vec<String>),
        Map(Vec<(String, Tree)>),
    }

    fn tree() -> impl Strategy<Value = Tree> {
        let text = "[a-z0-9 é+&;=%\\[\\]\"]{0,4}";
        let leaf = prop_oneof![
            text.prop_map(Tree::Leaf),
            prop::collection::vec(text, 1..3).prop_map(Tree::List),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop::collection::vec(("[a-z]{1,3}", inner), 1..4).prop_map(|kids| {
                let mut seen = Vec::new();
                let kids = kids.into_iter().filter(|(k, _)| {
                    !seen.contains(k) && {
                        seen.push(k.clone());
                        true
                    }
                });
                Tree::Map(kids.collect())
            })
        })
    }

    fn escape(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    /// `path[k]...=v` pairs in depth-first order, so first appearances follow the tree.
    fn to_pairs(t: &Tree, path: &str, out: &mut Vec<String>) {
        match t {
            Tree::Leaf(v) => out.push(format!("{path}={}", escape(v))),
            Tree::List(vs) => vs
                .iter()
                .for_each(|v| out.push(format!("{path}[]={}", escape(v)))),
            Tree::Map(kids) => kids
                .iter()
                .for_each(|(k, t)| to_pairs(t, &format!("{path}[{k}]"), out)),
        }
    }

    fn to_json(t: &Tree) -> serde_json::Value {
        match t {
            Tree::Leaf(v) => v.clone().into(),
            Tree::List(vs) => vs.clone().into(),
            Tree::Map(kids) => kids.iter().map(|(k, t)| (k.clone(), to_json(t))).collect(),
        }
    }

    proptest! {
        #[test]
        fn nested_pairs_round_trip(kids in prop::collection::vec(("[a-z]{1,3}", tree()), 1..4)) {
            let mut pairs = Vec::new();
            let mut want = serde_json::Map::new();
            for (k, t) in &kids {
                if !want.contains_key(k) {
                    to_pairs(t, k, &mut pairs);
                    want.insert(k.clone(), to_json(t));
                }
            }
            let got: serde_json::Value = serde_json::from_str(&ok(&pairs.join("&"))).unwrap();
            prop_assert_eq!(got, serde_json::Value::Object(want));
        }

        #[test]
        fn any_input_gives_json_or_an_error(q in prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(b"[]=&;%+ ab09fF\n\xc3\xa9\xff".to_vec()),
                1 => any::<u8>(),
            ],
            0..48,
        )) {
            match parse(&q) {
                Ok(json) => {
                    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
                    prop_assert!(v.is_object());
                }
                Err(QueryError::TooManyParams { .. } | QueryError::TooLong { .. }) => {
                    prop_assert!(false, "limits are out of reach");
                }
                Err(_) => {}
            }
        }
    }
}
