//! Organizations' answers that moto does not give: pages, account states, AccessDenied outside the
//! management account or a delegated administrator.

use aws_sdk_organizations::operation::describe_organization::{DescribeOrganizationError, DescribeOrganizationOutput};
use aws_sdk_organizations::operation::list_accounts_for_parent::ListAccountsForParentOutput;
use aws_sdk_organizations::operation::list_organizational_units_for_parent::ListOrganizationalUnitsForParentOutput;
use aws_sdk_organizations::types::{Account, AccountState, Organization, OrganizationalUnit};
use aws_smithy_mocks::mock;

use super::*;
use crate::testing::{error_meta, interceptor};

fn organizations(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_organizations::Client {
    let config = testkit::mock_sdk_config();
    stackhand::client!(aws_sdk_organizations, &config, builder => builder.interceptor(interceptor(rules, &[])))
}

fn account(id: &str, state: AccountState) -> Account {
    Account::builder().id(id).state(state).build()
}

#[tokio::test]
async fn units_are_walked_down_page_by_page_without_the_management_account_or_closed_ones() {
    let organization = mock!(aws_sdk_organizations::Client::describe_organization).then_output(|| {
        let organization = Organization::builder().master_account_id("111111111111").build();
        DescribeOrganizationOutput::builder().organization(organization).build()
    });
    // ou-dev: two pages of accounts (the management account among them), one child OU.
    let dev_first = mock!(aws_sdk_organizations::Client::list_accounts_for_parent)
        .match_requests(|r| r.parent_id() == Some("ou-root-dev00000") && r.next_token().is_none())
        .then_output(|| {
            ListAccountsForParentOutput::builder()
                .accounts(account("222222222222", AccountState::Active))
                .accounts(account("111111111111", AccountState::Active))
                .next_token("page-2")
                .build()
        });
    let dev_second = mock!(aws_sdk_organizations::Client::list_accounts_for_parent)
        .match_requests(|r| r.parent_id() == Some("ou-root-dev00000") && r.next_token() == Some("page-2"))
        .then_output(|| {
            ListAccountsForParentOutput::builder()
                .accounts(account("333333333333", AccountState::Suspended))
                .accounts(account("444444444444", AccountState::Active))
                .build()
        });
    let team = mock!(aws_sdk_organizations::Client::list_accounts_for_parent)
        .match_requests(|r| r.parent_id() == Some("ou-root-team0000"))
        .then_output(|| {
            ListAccountsForParentOutput::builder()
                .accounts(account("555555555555", AccountState::Active))
                .accounts(account("666666666666", AccountState::PendingClosure))
                .build()
        });
    let children = mock!(aws_sdk_organizations::Client::list_organizational_units_for_parent)
        .match_requests(|r| r.parent_id() == Some("ou-root-dev00000"))
        .then_output(|| {
            let team = OrganizationalUnit::builder().id("ou-root-team0000").build();
            ListOrganizationalUnitsForParentOutput::builder().organizational_units(team).build()
        });
    let leaves = mock!(aws_sdk_organizations::Client::list_organizational_units_for_parent)
        .then_output(|| ListOrganizationalUnitsForParentOutput::builder().build());
    let client = organizations(&[&organization, &dev_first, &dev_second, &team, &children, &leaves]);
    let found = accounts(&client, &["ou-root-dev00000".into(), "ou-root-team0000".into()]).await.unwrap();
    assert_eq!(found, ["222222222222", "444444444444", "555555555555"]);
    assert_eq!((dev_second.num_calls(), team.num_calls()), (1, 1), "each OU listed once, every page read");
}

#[tokio::test]
async fn outside_the_management_account_the_error_says_where_the_hub_must_run() {
    let denied = mock!(aws_sdk_organizations::Client::describe_organization).then_error(|| {
        DescribeOrganizationError::generic(error_meta(
            "AccessDeniedException",
            "You don't have permissions to access this resource.",
        ))
    });
    let client = organizations(&[&denied]);
    let e = accounts(&client, &["ou-root-dev00000".into()]).await.unwrap_err().to_string();
    assert!(e.starts_with("DescribeOrganization failed: AccessDeniedException"), "{e}");
    assert!(e.contains("management account or a delegated administrator"), "{e}");
}
