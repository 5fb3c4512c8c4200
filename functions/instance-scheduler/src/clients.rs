//! One target's AWS clients: what every kind's listing and action calls.

/// One target's SDK clients (an account in a Region), built on the target's first run in the process.
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ecs: aws_sdk_ecs::Client,
    /// ECS services' scalable targets.
    pub applicationautoscaling: aws_sdk_applicationautoscaling::Client,
    /// This account and Region's StartInstances/StopInstances buckets.
    pub pacer: crate::pace::Pacer,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            ec2: stackhand::client!(aws_sdk_ec2, config),
            rds: stackhand::client!(aws_sdk_rds, config),
            autoscaling: stackhand::client!(aws_sdk_autoscaling, config),
            ecs: stackhand::client!(aws_sdk_ecs, config),
            applicationautoscaling: stackhand::client!(aws_sdk_applicationautoscaling, config),
            pacer: crate::pace::Pacer::default(),
        }
    }
}
