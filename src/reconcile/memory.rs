//! What the controller remembers per resource, in memory (keyed by UID): the inputs of the
//! last attempt and until when nothing is to be done for them, the failure count for the
//! backoff, the link id it last established, and since when a create may have left a link
//! behind whose id is not known. Pure data; [`super::context`] keeps one per resource.

use std::time::Duration;

use tokio::time::Instant;

/// What a reconcile depends on besides time. When it has not changed, a reconcile triggered
/// before the scheduled time does nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The credentials' identity (server and token fingerprint), or why there are none.
    pub credentials: String,
    /// The adoption annotation.
    pub adopt: Option<String>,
    /// Whether the resource is being deleted.
    pub deleting: bool,
    /// The mirror's revisions of the link and of the links tagged with the UID: a change in
    /// Polar (seen by a sweep) is a new input.
    pub observed: (Option<u64>, Option<u64>),
    /// The catalog revision (products and discounts) of the credentials' server.
    pub catalog: u64,
    /// The revision of the resource's orders, and whether the orders sweep fails (when
    /// campaign results are on).
    pub results: (u64, bool),
    /// The sync annotation's value (a new one is a request to reconcile now).
    pub sync: Option<String>,
}

/// "Nothing to do for these inputs until then" (`None`: until they change).
#[derive(Clone, Debug)]
pub struct Hold {
    inputs: Inputs,
    until: Option<Instant>,
}

impl Hold {
    /// Holds `inputs` for `delay` from now (`None`: until they change).
    pub fn new(inputs: Inputs, delay: Option<Duration>) -> Self {
        Hold {
            inputs,
            until: delay.map(|d| Instant::now() + d),
        }
    }

    /// `Some(wait)` when nothing is to be done for `inputs` yet: `Some(None)` until they
    /// change, `Some(Some(d))` for `d` more.
    pub fn wait(&self, inputs: &Inputs) -> Option<Option<Duration>> {
        if &self.inputs != inputs {
            return None;
        }
        match self.until {
            None => Some(None),
            Some(until) => {
                let now = Instant::now();
                (until > now).then(|| Some(until - now))
            }
        }
    }
}

/// What the controller remembers about one resource.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    /// Nothing to do for these inputs until then.
    pub hold: Option<Hold>,
    /// Consecutive failures, for the backoff.
    pub failures: u32,
    /// The link id and URL this process last established, in case the status lags behind.
    pub known: Option<(String, String)>,
    /// A create was sent at this time without a definite answer: the link may exist, and may
    /// even be committed by Polar up to a request timeout later.
    pub uncertain_since: Option<Instant>,
    /// This process saw the resource before any operator handled it (it had no finalizer
    /// yet, and a create always comes after the finalizer): no earlier process can have
    /// created a link for it.
    pub unhandled_when_first_seen: bool,
    /// The reason of the resource's `Sellable` condition, for the metric.
    pub sellable: Option<String>,
    /// The last export failure reported (an event goes out when it changes).
    pub export_error: Option<String>,
    /// The resource is paused (for the gauge).
    pub paused: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(generation: i64) -> Inputs {
        Inputs {
            generation: Some(generation),
            credentials: "production abc".into(),
            adopt: None,
            deleting: false,
            observed: (Some(1), None),
            catalog: 0,
            results: (0, false),
            sync: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_lasts_for_its_inputs_and_its_time() {
        let hold = Hold::new(inputs(1), Some(Duration::from_secs(10)));
        assert_eq!(hold.wait(&inputs(1)), Some(Some(Duration::from_secs(10))));
        assert_eq!(hold.wait(&inputs(2)), None, "new inputs are not held");
        let changed_in_polar = Inputs {
            observed: (Some(2), None),
            ..inputs(1)
        };
        assert_eq!(
            hold.wait(&changed_in_polar),
            None,
            "a change in Polar is not held"
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(hold.wait(&inputs(1)), None, "the time is over");
        let forever = Hold::new(inputs(1), None);
        assert_eq!(forever.wait(&inputs(1)), Some(None));
    }
}
