//! The security group's opt-in: before any change, the group must carry the tag the function's owner
//! chose ([`GROUP_TAG_KEY`] = the owner's value). A Delete never asks: it only removes its own rules.

use stackhand::aws::AwsResultExt as _;

use crate::allowlist::Allowlist;
use crate::error::AllowlistError;
use crate::settings::GROUP_TAG_KEY;

impl Allowlist {
    /// The group's VPC, if the group has opted in; else the refusal naming the tag to add.
    pub(crate) async fn opted_in_group(&self, group: &str) -> Result<String, AllowlistError> {
        let read = self.ec2.describe_security_groups().group_ids(group).send().await;
        let out = match read.op("DescribeSecurityGroups") {
            Ok(out) => out,
            Err(e) if e.code() == Some("InvalidGroup.NotFound") => {
                return Err(AllowlistError::GroupNotFound { group: group.to_owned(), detail: e.to_string() })
            }
            Err(e) => return Err(e.into()),
        };
        let Some(found) = out.security_groups().iter().find(|g| g.group_id() == Some(group)) else {
            return Err(AllowlistError::GroupNotFound { group: group.to_owned(), detail: "not listed".into() });
        };
        let tag = found.tags().iter().find(|t| t.key() == Some(GROUP_TAG_KEY)).map(|t| t.value().unwrap_or_default());
        if tag != Some(self.group_tag_value.as_str()) {
            let found = match tag {
                None => format!("has no tag {GROUP_TAG_KEY}"),
                Some(v) => format!("is tagged {GROUP_TAG_KEY}={v:?}"),
            };
            tracing::warn!(%group, %found, wanted = %self.group_tag_value, "refused: the group has not opted in");
            return Err(AllowlistError::NotOptedIn {
                group: group.to_owned(),
                found,
                value: self.group_tag_value.clone(),
            });
        }
        Ok(found.vpc_id().unwrap_or_default().to_owned())
    }
}
