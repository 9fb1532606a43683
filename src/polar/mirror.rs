//! [`Mirror`]: one organisation's checkout links as the last sweep of the list endpoint saw
//! them, kept current between sweeps by the operator's own writes. No IO: the sweeps that
//! feed it live in [`super::account`].
//!
//! Observation reads the mirror instead of calling Polar, so that a settled link costs no call
//! between sweeps and a sweep costs one call per 100 links of the organisation (DESIGN.md §4).
//! A sweep is applied whole when its last page has been read: links written by the operator
//! after the sweep started keep the newer written state, links deleted after it started stay
//! deleted. What changed since the previous sweep is returned, so the controller wakes the
//! resources concerned, and no other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::Link;

/// A link in the mirror, with the revision the mirror gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The link as last seen (swept, or answered to a write or a GET).
    pub link: Arc<Link>,
    /// Bumped whenever the link's content changes in the mirror (never reused).
    pub revision: u64,
}

/// What a sweep changed in the mirror, by link id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Links whose content differs from what the mirror held (including links new to it).
    pub changed: Vec<String>,
    /// Links the mirror held that the sweep did not list: deleted, or (if the pages shifted
    /// under the sweep) missed; either way the owner confirms with one GET.
    pub vanished: Vec<String>,
    /// UIDs in the owner tags of the changed links.
    pub owners: Vec<String>,
}

/// A sweep in progress: when it started, for [`Mirror::finish_sweep`].
#[derive(Clone, Copy, Debug)]
pub struct SweepStart(Instant);

#[derive(Debug, Default)]
struct State {
    links: HashMap<String, Entry>,
    /// Link ids by the UID in their owner tag (almost always one: a `Vec`, not a set, whose
    /// smallest allocation is a B-tree node of eleven).
    owners: HashMap<String, Vec<String>>,
    /// Links written, or deleted (`None`), by the operator, with when: a sweep that started
    /// before a write must not undo it.
    writes: HashMap<String, (Instant, Option<Arc<Link>>)>,
    next_revision: u64,
    /// When the last complete sweep started (`None`: the mirror is cold).
    swept_from: Option<Instant>,
}

/// One organisation's links.
#[derive(Debug, Default)]
pub struct Mirror {
    state: Mutex<State>,
}

