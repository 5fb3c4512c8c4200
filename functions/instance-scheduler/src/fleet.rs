//! What a target runs once a run is done, for the savings metrics: per kind and type, how many units
//! (instances, nodes, tasks) the scheduler manages there, and how many of them run or stand stopped.
//!
//! A resource counts by its [`Unit`]s: an EC2 instance as one of its type, a Multi-AZ database as two
//! of its class, an Aurora cluster as its members (each of its own class), a Redshift cluster as its
//! nodes, an Auto Scaling group, EKS node group or ECS service as its desired capacity (a stopped one by
//! the capacity it saved). A resource held for another one (an Aurora member, a group's instance, a node
//! group's Auto Scaling group) counts with that one, never by itself.

use std::collections::{BTreeMap, HashMap};

use crate::direction::Direction;
use crate::kinds::{Resource, State};

/// One kind and type's counts in one target, after the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub kind: &'static str,
    pub type_name: String,
    /// Units whose resources carry the schedule tag (and the request selects).
    pub managed: u64,
    pub running: u64,
    pub stopped: u64,
}

/// The rows of `resources`, where `moved` says which way each resource the run started or stopped
/// went (by name); the others are as they were listed. Sorted by kind and type.
pub fn count(resources: &[Resource], moved: &HashMap<String, Direction>) -> Vec<Row> {
    let mut rows: BTreeMap<(&'static str, &str), Row> = BTreeMap::new();
    for resource in resources.iter().filter(|r| r.hold.is_none()) {
        let running = match moved.get(&resource.name()) {
            Some(direction) => *direction == Direction::Start,
            None => !matches!(resource.state, State::Stopped | State::Stopping),
        };
        for unit in &resource.units {
            let row = rows.entry((resource.kind.label(), unit.type_name.as_str())).or_insert_with(|| Row {
                kind: resource.kind.label(),
                type_name: unit.type_name.clone(),
                ..Row::default()
            });
            row.managed += unit.count;
            if running {
                row.running += unit.count;
            } else {
                row.stopped += unit.count;
            }
        }
    }
    rows.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{ec2, rds, Unit};

    fn resource(kind: &'static dyn crate::kinds::Kind, id: &str, state: State, units: &[(&str, u64)]) -> Resource {
        let mut resource = Resource::new(kind, id, state, "office");
        resource.units = units.iter().map(|(t, n)| Unit::new(Some(t), *n)).collect();
        resource
    }

    #[test]
    fn units_count_by_kind_and_type_in_the_state_the_run_left_them() {
        let mut member = resource(&rds::Instances, "docs-1", State::Running, &[("db.r6g.large", 1)]);
        member.hold = Some("is a member of DB cluster docs".into());
        let resources = vec![
            resource(&ec2::Instances, "i-1", State::Running, &[("t3.micro", 1)]),
            resource(&ec2::Instances, "i-2", State::Running, &[("t3.micro", 1)]),
            resource(&ec2::Instances, "i-3", State::Stopped, &[("m5.large", 1)]),
            resource(&ec2::Instances, "i-4", State::Stopping, &[("t3.micro", 1)]),
            // Multi-AZ: two instances of its class.
            resource(&rds::Instances, "orders", State::Stopped, &[("db.m5.large", 2)]),
            // An Aurora cluster: its members by class.
            resource(&rds::Clusters, "docs", State::Running, &[("db.r6g.large", 2), ("db.serverless", 1)]),
            member,
        ];
        // i-1 was stopped by the run; orders was started; i-3's start failed (not in `moved`).
        let moved = HashMap::from([
            ("ec2-instance/i-1".to_owned(), Direction::Stop),
            ("rds-instance/orders".to_owned(), Direction::Start),
        ]);
        let rows = count(&resources, &moved);
        let row = |kind: &str, t: &str| {
            let r = rows.iter().find(|r| r.kind == kind && r.type_name == t).unwrap_or_else(|| panic!("{t}: {rows:?}"));
            (r.managed, r.running, r.stopped)
        };
        assert_eq!(row("ec2-instance", "t3.micro"), (3, 1, 2));
        assert_eq!(row("ec2-instance", "m5.large"), (1, 0, 1));
        assert_eq!(row("rds-instance", "db.m5.large"), (2, 2, 0));
        assert_eq!(row("rds-cluster", "db.r6g.large"), (2, 2, 0));
        assert_eq!(row("rds-cluster", "db.serverless"), (1, 1, 0));
        // The member counts with its cluster, not as an rds-instance of its own.
        assert!(!rows.iter().any(|r| r.kind == "rds-instance" && r.type_name == "db.r6g.large"), "{rows:?}");
        assert_eq!(rows.len(), 5);
        assert!(rows.windows(2).all(|w| (w[0].kind, &w[0].type_name) < (w[1].kind, &w[1].type_name)));
    }

    #[test]
    fn a_resource_whose_listing_gave_no_type_counts_as_unknown() {
        assert_eq!(Unit::new(None, 3u64), Unit { type_name: crate::kinds::UNKNOWN_TYPE.into(), count: 3 });
        assert_eq!(Unit::new(Some("  "), 1u64).type_name, "unknown");
        assert_eq!(Unit::new(Some("t3.micro"), -1i32).count, 0, "a negative count counts nothing");
    }
}
