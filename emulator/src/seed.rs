//! The seed file: organisations, tokens, products and discounts (YAML).

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Everything the emulator starts with. Build one with [`Seed::from_yaml`],
/// [`Seed::demo`], or by hand (the fields are public).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub organizations: Vec<SeedOrganization>,
    #[serde(default)]
    pub tokens: Vec<SeedToken>,
    #[serde(default)]
    pub products: Vec<SeedProduct>,
    #[serde(default)]
    pub discounts: Vec<SeedDiscount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOrganization {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// An access token. The kind comes from the prefix: `polar_oat_` (bound to
/// `organization`) or `polar_pat_` (bound to `user`, who belongs to `organizations`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedToken {
    pub token: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub organization: Option<Uuid>,
    #[serde(default)]
    pub user: Option<Uuid>,
    #[serde(default)]
    pub organizations: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProduct {
    pub id: Uuid,
    pub organization: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `public` (default), `private` or `draft`.
    #[serde(default = "public")]
    pub visibility: String,
    #[serde(default)]
    pub is_archived: bool,
    /// `day`, `week`, `month`, `year`, or absent for a one-time product.
    #[serde(default)]
    pub recurring_interval: Option<String>,
    pub prices: Vec<SeedPrice>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Overrides `is_deletable` (by default: false while a discount is
    /// restricted to the product).
    #[serde(default)]
    pub is_deletable: Option<bool>,
}

impl Default for SeedProduct {
    fn default() -> Self {
        SeedProduct {
            id: Uuid::nil(),
            organization: Uuid::nil(),
            name: String::new(),
            description: None,
            visibility: public(),
            is_archived: false,
            recurring_interval: None,
            prices: Vec::new(),
            metadata: Map::new(),
            created_at: None,
            is_deletable: None,
        }
    }
}

fn public() -> String {
    "public".into()
}

fn usd() -> String {
    "usd".into()
}

/// A price. `type` is `fixed`, `custom`, `free`, `seat_based`, `metered_unit`
/// or `unit_based` (`unit` is an older name for it); the other fields apply to
/// the type that names them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPrice {
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "usd")]
    pub currency: String,
    /// `fixed`: price in cents; `unit_based`: price per unit in cents.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub minimum_amount: Option<i64>,
    #[serde(default)]
    pub maximum_amount: Option<i64>,
    #[serde(default)]
    pub preset_amount: Option<i64>,
    /// `seat_based`: `volume` (default) or `graduated`.
    #[serde(default)]
    pub seat_tier_type: Option<String>,
    #[serde(default)]
    pub tiers: Vec<SeedSeatTier>,
    /// `metered_unit` and `unit_based`: decimal string, cents per unit.
    #[serde(default)]
    pub unit_amount: Option<String>,
    #[serde(default)]
    pub cap_amount: Option<i64>,
    #[serde(default)]
    pub meter_id: Option<Uuid>,
    #[serde(default)]
    pub meter_name: Option<String>,
    /// `unit_based`: the purchasable range of units.
    #[serde(default)]
    pub minimum_units: Option<i64>,
    #[serde(default)]
    pub maximum_units: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSeatTier {
    pub min_seats: i64,
    #[serde(default)]
    pub max_seats: Option<i64>,
    pub price_per_seat: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedDiscount {
    pub id: Uuid,
    pub organization: Uuid,
    pub name: String,
    #[serde(default)]
    pub code: Option<String>,
    /// `percentage` (with `basis_points`) or `fixed` (with `amounts`).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub basis_points: Option<i64>,
    #[serde(default)]
    pub amounts: BTreeMap<String, i64>,
    /// `once`, `forever` or `repeating` (with `duration_in_months`).
    pub duration: String,
    #[serde(default)]
    pub duration_in_months: Option<i64>,
    /// Restricts the discount to these products; empty means every product.
    #[serde(default)]
    pub products: Vec<Uuid>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Redeemable from this instant on (none: already).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Redeemable until this instant (none: forever).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// How many times it can be redeemed (none: unlimited).
    #[serde(default)]
    pub max_redemptions: Option<i64>,
    /// Redemptions so far.
    #[serde(default)]
    pub redemptions_count: i64,
}

const DEMO_SEED: &str = include_str!("../../examples/emulator-seed.yaml");

impl Seed {
    /// The seed `make demo` uses: `examples/emulator-seed.yaml`.
    pub fn demo() -> Seed {
        Seed::from_yaml(DEMO_SEED).expect("examples/emulator-seed.yaml is a valid seed")
    }

    pub fn from_yaml(s: &str) -> anyhow::Result<Seed> {
        let seed: Seed = serde_yaml::from_str(s).context("parse seed YAML")?;
        seed.validate()?;
        Ok(seed)
    }

    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Seed> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read seed file {}", path.display()))?;
        Seed::from_yaml(&text).with_context(|| format!("load seed file {}", path.display()))
    }

    /// Checks references, id versions and the rules each kind of entry follows.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut ids = HashSet::new();
        let mut unique = |id: Uuid, what: &str| -> anyhow::Result<()> {
            ensure!(
                id.get_version_num() == 4,
                "{what} id {id} is not a UUID version 4"
            );
            ensure!(ids.insert(id), "duplicate id {id} ({what})");
            Ok(())
        };
        let orgs: HashSet<Uuid> = self.organizations.iter().map(|o| o.id).collect();
        for o in &self.organizations {
            unique(o.id, "organization")?;
        }
        for p in &self.products {
            unique(p.id, "product")?;
            validate_product(p, &orgs)?;
            for price in &p.prices {
                if let Some(id) = price.id {
                    unique(id, "price")?;
                }
            }
        }
        let products: BTreeMap<Uuid, Uuid> = self
            .products
            .iter()
            .map(|p| (p.id, p.organization))
            .collect();
        for d in &self.discounts {
            unique(d.id, "discount")?;
            ensure!(
                orgs.contains(&d.organization),
                "discount {} names unknown organization",
                d.id
            );
            match d.kind.as_str() {
                "percentage" => ensure!(
                    d.basis_points.is_some(),
                    "discount {} needs basis_points",
                    d.id
                ),
                "fixed" => ensure!(!d.amounts.is_empty(), "discount {} needs amounts", d.id),
                _ => bail!("discount {}: type must be percentage or fixed", d.id),
            }
            match d.duration.as_str() {
                "once" | "forever" => {}
                "repeating" => ensure!(
                    d.duration_in_months.is_some(),
                    "discount {} needs duration_in_months",
                    d.id
                ),
                _ => bail!(
                    "discount {}: duration must be once, forever or repeating",
                    d.id
                ),
            }
            ensure!(
                d.max_redemptions.is_none_or(|m| m >= 1) && d.redemptions_count >= 0,
                "discount {}: max_redemptions must be at least 1 and redemptions_count not negative",
                d.id
            );
            for p in &d.products {
                ensure!(
                    products.get(p) == Some(&d.organization),
                    "discount {} names product {p} of another or no organization",
                    d.id
                );
            }
        }
        let mut tokens = HashSet::new();
        for t in &self.tokens {
            ensure!(tokens.insert(&t.token), "duplicate token");
            if t.token.starts_with("polar_oat_") {
                let org = t
                    .organization
                    .context("a polar_oat_ token needs `organization`")?;
                ensure!(
                    orgs.contains(&org),
                    "token names unknown organization {org}"
                );
            } else if t.token.starts_with("polar_pat_") {
                ensure!(t.user.is_some(), "a polar_pat_ token needs `user`");
                for org in &t.organizations {
                    ensure!(orgs.contains(org), "token names unknown organization {org}");
                }
            } else {
                bail!("token prefix must be polar_oat_ or polar_pat_");
            }
        }
        Ok(())
    }
}

