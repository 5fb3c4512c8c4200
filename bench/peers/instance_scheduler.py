"""The peer for instance-scheduler: a Python scheduler in the shape commonly published (boto3 under the
AWS Lambda Runtime Interface Client), one start or stop call per resource. It is given the better of the
common shapes: tags read from DescribeDBInstances' TagList rather than a ListTagsForResource call per
database, and time-zone aware evaluation with zoneinfo. It understands only the one schedule form the
benchmark uses: "<Day>-<Day> HH:MM-HH:MM <IANA zone>".
"""

import datetime
import os
from zoneinfo import ZoneInfo

import boto3

ec2 = boto3.client("ec2")
rds = boto3.client("rds")
TAG = os.environ.get("SCHEDULE_TAG_KEY", "Schedule")
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def should_run(spec, now):
    days, hours, zone = spec.split()
    local = now.astimezone(ZoneInfo(zone))
    first, last = (DAYS.index(d) for d in days.split("-"))
    start, end = hours.split("-")
    return first <= local.weekday() <= last and start <= local.strftime("%H:%M") < end


def lambda_handler(event, context):
    action = event.get("action", "reconcile")
    at = event.get("time")
    now = datetime.datetime.fromisoformat(at.replace("Z", "+00:00")) if at else datetime.datetime.now(datetime.timezone.utc)
    started, stopped = [], []
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag-key", "Values": [TAG]},
                 {"Name": "instance-state-name", "Values": ["running", "stopped"]}])
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                want = action == "start" or (action == "reconcile" and should_run(tags[TAG], now))
                state, iid = instance["State"]["Name"], instance["InstanceId"]
                if want and state == "stopped":
                    ec2.start_instances(InstanceIds=[iid])
                    started.append(iid)
                elif not want and state == "running":
                    ec2.stop_instances(InstanceIds=[iid])
                    stopped.append(iid)
    for page in rds.get_paginator("describe_db_instances").paginate():
        for db in page["DBInstances"]:
            tags = {t["Key"]: t["Value"] for t in db.get("TagList", [])}
            if TAG not in tags:
                continue
            want = action == "start" or (action == "reconcile" and should_run(tags[TAG], now))
            status, name = db["DBInstanceStatus"], db["DBInstanceIdentifier"]
            if want and status == "stopped":
                rds.start_db_instance(DBInstanceIdentifier=name)
                started.append(name)
            elif not want and status == "available":
                rds.stop_db_instance(DBInstanceIdentifier=name)
                stopped.append(name)
    print(f"started {len(started)}, stopped {len(stopped)}")
    return {"started": started, "stopped": stopped}
