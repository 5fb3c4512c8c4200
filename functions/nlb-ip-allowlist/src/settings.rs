//! The function owner's settings, from the function's environment (template parameters).

/// The environment variable holding the account's "Inbound or outbound rules per security group"
/// quota (Service Quotas code L-0EA8095F) when it was raised above AWS's default.
pub const QUOTA_ENV: &str = "RULES_PER_SECURITY_GROUP";
/// AWS's default of that quota, per group, per direction, for IPv4 and IPv6 rules each.
pub const DEFAULT_RULES_PER_GROUP: usize = 60;

/// The quota a [`QUOTA_ENV`] value sets: unset or blank means AWS's default; anything but a positive
/// number is kept as the unreadable text, to be reported by the Create or Update that needs it.
pub fn rules_per_group(setting: Option<&str>) -> Result<usize, String> {
    match setting.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_RULES_PER_GROUP),
        Some(s) => s.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| s.to_owned()),
    }
}

/// The tag a security group must carry for an allowlist to add or change rules in it (its owner's
/// opt-in), valued as the function's owner sets in [`GROUP_TAG_ENV`].
pub const GROUP_TAG_KEY: &str = "stackhand:allowlist";
/// The environment variable holding the value [`GROUP_TAG_KEY`] must have (template parameter
/// `AllowlistGroupTagValue`).
pub const GROUP_TAG_ENV: &str = "ALLOWLIST_GROUP_TAG_VALUE";
/// The value when [`GROUP_TAG_ENV`] is unset or blank: the opt-in is never off.
pub const DEFAULT_GROUP_TAG_VALUE: &str = "true";

/// The value a group's [`GROUP_TAG_KEY`] must have, from [`GROUP_TAG_ENV`]'s value.
pub fn group_tag_value(setting: Option<&str>) -> String {
    setting.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(DEFAULT_GROUP_TAG_VALUE).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_opt_in_is_on_unless_the_owner_names_another_value() {
        assert_eq!(group_tag_value(None), "true");
        assert_eq!(group_tag_value(Some("")), "true", "blank is not \"any group\"");
        assert_eq!(group_tag_value(Some("  ")), "true");
        assert_eq!(group_tag_value(Some(" team-a ")), "team-a");
    }

    #[test]
    fn the_quota_setting_is_a_positive_number_or_reported() {
        assert_eq!(rules_per_group(None), Ok(DEFAULT_RULES_PER_GROUP));
        assert_eq!(rules_per_group(Some("200")), Ok(200));
        assert_eq!(rules_per_group(Some("0")), Err("0".into()));
    }
}
