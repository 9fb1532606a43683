//! Validation error items in pydantic's shape (`type`, `loc`, `msg`, `input`,
//! optional `ctx`) and the 422 bodies FastAPI and Polar build from them.

use serde::Serialize;
use serde_json::Value;

/// One element of an error location: a field name or a list index.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Loc {
    Key(String),
    Index(usize),
}

impl From<&str> for Loc {
    fn from(s: &str) -> Self {
        Loc::Key(s.to_string())
    }
}

impl From<String> for Loc {
    fn from(s: String) -> Self {
        Loc::Key(s)
    }
}

impl From<usize> for Loc {
    fn from(i: usize) -> Self {
        Loc::Index(i)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<Loc>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl ErrorItem {
    pub fn new(kind: &str, msg: impl Into<String>, input: Value) -> Self {
        ErrorItem {
            kind: kind.to_string(),
            loc: Vec::new(),
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }

    /// Puts `prefix` in front of the location.
    pub fn under(mut self, prefix: &[Loc]) -> Self {
        let mut loc = prefix.to_vec();
        loc.append(&mut self.loc);
        self.loc = loc;
        self
    }

    pub fn at(mut self, loc: impl Into<Loc>) -> Self {
        self.loc.insert(0, loc.into());
        self
    }

    pub fn missing(input: Value) -> Self {
        ErrorItem::new("missing", "Field required", input)
    }

    /// A service-layer error (`PolarRequestValidationError`): `value_error`, no ctx.
    pub fn service(loc: Vec<Loc>, msg: &str, input: Value) -> Self {
        ErrorItem {
            kind: "value_error".into(),
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }
}

/// Which layer raised a 422, as Polar's `error` key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Request,
    Service,
}

/// Polar's 422 body: `{"error": ..., "detail": [...]}`, in that order.
#[derive(Debug, Serialize)]
pub struct ValidationBody<'a> {
    pub error: &'static str,
    pub detail: &'a [ErrorItem],
}

pub fn validation_body(layer: Layer, items: &[ErrorItem]) -> ValidationBody<'_> {
    let error = match layer {
        Layer::Request => "RequestValidationError",
        Layer::Service => "PolarRequestValidationError",
    };
    ValidationBody {
        error,
        detail: items,
    }
}

/// `loc` helper: `loc!["body", "products", 0]`.
#[macro_export]
macro_rules! loc {
    ($($part:expr),* $(,)?) => {
        vec![$($crate::errors::Loc::from($part)),*]
    };
}
