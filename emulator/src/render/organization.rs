//! `Organization`, with the settings Polar's schema requires.

use serde_json::{Value, json};

use crate::model::{Organization, timestamp};

pub fn organization(o: &Organization) -> Value {
    json!({
        "created_at": timestamp(&o.created_at),
        "modified_at": null,
        "id": o.id,
        "name": o.name,
        "slug": o.slug,
        "avatar_url": null,
        "proration_behavior": "prorate",
        "allow_customer_updates": true,
        "email": null,
        "website": null,
        "socials": [],
        "status": "active",
        "details_submitted_at": null,
        "onboarding_resubmission_requested_at": null,
        "sso_enforced": false,
        "default_presentment_currency": "usd",
        "default_tax_behavior": "location",
        "feature_settings": {},
        "subscription_settings": {
            "allow_multiple_subscriptions": false,
            "proration_behavior": "prorate",
            "benefit_revocation_grace_period": 0,
            "prevent_trial_abuse": false,
            "allow_customer_updates": true
        },
        "customer_email_settings": {
            "order_confirmation": true, "payment_method_expiration_reminder": true,
            "subscription_cancellation": true, "subscription_confirmation": true,
            "subscription_cycled": true, "subscription_cycled_after_trial": true,
            "subscription_past_due": true, "subscription_paused": true,
            "subscription_resumed": true, "subscription_renewal_reminder": true,
            "subscription_revoked": true, "subscription_trial_conversion_reminder": true,
            "subscription_uncanceled": true, "subscription_updated": true
        },
        "customer_portal_settings": {
            "usage": {"show": true},
            "subscription": {"update_seats": true, "update_plan": true}
        },
        "dispute_settings": {"auto_accept_below_amount": null},
        "embed_hosts": [],
        "embed_hosts_enforced": false,
        "account_id": null,
        "payout_account_id": null,
        "capabilities": {
            "checkout_payments": true, "subscription_renewals": true, "payouts": true,
            "refunds": true, "api_access": true, "dashboard_access": true
        }
    })
}
