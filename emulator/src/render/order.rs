//! `Order`, written from the store when read (its product, discount and
//! customer are the current ones, as Polar joins them). Every field of the
//! 2026-04 `Order` schema, plus `units`, `seats`, `custom_field_data`,
//! `next_payment_attempt_at` and the items' `start_timestamp` /
//! `end_timestamp`, which polar-sdk 1.0.2 requires in every version.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::catalog::{ProductForm, discount, product};
use super::{Raw, raw};
use crate::model::{Customer, Order, Subscription, timestamp};
use crate::state::Store;
use crate::validate::metadata::Metadata;

/// `Address`: every order and customer is billed in the US here.
#[derive(Serialize)]
struct AddressOut {
    line1: Option<&'static str>,
    line2: Option<&'static str>,
    postal_code: Option<&'static str>,
    city: Option<&'static str>,
    state: Option<&'static str>,
    country: &'static str,
}

const ADDRESS: AddressOut = AddressOut {
    line1: None,
    line2: None,
    postal_code: None,
    city: None,
    state: None,
    country: "US",
};

#[derive(Serialize)]
struct CustomerOut<'a> {
    id: Uuid,
    created_at: String,
    modified_at: Option<String>,
    metadata: Map<String, Value>,
    external_id: Option<&'a str>,
    email: &'a str,
    email_verified: bool,
    #[serde(rename = "type")]
    kind: &'static str,
    name: Option<&'a str>,
    billing_name: Option<&'a str>,
    billing_address: AddressOut,
    tax_id: Option<Value>,
    locale: Option<&'a str>,
    organization_id: Uuid,
    default_payment_method_id: Option<Uuid>,
    deleted_at: Option<String>,
    first_user_event_at: Option<String>,
    avatar_url: Option<&'a str>,
}

fn customer(c: &Customer) -> CustomerOut<'_> {
    CustomerOut {
        id: c.id,
        created_at: timestamp(&c.created_at),
        modified_at: None,
        metadata: Map::new(),
        external_id: None,
        email: &c.email,
        email_verified: false,
        kind: "individual",
        name: c.name.as_deref(),
        billing_name: c.name.as_deref(),
        billing_address: ADDRESS,
        tax_id: None,
        locale: None,
        organization_id: c.organization_id,
        default_payment_method_id: None,
        deleted_at: None,
        first_user_event_at: None,
        avatar_url: None,
    }
}

#[derive(Serialize)]
struct SubscriptionOut<'a> {
    metadata: &'a Metadata,
    created_at: String,
    modified_at: Option<String>,
    id: Uuid,
    amount: i64,
    currency: &'a str,
    recurring_interval: &'a str,
    recurring_interval_count: i64,
    status: &'static str,
    current_period_start: String,
    current_period_end: String,
    current_meter_period_start: Option<String>,
    current_meter_period_end: Option<String>,
    trial_start: Option<String>,
    trial_end: Option<String>,
    cancel_at_period_end: bool,
    canceled_at: Option<String>,
    started_at: Option<String>,
    ends_at: Option<String>,
    ended_at: Option<String>,
    past_due_at: Option<String>,
    pause_at_period_end: bool,
    paused_at: Option<String>,
    resumes_at: Option<String>,
    customer_id: Uuid,
    product_id: Uuid,
    discount_id: Option<Uuid>,
    checkout_id: Option<Uuid>,
    seats: Option<i64>,
    units: Option<i64>,
    customer_cancellation_reason: Option<&'static str>,
    customer_cancellation_comment: Option<&'static str>,
}

fn subscription<'a>(o: &'a Order, s: &'a Subscription) -> SubscriptionOut<'a> {
    SubscriptionOut {
        metadata: &o.metadata,
        created_at: timestamp(&o.created_at),
        modified_at: None,
        id: s.id,
        amount: s.amount,
        currency: &o.currency,
        recurring_interval: &s.recurring_interval,
        recurring_interval_count: 1,
        status: "active",
        current_period_start: timestamp(&s.current_period_start),
        current_period_end: timestamp(&s.current_period_end),
        current_meter_period_start: None,
        current_meter_period_end: None,
        trial_start: None,
        trial_end: None,
        cancel_at_period_end: false,
        canceled_at: None,
        started_at: Some(timestamp(&s.current_period_start)),
        ends_at: None,
        ended_at: None,
        past_due_at: None,
        pause_at_period_end: false,
        paused_at: None,
        resumes_at: None,
        customer_id: o.customer_id,
        product_id: o.product_id,
        discount_id: o.discount_id,
        checkout_id: Some(o.checkout_id),
        seats: o.seats,
        units: o.units,
        customer_cancellation_reason: None,
        customer_cancellation_comment: None,
    }
}

