"""The peer for aurora-schema-init: schema initialisation from SQL in SSM Parameter Store the way it is
commonly published (boto3, PyMySQL, cfnresponse, the AWS Lambda Runtime Interface Client). Kept in that
shape on purpose, defects included, so that `make bench` compares stackhand with what people actually
run: it splits scripts on ";" (a semicolon inside a string literal breaks it), keeps no history, so an
Update or a retried Create applies everything again, and has no lock against a concurrent run.
"""

import boto3
import cfnresponse
import pymysql

ssm = boto3.client("ssm")


def lambda_handler(event, context):
    try:
        props = event["ResourceProperties"]
        if event["RequestType"] == "Create":
            password = ssm.get_parameter(Name=props["PasswordParameter"], WithDecryption=True)
            parameters = []
            for page in ssm.get_paginator("get_parameters_by_path").paginate(
                Path=props["SqlParameterPath"], Recursive=True
            ):
                parameters.extend(page["Parameters"])
            connection = pymysql.connect(
                host=props["Endpoint"],
                port=int(props["Port"]),
                user=props["Username"],
                password=password["Parameter"]["Value"],
                database=props["Database"],
                connect_timeout=10,
            )
            with connection:
                with connection.cursor() as cursor:
                    for parameter in sorted(parameters, key=lambda p: p["Name"]):
                        for statement in parameter["Value"].split(";"):
                            if statement.strip():
                                cursor.execute(statement)
                connection.commit()
            cfnresponse.send(event, context, cfnresponse.SUCCESS, {"Migrations": len(parameters)})
        else:
            cfnresponse.send(event, context, cfnresponse.SUCCESS, {})
    except Exception as e:  # noqa: BLE001 (the published shape)
        print(e)
        cfnresponse.send(event, context, cfnresponse.FAILED, {})
