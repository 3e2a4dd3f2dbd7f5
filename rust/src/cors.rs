//! A flavor's CORS policy (the Fetch standard's CORS protocol): which `Origin`s may read
//! beacon's answers. The allowed origin is echoed rather than answered with `*`, because
//! sendBeacon and `fetch(..., {credentials: "include"})` send credentials and browsers
//! refuse `*` with credentials.

/// Allowed origins, as configured: exact `scheme://host[:port]` strings, or `*` for any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origins {
    any: bool,
    exact: Vec<Box<[u8]>>,
}

impl Origins {
    pub fn new<S: AsRef<str>>(allowed: &[S]) -> Origins {
        let any = allowed.iter().any(|o| o.as_ref() == "*");
        let exact = allowed
            .iter()
            .filter(|o| o.as_ref() != "*")
            .map(|o| o.as_ref().as_bytes().into())
            .collect();
        Origins { any, exact }
    }

    /// Whether an answer to a request from `origin` carries the CORS headers. Origins
    /// are compared exactly, as browsers serialise them (RFC 6454 §6.2).
    pub fn allows(&self, origin: &[u8]) -> bool {
        self.any || self.exact.iter().any(|o| **o == *origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origins_and_the_wildcard() {
        let o = Origins::new(&["https://shop.example"]);
        assert!(o.allows(b"https://shop.example"));
        assert!(!o.allows(b"https://shop.example:443"));
        assert!(!o.allows(b"http://shop.example"));
        assert!(Origins::new(&["*"]).allows(b"null"));
        assert!(!Origins::new::<&str>(&[]).allows(b"https://a.example"));
    }
}
