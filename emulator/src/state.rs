//! The in-memory store and the checkout-link operations of Polar's service
//! layer: create, update, soft delete, archive (listing is in `listing.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::Principal;
use crate::errors::{ErrorItem, Layer};
use crate::http::{self, Resp};
use crate::model::{Customer, Discount, Link, Order, Organization, Product};
use crate::render::{self, Catalog, Raw};
use crate::seed::Seed;
use crate::service;
use crate::validate::create::{CreateInput, ProductSource};
use crate::validate::update::{Patch, UpdateInput};
use crate::versions::Shape;

pub const CLIENT_SECRET_PREFIX: &str = "polar_cl_";

/// Why a checkout-link operation failed.
#[derive(Debug)]
pub enum ApiError {
    NotFound,
    /// A service-layer 422 (`PolarRequestValidationError`).
    Invalid(Vec<ErrorItem>),
    /// What Polar answers when the database refuses the write.
    Internal,
}

impl ApiError {
    pub fn response(&self) -> Resp {
        match self {
            ApiError::NotFound => http::resource_not_found(),
            ApiError::Invalid(items) => http::validation(Layer::Service, items),
            ApiError::Internal => http::internal_error(),
        }
    }
}

impl From<Vec<ErrorItem>> for ApiError {
    fn from(items: Vec<ErrorItem>) -> Self {
        ApiError::Invalid(items)
    }
}

pub struct Store {
    pub organizations: Vec<Organization>,
    pub products: HashMap<Uuid, Product>,
    pub product_order: Vec<Uuid>,
    pub discounts: HashMap<Uuid, Discount>,
    pub discount_order: Vec<Uuid>,
    pub links: HashMap<Uuid, Link>,
    /// Link ids in creation order (the default `created_at` order).
    pub link_order: Vec<Uuid>,
    pub secrets: HashMap<String, Uuid>,
    /// Checkout sessions opened through a link's redirect.
    pub checkouts: HashMap<String, Uuid>,
    /// The catalogue pre-rendered in each version shape (see [`Store::catalog`]).
    pub catalogs: [Catalog; 2],
    /// Orders bought through links (soft state, like links).
    pub orders: HashMap<Uuid, Order>,
    /// Order ids by `created_at` (ties in creation order).
    pub order_order: Vec<Uuid>,
    pub customers: HashMap<Uuid, Customer>,
    pub url_template: String,
}

impl Store {
    pub fn from_seed(seed: &Seed, url_template: String) -> Store {
        let organizations = seed
            .organizations
            .iter()
            .enumerate()
            .map(|(i, o)| Organization::from_seed(o, i))
            .collect();
        let products: Vec<Product> = seed
            .products
            .iter()
            .enumerate()
            .map(|(i, p)| Product::from_seed(p, i))
            .collect();
        let discounts: Vec<Discount> = seed
            .discounts
            .iter()
            .enumerate()
            .map(|(i, d)| Discount::from_seed(d, i))
            .collect();
        let mut store = Store {
            organizations,
            product_order: products.iter().map(|p| p.id).collect(),
            products: products.into_iter().map(|p| (p.id, p)).collect(),
            discount_order: discounts.iter().map(|d| d.id).collect(),
            discounts: discounts.into_iter().map(|d| (d.id, d)).collect(),
            links: HashMap::new(),
            link_order: Vec::new(),
            secrets: HashMap::new(),
            checkouts: HashMap::new(),
            catalogs: Default::default(),
            orders: HashMap::new(),
            order_order: Vec::new(),
            customers: HashMap::new(),
            url_template,
        };
        store.rebuild_catalog();
        store
    }

    pub fn rebuild_catalog(&mut self) {
        let products: Vec<&Product> = self
            .product_order
            .iter()
            .filter_map(|id| self.products.get(id))
            .collect();
        let discounts: Vec<&Discount> = self
            .discount_order
            .iter()
            .filter_map(|id| self.discounts.get(id))
            .collect();
        let ordered = self.ordered_products();
        let catalogs =
            Shape::ALL.map(|shape| Catalog::build(&products, &discounts, &ordered, shape));
        self.catalogs = catalogs;
    }

    /// Products some order is for (they are not deletable).
    pub fn ordered_products(&self) -> std::collections::HashSet<Uuid> {
        self.orders.values().map(|o| o.product_id).collect()
    }

