//! Carrying out a [`Plan`] in Polar: at most one call, through the resource's
//! [`Account`] (paced, and written through to the organisation's mirror). No Kubernetes here.

use std::sync::Arc;

use crate::error::Error;
use crate::polar::account::Account;
use crate::polar::{Link, LinkFields, PolarError};

use super::plan::{AdoptedBy, Plan};
use super::status::Activity;

/// A failure, with what was being done and the link if it was seen.
#[derive(Debug)]
pub struct Failure {
    /// The step that failed.
    pub activity: Activity,
    /// Why.
    pub error: Error,
    /// The link as observed before the failure, if it was.
    pub link: Option<Link>,
}

impl Failure {
    /// A failure before any link was seen.
    pub fn new(activity: Activity, error: Error) -> Self {
        Failure {
            activity,
            error,
            link: None,
        }
    }
}

/// What was done.
#[derive(Clone, Debug, PartialEq)]
pub enum Done {
    /// A new link.
    Created(Link),
    /// A new link replacing one deleted outside Kubernetes.
    Recreated {
        /// The new link.
        link: Link,
        /// The vanished link's id.
        old_id: String,
        /// The vanished link's URL.
        old_url: Option<String>,
    },
    /// Some fields were patched.
    Updated {
        /// The link after the PATCH.
        link: Link,
        /// Polar names of the patched fields.
        fields: Vec<&'static str>,
    },
    /// An existing link was taken over (and patched if it differed).
    Adopted {
        /// The link after any PATCH.
        link: Link,
        /// How it was found.
        by: AdoptedBy,
        /// Polar names of the patched fields (empty when none).
        fields: Vec<&'static str>,
    },
    /// Nothing to do.
    InSync(Link),
}

impl Done {
    /// The link as Polar now holds it.
    pub fn link(&self) -> &Link {
        match self {
            Done::Created(link)
            | Done::Recreated { link, .. }
            | Done::Updated { link, .. }
            | Done::Adopted { link, .. }
            | Done::InSync(link) => link,
        }
    }
}

fn polar(step: &'static str) -> impl Fn(PolarError) -> Error {
    move |source| Error::Polar { step, source }
}

/// Carries out `plan`: at most one Polar call.
pub async fn execute(account: &Arc<Account>, plan: Plan) -> Result<Done, Failure> {
    match plan {
        Plan::InSync(link) => Ok(Done::InSync(link)),
        Plan::Create(fields) => create(account, &fields).await.map(Done::Created),
        Plan::Recreate {
            fields,
            old_id,
            old_url,
        } => create(account, &fields).await.map(|link| Done::Recreated {
            link,
            old_id,
            old_url,
        }),
        Plan::Update { link, patch } => {
            let fields = patch.field_names();
            match account.update(&link.id, &patch).await {
                Ok(link) => Ok(Done::Updated { link, fields }),
                Err(e) => Err(Failure {
                    activity: Activity::Updating,
                    error: polar("update")(e),
                    link: Some(link),
                }),
            }
        }
        Plan::Adopt { link, patch, by } => {
            if patch.is_empty() {
                return Ok(Done::Adopted {
                    link,
                    by,
                    fields: Vec::new(),
                });
            }
            let fields = patch.field_names();
            match account.update(&link.id, &patch).await {
                Ok(link) => Ok(Done::Adopted { link, by, fields }),
                Err(e) => Err(Failure {
                    activity: Activity::Updating,
                    error: polar("update")(e),
                    link: Some(link),
                }),
            }
        }
    }
}

async fn create(account: &Arc<Account>, fields: &LinkFields) -> Result<Link, Failure> {
    account
        .create(fields)
        .await
        .map_err(|e| Failure::new(Activity::Creating, polar("create")(e)))
}

/// Deletes a link. `Ok(true)`: deleted now; `Ok(false)`: Polar answered 404.
pub async fn delete(account: &Arc<Account>, id: &str) -> Result<bool, Error> {
    match account.delete(id).await {
        Ok(()) => Ok(true),
        Err(PolarError::NotFound) => Ok(false),
        Err(e) => Err(polar("delete")(e)),
    }
}

/// The fields Polar still holds differently after a write, for a warning: a difference here
/// means the operator's comparison disagrees with Polar's normalisation.
pub fn residual_diff(desired: &LinkFields, link: &Link) -> Vec<&'static str> {
    crate::polar::fields::diff(desired, &link.fields).field_names()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::polar::LinkPatch;
    use crate::polar::fake::{self, Fake, credentials, link};

    fn account(fake: &Arc<Fake>) -> (crate::polar::pool::Pool, Arc<Account>) {
        let (pool, _reports) = fake::pool(fake.clone(), Duration::from_secs(3600));
        let account = pool.account(&credentials("t")).unwrap();
        (pool, account)
    }

    #[tokio::test]
    async fn plans_cost_one_call_at_most() {
        let fields = LinkFields {
            products: vec!["p".into()],
            ..Default::default()
        };
        let current = link("a", fields.clone());
        let fake = Fake::with(vec![current.clone()]);
        let (_pool, account) = account(&fake);
        assert!(matches!(
            execute(&account, Plan::InSync(current.clone()))
                .await
                .unwrap(),
            Done::InSync(_)
        ));
        let patch = LinkPatch {
            label: Some(Some("x".into())),
            ..Default::default()
        };
        match execute(
            &account,
            Plan::Update {
                link: current.clone(),
                patch,
            },
        )
        .await
        .unwrap()
        {
            Done::Updated { link, fields } => {
                assert_eq!(fields, ["label"]);
                assert_eq!(link.fields.label.as_deref(), Some("x"));
            }
            other => panic!("{other:?}"),
        }
        let adopted = execute(
            &account,
            Plan::Adopt {
                link: current,
                patch: LinkPatch::default(),
                by: AdoptedBy::Annotation,
            },
        );
        assert!(matches!(adopted.await.unwrap(), Done::Adopted { .. }));
        assert!(matches!(
            execute(&account, Plan::Create(fields)).await.unwrap(),
            Done::Created(_)
        ));
        assert_eq!(fake.calls(), ["update a [\"label\"]", "create"]);
    }

    #[tokio::test]
    async fn failures_name_the_activity() {
        let fake = Fake::with(vec![]);
        let (_pool, account) = account(&fake);
        fake.fail_next(PolarError::Server { status: 503 });
        let failure = execute(&account, Plan::Create(LinkFields::default()))
            .await
            .unwrap_err();
        assert_eq!(failure.activity, Activity::Creating);
        assert_eq!(failure.error.category(), "polar_server");
    }

    #[tokio::test]
    async fn delete_tells_a_deletion_from_a_404() {
        let fake = Fake::with(vec![link("a", LinkFields::default())]);
        let (_pool, account) = account(&fake);
        assert!(delete(&account, "a").await.unwrap());
        assert!(!delete(&account, "a").await.unwrap());
        fake.fail_next(PolarError::Unauthorized {
            message: "no".into(),
        });
        assert_eq!(
            delete(&account, "a").await.unwrap_err().category(),
            "polar_credentials"
        );
    }
}
