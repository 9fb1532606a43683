//! An order-preserving JSON value and a parser whose errors match Python's `json`
//! module (message and character position), because FastAPI reports those in
//! `json_invalid` errors.

use serde_json::{Number, Value};

/// A parsed JSON value. Objects keep their key order; a repeated key keeps its
/// first position and its last value, as a Python dict does.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Num(Number),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    pub fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as `serde_json::Value`, for echoing inputs in error items.
    pub fn to_value(&self) -> Value {
        match self {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Num(n) => Value::Number(n.clone()),
            J::Str(s) => Value::String(s.clone()),
            J::Arr(items) => Value::Array(items.iter().map(J::to_value).collect()),
            J::Obj(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }

    pub fn from_value(v: &Value) -> J {
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => J::Num(n.clone()),
            Value::String(s) => J::Str(s.clone()),
            Value::Array(a) => J::Arr(a.iter().map(J::from_value).collect()),
            Value::Object(m) => J::Obj(
                m.iter()
                    .map(|(k, v)| (k.clone(), J::from_value(v)))
                    .collect(),
            ),
        }
    }
}

/// A decode error as Python reports it: `msg` without the position suffix, and
/// `pos` as an index in characters.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonError {
    pub msg: &'static str,
    pub pos: usize,
}

/// Nesting deeper than this fails like Python's `RecursionError` (FastAPI then
/// answers 400, not 422); see [`JsonError::too_deep`].
pub const MAX_DEPTH: usize = 500;

impl JsonError {
    /// Whether the body nested too deeply, rather than being malformed.
    pub fn too_deep(&self) -> bool {
        self.msg == TOO_DEEP
    }
}

const TOO_DEEP: &str = "maximum recursion depth exceeded";

/// Parses a decoded body like `json.loads`.
pub fn parse(text: &str) -> Result<J, JsonError> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser {
        s: &chars,
        depth: 0,
    };
    let start = p.ws(0);
    let (value, end) = p
        .value(start)
        .map_err(|e| e.into_error("Expecting value"))?;
    let end = p.ws(end);
    if end != chars.len() {
        return Err(JsonError {
            msg: "Extra data",
            pos: end,
        });
    }
    Ok(value)
}

enum Fail {
    /// Python's `StopIteration(idx)`: no value starts here.
    NoValue(usize),
    Error(JsonError),
}

impl Fail {
    fn into_error(self, msg: &'static str) -> JsonError {
        match self {
            Fail::NoValue(pos) => JsonError { msg, pos },
            Fail::Error(e) => e,
        }
    }
}

fn err(msg: &'static str, pos: usize) -> Fail {
    Fail::Error(JsonError { msg, pos })
}