impl Mirror {
    /// An empty, cold mirror.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        super::pool::lock(&self.state)
    }

    /// Whether a sweep has completed: until then, absence from the mirror means nothing.
    pub fn is_warm(&self) -> bool {
        self.lock().swept_from.is_some()
    }

    /// Whether the last complete sweep started at or after `instant` (so it would have listed a
    /// link committed before it).
    pub fn swept_since(&self, instant: Instant) -> bool {
        self.lock().swept_from.is_some_and(|from| from >= instant)
    }

    /// The link with this id, if the mirror holds it.
    pub fn get(&self, id: &str) -> Option<Entry> {
        self.lock().links.get(&id.to_ascii_lowercase()).cloned()
    }

    /// How many links the mirror holds.
    pub fn len(&self) -> usize {
        self.lock().links.len()
    }

    /// Whether the mirror holds no link.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The links tagged with `uid`, newest first.
    pub fn owned_by(&self, uid: &str) -> Vec<Entry> {
        let state = self.lock();
        let mut owned: Vec<Entry> = state
            .owners
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|id| state.links.get(id))
            .cloned()
            .collect();
        // Polar writes every `created_at` in one format, so the strings sort as the times do.
        owned.sort_by(|a, b| {
            (&b.link.created_at, &b.link.id).cmp(&(&a.link.created_at, &a.link.id))
        });
        owned
    }

    /// Records a link as Polar just answered it (create, update, GET).
    pub fn record(&self, link: Link) -> Entry {
        let now = Instant::now();
        let mut state = self.lock();
        let link = Arc::new(link);
        let id = link.id.to_ascii_lowercase();
        state.writes.insert(id.clone(), (now, Some(link.clone())));
        upsert(&mut state, id, link)
    }

    /// Records that a link is gone (deleted, or answered 404).
    pub fn forget(&self, id: &str) {
        let now = Instant::now();
        let mut state = self.lock();
        let id = id.to_ascii_lowercase();
        state.writes.insert(id.clone(), (now, None));
        remove(&mut state, &id);
    }

    /// The revision of the link `id`, and the highest revision among the links tagged with
    /// `uid`: what a resource's observation depends on.
    pub fn revisions(&self, id: Option<&str>, uid: &str) -> (Option<u64>, Option<u64>) {
        let state = self.lock();
        let of_id = id.and_then(|id| {
            state
                .links
                .get(&id.to_ascii_lowercase())
                .map(|e| e.revision)
        });
        let owned = state
            .owners
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|id| state.links.get(id).map(|e| e.revision))
            .max();
        (of_id, owned)
    }

    /// Marks the start of a sweep.
    pub fn start_sweep(&self) -> SweepStart {
        SweepStart(Instant::now())
    }

    /// Applies a sweep that listed `items`: the mirror becomes what it listed, except for links
    /// written since the sweep started. Returns what changed.
    pub fn finish_sweep(&self, start: SweepStart, items: Vec<Link>) -> Changes {
        let mut state = self.lock();
        let SweepStart(started) = start;
        let mut listed: HashMap<String, Arc<Link>> = items
            .into_iter()
            .map(|l| (l.id.to_ascii_lowercase(), Arc::new(l)))
            .collect();
        // The operator's own writes during the sweep are newer than what the sweep read.
        for (id, (at, written)) in &state.writes {
            if *at >= started {
                match written {
                    Some(link) => {
                        listed.insert(id.clone(), link.clone());
                    }
                    None => {
                        listed.remove(id);
                    }
                }
            }
        }
        state.writes.retain(|_, (at, _)| *at >= started);

        let mut changes = Changes::default();
        let vanished: Vec<String> = state
            .links
            .keys()
            .filter(|id| !listed.contains_key(*id))
            .cloned()
            .collect();
        for id in &vanished {
            remove(&mut state, id);
        }
        changes.vanished = vanished;
        for (id, link) in listed {
            let same = state.links.get(&id).is_some_and(|e| *e.link == *link);
            if !same {
                if let Some(owner) = link.owner() {
                    changes.owners.push(owner.to_owned());
                }
                changes.changed.push(id.clone());
                upsert(&mut state, id, link);
            }
        }
        changes.changed.sort();
        changes.vanished.sort();
        changes.owners.sort();
        changes.owners.dedup();
        state.swept_from = Some(state.swept_from.map_or(started, |from| from.max(started)));
        changes
    }
}

fn upsert(state: &mut State, id: String, link: Arc<Link>) -> Entry {
    if let Some(entry) = state.links.get(&id)
        && *entry.link == *link
    {
        return entry.clone();
    }
    remove(state, &id);
    state.next_revision += 1;
    let entry = Entry {
        link,
        revision: state.next_revision,
    };
    if let Some(owner) = entry.link.owner() {
        let ids = state.owners.entry(owner.to_owned()).or_default();
        if !ids.contains(&id) {
            ids.push(id.clone());
        }
    }
    state.links.insert(id, entry.clone());
    entry
}

