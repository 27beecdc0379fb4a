//! The Cloud Monitoring filter language as `projects.timeSeries.list` reads it: comparisons of `metric.type`,
//! `resource.type`, `resource.labels.*` and `metric.labels.*` with `=` or `!=` against a string or one of the
//! functions `one_of`, `starts_with`, `ends_with` and `has_substring`; joined by `AND` (also implied between
//! adjacent terms) and `OR`, negated by `NOT` or `-`, grouped by parentheses. As in the API's filter grammar
//! (AIP-160), `OR` binds tighter than `AND`: `a AND b OR c` is `a AND (b OR c)`. Anything else (regular
//! expressions, `:`, `<`, unknown keys) is refused with INVALID_ARGUMENT naming the construct, never read as
//! "matches nothing".

use crate::simulator::ApiError;
use std::collections::BTreeMap;

/// A parsed filter: the one metric type it names, and the rest as an expression over series labels.
#[derive(Debug)]
pub(crate) struct Filter {
    pub(crate) metric_type: String,
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Not(Box<Expr>),
    Compare { key: String, matcher: Matcher },
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Equals(String),
    OneOf(Vec<String>),
    StartsWith(String),
    EndsWith(String),
    HasSubstring(String),
}

impl Matcher {
    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Equals(want) => value == want,
            Self::OneOf(wanted) => wanted.iter().any(|w| w == value),
            Self::StartsWith(prefix) => value.starts_with(prefix.as_str()),
            Self::EndsWith(suffix) => value.ends_with(suffix.as_str()),
            Self::HasSubstring(part) => value.contains(part.as_str()),
        }
    }
}

impl Filter {
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(invalid("Field filter had an invalid value: empty".into()));
        }
        let mut parser = Parser { tokens, at: 0 };
        let expr = parser.conjunction()?;
        if let Some(token) = parser.tokens.get(parser.at) {
            return Err(invalid(format!("unexpected {} in filter {text:?}", token.describe())));
        }
        // Exactly one metric type, as a top-level `metric.type = "…"` term.
        let terms = match &expr {
            Expr::All(terms) => terms.clone(),
            other => vec![other.clone()],
        };
        let mut metric_types = Vec::new();
        let mut rest = Vec::new();
        for term in terms {
            match term {
                Expr::Compare { key, matcher: Matcher::Equals(value) } if key == "metric.type" => {
                    metric_types.push(value)
                }
                other if other.mentions("metric.type") => {
                    return Err(invalid(
                        "metric.type must be compared with = to a single type, outside OR and NOT".into(),
                    ));
                }
                other => rest.push(other),
            }
        }
        match metric_types.as_slice() {
            [metric_type] => Ok(Self { metric_type: metric_type.clone(), expr: Expr::All(rest) }),
            [] => Err(invalid("The filter must specify metric.type".into())),
            _ => Err(invalid("The filter must specify a single metric.type".into())),
        }
    }

    /// Whether a series with these labels (`resource.type`, `resource.labels.x`, `metric.labels.x`) is selected.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.expr.matches(labels)
    }
}

