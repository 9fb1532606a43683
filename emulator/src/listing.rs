//! `GET /v1/checkout-links/`: filtering, Postgres-like sorting, and the
//! pagination of join rows that Polar's `product_id` filter produces.

use std::cmp::Ordering;

use uuid::Uuid;

use crate::auth::Principal;
use crate::model::Link;
use crate::state::Store;
use crate::validate::query::Page;

impl Store {
    /// The list endpoint: rows are (link, matching product) pairs when
    /// `product_id` filters, and pagination counts rows, as Polar's join does.
    pub fn list_links(
        &self,
        who: &Principal,
        filter: &LinkFilter,
        page: Page,
    ) -> (Vec<(Uuid, Vec<Uuid>)>, usize) {
        let mut links: Vec<&Link> = self
            .link_order
            .iter()
            .filter_map(|id| self.links.get(id))
            .filter(|l| l.deleted_at.is_none() && who.can_access(l.organization_id))
            .filter(|l| {
                filter
                    .organizations
                    .as_ref()
                    .is_none_or(|o| o.contains(&l.organization_id))
            })
            .collect();
        if !(filter.sorting.len() == 1 && filter.sorting[0] == ("created_at".to_string(), false)) {
            links.sort_by(|a, b| compare_links(a, b, &filter.sorting));
        }
        let rows: Vec<(Uuid, Uuid)> = match &filter.products {
            None => links.iter().map(|l| (l.id, Uuid::nil())).collect(),
            Some(wanted) => links
                .iter()
                .flat_map(|l| {
                    l.products
                        .iter()
                        .filter(|p| wanted.contains(p))
                        .map(|p| (l.id, *p))
                })
                .collect(),
        };
        let total = rows.len();
        let offset = shifted(page.offset(), filter.shift);
        let mut items: Vec<(Uuid, Vec<Uuid>)> = Vec::new();
        for (link_id, product) in rows.into_iter().skip(offset).take(page.limit) {
            let products = if filter.products.is_none() {
                self.links[&link_id].products.clone()
            } else {
                vec![product]
            };
            match items.iter_mut().find(|(id, _)| *id == link_id) {
                Some((_, ps)) => ps.extend(products),
                None => items.push((link_id, products)),
            }
        }
        (items, total)
    }
}

#[derive(Debug, Default)]
pub struct LinkFilter {
    pub organizations: Option<Vec<Uuid>>,
    pub products: Option<Vec<Uuid>>,
    pub sorting: Vec<(String, bool)>,
    /// The `list_shift` fault: the window starts this many rows later
    /// (earlier when negative, never before the first row); the total stays.
    pub shift: i64,
}

fn shifted(offset: usize, shift: i64) -> usize {
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    usize::try_from(offset.saturating_add(shift).max(0)).unwrap_or(usize::MAX)
}

/// Postgres order: NULLs last ascending, first descending; byte-wise strings.
fn compare_links(a: &Link, b: &Link, sorting: &[(String, bool)]) -> Ordering {
    for (property, desc) in sorting {
        let ord = match property.as_str() {
            "label" => nulls_last(&a.label, &b.label),
            "success_url" => nulls_last(&a.success_url, &b.success_url),
            "allow_discount_codes" => a.allow_discount_codes.cmp(&b.allow_discount_codes),
            _ => a.created_at.cmp(&b.created_at),
        };
        let ord = if *desc { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

fn nulls_last<T: Ord>(a: &Option<T>, b: &Option<T>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.cmp(y),
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
    }
}
