//! Talking to Polar for a reconcile: [`observe`] what exists, [`execute`] a [`Plan`], and
//! [`delete`]. Every call goes through the [`CheckoutLinks`] trait (the reqwest client in
//! production, the emulator in tests, fakes in unit tests). No Kubernetes here.

use crate::crd::ADOPT_ANNOTATION;
use crate::error::Error;
use crate::polar::{CheckoutLinks, Link, LinkFields, PolarError};

use super::plan::{AdoptedBy, Observed, Plan, diff, is_owned_by};
use super::status::Activity;

/// Links per page of the list endpoint (Polar's maximum).
pub const PAGE_SIZE: u32 = 100;

/// What observation starts from.
#[derive(Clone, Debug, Default)]
pub struct Known<'a> {
    /// The link the resource owns, if its id is known (status, or this process' memory).
    pub id: Option<&'a str>,
    /// Its URL as last recorded.
    pub url: Option<&'a str>,
    /// The adoption annotation's value.
    pub adopt: Option<&'a str>,
    /// The resource's UID.
    pub uid: &'a str,
    /// Whether a link tagged with the UID may exist without its id being known (a create
    /// whose answer was lost, or one made by an earlier process).
    pub search_owned: bool,
}

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

/// Finds the link the resource stands for: the known id (GET), else the link the
/// annotation names (GET), else — only when one may exist — a link tagged with the UID (list,
/// 100 per page).
pub async fn observe(client: &dyn CheckoutLinks, known: &Known<'_>) -> Result<Observed, Error> {
    if let Some(id) = known.id {
        return match client.get(id).await {
            Ok(link) => Ok(Observed::Linked(link)),
            Err(PolarError::NotFound) => Ok(Observed::Gone {
                id: id.to_owned(),
                url: known.url.map(str::to_owned),
            }),
            Err(e) => Err(polar("get")(e)),
        };
    }
    if let Some(id) = known.adopt {
        let link = client.get(id.trim()).await.map_err(|e| match e {
            PolarError::NotFound => Error::Adoption(format!(
                "the annotation {ADOPT_ANNOTATION} names the Polar link {id}, which does not exist (or belongs to another organisation)"
            )),
            PolarError::Validation { .. } => {
                Error::Adoption(format!("the annotation {ADOPT_ANNOTATION} must be a Polar link id (a UUID), not {id:?}"))
            }
            other => polar("get")(other),
        })?;
        if let Some(owner) = link.fields.metadata.get(crate::crd::OWNER_METADATA_KEY)
            && !is_owned_by(&link, known.uid)
        {
            return Err(Error::Adoption(format!(
                "the Polar link {id} is managed by another CheckoutLink (uid {}); remove the annotation {ADOPT_ANNOTATION} or delete that resource first",
                serde_json::to_string(owner).unwrap_or_default()
            )));
        }
        return Ok(Observed::AdoptTarget(link));
    }
    if known.search_owned
        && let Some(link) = find_owned(client, known.uid).await?
    {
        return Ok(Observed::Owned(link));
    }
    Ok(Observed::Absent)
}

/// The first link (oldest first) whose metadata carries `uid` under the owner key.
pub async fn find_owned(client: &dyn CheckoutLinks, uid: &str) -> Result<Option<Link>, Error> {
    let mut page = 1;
    loop {
        let listed = client.list(page, PAGE_SIZE).await.map_err(polar("list"))?;
        if let Some(link) = listed.items.into_iter().find(|l| is_owned_by(l, uid)) {
            return Ok(Some(link));
        }
        if u64::from(page) >= listed.max_page {
            return Ok(None);
        }
        page += 1;
    }
}

