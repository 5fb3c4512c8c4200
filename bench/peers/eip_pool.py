"""The peer for eip-binding: binding an Elastic IP from a tagged pool the way it is commonly published
(boto3, cfnresponse, the AWS Lambda Runtime Interface Client). Kept in that shape on purpose, defects
included, so that `make bench` compares stackhand with what people actually run: it takes the first
unassociated address of the pool with no guard against a concurrent binder taking the same one, and on
Delete disassociates by the association id it returned as the physical resource id.
"""

import boto3
import cfnresponse

ec2 = boto3.client("ec2")


def lambda_handler(event, context):
    try:
        props = event["ResourceProperties"]
        if event["RequestType"] == "Create":
            key, _, value = props["PoolTag"].partition("=")
            addresses = ec2.describe_addresses(
                Filters=[{"Name": "tag:" + key, "Values": [value]}]
            )["Addresses"]
            free = [a for a in addresses if "AssociationId" not in a]
            address = free[0]
            association = ec2.associate_address(
                AllocationId=address["AllocationId"], InstanceId=props["InstanceId"]
            )["AssociationId"]
            data = {"AllocationId": address["AllocationId"], "PublicIp": address["PublicIp"]}
            cfnresponse.send(event, context, cfnresponse.SUCCESS, data, association)
        elif event["RequestType"] == "Delete":
            ec2.disassociate_address(AssociationId=event["PhysicalResourceId"])
            cfnresponse.send(event, context, cfnresponse.SUCCESS, {}, event["PhysicalResourceId"])
        else:
            cfnresponse.send(event, context, cfnresponse.SUCCESS, {}, event["PhysicalResourceId"])
    except Exception as e:  # noqa: BLE001 (the published shape)
        print(e)
        cfnresponse.send(event, context, cfnresponse.FAILED, {})