/// One product's own rules (ids are checked for uniqueness by the caller).
pub fn validate_product(p: &SeedProduct, orgs: &HashSet<Uuid>) -> anyhow::Result<()> {
    ensure!(
        p.id.get_version_num() == 4,
        "product id {} is not a UUID version 4",
        p.id
    );
    ensure!(
        orgs.contains(&p.organization),
        "product {} names unknown organization {}",
        p.id,
        p.organization
    );
    ensure!(
        matches!(p.visibility.as_str(), "public" | "private" | "draft"),
        "product {}: visibility must be public, private or draft",
        p.id
    );
    if let Some(i) = &p.recurring_interval {
        ensure!(
            matches!(i.as_str(), "day" | "week" | "month" | "year"),
            "product {}: recurring_interval must be day, week, month or year",
            p.id
        );
    }
    ensure!(
        !p.prices.is_empty(),
        "product {} needs at least one price",
        p.id
    );
    for (key, value) in &p.metadata {
        ensure!(
            matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)),
            "product {}: metadata {key:?} must be a string, a number or a boolean",
            p.id
        );
    }
    for price in &p.prices {
        if let Some(id) = price.id {
            ensure!(
                id.get_version_num() == 4,
                "price id {id} is not a UUID version 4"
            );
        }
        validate_price(p.id, price)?;
    }
    Ok(())
}

fn validate_price(product: Uuid, p: &SeedPrice) -> anyhow::Result<()> {
    match p.kind.as_str() {
        "fixed" => ensure!(
            p.amount.is_some(),
            "product {product}: a fixed price needs `amount`"
        ),
        "custom" | "free" => {}
        "seat_based" => {
            ensure!(
                !p.tiers.is_empty(),
                "product {product}: a seat_based price needs `tiers`"
            );
            if let Some(t) = &p.seat_tier_type {
                ensure!(
                    matches!(t.as_str(), "volume" | "graduated"),
                    "product {product}: seat_tier_type must be volume or graduated"
                );
            }
        }
        "metered_unit" => ensure!(
            p.unit_amount.is_some(),
            "product {product}: a metered_unit price needs `unit_amount`"
        ),
        "unit_based" | "unit" => {
            ensure!(
                p.amount.is_some() != p.unit_amount.is_some(),
                "product {product}: a unit_based price needs `amount` or `unit_amount` (one of them)"
            );
            if let Some(a) = &p.unit_amount {
                ensure!(
                    a.parse::<f64>().is_ok_and(|a| a.is_finite() && a >= 0.0),
                    "product {product}: `unit_amount` must be a decimal string"
                );
            }
        }
        other => bail!("product {product}: unknown price type {other:?}"),
    }
    Ok(())
}
