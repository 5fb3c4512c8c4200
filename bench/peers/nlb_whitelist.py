"""The peer for nlb-ip-allowlist: NLB IP whitelisting the way it is commonly published (boto3,
cfnresponse, the AWS Lambda Runtime Interface Client). Kept in that shape on purpose, defects included,
so that `make bench` compares stackhand with what people actually run: it finds ENIs by a substring of
the load balancer's name, handles Create only, and authorizes one address and port per call.
"""

import boto3
import cfnresponse

ec2 = boto3.client("ec2")


def lambda_handler(event, context):
    try:
        props = event["ResourceProperties"]
        if event["RequestType"] == "Create":
            name = props["LoadBalancerArn"].split("/")[2]
            enis = ec2.describe_network_interfaces(
                Filters=[{"Name": "description", "Values": ["*" + name + "*"]}]
            )["NetworkInterfaces"]
            ips = [eni["PrivateIpAddress"] for eni in enis]
            for ip in ips:
                for port in props["Ports"]:
                    low, _, high = str(port).partition("-")
                    ec2.authorize_security_group_ingress(
                        GroupId=props["SecurityGroupId"],
                        IpProtocol="tcp",
                        FromPort=int(low),
                        ToPort=int(high or low),
                        CidrIp=ip + "/32",
                    )
            cfnresponse.send(event, context, cfnresponse.SUCCESS, {"IPs": ",".join(ips)})
        else:
            cfnresponse.send(event, context, cfnresponse.SUCCESS, {})
    except Exception as e:  # noqa: BLE001 (the published shape)
        print(e)
        cfnresponse.send(event, context, cfnresponse.FAILED, {})