fn remove(state: &mut State, id: &str) {
    let Some(entry) = state.links.remove(id) else {
        return;
    };
    if let Some(owner) = entry.link.owner()
        && let Some(ids) = state.owners.get_mut(owner)
    {
        ids.retain(|i| i != id);
        if ids.is_empty() {
            state.owners.remove(owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polar::{LinkFields, MetaValue, OWNER_METADATA_KEY};

    fn link(id: &str, label: &str, created: &str, owner: Option<&str>) -> Link {
        let mut fields = LinkFields {
            products: vec!["p".into()],
            label: Some(label.into()),
            ..Default::default()
        };
        if let Some(uid) = owner {
            fields
                .metadata
                .insert(OWNER_METADATA_KEY.into(), MetaValue::Str(uid.into()));
        }
        Link {
            id: id.into(),
            organization_id: "org".into(),
            client_secret: format!("polar_cl_{id}"),
            url: format!("https://buy.polar.sh/polar_cl_{id}"),
            created_at: created.into(),
            modified_at: None,
            fields,
            availability: Default::default(),
        }
    }

    fn sweep(m: &Mirror, items: Vec<Link>) -> Changes {
        let start = m.start_sweep();
        m.finish_sweep(start, items)
    }

    #[tokio::test(start_paused = true)]
    async fn a_cold_mirror_warms_with_its_first_sweep() {
        let m = Mirror::new();
        assert!(!m.is_warm());
        let before = Instant::now();
        let changes = sweep(
            &m,
            vec![link("a", "A", "1", Some("u1")), link("b", "B", "2", None)],
        );
        assert!(m.is_warm() && m.swept_since(before));
        assert_eq!(changes.changed, ["a", "b"]);
        assert_eq!(changes.owners, ["u1"]);
        assert_eq!(m.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_sweep_reports_only_what_changed_or_vanished() {
        let m = Mirror::new();
        sweep(
            &m,
            vec![link("a", "A", "1", None), link("b", "B", "2", None)],
        );
        let rev_a = m.get("a").unwrap().revision;
        let changes = sweep(
            &m,
            vec![link("a", "A", "1", None), link("c", "C", "3", None)],
        );
        assert_eq!(
            changes,
            Changes {
                changed: vec!["c".into()],
                vanished: vec!["b".into()],
                owners: vec![]
            }
        );
        assert_eq!(
            m.get("a").unwrap().revision,
            rev_a,
            "an unchanged link keeps its revision"
        );
        let edited = sweep(
            &m,
            vec![link("a", "edited", "1", None), link("c", "C", "3", None)],
        );
        assert_eq!(edited.changed, ["a"]);
        assert!(m.get("a").unwrap().revision > rev_a);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_during_a_sweep_win_over_what_it_read() {
        let m = Mirror::new();
        sweep(
            &m,
            vec![link("a", "old", "1", None), link("b", "B", "2", None)],
        );
        let start = m.start_sweep();
        tokio::time::advance(std::time::Duration::from_millis(10)).await;
        m.record(link("a", "patched", "1", None));
        m.forget("b");
        m.record(link("n", "new", "3", None));
        // The sweep read the old state of everything.
        let changes = m.finish_sweep(
            start,
            vec![link("a", "old", "1", None), link("b", "B", "2", None)],
        );
        assert_eq!(
            m.get("a").unwrap().link.fields.label.as_deref(),
            Some("patched")
        );
        assert!(
            m.get("b").is_none(),
            "a link deleted during the sweep stays deleted"
        );
        assert!(
            m.get("n").is_some(),
            "a link created during the sweep is kept"
        );
        assert!(changes.changed.is_empty(), "{changes:?}");
        // A later sweep no longer protects those writes.
        tokio::time::advance(std::time::Duration::from_millis(10)).await;
        let later = sweep(&m, vec![link("a", "patched", "1", None)]);
        assert_eq!(later.vanished, ["n"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_owner_index_lists_newest_first() {
        let m = Mirror::new();
        sweep(
            &m,
            vec![
                link("old", "x", "2026-01-01T00:00:00Z", Some("u")),
                link("new", "x", "2026-02-01T00:00:00Z", Some("u")),
                link("other", "x", "2026-03-01T00:00:00Z", Some("v")),
            ],
        );
        let ids: Vec<String> = m.owned_by("u").iter().map(|e| e.link.id.clone()).collect();
        assert_eq!(ids, ["new", "old"]);
        assert!(m.owned_by("nobody").is_empty());
        let (_, owned) = m.revisions(None, "u");
        assert!(owned.is_some());
        // Untagged by an edit: the index follows.
        m.record(link("new", "x", "2026-02-01T00:00:00Z", None));
        let ids: Vec<String> = m.owned_by("u").iter().map(|e| e.link.id.clone()).collect();
        assert_eq!(ids, ["old"]);
        assert_eq!(
            m.revisions(Some("NEW"), "v").0,
            Some(m.get("new").unwrap().revision)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ids_are_matched_case_insensitively() {
        let m = Mirror::new();
        m.record(link("ABC", "x", "1", None));
        assert!(m.get("abc").is_some());
        m.forget("Abc");
        assert!(m.get("ABC").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_older_sweep_finishing_late_does_not_move_the_mark_back() {
        let m = Mirror::new();
        let early = m.start_sweep();
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let late_mark = Instant::now();
        sweep(&m, vec![]);
        m.finish_sweep(early, vec![]);
        assert!(m.swept_since(late_mark));
    }
}
