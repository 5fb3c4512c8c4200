//! The [`Kind`] trait every kind of resource implements, and the [`Resource`] every listing gives.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use stackhand::aws::AwsError;
use tokio::time::Instant;

use crate::call::{CallError, Outcome};
use crate::clients::Clients;
use crate::direction::Direction;
use crate::settings::{Settings, TagKeys};

/// What a kind's action needs besides its resources.
#[derive(Clone, Copy)]
pub struct Act<'a> {
    pub clients: &'a Clients,
    pub settings: &'a Settings,
    pub cutoff: Instant,
}

/// A resource's name and how its start or stop went.
pub type Acted = Vec<(String, Outcome)>;

/// A resource's name and whether its marker was written.
pub type Marked = Vec<(String, Result<(), CallError>)>;

/// One kind of resource.
pub trait Kind: Send + Sync {
    /// The prefix of its resources' names (`ec2-instance` in `ec2-instance/i-…`).
    fn label(&self) -> &'static str;

    /// Its listing's name in a failure (`ec2-instances (listing)`), and the call a listing that had no
    /// answer by the cutoff is named after.
    fn listing(&self) -> (&'static str, &'static str);

    /// Its resources that carry the schedule tag, with their state, in one target.
    fn list<'a>(&'a self, clients: &'a Clients, keys: &'a TagKeys) -> BoxFuture<'a, Result<Vec<Resource>, AwsError>>;

    /// The resources to move in `direction`, in the batches [`Kind::act`] takes: one each unless the
    /// kind's API takes many in a call.
    fn batches<'r>(
        &self,
        _direction: Direction,
        resources: Vec<&'r Resource>,
        _settings: &Settings,
    ) -> Vec<Vec<&'r Resource>> {
        resources.into_iter().map(|r| vec![r]).collect()
    }

    /// Starts or stops one batch; every resource of it comes back with its outcome (and its notes, as
    /// [`Outcome::Noted`] and [`Outcome::Fallback`]).
    fn act<'a>(&'a self, act: Act<'a>, direction: Direction, batch: Vec<&'a Resource>) -> BoxFuture<'a, Acted>;

    /// The markers to write, in the batches [`Kind::mark`] takes: one each unless the kind's tagging
    /// call takes many resources.
    fn mark_batches<'r>(
        &self,
        marks: Vec<(&'r Resource, String)>,
        _settings: &Settings,
    ) -> Vec<Vec<(&'r Resource, String)>> {
        marks.into_iter().map(|m| vec![m]).collect()
    }

    /// Writes the marker tag `key` on one batch of resources, each with its value.
    fn mark<'a>(&'a self, act: Act<'a>, key: &'a str, batch: Vec<(&'a Resource, String)>) -> BoxFuture<'a, Marked>;

    /// How long AWS lets one of its resources stay stopped before starting it by itself (RDS: 7 days):
    /// such a start is no person's, and the schedule stops it again.
    fn restarts_after(&self) -> Option<chrono::TimeDelta> {
        None
    }

    /// The CloudWatch dimensions that name one of its resources in a metric (`InstanceId` = its id):
    /// the alarms on them are muted while it is stopped, when it opts in. None: never muted.
    fn alarm_dimensions(&self, _resource: &Resource) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Why a resource whose status is `status` ([`State::Busy`]) is not stopped now. The databases'
    /// words by default; a kind with other busy states says its own.
    fn busy(&self, status: &str) -> String {
        format!("has status \"{status}\"; AWS stops a database only when it is available")
    }
}

impl fmt::Debug for dyn Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl PartialEq for dyn Kind {
    fn eq(&self, other: &Self) -> bool {
        self.label() == other.label()
    }
}

/// A resource's state, reduced to what deciding needs. Transitional states count as where they lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Running,
    Stopped,
    Starting,
    Stopping,
    /// Up, but in a state from which AWS won't stop it (an RDS `backing-up`, `modifying`, …).
    Busy(String),
}

