//! The accounts of AWS Organizations organizational units (`SCHEDULER_ORGANIZATIONAL_UNITS`): every
//! active account in them and in the OUs under them, read with ListAccountsForParent and
//! ListOrganizationalUnitsForParent (paginated) — without the management account, where
//! service-managed StackSets never deploy the spoke role.
//!
//! Organizations answers these only in the management account or a delegated administrator: the hub
//! runs in one of them.

use std::collections::{BTreeSet, HashSet, VecDeque};

use aws_sdk_organizations::types::{Account, AccountState, AccountStatus};
use stackhand::aws::{AwsError, AwsResultExt as _};

/// Why the organization's accounts could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0}: the hub reads the accounts of SCHEDULER_ORGANIZATIONAL_UNITS from AWS Organizations, which answers only \
     in the management account or a delegated administrator (and its role needs organizations:DescribeOrganization, \
     ListAccountsForParent and ListOrganizationalUnitsForParent)"
)]
pub struct OrganizationsError(#[from] AwsError);

/// The active accounts of `units` and of every OU under them, sorted, without the management account.
pub async fn accounts(
    client: &aws_sdk_organizations::Client,
    units: &[String],
) -> Result<Vec<String>, OrganizationsError> {
    let organization = client.describe_organization().send().await.op("DescribeOrganization")?;
    let management = organization.organization().and_then(|o| o.master_account_id()).map(str::to_owned);
    let mut accounts = BTreeSet::new();
    let mut parents: VecDeque<String> = units.iter().cloned().collect();
    let mut seen = HashSet::new();
    while let Some(parent) = parents.pop_front() {
        if !seen.insert(parent.clone()) {
            continue;
        }
        let mut pages = client.list_accounts_for_parent().parent_id(&parent).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.op("ListAccountsForParent")?;
            accounts.extend(page.accounts().iter().filter(|a| active(a)).filter_map(|a| a.id().map(str::to_owned)));
        }
        let mut pages = client.list_organizational_units_for_parent().parent_id(&parent).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.op("ListOrganizationalUnitsForParent")?;
            parents.extend(page.organizational_units().iter().filter_map(|u| u.id().map(str::to_owned)));
        }
    }
    if let Some(management) = management {
        accounts.remove(&management);
    }
    Ok(accounts.into_iter().collect())
}

/// An account that can be worked in: `State` ACTIVE, or — where the answer has no `State` yet —
/// `Status` ACTIVE. Suspended, closing and closed accounts can't assume a role.
#[allow(deprecated)] // Status: what answers without State still carry.
fn active(account: &Account) -> bool {
    match account.state() {
        Some(state) => *state == AccountState::Active,
        None => account.status() == Some(&AccountStatus::Active),
    }
}

#[cfg(test)]
mod tests;