impl Expr {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::All(terms) => terms.iter().all(|t| t.matches(labels)),
            Self::Any(terms) => terms.iter().any(|t| t.matches(labels)),
            Self::Not(inner) => !inner.matches(labels),
            Self::Compare { key, matcher } => labels.get(key).is_some_and(|v| matcher.matches(v)),
        }
    }

    fn mentions(&self, wanted: &str) -> bool {
        match self {
            Self::All(terms) | Self::Any(terms) => terms.iter().any(|t| t.mentions(wanted)),
            Self::Not(inner) => inner.mentions(wanted),
            Self::Compare { key, .. } => key == wanted,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Comma,
    Equals,
    NotEquals,
    Minus,
    Word(String),
    Text(String),
    /// An operator the simulator does not read (`:`, `<`, `>=`, …).
    Other(String),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Open => "'('".into(),
            Self::Close => "')'".into(),
            Self::Comma => "','".into(),
            Self::Equals => "'='".into(),
            Self::NotEquals => "'!='".into(),
            Self::Minus => "'-'".into(),
            Self::Word(w) => format!("{w:?}"),
            Self::Text(t) => format!("the string {t:?}"),
            Self::Other(o) => format!("operator {o:?}"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, ApiError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | ',' | '=' | '-' => {
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    ',' => Token::Comma,
                    '=' => Token::Equals,
                    _ => Token::Minus,
                });
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::NotEquals);
                i += 2;
            }
            '"' | '\'' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(invalid(format!("unterminated string in filter {text:?}"))),
                        Some('\\') => {
                            value.extend(chars.get(i + 1));
                            i += 2;
                        }
                        Some(q) if *q == c => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            value.push(*other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Text(value));
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' || c == '/' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '/' | '-')) {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            _ => {
                let start = i;
                while i < chars.len() && matches!(chars[i], ':' | '<' | '>' | '!' | '~' | '=') {
                    i += 1;
                }
                let operator: String = chars[start..i.max(start + 1)].iter().collect();
                i = i.max(start + 1);
                tokens.push(Token::Other(operator));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    /// Terms joined by AND, or by nothing (an implied AND).
    fn conjunction(&mut self) -> Result<Expr, ApiError> {
        let mut terms = vec![self.disjunction()?];
        loop {
            if self.is_word("AND") {
                self.at += 1;
            } else if matches!(self.peek(), None | Some(Token::Close)) {
                break;
            }
            terms.push(self.disjunction()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::All(terms) })
    }

    fn disjunction(&mut self) -> Result<Expr, ApiError> {
        let mut terms = vec![self.unary()?];
        while self.is_word("OR") {
            self.at += 1;
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Any(terms) })
    }

    fn unary(&mut self) -> Result<Expr, ApiError> {
        if self.is_word("NOT") || self.peek() == Some(&Token::Minus) {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.conjunction()?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                other => Err(invalid(format!("expected ')' in filter, found {}", describe(other.as_ref())))),
            };
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ApiError> {
        let key = match self.next() {
            Some(Token::Word(word)) if !matches!(word.as_str(), "AND" | "OR") => canonical_key(&word),
            other => return Err(invalid(format!("expected a field in filter, found {}", describe(other.as_ref())))),
        };
        let known = key == "metric.type"
            || key == "resource.type"
            || key.starts_with("resource.labels.")
            || key.starts_with("metric.labels.");
        if !known {
            return Err(invalid(format!("unsupported filter field {key:?}")));
        }
        let negated = match self.next() {
            Some(Token::Equals) => false,
            Some(Token::NotEquals) => true,
            other => {
                return Err(invalid(format!(
                    "unsupported comparison {} after {key} (the simulator reads = and !=)",
                    describe(other.as_ref())
                )));
            }
        };
        let matcher = self.value(&key)?;
        let compare = Expr::Compare { key, matcher };
        Ok(if negated { Expr::Not(Box::new(compare)) } else { compare })
    }

    fn value(&mut self, key: &str) -> Result<Matcher, ApiError> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Matcher::Equals(text)),
            Some(Token::Word(word)) if self.peek() == Some(&Token::Open) => {
                self.at += 1;
                let mut args = Vec::new();
                loop {
                    match self.next() {
                        Some(Token::Text(text)) => args.push(text),
                        other => {
                            return Err(invalid(format!(
                                "expected a string argument of {word} in filter, found {}",
                                describe(other.as_ref())
                            )));
                        }
                    }
                    match self.next() {
                        Some(Token::Comma) => continue,
                        Some(Token::Close) => break,
                        other => {
                            return Err(invalid(format!(
                                "expected ',' or ')' after an argument of {word}, found {}",
                                describe(other.as_ref())
                            )));
                        }
                    }
                }
                let single = |args: Vec<String>| -> Result<String, ApiError> {
                    match <[String; 1]>::try_from(args) {
                        Ok([one]) => Ok(one),
                        Err(_) => Err(invalid(format!("{word} takes one string"))),
                    }
                };
                Ok(match word.as_str() {
                    "one_of" => Matcher::OneOf(args),
                    "starts_with" => Matcher::StartsWith(single(args)?),
                    "ends_with" => Matcher::EndsWith(single(args)?),
                    "has_substring" => Matcher::HasSubstring(single(args)?),
                    other => {
                        return Err(invalid(format!("the filter function {other} (on {key}) is not simulated")));
                    }
                })
            }
            // An unquoted value: `resource.type = cloud_run_revision`.
            Some(Token::Word(word)) => Ok(Matcher::Equals(word)),
            other => Err(invalid(format!("expected a value for {key} in filter, found {}", describe(other.as_ref())))),
        }
    }
}

