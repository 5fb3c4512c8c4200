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
