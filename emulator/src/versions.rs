//! Polar's API versions (`Polar-Version: YYYY-MM`): the supported set, the
//! default for requests without the header, and what differs between them.

use anyhow::{bail, ensure};
use serde::{Deserialize, Serialize};

/// The versions Polar serves (REFERENCE.md §1): 2026-04 (oldest), 2026-10
/// (current) and 2027-01 (next).
pub const SUPPORTED_API_VERSIONS: &[&str] = &["2026-04", "2026-10", "2027-01"];

/// The version of a request without a `Polar-Version` header.
pub const DEFAULT_API_VERSION: &str = "2026-10";

/// From this version on, seat-based prices carry `tiers` / `minimum_units` /
/// `maximum_units` instead of `seat_tiers`.
pub const TIERED_SEATS_SINCE: &str = "2027-01";

/// The versions an emulator accepts, and the one it uses when a request has
/// no `Polar-Version` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiVersions {
    pub versions: Vec<String>,
    pub default: String,
}

impl Default for ApiVersions {
    fn default() -> Self {
        ApiVersions {
            versions: SUPPORTED_API_VERSIONS
                .iter()
                .map(|v| v.to_string())
                .collect(),
            default: DEFAULT_API_VERSION.to_string(),
        }
    }
}

/// `YYYY-MM` with a month from 01 to 12.
pub fn well_formed(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(v[5..].parse::<u8>(), Ok(1..=12))
}

impl ApiVersions {
    /// Checks the set: not empty, every entry `YYYY-MM`, no repeats, and the
    /// default one of them.
    pub fn new(versions: Vec<String>, default: String) -> anyhow::Result<ApiVersions> {
        ensure!(!versions.is_empty(), "the set of API versions is empty");
        for (i, v) in versions.iter().enumerate() {
            ensure!(
                well_formed(v),
                "API version {v:?} is not of the form YYYY-MM"
            );
            ensure!(
                !versions[..i].contains(v),
                "API version {v} is listed twice"
            );
        }
        if !versions.contains(&default) {
            bail!(
                "the default API version {default} is not one of the supported versions ({})",
                versions.join(", ")
            );
        }
        Ok(ApiVersions { versions, default })
    }

    /// The version a request is served at, from its `Polar-Version` header
    /// (`None`: absent). `None` back means Polar's 404: the value is
    /// malformed, unknown, removed or not in the set.
    pub fn resolve(&self, header: Option<&str>) -> Option<&str> {
        match header {
            None => Some(&self.default),
            Some(v) => self.versions.iter().find(|s| *s == v).map(String::as_str),
        }
    }
}

/// How the JSON of a version differs, for the parts that do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Up to 2026-10: `seat_tiers{seat_tier_type, tiers[{min_seats, max_seats,
    /// price_per_seat}], minimum_seats, maximum_seats}`.
    SeatTiers = 0,
    /// 2027-01 on: `tiers{type, tiers[{bound, unit_amount}]}`, `minimum_units`,
    /// `maximum_units`.
    Tiers = 1,
}

impl Shape {
    pub const ALL: [Shape; 2] = [Shape::SeatTiers, Shape::Tiers];

    pub fn of(version: &str) -> Shape {
        // `YYYY-MM` strings order as the dates they name.
        if version >= TIERED_SEATS_SINCE {
            Shape::Tiers
        } else {
            Shape::SeatTiers
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_year_dash_month_is_well_formed() {
        for ok in ["2026-04", "2026-10", "2027-01", "1999-12"] {
            assert!(well_formed(ok), "{ok}");
        }
        for bad in [
            "",
            "2026-4",
            "2026-13",
            "2026-00",
            "2026_10",
            "26-10",
            "2026-10-01",
            "２026-10",
            "2026-1a",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn the_default_must_be_supported_and_entries_well_formed() {
        let s = |v: &[&str]| v.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        assert!(ApiVersions::new(s(&["2026-10", "2027-01"]), "2026-10".into()).is_ok());
        assert!(ApiVersions::new(s(&["2027-01"]), "2026-10".into()).is_err());
        assert!(ApiVersions::new(s(&[]), "2026-10".into()).is_err());
        assert!(ApiVersions::new(s(&["2026-10", "next"]), "2026-10".into()).is_err());
        assert!(ApiVersions::new(s(&["2026-10", "2026-10"]), "2026-10".into()).is_err());
    }

    #[test]
    fn resolve_uses_the_default_only_without_a_header() {
        let v = ApiVersions::default();
        assert_eq!(v.resolve(None), Some("2026-10"));
        assert_eq!(v.resolve(Some("2027-01")), Some("2027-01"));
        assert_eq!(v.resolve(Some("")), None);
        assert_eq!(v.resolve(Some("2026-07")), None);
        assert_eq!(v.resolve(Some(" 2026-10")), None);
    }

    #[test]
    fn seat_prices_change_shape_in_2027_01() {
        assert_eq!(Shape::of("2026-04"), Shape::SeatTiers);
        assert_eq!(Shape::of("2026-10"), Shape::SeatTiers);
        assert_eq!(Shape::of("2027-01"), Shape::Tiers);
        assert_eq!(Shape::of("2027-04"), Shape::Tiers);
    }
}