/// A tagged resource as listed: what every kind has, and the kind's own detail.
#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: &'static dyn Kind,
    pub id: String,
    pub state: State,
    /// The schedule tag's value.
    pub schedule: String,
    /// The override tag's value, if the resource has one.
    pub override_until: Option<String>,
    /// Why this resource is never acted on by itself (an Aurora member, an Auto Scaling group's instance).
    pub hold: Option<String>,
    /// Why AWS refuses to stop it (a read replica, or a database with replicas).
    pub unstoppable: Option<String>,
    /// Why it is not really stopped when stopped (instances protected from scale in outlive capacity 0).
    pub left_running: Option<String>,
    /// Its saved-capacity tag, present while the scheduler has it stopped (or while a stop is half
    /// done: the tag written, the capacity not yet 0).
    pub saved: Option<String>,
    /// A stopped resource whose last start did not hold: why (an EC2 instance's StateReason).
    pub start_failure: Option<String>,
    /// The marker tag's value: the schedule transition a reconcile last applied to it (RFC 3339).
    pub applied: Option<String>,
    /// How many tags it has: at AWS's limit of 50, the scheduler's marker can't be added.
    pub tag_count: usize,
    /// Its ARN, for tagging calls that take one.
    pub arn: Option<String>,
    /// Its `ScheduleMuteAlarms` tag is `true`: its alarms are muted while it is stopped.
    pub mute_alarms: bool,
    /// What only its kind reads (an instance's hibernation, a group's capacity, a service's count).
    pub detail: Detail,
    /// What it runs when it runs, for the savings metrics: as many of each instance type or class (an
    /// Aurora cluster's members, a Multi-AZ database's two instances, a group's desired capacity).
    pub units: Vec<Unit>,
}

/// `count` of `type_name` (an instance type, a DB instance class, a Redshift node type, an ECS launch
/// type): what a resource runs when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub type_name: String,
    pub count: u64,
}

/// The type a unit counts under when its listing does not say (a stopped Auto Scaling group whose
/// type is only in its launch template).
pub const UNKNOWN_TYPE: &str = "unknown";

impl Unit {
    /// `count` of `type_name`, or of [`UNKNOWN_TYPE`] when the listing gave none.
    pub fn new(type_name: Option<&str>, count: impl TryInto<u64>) -> Self {
        let type_name = type_name.map(str::trim).filter(|t| !t.is_empty()).unwrap_or(UNKNOWN_TYPE);
        Self { type_name: type_name.to_owned(), count: count.try_into().unwrap_or(0) }
    }

    /// One of `type_name`.
    pub fn one(type_name: Option<&str>) -> Vec<Self> {
        vec![Self::new(type_name, 1u64)]
    }
}

impl Resource {
    pub fn name(&self) -> String {
        format!("{}/{}", self.kind.label(), self.id)
    }

    pub(crate) fn new(kind: &'static dyn Kind, id: &str, state: State, schedule: &str) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            state,
            schedule: schedule.to_owned(),
            override_until: None,
            hold: None,
            unstoppable: None,
            left_running: None,
            saved: None,
            start_failure: None,
            applied: None,
            tag_count: 0,
            arn: None,
            mute_alarms: false,
            detail: Detail::default(),
            units: Vec::new(),
        }
    }

    /// The override, marker and tag count, read from its tags.
    pub(crate) fn with_tags<'a>(
        mut self,
        tags: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)> + Clone,
        keys: &TagKeys,
    ) -> Self {
        self.override_until = tag(tags.clone(), &keys.override_until).map(Into::into);
        self.applied = tag(tags.clone(), &keys.applied).map(Into::into);
        self.mute_alarms = tag(tags.clone(), &keys.mute_alarms).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        self.tag_count = tags.count();
        self
    }

    /// Its kind's detail, if it is of type `T`.
    pub fn detail<T: Any>(&self) -> Option<&T> {
        self.detail.0.as_deref().and_then(|d| (d as &dyn Any).downcast_ref())
    }
}

/// A kind's own detail about a resource, typed by the kind (read back with [`Resource::detail`]).
#[derive(Clone, Default)]
pub struct Detail(Option<Arc<dyn Any + Send + Sync>>);

impl Detail {
    pub fn new<T: Any + Send + Sync>(detail: T) -> Self {
        Self(Some(Arc::new(detail)))
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Detail(..)" } else { "Detail(none)" })
    }
}

/// The value of tag `key`, if present.
pub(crate) fn tag<'a>(
    tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    key: &str,
) -> Option<&'a str> {
    tags.into_iter().find(|(k, _)| *k == Some(key)).map(|(_, v)| v.unwrap_or_default())
}

/// The outcome for each resource of `batch`, all the same.
pub(crate) fn each(batch: &[&Resource], outcome: Outcome) -> Acted {
    batch.iter().map(|r| (r.name(), outcome.clone())).collect()
}

/// `resources` in chunks of the run's batch size.
pub(crate) fn chunked<T: Clone>(items: Vec<T>, settings: &Settings) -> Vec<Vec<T>> {
    items.chunks(settings.batch_size.max(1)).map(<[T]>::to_vec).collect()
}