fn describe(token: Option<&Token>) -> String {
    token.map_or_else(|| "the end".to_string(), Token::describe)
}

/// `resource.label.x` and `resource.labels.x` name the same field.
pub(crate) fn canonical_key(key: &str) -> String {
    key.trim().replacen("resource.label.", "resource.labels.", 1).replacen("metric.label.", "metric.labels.", 1)
}

fn invalid(message: String) -> ApiError {
    ApiError::new(400, "INVALID_ARGUMENT", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(service: &str, class: &str) -> BTreeMap<String, String> {
        [
            ("resource.type", "cloud_run_revision"),
            ("resource.labels.service_name", service),
            ("metric.labels.response_code_class", class),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn selects(filter: &str, service: &str, class: &str) -> bool {
        Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {}", e.message)).matches(&labels(service, class))
    }

    const METRIC: &str = r#"metric.type = "run.googleapis.com/request_count""#;

    #[test]
    fn comparisons_and_functions() {
        assert!(selects(&format!(r#"{METRIC} AND resource.labels.service_name = "a""#), "a", "2xx"));
        assert!(!selects(&format!(r#"{METRIC} AND resource.label.service_name != "a""#), "a", "2xx"));
        assert!(selects(&format!(r#"{METRIC} resource.labels.service_name != "a""#), "b", "2xx"));
        assert!(selects(&format!(r#"{METRIC} AND resource.labels.service_name = one_of("a", "b")"#), "b", "2xx"));
        assert!(selects(&format!(r#"{METRIC} AND resource.labels.service_name = starts_with("ch")"#), "checkout", ""));
        assert!(selects(&format!(r#"{METRIC} AND resource.labels.service_name = ends_with("out")"#), "checkout", ""));
        assert!(selects(
            &format!(r#"{METRIC} AND resource.labels.service_name = has_substring("ecko")"#),
            "checkout",
            ""
        ));
        assert!(selects(&format!(r#"{METRIC} AND NOT metric.labels.response_code_class = "5xx""#), "a", "2xx"));
        assert!(!selects(&format!(r#"{METRIC} AND -metric.labels.response_code_class = "5xx""#), "a", "5xx"));
        assert!(selects(&format!("{METRIC} AND resource.type = cloud_run_revision"), "a", "5xx"));
    }

    #[test]
    fn or_binds_tighter_than_and() {
        let filter =
            format!(r#"{METRIC} AND resource.labels.service_name = "a" OR resource.labels.service_name = "b""#);
        assert!(selects(&filter, "a", "") && selects(&filter, "b", "") && !selects(&filter, "c", ""));
        let grouped = format!(
            r#"{METRIC} AND (resource.labels.service_name = "a" OR metric.labels.response_code_class = "5xx")"#
        );
        assert!(selects(&grouped, "a", "2xx") && selects(&grouped, "c", "5xx") && !selects(&grouped, "c", "2xx"));
    }

    #[test]
    fn what_is_not_read_is_refused_by_name() {
        for (filter, named) in [
            (
                format!(r#"{METRIC} AND resource.labels.service_name = monitoring.regex.full_match("a.*")"#),
                "monitoring.regex.full_match",
            ),
            (format!(r#"{METRIC} AND resource.labels.service_name : "a""#), "\":\""),
            (format!(r#"{METRIC} AND project = "p""#), "project"),
            (r#"resource.type = "cloud_run_revision""#.to_string(), "metric.type"),
            (format!(r#"{METRIC} OR metric.type = "x""#), "metric.type"),
            (format!(r#"{METRIC} AND (resource.labels.service_name = "a""#), "')'"),
        ] {
            let error = Filter::parse(&filter).map(|_| ()).err().map(|e| (e.status, e.code, e.message));
            assert!(
                error.as_ref().is_some_and(|(status, code, message)| *status == 400
                    && code == "INVALID_ARGUMENT"
                    && message.contains(named)),
                "{filter}: {error:?}"
            );
        }
    }
}
