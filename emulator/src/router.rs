//! Route matching on the decoded path, with Starlette's answers for a wrong
//! method (405) and a missing or extra trailing slash (307).

use hyper::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    LinksList,
    LinksCreate,
    LinkGet,
    LinkUpdate,
    LinkDelete,
    LinkRedirect,
    ProductsList,
    ProductGet,
    ProductDelete,
    DiscountsList,
    DiscountGet,
    OrganizationsList,
    OrganizationGet,
    OrdersList,
    OrderGet,
    CheckoutPage,
}

struct RouteDef {
    template: &'static str,
    methods: &'static [(Method, RouteKind)],
}

const ROUTES: &[RouteDef] = &[
    RouteDef {
        template: "/v1/checkout-links/",
        methods: &[
            (Method::GET, RouteKind::LinksList),
            (Method::POST, RouteKind::LinksCreate),
        ],
    },
    RouteDef {
        template: "/v1/checkout-links/{id}",
        methods: &[
            (Method::GET, RouteKind::LinkGet),
            (Method::PATCH, RouteKind::LinkUpdate),
            (Method::DELETE, RouteKind::LinkDelete),
        ],
    },
    RouteDef {
        template: "/v1/checkout-links/{client_secret}/redirect",
        methods: &[(Method::GET, RouteKind::LinkRedirect)],
    },
    RouteDef {
        template: "/v1/products/",
        methods: &[(Method::GET, RouteKind::ProductsList)],
    },
    RouteDef {
        template: "/v1/products/{id}",
        methods: &[
            (Method::GET, RouteKind::ProductGet),
            (Method::DELETE, RouteKind::ProductDelete),
        ],
    },
    RouteDef {
        template: "/v1/discounts/",
        methods: &[(Method::GET, RouteKind::DiscountsList)],
    },
    RouteDef {
        template: "/v1/discounts/{id}",
        methods: &[(Method::GET, RouteKind::DiscountGet)],
    },
    RouteDef {
        template: "/v1/organizations/",
        methods: &[(Method::GET, RouteKind::OrganizationsList)],
    },
    RouteDef {
        template: "/v1/organizations/{id}",
        methods: &[(Method::GET, RouteKind::OrganizationGet)],
    },
    RouteDef {
        template: "/v1/orders/",
        methods: &[(Method::GET, RouteKind::OrdersList)],
    },
    RouteDef {
        template: "/v1/orders/{id}",
        methods: &[(Method::GET, RouteKind::OrderGet)],
    },
    RouteDef {
        template: "/checkout/{client_secret}",
        methods: &[(Method::GET, RouteKind::CheckoutPage)],
    },
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub kind: RouteKind,
    pub template: &'static str,
    /// The path parameter, when the template has one.
    pub param: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteResult {
    Found(Matched),
    /// The path exists for other methods (the `Allow` header value).
    MethodNotAllowed(String),
    /// The same path with the trailing slash toggled exists.
    RedirectSlash(String),
    NotFound,
}

fn match_template(template: &str, path: &str) -> Option<Option<String>> {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut param = None;
    for (ts, ps) in t.iter().zip(&p) {
        if ts.starts_with('{') {
            if ps.is_empty() {
                return None;
            }
            param = Some(ps.to_string());
        } else if ts != ps {
            return None;
        }
    }
    Some(param)
}

fn find(path: &str) -> Option<(&'static RouteDef, Option<String>)> {
    ROUTES
        .iter()
        .find_map(|r| match_template(r.template, path).map(|param| (r, param)))
}

/// Matches a decoded path.
pub fn route(method: &Method, path: &str) -> RouteResult {
    if let Some((def, param)) = find(path) {
        return match def.methods.iter().find(|(m, _)| m == method) {
            Some((_, kind)) => RouteResult::Found(Matched {
                kind: *kind,
                template: def.template,
                param,
            }),
            None => RouteResult::MethodNotAllowed(
                def.methods
                    .iter()
                    .map(|(m, _)| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
    }
    if path != "/" {
        let toggled = match path.strip_suffix('/') {
            Some(p) => p.to_string(),
            None => format!("{path}/"),
        };
        if find(&toggled).is_some() {
            return RouteResult::RedirectSlash(toggled);
        }
    }
    RouteResult::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_needs_its_trailing_slash() {
        assert!(
            matches!(route(&Method::GET, "/v1/checkout-links/"), RouteResult::Found(m) if m.kind == RouteKind::LinksList)
        );
        assert_eq!(
            route(&Method::GET, "/v1/checkout-links"),
            RouteResult::RedirectSlash("/v1/checkout-links/".into())
        );
        assert_eq!(
            route(&Method::GET, "/v1/checkout-links/abc/"),
            RouteResult::RedirectSlash("/v1/checkout-links/abc".into())
        );
    }

    #[test]
    fn item_routes_carry_their_parameter() {
        let RouteResult::Found(m) = route(&Method::PATCH, "/v1/checkout-links/abc") else {
            panic!()
        };
        assert_eq!(m.template, "/v1/checkout-links/{id}");
        assert_eq!(m.param.as_deref(), Some("abc"));
        assert_eq!(
            route(&Method::PUT, "/v1/checkout-links/abc"),
            RouteResult::MethodNotAllowed("GET, PATCH, DELETE".into())
        );
        assert_eq!(route(&Method::GET, "/v1/nothing"), RouteResult::NotFound);
    }
}