struct Parser<'a> {
    s: &'a [char],
    depth: usize,
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn ws(&self, mut i: usize) -> usize {
        while matches!(self.at(i), Some(' ' | '\t' | '\n' | '\r')) {
            i += 1;
        }
        i
    }

    fn literal(&self, i: usize, word: &str) -> bool {
        word.chars()
            .enumerate()
            .all(|(k, c)| self.at(i + k) == Some(c))
    }

    fn value(&mut self, i: usize) -> Result<(J, usize), Fail> {
        match self.at(i) {
            None => Err(Fail::NoValue(i)),
            Some('"') => self.string(i + 1).map(|(s, e)| (J::Str(s), e)),
            Some('{' | '[') if self.depth >= MAX_DEPTH => Err(err(TOO_DEEP, i)),
            Some('{') => {
                self.depth += 1;
                let r = self.object(i + 1);
                self.depth -= 1;
                r
            }
            Some('[') => {
                self.depth += 1;
                let r = self.array(i + 1);
                self.depth -= 1;
                r
            }
            Some('n') if self.literal(i, "null") => Ok((J::Null, i + 4)),
            Some('t') if self.literal(i, "true") => Ok((J::Bool(true), i + 4)),
            Some('f') if self.literal(i, "false") => Ok((J::Bool(false), i + 5)),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(i),
            _ => Err(Fail::NoValue(i)),
        }
    }

    fn digits(&self, mut i: usize) -> usize {
        while matches!(self.at(i), Some('0'..='9')) {
            i += 1;
        }
        i
    }

    /// `(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?`
    fn number(&mut self, start: usize) -> Result<(J, usize), Fail> {
        let mut i = start;
        if self.at(i) == Some('-') {
            i += 1;
        }
        match self.at(i) {
            Some('0') => i += 1,
            Some('1'..='9') => i = self.digits(i),
            _ => return Err(Fail::NoValue(start)),
        }
        let mut is_float = false;
        if self.at(i) == Some('.') && matches!(self.at(i + 1), Some('0'..='9')) {
            i = self.digits(i + 1);
            is_float = true;
        }
        if matches!(self.at(i), Some('e' | 'E')) {
            let mut j = i + 1;
            if matches!(self.at(j), Some('+' | '-')) {
                j += 1;
            }
            if matches!(self.at(j), Some('0'..='9')) {
                i = self.digits(j);
                is_float = true;
            }
        }
        let text: String = self.s[start..i].iter().collect();
        let number = if is_float {
            None
        } else if let Ok(v) = text.parse::<i64>() {
            Some(Number::from(v))
        } else if let Ok(v) = text.parse::<u64>() {
            Some(Number::from(v))
        } else {
            None
        };
        let number = match number {
            Some(n) => n,
            // Python keeps big integers exact; the emulator falls back to a float.
            None => text
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .ok_or(Fail::NoValue(start))?,
        };
        Ok((J::Num(number), i))
    }

    /// Parses the rest of a string whose opening quote is at `i - 1`.
    fn string(&mut self, mut i: usize) -> Result<(String, usize), Fail> {
        let begin = i - 1;
        let mut out = String::new();
        loop {
            let c = self
                .at(i)
                .ok_or(err("Unterminated string starting at", begin))?;
            match c {
                '"' => return Ok((out, i + 1)),
                '\\' => {
                    let esc = self
                        .at(i + 1)
                        .ok_or(err("Unterminated string starting at", begin))?;
                    let simple = match esc {
                        '"' => Some('"'),
                        '\\' => Some('\\'),
                        '/' => Some('/'),
                        'b' => Some('\u{8}'),
                        'f' => Some('\u{c}'),
                        'n' => Some('\n'),
                        'r' => Some('\r'),
                        't' => Some('\t'),
                        'u' => None,
                        _ => return Err(err("Invalid \\escape", i)),
                    };
                    if let Some(ch) = simple {
                        out.push(ch);
                        i += 2;
                        continue;
                    }
                    let (unit, next) = self
                        .hex4(i + 2)
                        .ok_or(err("Invalid \\uXXXX escape", i + 1))?;
                    i = next;
                    if (0xD800..0xDC00).contains(&unit)
                        && self.at(i) == Some('\\')
                        && self.at(i + 1) == Some('u')
                        && let Some((low, after)) = self.hex4(i + 2)
                        && (0xDC00..0xE000).contains(&low)
                    {
                        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        i = after;
                        continue;
                    }
                    // A lone surrogate is legal in Python but not in Rust.
                    out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                }
                c if (c as u32) < 0x20 => return Err(err("Invalid control character at", i)),
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
    }

    fn hex4(&self, i: usize) -> Option<(u32, usize)> {
        let mut v = 0u32;
        for k in 0..4 {
            v = v * 16 + self.at(i + k)?.to_digit(16)?;
        }
        Some((v, i + 4))
    }

    fn object(&mut self, i: usize) -> Result<(J, usize), Fail> {
        let mut pairs: Vec<(String, J)> = Vec::new();
        let mut end = self.ws(i);
        match self.at(end) {
            Some('}') => return Ok((J::Obj(pairs), end + 1)),
            Some('"') => {}
            _ => {
                return Err(err(
                    "Expecting property name enclosed in double quotes",
                    end,
                ));
            }
        }
        end += 1;
        loop {
            let (key, after_key) = self.string(end)?;
            end = self.ws(after_key);
            if self.at(end) != Some(':') {
                return Err(err("Expecting ':' delimiter", end));
            }
            end = self.ws(end + 1);
            let (value, after_value) = self
                .value(end)
                .map_err(|e| Fail::Error(e.into_error("Expecting value")))?;
            match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => pairs.push((key, value)),
            }
            end = self.ws(after_value);
            match self.at(end) {
                Some('}') => return Ok((J::Obj(pairs), end + 1)),
                Some(',') => {}
                _ => return Err(err("Expecting ',' delimiter", end)),
            }
            let comma = end;
            end = self.ws(end + 1);
            match self.at(end) {
                Some('"') => end += 1,
                Some('}') => return Err(err("Illegal trailing comma before end of object", comma)),
                _ => {
                    return Err(err(
                        "Expecting property name enclosed in double quotes",
                        end,
                    ));
                }
            }
        }
    }

    fn array(&mut self, i: usize) -> Result<(J, usize), Fail> {
        let mut items = Vec::new();
        let mut end = self.ws(i);
        if self.at(end) == Some(']') {
            return Ok((J::Arr(items), end + 1));
        }
        loop {
            let (value, after) = self
                .value(end)
                .map_err(|e| Fail::Error(e.into_error("Expecting value")))?;
            items.push(value);
            end = self.ws(after);
            match self.at(end) {
                Some(']') => return Ok((J::Arr(items), end + 1)),
                Some(',') => {}
                _ => return Err(err("Expecting ',' delimiter", end)),
            }
            let comma = end;
            end = self.ws(end + 1);
            if self.at(end) == Some(']') {
                return Err(err("Illegal trailing comma before end of array", comma));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(s: &str) -> (&'static str, usize) {
        let e = parse(s).unwrap_err();
        (e.msg, e.pos)
    }

    #[test]
    fn errors_match_pythons_json_module() {
        assert_eq!(fails(""), ("Expecting value", 0));
        assert_eq!(
            fails("{"),
            ("Expecting property name enclosed in double quotes", 1)
        );
        assert_eq!(fails("{\"a\" 1}"), ("Expecting ':' delimiter", 5));
        assert_eq!(fails("{\"a\": }"), ("Expecting value", 6));
        assert_eq!(fails("{\"a\": 1 \"b\"}"), ("Expecting ',' delimiter", 8));
        assert_eq!(
            fails("{\"a\": 1,}"),
            ("Illegal trailing comma before end of object", 7)
        );
        assert_eq!(
            fails("[1,]"),
            ("Illegal trailing comma before end of array", 2)
        );
        assert_eq!(fails("{} x"), ("Extra data", 3));
        assert_eq!(fails("\"abc"), ("Unterminated string starting at", 0));
        assert_eq!(fails("01"), ("Extra data", 1));
        assert_eq!(
            fails("{'a': 1}"),
            ("Expecting property name enclosed in double quotes", 1)
        );
        assert_eq!(
            fails("{\"a\":1 , }"),
            ("Illegal trailing comma before end of object", 7)
        );
        assert_eq!(
            fails("[1, ]"),
            ("Illegal trailing comma before end of array", 2)
        );
        assert_eq!(fails("\"a\\x\""), ("Invalid \\escape", 2));
        assert_eq!(fails("\"a\\u12\""), ("Invalid \\uXXXX escape", 3));
        assert_eq!(fails("\"a\nb\""), ("Invalid control character at", 2));
        assert_eq!(fails("[1 2]"), ("Expecting ',' delimiter", 3));
        assert_eq!(fails("-"), ("Expecting value", 0));
        assert_eq!(fails("1."), ("Extra data", 1));
        assert_eq!(fails("1e"), ("Extra data", 1));
        assert_eq!(fails("  "), ("Expecting value", 2));
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        let deep = "[".repeat(100_000);
        assert!(parse(&deep).unwrap_err().too_deep());
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn objects_keep_first_position_and_last_value() {
        let v = parse(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        assert_eq!(
            v,
            J::Obj(vec![
                ("b".into(), J::Num(3.into())),
                ("a".into(), J::Num(2.into()))
            ])
        );
    }

    #[test]
    fn escapes_and_surrogate_pairs_decode() {
        let v = parse(r#""a\u0000b\ud83d\ude00\n""#).unwrap();
        assert_eq!(v, J::Str("a\u{0}b😀\n".into()));
    }
}
