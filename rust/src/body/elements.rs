//! A batch body (README "The batch endpoint"): a JSON array of events, or NDJSON (one
//! JSON value per line, blank lines ignored). Each element is parsed by serde_json and
//! handed to a callback in order, so one parsed element is held at a time; the element
//! count is capped as the body is read.

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// How a batch body is framed, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: one JSON array.
    Array,
    /// `application/x-ndjson`: one JSON value per line.
    Lines,
    /// `text/plain` or no Content-Type (what `navigator.sendBeacon` sends for a string):
    /// an array when the body starts with `[`, else lines.
    Sniff,
}

impl Format {
    /// None: a Content-Type a batch cannot have (415).
    pub fn of(content_type: Option<&[u8]>) -> Option<Format> {
        let Some(ct) = content_type else {
            return Some(Format::Sniff);
        };
        let mime = ct.split(|&b| b == b';').next().unwrap_or_default();
        let mime = mime.trim_ascii();
        let is = |name: &[u8]| mime.eq_ignore_ascii_case(name);
        if is(b"application/json") {
            Some(Format::Array)
        } else if is(b"application/x-ndjson") {
            Some(Format::Lines)
        } else if is(b"text/plain") {
            Some(Format::Sniff)
        } else {
            None
        }
    }
}

/// Why a batch body is refused as a whole.
#[derive(Debug, PartialEq, Eq)]
pub enum ElementsError<E> {
    /// Not JSON where element `index` should be (None: around the elements, e.g. bytes
    /// after the array, or an empty body).
    InvalidJson { index: Option<usize> },
    /// A body framed as an array that is something else.
    NotAnArray,
    /// More than `max` elements.
    TooMany { max: usize },
    /// The callback refused element `index`.
    Refused { index: usize, why: E },
}

/// Hands every element of `body` to `each`, in order; stops at the first error. At most
/// `max` elements: the one after them is refused without being handed on.
pub fn for_each<E>(
    body: &[u8],
    format: Format,
    max: usize,
    mut each: impl FnMut(Value) -> Result<(), E>,
) -> Result<usize, ElementsError<E>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let array = match format {
        Format::Array => true,
        Format::Lines => false,
        Format::Sniff => first == Some(&b'['),
    };
    if !array {
        return lines(body, max, each);
    }
    match first {
        None => return Err(ElementsError::InvalidJson { index: None }),
        Some(b'[') => {}
        Some(_) => return Err(ElementsError::NotAnArray),
    }
    let mut seq = Elements {
        each: &mut each,
        count: 0,
        max,
        closed: false,
        stop: None,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    match de.deserialize_seq(&mut seq).and_then(|()| de.end()) {
        Ok(()) => Ok(seq.count),
        Err(_) => Err(match seq.stop.take() {
            Some(why) => why,
            // Bytes after the array's `]`.
            None if seq.closed => ElementsError::InvalidJson { index: None },
            // A syntax error inside the array: where the next element should be.
            None => ElementsError::InvalidJson {
                index: Some(seq.count),
            },
        }),
    }
}

/// NDJSON: each non-blank line is one element (a `\r` before the `\n` is whitespace).
fn lines<E>(
    body: &[u8],
    max: usize,
    mut each: impl FnMut(Value) -> Result<(), E>,
) -> Result<usize, ElementsError<E>> {
    let mut count = 0;
    for line in body.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if count == max {
            return Err(ElementsError::TooMany { max });
        }
        let index = count;
        count += 1;
        let value = serde_json::from_slice(line)
            .map_err(|_| ElementsError::InvalidJson { index: Some(index) })?;
        each(value).map_err(|why| ElementsError::Refused { index, why })?;
    }
    Ok(count)
}

/// The array's visitor: counts elements and keeps why it stopped (serde_json's own error
/// cannot carry it).
struct Elements<'f, F, E> {
    each: &'f mut F,
    count: usize,
    max: usize,
    /// The array's `]` was read.
    closed: bool,
    stop: Option<ElementsError<E>>,
}

impl<'de, F, E> Visitor<'de> for &mut Elements<'_, F, E>
where
    F: FnMut(Value) -> Result<(), E>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            if self.count == self.max {
                // One more element, whatever it is, is one too many: refused unread.
                let mut follows = false;
                return match seq.next_element_seed(Unread(&mut follows)) {
                    Ok(None) => self.close(),
                    Err(_) if follows => self.fail(ElementsError::TooMany { max: self.max }),
                    Err(e) => Err(e),
                    Ok(Some(())) => unreachable!("an unread element is never read"),
                };
            }
            let Some(value) = seq.next_element::<Value>()? else {
                return self.close();
            };
            let index = self.count;
            self.count += 1;
            if let Err(why) = (self.each)(value) {
                return self.fail(ElementsError::Refused { index, why });
            }
        }
    }
}