#[derive(Serialize)]
struct ItemOut<'a> {
    created_at: String,
    modified_at: Option<String>,
    id: Uuid,
    label: &'a str,
    amount: i64,
    tax_amount: i64,
    proration: bool,
    product_price_id: Option<Uuid>,
    start_timestamp: Option<String>,
    end_timestamp: Option<String>,
}

#[derive(Serialize)]
struct OrderOut<'a> {
    id: Uuid,
    created_at: String,
    modified_at: Option<String>,
    status: &'a str,
    paid: bool,
    subtotal_amount: i64,
    discount_amount: i64,
    net_amount: i64,
    tax_amount: i64,
    total_amount: i64,
    applied_balance_amount: i64,
    due_amount: i64,
    refunded_amount: i64,
    refunded_tax_amount: i64,
    currency: &'a str,
    billing_reason: &'a str,
    billing_name: Option<&'a str>,
    billing_address: AddressOut,
    invoice_number: Option<&'a str>,
    is_invoice_generated: bool,
    receipt_number: Option<&'a str>,
    seats: Option<i64>,
    units: Option<i64>,
    customer_id: Uuid,
    product_id: Option<Uuid>,
    discount_id: Option<Uuid>,
    subscription_id: Option<Uuid>,
    checkout_id: Option<Uuid>,
    next_payment_attempt_at: Option<String>,
    metadata: &'a Metadata,
    custom_field_data: Map<String, Value>,
    platform_fee_amount: i64,
    platform_fee_currency: Option<&'a str>,
    customer: Option<CustomerOut<'a>>,
    product: Option<&'a RawValue>,
    discount: Option<&'a RawValue>,
    subscription: Option<SubscriptionOut<'a>>,
    items: Vec<ItemOut<'a>>,
    description: &'a str,
    refundable_amount: i64,
    refundable_tax_amount: i64,
}

/// The order as `GET /v1/orders/{id}` writes it (the same in every version).
pub fn order(o: &Order, store: &Store) -> Raw {
    let p = store.products.get(&o.product_id);
    let product_raw = p.map(|p| product(p, &[], ProductForm::Discount, false));
    let discount_raw = o
        .discount_id
        .and_then(|d| store.discounts.get(&d))
        .map(|d| discount(d, None));
    let name = p.map_or("", |p| p.name.as_str());
    let c = store.customers.get(&o.customer_id);
    let net = o.net_amount();
    let period = o.subscription.as_ref().map(|s| {
        (
            timestamp(&s.current_period_start),
            timestamp(&s.current_period_end),
        )
    });
    raw(&OrderOut {
        id: o.id,
        created_at: timestamp(&o.created_at),
        modified_at: o.modified_at.as_ref().map(timestamp),
        status: o.status,
        paid: o.paid(),
        subtotal_amount: o.subtotal_amount,
        discount_amount: o.discount_amount,
        net_amount: net,
        tax_amount: 0,
        total_amount: net,
        applied_balance_amount: 0,
        due_amount: net.max(0),
        refunded_amount: o.refunded_amount,
        refunded_tax_amount: 0,
        currency: &o.currency,
        billing_reason: o.billing_reason,
        billing_name: c.and_then(|c| c.name.as_deref()),
        billing_address: ADDRESS,
        invoice_number: Some(&o.invoice_number),
        is_invoice_generated: false,
        receipt_number: None,
        seats: o.seats,
        units: o.units,
        customer_id: o.customer_id,
        product_id: Some(o.product_id),
        discount_id: o.discount_id,
        subscription_id: o.subscription.as_ref().map(|s| s.id),
        checkout_id: Some(o.checkout_id),
        next_payment_attempt_at: None,
        metadata: &o.metadata,
        custom_field_data: Map::new(),
        platform_fee_amount: 0,
        platform_fee_currency: None,
        customer: c.map(customer),
        product: product_raw.as_deref(),
        discount: discount_raw.as_deref(),
        subscription: o.subscription.as_ref().map(|s| subscription(o, s)),
        items: vec![ItemOut {
            created_at: timestamp(&o.created_at),
            modified_at: None,
            id: o.item_id,
            label: name,
            amount: o.subtotal_amount,
            tax_amount: 0,
            proration: false,
            product_price_id: Some(o.product_price_id),
            start_timestamp: period.as_ref().map(|(s, _)| s.clone()),
            end_timestamp: period.as_ref().map(|(_, e)| e.clone()),
        }],
        description: name,
        refundable_amount: o.refundable_amount(),
        refundable_tax_amount: 0,
    })
}
