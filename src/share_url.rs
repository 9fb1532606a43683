//! `status.shareUrl`: the link's URL with `spec.urlParameters` appended as query parameters.
//!
//! Parameters come in a fixed order: `customer_email`, `customer_name`, `discount_code`,
//! `amount`, `custom_field_data.<slug>` (sorted by slug), `reference_id`, `utm_source`,
//! `utm_medium`, `utm_campaign`, `utm_content`, `utm_term`. Values are
//! `application/x-www-form-urlencoded` (the `url` crate's `query_pairs_mut`): a space becomes
//! `+`, and `+`, `&`, `=` and non-ASCII characters are percent-encoded, which is what
//! Polar's checkout page (and every browser form) decodes. Pure; no IO.

use crate::crd::UrlParameters;

/// The URL to share: `url` plus the parameters that are set, in the documented order.
/// Without parameters it is `url` itself. A `url` that does not parse (Polar always sends an
/// absolute URL) is returned unchanged.
pub fn share_url(url: &str, parameters: Option<&UrlParameters>) -> String {
    let pairs = query_pairs(parameters);
    if pairs.is_empty() {
        return url.to_owned();
    }
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    {
        let mut query = parsed.query_pairs_mut();
        for (key, value) in &pairs {
            query.append_pair(key, value);
        }
    }
    parsed.into()
}

/// The (name, value) pairs of the parameters that are set, in order.
pub fn query_pairs(parameters: Option<&UrlParameters>) -> Vec<(String, String)> {
    let Some(p) = parameters else {
        return Vec::new();
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut push = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            pairs.push((name.to_owned(), v.clone()));
        }
    };
    push("customer_email", &p.customer_email);
    push("customer_name", &p.customer_name);
    push("discount_code", &p.discount_code);
    push("amount", &p.amount);
    // A BTreeMap iterates in key order: sorted by slug.
    for (slug, value) in p.custom_field_data.iter().flatten() {
        push(&format!("custom_field_data.{slug}"), &Some(value.clone()));
    }
    push("reference_id", &p.reference_id);
    push("utm_source", &p.utm_source);
    push("utm_medium", &p.utm_medium);
    push("utm_campaign", &p.utm_campaign);
    push("utm_content", &p.utm_content);
    push("utm_term", &p.utm_term);
    pairs
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const URL: &str = "https://buy.polar.sh/polar_cl_gon2ISU4r7oYyjVaxXlRVUv5MKh1H3c1gCxKn1zZGHA";

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn without_parameters_the_share_url_is_the_url() {
        assert_eq!(share_url(URL, None), URL);
        assert_eq!(share_url(URL, Some(&UrlParameters::default())), URL);
    }

    #[test]
    fn parameters_are_encoded_in_the_documented_order() {
        let all = UrlParameters {
            customer_email: some("ada+test@example.com"),
            customer_name: some("Ada Lovelace"),
            discount_code: some("LAUNCH&GO"),
            amount: some("1500"),
            custom_field_data: Some(BTreeMap::from([
                ("size".to_owned(), "x=l".to_owned()),
                ("company-name".to_owned(), "Ünïcode GmbH".to_owned()),
            ])),
            reference_id: some("order 42"),
            utm_source: some("newsletter"),
            utm_medium: some("email"),
            utm_campaign: some("launch"),
            utm_content: some("hero"),
            utm_term: some("a b"),
        };
        let cases: Vec<(&str, UrlParameters, String)> = vec![
            (
                "spaces become +",
                UrlParameters {
                    customer_name: some("Ada Lovelace"),
                    ..Default::default()
                },
                format!("{URL}?customer_name=Ada+Lovelace"),
            ),
            (
                "+ is percent-encoded so it is not read as a space",
                UrlParameters {
                    customer_email: some("ada+test@example.com"),
                    ..Default::default()
                },
                format!("{URL}?customer_email=ada%2Btest%40example.com"),
            ),
            (
                "& and = do not break the query",
                UrlParameters {
                    discount_code: some("A&B=C"),
                    ..Default::default()
                },
                format!("{URL}?discount_code=A%26B%3DC"),
            ),
            (
                "unicode is UTF-8 percent-encoded",
                UrlParameters {
                    customer_name: some("Zoë 東京"),
                    ..Default::default()
                },
                format!("{URL}?customer_name=Zo%C3%AB+%E6%9D%B1%E4%BA%AC"),
            ),
            (
                "custom fields are sorted by slug",
                UrlParameters {
                    custom_field_data: Some(BTreeMap::from([
                        ("zeta".to_owned(), "1".to_owned()),
                        ("alpha_1".to_owned(), "2".to_owned()),
                        ("my-field".to_owned(), "3".to_owned()),
                    ])),
                    ..Default::default()
                },
                format!(
                    "{URL}?custom_field_data.alpha_1=2&custom_field_data.my-field=3&custom_field_data.zeta=1"
                ),
            ),
            (
                "UTM tags",
                UrlParameters {
                    utm_source: some("newsletter"),
                    utm_medium: some("email"),
                    utm_campaign: some("launch"),
                    ..Default::default()
                },
                format!("{URL}?utm_source=newsletter&utm_medium=email&utm_campaign=launch"),
            ),
            (
                "everything, in order",
                all,
                format!(
                    "{URL}?customer_email=ada%2Btest%40example.com&customer_name=Ada+Lovelace\
                     &discount_code=LAUNCH%26GO&amount=1500\
                     &custom_field_data.company-name=%C3%9Cn%C3%AFcode+GmbH&custom_field_data.size=x%3Dl\
                     &reference_id=order+42&utm_source=newsletter&utm_medium=email&utm_campaign=launch\
                     &utm_content=hero&utm_term=a+b"
                ),
            ),
        ];
        for (name, parameters, want) in cases {
            assert_eq!(share_url(URL, Some(&parameters)), want, "{name}");
        }
    }

    #[test]
    fn parameters_round_trip_through_a_form_decoder() {
        let parameters = UrlParameters {
            customer_name: some("A+B & C = D ü"),
            custom_field_data: Some(BTreeMap::from([("slug".to_owned(), "x y".to_owned())])),
            ..Default::default()
        };
        let shared = url::Url::parse(&share_url(URL, Some(&parameters))).unwrap();
        let decoded: Vec<(String, String)> = shared.query_pairs().into_owned().collect();
        assert_eq!(decoded, query_pairs(Some(&parameters)));
    }

    #[test]
    fn an_existing_query_is_kept() {
        let sandbox = "https://sandbox-api.polar.sh/v1/checkout-links/polar_cl_x/redirect?a=1";
        let parameters = UrlParameters {
            utm_source: some("x"),
            ..Default::default()
        };
        assert_eq!(
            share_url(sandbox, Some(&parameters)),
            format!("{sandbox}&utm_source=x")
        );
    }
}