/// Carries out `plan`: at most one Polar call.
pub async fn execute(client: &dyn CheckoutLinks, plan: Plan) -> Result<Done, Failure> {
    match plan {
        Plan::InSync(link) => Ok(Done::InSync(link)),
        Plan::Create(fields) => create(client, &fields).await.map(Done::Created),
        Plan::Recreate {
            fields,
            old_id,
            old_url,
        } => create(client, &fields).await.map(|link| Done::Recreated {
            link,
            old_id,
            old_url,
        }),
        Plan::Update { link, patch } => {
            let fields = patch.field_names();
            match client.update(&link.id, &patch).await {
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
            match client.update(&link.id, &patch).await {
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

async fn create(client: &dyn CheckoutLinks, fields: &LinkFields) -> Result<Link, Failure> {
    client
        .create(fields)
        .await
        .map_err(|e| Failure::new(Activity::Creating, polar("create")(e)))
}

/// Deletes the link; a 404 counts as done.
pub async fn delete(client: &dyn CheckoutLinks, id: &str) -> Result<(), Error> {
    match client.delete(id).await {
        Ok(()) | Err(PolarError::NotFound) => Ok(()),
        Err(e) => Err(polar("delete")(e)),
    }
}

/// The fields Polar still holds differently after a write, for a warning: a difference here
/// means the operator's comparison disagrees with Polar's normalisation.
pub fn residual_diff(desired: &LinkFields, link: &Link) -> Vec<&'static str> {
    diff(desired, &link.fields).field_names()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::crd::OWNER_METADATA_KEY;
    use crate::polar::{LinkPatch, MetaValue, Metadata, Page};

    const UID: &str = "uid-1";

    /// A fake Polar: canned answers in order, and a log of the calls.
    #[derive(Default)]
    struct Fake {
        links: Mutex<Vec<Link>>,
        calls: Mutex<Vec<String>>,
        fail: Mutex<VecDeque<PolarError>>,
    }

    impl Fake {
        fn with(links: Vec<Link>) -> Self {
            Fake {
                links: Mutex::new(links),
                ..Default::default()
            }
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
        fn call(&self, c: String) -> Result<(), PolarError> {
            self.calls.lock().unwrap().push(c);
            self.fail.lock().unwrap().pop_front().map_or(Ok(()), Err)
        }
    }

    #[async_trait::async_trait]
    impl CheckoutLinks for Fake {
        async fn create(&self, fields: &LinkFields) -> Result<Link, PolarError> {
            self.call("create".into())?;
            let l = link(
                &format!("new-{}", self.links.lock().unwrap().len()),
                fields.clone(),
            );
            self.links.lock().unwrap().push(l.clone());
            Ok(l)
        }
        async fn get(&self, id: &str) -> Result<Link, PolarError> {
            self.call(format!("get {id}"))?;
            self.links
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.id == id)
                .cloned()
                .ok_or(PolarError::NotFound)
        }
        async fn update(&self, id: &str, patch: &LinkPatch) -> Result<Link, PolarError> {
            self.call(format!("update {id} {:?}", patch.field_names()))?;
            let mut links = self.links.lock().unwrap();
            let l = links
                .iter_mut()
                .find(|l| l.id == id)
                .ok_or(PolarError::NotFound)?;
            if let Some(label) = &patch.label {
                l.fields.label = label.clone();
            }
            if let Some(m) = &patch.metadata {
                l.fields.metadata = m.clone();
            }
            Ok(l.clone())
        }
        async fn delete(&self, id: &str) -> Result<(), PolarError> {
            self.call(format!("delete {id}"))?;
            let mut links = self.links.lock().unwrap();
            let before = links.len();
            links.retain(|l| l.id != id);
            if links.len() == before {
                Err(PolarError::NotFound)
            } else {
                Ok(())
            }
        }
        async fn list(&self, page: u32, limit: u32) -> Result<Page, PolarError> {
            self.call(format!("list {page}"))?;
            let links = self.links.lock().unwrap();
            let start = ((page - 1) * limit) as usize;
            let items = links
                .iter()
                .skip(start)
                .take(limit as usize)
                .cloned()
                .collect();
            let total = links.len() as u64;
            Ok(Page {
                items,
                total_count: total,
                max_page: total.div_ceil(u64::from(limit)),
            })
        }
    }

    fn link(id: &str, fields: LinkFields) -> Link {
        Link {
            id: id.into(),
            organization_id: "org".into(),
            client_secret: format!("polar_cl_{id}"),
            url: format!("https://buy.polar.sh/polar_cl_{id}"),
            created_at: String::new(),
            modified_at: None,
            fields,
        }
    }

    fn owned_fields(uid: &str) -> LinkFields {
        LinkFields {
            products: vec!["p".into()],
            metadata: Metadata::from([(OWNER_METADATA_KEY.to_owned(), MetaValue::Str(uid.into()))]),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_known_link_is_read_with_one_get() {
        let fake = Fake::with(vec![link("a", owned_fields(UID))]);
        let known = Known {
            id: Some("a"),
            uid: UID,
            search_owned: true,
            ..Default::default()
        };
        assert!(matches!(
            observe(&fake, &known).await.unwrap(),
            Observed::Linked(_)
        ));
        assert_eq!(fake.calls(), ["get a"]);
    }

    #[tokio::test]
    async fn a_vanished_link_is_gone_with_its_url() {
        let fake = Fake::default();
        let known = Known {
            id: Some("a"),
            url: Some("u"),
            uid: UID,
            ..Default::default()
        };
        assert_eq!(
            observe(&fake, &known).await.unwrap(),
            Observed::Gone {
                id: "a".into(),
                url: Some("u".into())
            }
        );
    }

    #[tokio::test]
    async fn the_owner_search_pages_through_the_list() {
        let mut links: Vec<Link> = (0..150)
            .map(|i| link(&format!("x{i}"), owned_fields("other")))
            .collect();
        links.push(link("mine", owned_fields(UID)));
        let fake = Fake::with(links);
        let known = Known {
            uid: UID,
            search_owned: true,
            ..Default::default()
        };
        match observe(&fake, &known).await.unwrap() {
            Observed::Owned(l) => assert_eq!(l.id, "mine"),
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.calls(), ["list 1", "list 2"]);
    }

    #[tokio::test]
    async fn without_a_possible_owned_link_nothing_is_listed() {
        let fake = Fake::default();
        let known = Known {
            uid: UID,
            search_owned: false,
            ..Default::default()
        };
        assert_eq!(observe(&fake, &known).await.unwrap(), Observed::Absent);
        assert!(fake.calls().is_empty());
        let known = Known {
            uid: UID,
            search_owned: true,
            ..Default::default()
        };
        assert_eq!(observe(&fake, &known).await.unwrap(), Observed::Absent);
        assert_eq!(fake.calls(), ["list 1"]);
    }

    #[tokio::test]
    async fn adoption_refuses_missing_and_foreign_links() {
        let fake = Fake::with(vec![
            link("theirs", owned_fields("other-uid")),
            link("free", LinkFields::default()),
        ]);
        let adopt = |id| Known {
            adopt: Some(id),
            uid: UID,
            ..Default::default()
        };
        assert!(matches!(
            observe(&fake, &adopt("free")).await.unwrap(),
            Observed::AdoptTarget(_)
        ));
        let foreign = observe(&fake, &adopt("theirs")).await.unwrap_err();
        assert!(
            foreign.to_string().contains("another CheckoutLink"),
            "{foreign}"
        );
        let missing = observe(&fake, &adopt("nope")).await.unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
    }

    #[tokio::test]
    async fn plans_cost_one_call_at_most() {
        let fake = Fake::with(vec![link("a", owned_fields(UID))]);
        let desired = owned_fields(UID);
        let current = link("a", owned_fields(UID));
        assert!(matches!(
            execute(&fake, Plan::InSync(current.clone())).await.unwrap(),
            Done::InSync(_)
        ));
        let patch = LinkPatch {
            label: Some(Some("x".into())),
            ..Default::default()
        };
        match execute(
            &fake,
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
            &fake,
            Plan::Adopt {
                link: current,
                patch: LinkPatch::default(),
                by: AdoptedBy::Annotation,
            },
        );
        assert!(matches!(adopted.await.unwrap(), Done::Adopted { .. }));
        assert!(matches!(
            execute(&fake, Plan::Create(desired)).await.unwrap(),
            Done::Created(_)
        ));
        assert_eq!(fake.calls(), ["update a [\"label\"]", "create"]);
    }

    #[tokio::test]
    async fn failures_name_the_activity() {
        let fake = Fake::default();
        fake.fail
            .lock()
            .unwrap()
            .push_back(PolarError::Server { status: 503 });
        let failure = execute(&fake, Plan::Create(owned_fields(UID)))
            .await
            .unwrap_err();
        assert_eq!(failure.activity, Activity::Creating);
        assert_eq!(failure.error.category(), "polar_server");
    }

    #[tokio::test]
    async fn delete_counts_404_as_done() {
        let fake = Fake::with(vec![link("a", owned_fields(UID))]);
        delete(&fake, "a").await.unwrap();
        delete(&fake, "a").await.unwrap();
        fake.fail
            .lock()
            .unwrap()
            .push_back(PolarError::Unauthorized {
                message: "no".into(),
            });
        assert_eq!(
            delete(&fake, "a").await.unwrap_err().category(),
            "polar_credentials"
        );
    }
}
