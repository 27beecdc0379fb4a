//! Minimal HTTP plumbing shared by the API handlers: a parsed request, a response, and percent-decoding.

use bytes::Bytes;

/// A request as the handlers see it.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path segments, percent-decoded.
    pub(crate) segments: Vec<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl Request {
    pub(crate) fn new(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Self {
        Self {
            method: method.to_string(),
            segments: path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect(),
            query: query.map(parse_query).unwrap_or_default(),
            headers,
            body,
        }
    }

    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn query_all(&self, name: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether a Google API client asked for enums as numbers (`$alt=json;enum-encoding=int`, as
    /// google-cloud-rust and the Python GAPIC REST clients do); otherwise enums travel as their names.
    pub(crate) fn enums_as_numbers(&self) -> bool {
        self.query("$alt").is_some_and(|alt| alt.split(';').any(|p| p.trim() == "enum-encoding=int"))
    }

    pub(crate) fn path(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

/// A response: status, headers and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
    /// Real milliseconds to hold the answer back (an injected stall).
    pub(crate) stall_ms: u64,
    /// Nothing to answer yet: the server asks again shortly, holding the request open (a long poll).
    pub(crate) long_poll: bool,
}

impl Response {
    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Self { status, headers: vec![("content-type", "application/json".into())], body, stall_ms: 0, long_poll: false }
    }

    pub(crate) fn empty(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new(), stall_ms: 0, long_poll: false }
    }
}

/// Parses `a=1&b=2` (a query string or a form body), percent-decoding names and values.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // Form encoding: `+` is a space (google-cloud-rust sends filters this way).
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

/// A Google API enum value: its number when the client asked for numbers, else its name.
pub(crate) fn google_enum(numbers: bool, number: i64, name: &str) -> serde_json::Value {
    if numbers { serde_json::Value::from(number) } else { serde_json::Value::from(name) }
}

/// Decodes `%XX` escapes.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && text.is_char_boundary(i + 3)
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes() {
        assert_eq!(percent_decode("arn%3Aaws%3Alambda"), "arn:aws:lambda");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
