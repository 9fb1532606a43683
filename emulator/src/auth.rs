//! Bearer tokens: who a token is (an organisation or a user with several
//! organisations), what it may do (scopes), and Polar's 401 / 403 answers.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use uuid::Uuid;

use crate::http::{self, Resp};
use crate::seed::Seed;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `polar_oat_`: an organization access token.
    Organization(Uuid),
    /// `polar_pat_`: a personal access token of a user.
    User { id: Uuid, organizations: Vec<Uuid> },
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: Subject,
    pub scopes: HashSet<String>,
    /// A `Polar-Organization` value an organization token was sent with that
    /// is not its own organization: the request is refused (403).
    pub foreign_organization: Option<String>,
}

impl Principal {
    pub fn organizations(&self) -> &[Uuid] {
        match &self.subject {
            Subject::Organization(id) => std::slice::from_ref(id),
            Subject::User { organizations, .. } => organizations,
        }
    }

    pub fn can_access(&self, org: Uuid) -> bool {
        self.organizations().contains(&org)
    }

    /// The rate-limit identity: `organization:<id>` or `user:<id>`.
    pub fn rate_key(&self) -> String {
        match &self.subject {
            Subject::Organization(id) => format!("organization:{id}"),
            Subject::User { id, .. } => format!("user:{id}"),
        }
    }

    pub fn organization_id(&self) -> Option<Uuid> {
        match &self.subject {
            Subject::Organization(id) => Some(*id),
            Subject::User { .. } => None,
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match &self.subject {
            Subject::Organization(_) => None,
            Subject::User { id, .. } => Some(*id),
        }
    }

    /// Polar's check: the token needs any one of `required`.
    pub fn check_scopes(&self, required: &[&str]) -> Result<(), Resp> {
        if required.iter().any(|s| self.scopes.contains(*s)) {
            Ok(())
        } else {
            Err(http::insufficient_scope(required))
        }
    }
}

/// Stands in for Polar's HMAC of a token (the rate-limit key of cold tokens).
pub fn token_hash(token: &str) -> u64 {
    let mut h = DefaultHasher::new();
    token.hash(&mut h);
    h.finish()
}

/// The seeded tokens by their exact string.
#[derive(Debug, Default)]
pub struct Tokens(HashMap<String, Arc<Principal>>);

impl Tokens {
    pub fn from_seed(seed: &Seed) -> Tokens {
        let mut map = HashMap::new();
        for t in &seed.tokens {
            let subject = match (t.token.starts_with("polar_oat_"), t.organization, t.user) {
                (true, Some(org), _) => Subject::Organization(org),
                (_, _, Some(user)) => Subject::User {
                    id: user,
                    organizations: t.organizations.clone(),
                },
                _ => continue,
            };
            let principal = Principal {
                subject,
                scopes: t.scopes.iter().cloned().collect(),
                foreign_organization: None,
            };
            map.insert(t.token.clone(), Arc::new(principal));
        }
        Tokens(map)
    }

    pub fn get(&self, token: &str) -> Option<Arc<Principal>> {
        self.0.get(token).cloned()
    }
}

/// The token of a well-formed `Authorization: Bearer <token>` header; any
/// other header leaves the request anonymous, as Polar does.
pub fn bearer(header: Option<&hyper::header::HeaderValue>) -> Option<String> {
    let value = header?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return None;
    }
    Some(token.to_string())
}

/// Authentication of one request, as the auth middleware leaves it.
pub enum Auth {
    Anonymous,
    Valid(Arc<Principal>),
    /// A bearer token that is unknown (answered with `invalid_token`).
    Invalid,
}

pub fn authenticate(tokens: &Tokens, token: Option<&str>) -> Auth {
    match token {
        None => Auth::Anonymous,
        Some(t) => match tokens.get(t) {
            Some(p) => Auth::Valid(p),
            None => Auth::Invalid,
        },
    }
}

/// The principal as the `Polar-Organization` header leaves it.
///
/// - A personal token acts on that one organisation only: every read, list
///   and write sees the header's organisation if the user belongs to it, and
///   nothing at all otherwise (not a member, or not an organisation id), the
///   way an `organization_id` the caller cannot access filters to nothing.
/// - An organisation token is unchanged when the header names its own
///   organisation, and refused (403 `NotPermitted`) when it names another.
pub fn for_organization_header(p: Arc<Principal>, header: Option<&str>) -> Arc<Principal> {
    let Some(value) = header else {
        return p;
    };
    let named: Option<Uuid> = value.trim().parse().ok();
    match &p.subject {
        Subject::Organization(org) if named == Some(*org) => p,
        Subject::Organization(_) => Arc::new(Principal {
            foreign_organization: Some(value.to_string()),
            ..(*p).clone()
        }),
        Subject::User { id, organizations } => Arc::new(Principal {
            subject: Subject::User {
                id: *id,
                organizations: organizations
                    .iter()
                    .copied()
                    .filter(|o| Some(*o) == named)
                    .collect(),
            },
            ..(*p).clone()
        }),
    }
}

/// The principal as a token of another organisation, one that owns nothing
/// in the store (the `not_found` fault): an organisation token acts on a
/// fresh organisation id, a personal token on no organisation at all. Scopes
/// and a refused `Polar-Organization` header stay, so 401 and 403 answers
/// are unchanged; what the token can see is empty.
pub fn of_empty_organization(p: &Principal) -> Principal {
    let subject = match &p.subject {
        Subject::Organization(_) => Subject::Organization(Uuid::new_v4()),
        Subject::User { id, .. } => Subject::User {
            id: *id,
            organizations: Vec::new(),
        },
    };
    Principal {
        subject,
        ..p.clone()
    }
}

/// The principal a route needs, or Polar's 401 / 403.
pub fn require<'a>(
    principal: Option<&'a Principal>,
    scopes: &[&str],
) -> Result<&'a Principal, Resp> {
    let p = principal.ok_or_else(http::unauthorized)?;
    p.check_scopes(scopes)?;
    if let Some(org) = &p.foreign_organization {
        return Err(http::not_permitted(&format!(
            "This organization access token cannot act on organization {org}."
        )));
    }
    Ok(p)
}

pub mod scopes {
    pub const LINKS_READ: &[&str] = &["checkout_links:read", "checkout_links:write"];
    pub const LINKS_WRITE: &[&str] = &["checkout_links:write"];
    pub const PRODUCTS_READ: &[&str] = &["products:read", "products:write"];
    pub const PRODUCTS_WRITE: &[&str] = &["products:write"];
    pub const DISCOUNTS_READ: &[&str] = &["discounts:read", "discounts:write"];
    pub const ORGANIZATIONS_READ: &[&str] = &["organizations:read", "organizations:write"];
    /// The spec's security for both order reads names `orders:read` only.
    pub const ORDERS_READ: &[&str] = &["orders:read"];
}
