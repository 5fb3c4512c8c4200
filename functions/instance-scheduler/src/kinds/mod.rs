//! The kinds of resource the scheduler acts on. Each kind is one module implementing [`Kind`]: how
//! its tagged resources are listed, how starts and stops are batched and sent, and how the marker is
//! written. [`all`] is the registry the run goes through; nothing outside a kind's module knows what
//! that kind is.

pub mod autoscaling;
pub mod ec2;
pub mod ecs;
pub mod eks;
mod kind;
pub mod rds;
pub mod redshift;
pub mod sagemaker;
pub mod saved;

pub(crate) use kind::each;
pub use kind::{Act, Kind, Resource, State};
#[cfg(test)]
pub use kind::{Unit, UNKNOWN_TYPE};

/// Every kind, in the order the run lists them. A kind not here is never listed.
pub fn all() -> &'static [&'static dyn Kind] {
    &[
        &ec2::Instances,
        &rds::Instances,
        &rds::Clusters,
        &autoscaling::Groups,
        &ecs::Services,
        &redshift::Clusters,
        &eks::NodeGroups,
        &sagemaker::Notebooks,
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn the_registry_has_every_kind_once_with_its_own_label_and_listing() {
        let labels: HashSet<&str> = super::all().iter().map(|k| k.label()).collect();
        assert_eq!(labels.len(), super::all().len(), "a label used twice");
        let expected = [
            "ec2-instance",
            "rds-instance",
            "rds-cluster",
            "autoscaling-group",
            "ecs-service",
            "redshift-cluster",
            "eks-nodegroup",
            "sagemaker-notebook",
        ];
        for label in expected {
            assert!(labels.contains(label), "{label} is not in kinds::all()");
        }
        let listings: HashSet<&str> = super::all().iter().map(|k| k.listing().0).collect();
        assert_eq!(listings.len(), super::all().len(), "a listing name used twice");
    }
}
