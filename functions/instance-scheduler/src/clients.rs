//! One target's AWS clients: what every kind's listing and action calls.

/// One target's SDK clients (an account in a Region), built on the target's first run in the process.
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ecs: aws_sdk_ecs::Client,
    /// ECS services' scalable targets.
    pub applicationautoscaling: aws_sdk_applicationautoscaling::Client,
    pub redshift: aws_sdk_redshift::Client,
    pub eks: aws_sdk_eks::Client,
    pub sagemaker: aws_sdk_sagemaker::Client,
    /// The alarms muted while a resource is stopped.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// This account and Region's StartInstances/StopInstances buckets.
    pub pacer: crate::pace::Pacer,
    /// Where the clients call: for the ARNs a listing does not give.
    pub place: Place,
}

/// A target's partition, Region and account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Place {
    /// The ARN of `resource` (`cluster:name`) of `service` here.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{}:{}:{resource}", self.partition, self.region, self.account)
    }
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig, place: Place) -> Self {
        Self {
            ec2: stackhand::client!(aws_sdk_ec2, config),
            rds: stackhand::client!(aws_sdk_rds, config),
            autoscaling: stackhand::client!(aws_sdk_autoscaling, config),
            ecs: stackhand::client!(aws_sdk_ecs, config),
            applicationautoscaling: stackhand::client!(aws_sdk_applicationautoscaling, config),
            redshift: stackhand::client!(aws_sdk_redshift, config),
            eks: stackhand::client!(aws_sdk_eks, config),
            sagemaker: stackhand::client!(aws_sdk_sagemaker, config),
            cloudwatch: stackhand::client!(aws_sdk_cloudwatch, config),
            pacer: crate::pace::Pacer::default(),
            place,
        }
    }
}
