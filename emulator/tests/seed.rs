//! Seeds: the demo seed, and the mistakes `from_yaml` refuses.
use polar_emulator::Seed;

#[test]
fn the_demo_seed_has_two_organizations_tokens_products_and_discounts() {
    let seed = Seed::demo();
    assert_eq!(seed.organizations.len(), 2);
    assert_eq!(seed.tokens.len(), 6);
    assert_eq!(seed.products.len(), 11);
    assert_eq!(seed.discounts.len(), 4);
    for t in &seed.tokens {
        let prefix = &t.token[..10];
        assert!(
            polar_emulator::secret::is_valid(&t.token, prefix),
            "{} has Polar's format",
            t.token
        );
    }
}

fn rejects(yaml: &str, why: &str) {
    let err = format!("{:#}", Seed::from_yaml(yaml).unwrap_err());
    assert!(err.contains(why), "{err}");
}

#[test]
fn seeds_with_broken_references_or_ids_are_rejected() {
    rejects(
        "organizations:\n  - {id: a0000000-0000-1000-8000-000000000001, name: A, slug: a}\n",
        "not a UUID version 4",
    );
    rejects(
        "tokens:\n  - {token: polar_oat_x, organization: 11111111-1111-4111-8111-111111111111}\n",
        "unknown organization",
    );
    rejects("tokens:\n  - {token: secret_x}\n", "token prefix");
    rejects("tokens:\n  - {token: polar_pat_x}\n", "needs `user`");
    rejects("products: []\nextra: 1\n", "unknown field");
    rejects(
        "organizations:\n  - {id: 11111111-1111-4111-8111-111111111111, name: A, slug: a}\nproducts:\n  - {id: a1000000-0000-4000-8000-000000000001, organization: 11111111-1111-4111-8111-111111111111, name: P, prices: []}\n",
        "at least one price",
    );
}

#[test]
fn a_minimal_seed_loads() {
    let seed = Seed::from_yaml(
        "organizations:\n  - {id: 11111111-1111-4111-8111-111111111111, name: A, slug: a}\n\
         products:\n  - id: a1000000-0000-4000-8000-000000000001\n    organization: 11111111-1111-4111-8111-111111111111\n    name: Free thing\n    prices: [{type: free}]\n",
    )
    .unwrap();
    assert_eq!(seed.products[0].prices[0].kind, "free");
}

#[test]
fn config_defaults_match_polar_production() {
    let c = polar_emulator::Config::default();
    assert_eq!(c.seed, Seed::demo());
    assert_eq!(c.rate_limit, 500);
    assert_eq!(c.rate_limit_window, std::time::Duration::from_secs(60));
    assert!(!c.cold_token_limit);
    assert_eq!(c.url_template, "https://buy.polar.sh/{client_secret}");
}
