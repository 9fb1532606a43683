//! An organisation's products and discounts, as the operator needs them to resolve references
//! (`spec.products` by metadata or name, `spec.discount.presetCode`): one sweep of
//! `GET /v1/products/` and `GET /v1/discounts/` per interval per organisation, made only while
//! some link uses references. Pure data and its parsing; the sweeps are in [`super::org`].

use serde_json::Value;

/// A product, reduced to what resolution compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// Its id.
    pub id: String,
    /// Its exact name.
    pub name: String,
    /// Its metadata, every value as a string (Polar's filter compares them so).
    pub metadata: Vec<(String, String)>,
    /// `is_archived`.
    pub archived: bool,
    /// `visibility == "draft"`.
    pub draft: bool,
}

/// A discount, reduced to what resolution compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discount {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its code, if it has one.
    pub code: Option<String>,
}

/// What a catalog sweep read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Products that are neither archived nor drafts, newest first (Polar's order).
    pub products: Vec<Product>,
    /// Every discount, newest first.
    pub discounts: Vec<Discount>,
}

/// A metadata value as the string Polar's filter compares (`true`, `5`, `2.5`, `text`).
pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Product {
    /// Reads a `Product` object.
    pub fn from_json(v: &Value) -> Option<Product> {
        let metadata = v
            .get("metadata")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), as_string(v)?)))
                    .collect()
            })
            .unwrap_or_default();
        Some(Product {
            id: v.get("id")?.as_str()?.to_owned(),
            name: v.get("name")?.as_str()?.to_owned(),
            metadata,
            archived: v.get("is_archived").and_then(Value::as_bool) == Some(true),
            draft: v.get("visibility").and_then(Value::as_str) == Some("draft"),
        })
    }
}

impl Discount {
    /// Reads a `Discount` object.
    pub fn from_json(v: &Value) -> Option<Discount> {
        Some(Discount {
            id: v.get("id")?.as_str()?.to_owned(),
            name: v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            code: v.get("code").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn products_and_discounts_are_read_with_metadata_as_strings() {
        let p = Product::from_json(&json!({
            "id": "p", "name": "Pro", "is_archived": false, "visibility": "public",
            "metadata": {"sku": "pro", "n": 5, "on": true, "nested": {"x": 1}}
        }))
        .unwrap();
        assert_eq!(p.name, "Pro");
        assert!(p.metadata.contains(&("n".into(), "5".into())));
        assert!(p.metadata.contains(&("sku".into(), "pro".into())));
        assert_eq!(p.metadata.len(), 3, "objects are not values Polar stores");
        assert!(!p.archived && !p.draft);
        let d =
            Discount::from_json(&json!({"id": "d", "name": "Launch", "code": "LAUNCH20"})).unwrap();
        assert_eq!(d.code.as_deref(), Some("LAUNCH20"));
        assert!(Product::from_json(&json!({"name": "no id"})).is_none());
    }
}