    /// The pre-rendered catalogue for a version's shape.
    pub fn catalog(&self, shape: Shape) -> &Catalog {
        &self.catalogs[shape as usize]
    }

    /// A product the API still serves (not deleted) to a caller who may see it.
    pub fn visible_product(&self, who: &Principal, id: Uuid) -> Option<&Product> {
        self.products
            .get(&id)
            .filter(|p| !p.is_deleted() && who.can_access(p.organization_id))
    }

    pub fn open_checkout(&mut self, secret: String, link: Uuid) {
        if self.checkouts.len() >= 10_000 {
            self.checkouts.clear();
        }
        self.checkouts.insert(secret, link);
    }

    /// A live link the caller may see.
    pub fn visible_link(&self, who: &Principal, id: Uuid) -> Option<&Link> {
        self.links
            .get(&id)
            .filter(|l| l.deleted_at.is_none() && who.can_access(l.organization_id))
    }

    pub fn render_link(&self, link: &Link, products: &[Uuid], shape: Shape, admin: bool) -> Raw {
        render::link(
            link,
            products,
            self.catalog(shape),
            &self.url_template,
            admin,
        )
    }

    pub fn create_link(
        &mut self,
        who: &Principal,
        input: CreateInput,
        now: DateTime<Utc>,
    ) -> Result<Uuid, ApiError> {
        let products = match &input.source {
            ProductSource::Products(ids) => service::validated_products(self, who, ids)?,
            ProductSource::Product(id) => service::validated_products(self, who, &[*id])?,
            ProductSource::Price(id) => vec![service::validated_price(self, who, *id)?],
        };
        let org = self.products[&products[0]].organization_id;
        if let Some(d) = input.discount_id {
            service::validated_discount(self, d, org, &products)?;
        }
        if let Some(e) = input
            .seats
            .and_then(|s| service::seats_error(self, &products, s))
        {
            return Err(ApiError::Invalid(vec![e]));
        }
        if let Some(e) = input
            .units
            .and_then(|u| service::units_error(self, &products, u))
        {
            return Err(ApiError::Invalid(vec![e]));
        }
        // UNIQUE(checkout_link_id, product_id) rejects the insert.
        if service::has_duplicates(&products) {
            return Err(ApiError::Internal);
        }
        let id = Uuid::new_v4();
        let client_secret = crate::secret::generate(CLIENT_SECRET_PREFIX);
        self.secrets.insert(client_secret.clone(), id);
        self.links.insert(
            id,
            Link {
                id,
                created_at: now,
                modified_at: None,
                deleted_at: None,
                organization_id: org,
                client_secret,
                trial_interval: input.trial_interval,
                trial_interval_count: input.trial_interval_count,
                metadata: input.metadata,
                success_url: input.success_url,
                return_url: input.return_url,
                label: input.label,
                allow_discount_codes: input.allow_discount_codes,
                require_billing_address: input.require_billing_address,
                discount_id: input.discount_id,
                seats: input.seats,
                units: input.units,
                products,
            },
        );
        self.link_order.push(id);
        Ok(id)
    }