impl<F, E> Elements<'_, F, E> {
    fn close<T>(&mut self) -> Result<(), T> {
        self.closed = true;
        Ok(())
    }

    fn fail<T: de::Error>(&mut self, why: ElementsError<E>) -> Result<(), T> {
        self.stop = Some(why);
        Err(T::custom("batch refused"))
    }
}

/// An element that is refused without being read; notes that there was one.
struct Unread<'a>(&'a mut bool);

impl<'de> DeserializeSeed<'de> for Unread<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        *self.0 = true;
        Err(de::Error::custom("one element too many"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The elements of `body` as compact JSON, or the error (a callback refusing objects
    /// with `"bad"`).
    fn read(body: &[u8], format: Format, max: usize) -> Result<Vec<String>, ElementsError<()>> {
        let mut got = Vec::new();
        let n = for_each(body, format, max, |v| {
            if v.get("bad").is_some() {
                return Err(());
            }
            got.push(v.to_string());
            Ok(())
        })?;
        assert_eq!(n, got.len());
        Ok(got)
    }

    fn invalid(index: Option<usize>) -> Result<Vec<String>, ElementsError<()>> {
        Err(ElementsError::InvalidJson { index })
    }

    #[test]
    fn formats_by_content_type() {
        let of = |ct: &[u8]| Format::of(Some(ct));
        assert_eq!(of(b"application/json"), Some(Format::Array));
        assert_eq!(of(b"Application/JSON; charset=utf-8"), Some(Format::Array));
        assert_eq!(of(b"application/x-ndjson"), Some(Format::Lines));
        assert_eq!(of(b"text/plain;charset=UTF-8"), Some(Format::Sniff));
        assert_eq!(Format::of(None), Some(Format::Sniff));
        assert_eq!(of(b"application/x-www-form-urlencoded"), None);
        assert_eq!(of(b"multipart/form-data; boundary=x"), None);
    }

    #[test]
    fn an_array_and_lines_give_the_same_elements_in_order() {
        let want = vec![r#"{"n":1}"#, r#"{"n":2,"x":[true]}"#, "3"];
        let array = b" [ {\"n\":1}, {\"n\": 2, \"x\": [true]} ,3 ]\n";
        assert_eq!(read(array, Format::Array, 10).unwrap(), want);
        let lines = b"{\"n\":1}\r\n\n  \n{\"n\": 2, \"x\": [true]}\n3";
        assert_eq!(read(lines, Format::Lines, 10).unwrap(), want);
        assert_eq!(read(array, Format::Sniff, 10).unwrap(), want);
        assert_eq!(read(lines, Format::Sniff, 10).unwrap(), want);
        assert_eq!(
            read(b"[]", Format::Array, 10).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            read(b"\n\n", Format::Lines, 10).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn bad_json_names_the_element_where_it_is() {
        assert_eq!(
            read(b"[{}, {\"a\": }]", Format::Array, 10),
            invalid(Some(1))
        );
        assert_eq!(read(b"[{},{} x]", Format::Array, 10), invalid(Some(2)));
        assert_eq!(read(b"[{},]", Format::Array, 10), invalid(Some(1)));
        assert_eq!(read(b"[{}", Format::Array, 10), invalid(Some(1)));
        assert_eq!(
            read(b"{}\n{\"a\":\n{}", Format::Lines, 10),
            invalid(Some(1))
        );
        assert_eq!(read(b"{} {}", Format::Lines, 10), invalid(Some(0)));
        // Around the elements: no index.
        assert_eq!(read(b"[{}] x", Format::Array, 10), invalid(None));
        assert_eq!(read(b"  ", Format::Array, 10), invalid(None));
        let r = read(b"{\"a\":1}", Format::Array, 10);
        assert_eq!(r, Err(ElementsError::NotAnArray));
    }

    #[test]
    fn one_element_past_the_limit_is_too_many() {
        let too_many = Err(ElementsError::TooMany { max: 2 });
        assert_eq!(read(b"[{},{}]", Format::Array, 2).unwrap().len(), 2);
        assert_eq!(read(b"[{},{},{}]", Format::Array, 2), too_many);
        // Even a broken one: the count is what is refused.
        assert_eq!(read(b"[{},{},{", Format::Array, 2), too_many);
        assert_eq!(read(b"{}\n{}\n", Format::Lines, 2).unwrap().len(), 2);
        assert_eq!(read(b"{}\n{}\n\n{}", Format::Lines, 2), too_many);
    }

    #[test]
    fn a_refused_element_stops_the_reading() {
        let refused = Err(ElementsError::Refused { index: 1, why: () });
        let array = b"[{}, {\"bad\":1}, {}, nonsense";
        assert_eq!(read(array, Format::Array, 10), refused);
        assert_eq!(read(b"{}\n{\"bad\":1}\n{", Format::Lines, 10), refused);
    }
}
