//! The request-target (RFC 9112 §3.2): origin-form `/path?query`, or absolute-form
//! `http://authority/path?query`, which clients send to proxies and a server must accept
//! (§3.2.2). For absolute-form the host comes from the authority and the Host header is
//! ignored.

/// A target split into the parts beacon routes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub path: &'a [u8],
    pub query: &'a [u8],
    /// The authority of an absolute-form target (`host[:port]`, userinfo removed).
    pub authority: Option<&'a [u8]>,
}

pub fn split(target: &[u8]) -> Target<'_> {
    let (authority, rest) = match strip_scheme(target) {
        Some(after) => {
            let end = after
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(after.len());
            let auth = &after[..end];
            // `user:pass@host`: the host is after the last '@'.
            let host = match auth.iter().rposition(|&b| b == b'@') {
                Some(i) => &auth[i + 1..],
                None => auth,
            };
            (Some(host), &after[end..])
        }
        None => (None, target),
    };
    let (path, query) = match rest.iter().position(|&b| b == b'?') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    // An absolute-form target with an empty path means "/" (RFC 9112 §3.2.2).
    let path = if path.is_empty() && authority.is_some() {
        &b"/"[..]
    } else {
        path
    };
    Target {
        path,
        query,
        authority,
    }
}

/// The rest of `target` after `http://` or `https://` (scheme case-insensitive).
fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&target[scheme.len()..]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(path: &'a [u8], query: &'a [u8], authority: Option<&'a [u8]>) -> Target<'a> {
        Target {
            path,
            query,
            authority,
        }
    }

    #[test]
    fn origin_form() {
        assert_eq!(split(b"/track?a=1"), t(b"/track", b"a=1", None));
        assert_eq!(split(b"/track"), t(b"/track", b"", None));
        assert_eq!(split(b"/track?"), t(b"/track", b"", None));
        assert_eq!(split(b"/t?a=1?b"), t(b"/t", b"a=1?b", None));
    }

    #[test]
    fn absolute_form_takes_host_from_the_authority() {
        let got = split(b"http://t.example/track?x=1");
        assert_eq!(got, t(b"/track", b"x=1", Some(b"t.example")));
        let got = split(b"HTTPS://u:p@t.example:8443/track");
        assert_eq!(got, t(b"/track", b"", Some(b"t.example:8443")));
        assert_eq!(split(b"http://t.example"), t(b"/", b"", Some(b"t.example")));
        assert_eq!(
            split(b"http://t.example?x=1"),
            t(b"/", b"x=1", Some(b"t.example"))
        );
    }

    #[test]
    fn other_schemes_are_paths() {
        assert_eq!(split(b"ftp://x/track").authority, None);
        assert_eq!(split(b"*").path, b"*");
    }
}