    pub fn update_link(
        &mut self,
        who: &Principal,
        id: Uuid,
        input: UpdateInput,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let link = self.visible_link(who, id).ok_or(ApiError::NotFound)?;
        let mut next = link.clone();
        if let Patch::Value(ids) = &input.products {
            let products = service::validated_products(self, who, ids)?;
            if self.products[&products[0]].organization_id != link.organization_id {
                return Err(ApiError::Invalid(vec![ErrorItem::service(
                    crate::loc!["body", "products"],
                    "Products don't belong to the checkout link's organization.",
                    serde_json::json!(ids),
                )]));
            }
            if service::has_duplicates(&products) {
                return Err(ApiError::Internal);
            }
            if !products.iter().any(|p| self.products[p].is_recurring()) {
                next.trial_interval = None;
                next.trial_interval_count = None;
            }
            next.products = products;
        }
        match &input.discount_id {
            Patch::Value(d) => {
                service::validated_discount(self, *d, link.organization_id, &next.products)?;
                next.discount_id = Some(*d);
            }
            Patch::Null => next.discount_id = None,
            Patch::Absent => {}
        }
        let products_changed = input.products.is_set() && !matches!(input.products, Patch::Null);
        next.seats = self.lock(&input.seats, next.seats, products_changed, |s, v| {
            service::seats_error(s, &next.products, v)
        })?;
        next.units = self.lock(&input.units, next.units, products_changed, |s, v| {
            service::units_error(s, &next.products, v)
        })?;
        // A NOT NULL column set to NULL: the database refuses the write.
        if matches!(input.allow_discount_codes, Patch::Null)
            || matches!(input.require_billing_address, Patch::Null)
        {
            return Err(ApiError::Internal);
        }
        apply(&mut next.label, &input.label);
        apply(&mut next.success_url, &input.success_url);
        apply(&mut next.return_url, &input.return_url);
        apply(&mut next.trial_interval, &input.trial_interval);
        apply(&mut next.trial_interval_count, &input.trial_interval_count);
        if let Patch::Value(b) = input.allow_discount_codes {
            next.allow_discount_codes = b;
        }
        if let Patch::Value(b) = input.require_billing_address {
            next.require_billing_address = b;
        }
        if let Patch::Value(m) = &input.metadata {
            next.metadata = m.clone();
        }
        // `modified_at` moves only when a column of the link itself changes.
        let mut compare = next.clone();
        compare.products = link.products.clone();
        if compare != *link {
            next.modified_at = Some(now);
        }
        self.links.insert(id, next);
        Ok(())
    }

    /// The seats (or units) a PATCH leaves: a sent value is checked strictly;
    /// an old one that no longer fits new products is cleared.
    fn lock(
        &self,
        sent: &Patch<i64>,
        current: Option<i64>,
        products_changed: bool,
        check: impl Fn(&Store, i64) -> Option<ErrorItem>,
    ) -> Result<Option<i64>, ApiError> {
        match sent {
            Patch::Value(v) => match check(self, *v) {
                Some(e) => Err(ApiError::Invalid(vec![e])),
                None => Ok(Some(*v)),
            },
            Patch::Null => Ok(None),
            Patch::Absent => Ok(current.filter(|v| !products_changed || check(self, *v).is_none())),
        }
    }

    pub fn delete_link(
        &mut self,
        who: &Principal,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        self.visible_link(who, id).ok_or(ApiError::NotFound)?;
        self.soft_delete(id, now);
        Ok(())
    }

    pub fn soft_delete(&mut self, id: Uuid, now: DateTime<Utc>) -> bool {
        match self.links.get_mut(&id) {
            Some(l) if l.deleted_at.is_none() => {
                l.deleted_at = Some(now);
                l.modified_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Archives a product: it leaves every link, and links left empty are
    /// soft-deleted (`product/service.py`, `checkout_link/repository.py`).
    pub fn archive_product(&mut self, id: Uuid, now: DateTime<Utc>) -> bool {
        let Some(p) = self.products.get_mut(&id).filter(|p| !p.is_deleted()) else {
            return false;
        };
        p.is_archived = true;
        p.modified_at = Some(now);
        self.remove_from_links(id, now);
        self.rebuild_catalog();
        true
    }

    /// `DELETE /v1/products/{id}`: 404 when the caller cannot see it, 409
    /// while it is not deletable; otherwise it is gone from the API and, as
    /// when archived, from every link (links left empty are soft-deleted).
    pub fn delete_product(
        &mut self,
        who: &Principal,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), Resp> {
        let product = self
            .visible_product(who, id)
            .ok_or_else(http::resource_not_found)?;
        if !product.is_deletable(self.discounts.values(), &self.ordered_products()) {
            return Err(http::product_not_deletable());
        }
        if let Some(p) = self.products.get_mut(&id) {
            p.deleted_at = Some(now);
            p.modified_at = Some(now);
        }
        self.remove_from_links(id, now);
        self.rebuild_catalog();
        Ok(())
    }

    fn remove_from_links(&mut self, id: Uuid, now: DateTime<Utc>) {
        for link in self.links.values_mut().filter(|l| l.deleted_at.is_none()) {
            link.products.retain(|p| *p != id);
            if link.products.is_empty() {
                link.deleted_at = Some(now);
                link.modified_at = Some(now);
            }
        }
    }
}

fn apply<T: Clone>(field: &mut Option<T>, patch: &Patch<T>) {
    if let Some(v) = patch.as_set() {
        *field = v.cloned();
    }
}
