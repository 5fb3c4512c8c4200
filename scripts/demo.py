#!/usr/bin/env python3
"""The local demo: no AWS account, nothing leaves 127.0.0.1.

Brings up moto (the local AWS) and MariaDB, seeds a small world, and takes each function through what
CloudFormation (and EventBridge) do to it, invoking through cargo-lambda's Lambda emulator with the
events/ files. The ResponseURL of every event is pointed at a local recorder, so CloudFormation's side
of the conversation is shown too. Run it with `make demo`.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local" / "demo"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
REGION = "us-east-1"
FUNCTIONS = ("nlb-ip-allowlist", "aurora-schema-init", "eip-binding", "instance-scheduler")
DB_USER, DB_PASSWORD = "stackhand", "stackhand-local-only"


class Demo:
    def __init__(self) -> None:
        self.step = 0
        self.results: list[tuple[str, str, str]] = []
        self.recorder = Recorder()
        self.port = 0
        self.moto = ""
        self.db_port = 0

    def say(self, text: str) -> None:
        self.step += 1
        print(f"[{self.step:>2}] {text}", flush=True)

    def invoke(self, function: str, event_name: str, change) -> dict:
        """Invokes `function` with events/<function>/<event_name>.json, adjusted to this world by
        `change`; returns what was answered (the CloudFormation response, or the function's result)."""
        event = json.loads((ROOT / "events" / function / f"{event_name}.json").read_text())
        change(event)
        is_cfn = "ResponseURL" in event
        if is_cfn:
            event["ResponseURL"] = f"{self.recorder.url}/{function}/{event_name}?X-Amz-Signature=demo-signature"
        data_file = STATE / f"{function}-{event_name}.json"
        data_file.write_text(json.dumps(event, indent=2))
        before = len(self.recorder.bodies)
        t0 = time.monotonic()
        out = run(["cargo", "lambda", "invoke", function, "-A", "127.0.0.1", "-P", str(self.port),
                   "--data-file", str(data_file.relative_to(ROOT)), "--output-format", "json"], check=False)
        elapsed = time.monotonic() - t0
        if is_cfn:
            if len(self.recorder.bodies) != before + 1:
                raise RuntimeError(f"{function} {event_name}: expected one response, got "
                                   f"{len(self.recorder.bodies) - before}\n{out.stdout}{out.stderr}")
            answer = self.recorder.bodies[-1]
            self.say(f"{function}: {event['RequestType']} -> CloudFormation got {answer['Status']} ({elapsed:.2f} s)")
        else:
            answer = json.loads(out.stdout or "{}")
            what = event.get("detail-type") or f"action {event.get('action')}" + (" (dry run)" if event.get("dry_run") else "")
            if "started" in answer:
                result = ", ".join(f"{k} {len(answer.get(k, []))}" for k in ("started", "stopped", "skipped", "failed"))
                result += f", unchanged {answer.get('unchanged')}"
            else:
                result = answer.get("action", answer)
            self.say(f"{function}: {what} -> {result} ({elapsed:.2f} s)")
        print(f"       $ cargo lambda invoke {function} --data-file {data_file.relative_to(ROOT)}")
        if is_cfn:
            print(f"       PhysicalResourceId: {answer['PhysicalResourceId']}")
            if answer.get("Data"):
                print(f"       Data: {json.dumps(answer['Data'])}")
            if answer["Status"] != "SUCCESS":
                print(f"       Reason: {answer['Reason']}")
            self.results.append((function, f"{event['RequestType']}", answer["Status"]))
        elif "started" in answer:
            for key in ("started", "stopped"):
                if answer[key]:
                    print(f"       {key}: {', '.join(answer[key])}")
            for entry in answer["skipped"] + answer["failed"]:
                print(f"       {'skipped' if 'reason' in entry else 'FAILED'}: {entry['resource']}: "
                      f"{entry.get('reason') or entry.get('error')}")
            action = event.get("action", "reconcile") + (" (dry)" if event.get("dry_run") else "")
            self.results.append((function, action, "ok" if not answer["failed"] else "FAILED"))
        else:
            self.results.append((function, "state-change", answer.get("action", "?")))
        return answer


class LocalServer(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (a free port), serving `handler` on a daemon thread."""

    def __init__(self, handler: type) -> None:
        handler.log_message = lambda *args: None
        super().__init__(("127.0.0.1", 0), handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Recorder(LocalServer):
    """Stands in for CloudFormation's presigned S3 ResponseURL: keeps every PUT body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.bodies.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

        super().__init__(Handler)


AWS_MANAGED_TAG = "testkit:aws-managed"  # as testkit/src/shapes.rs


def aws_shaped_interfaces(body: str) -> str:
    """A DescribeNetworkInterfaces answer from moto with each interface tagged AWS_MANAGED_TAG answered as
    AWS answers for a Network Load Balancer's own interfaces: requester-managed, its type, requester
    amazon-elb, without the marker. moto never makes such interfaces; the others stay as moto gave them
    (what a forged interface looks like on AWS)."""
    start, end = body.find("<networkInterfaceSet>"), body.rfind("</networkInterfaceSet>")
    if start < 0 or end < 0:
        return body
    start += len("<networkInterfaceSet>")
    items, depth, begin = [], 0, 0
    for m in re.finditer(r"</?item>", body[start:end]):
        if m.group() == "<item>":
            begin = m.start() if depth == 0 else begin
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                items.append(body[start:end][begin:m.end()])
    marker = re.compile(rf"<item><key>{re.escape(AWS_MANAGED_TAG)}</key><value>([^<]*)</value></item>")
    shaped = []
    for item in items:
        found = marker.search(item)
        if found:
            item = marker.sub("", item).replace("<tagSet></tagSet>", "<tagSet/>")
            for name, value in (("interfaceType", found.group(1)), ("requesterManaged", "true"),
                                ("requesterId", "amazon-elb")):
                item = re.sub(rf"<{name}>[^<]*</{name}>|<{name}/>", f"<{name}>{value}</{name}>", item, count=1)
        shaped.append(item)
    return body[:start] + "".join(shaped) + body[end:]


class AwsShapedProxy(LocalServer):
    """Stands between a function and moto, as testkit's proxy does in the tests: forwards every request
    and reshapes DescribeNetworkInterfaces answers (aws_shaped_interfaces)."""

    def __init__(self, upstream: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                request = urllib.request.Request(upstream + self.path, data=body or None, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=30) as r:
                        status, answer, answer_headers = r.status, r.read(), r.headers
                except urllib.error.HTTPError as e:
                    status, answer, answer_headers = e.code, e.read(), e.headers
                if status == 200 and b"Action=DescribeNetworkInterfaces" in body:
                    answer = aws_shaped_interfaces(answer.decode()).encode()
                self.send_response(status)
                for k, v in answer_headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward  # noqa: N815 (http.server's naming)

        super().__init__(Handler)


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, check=check, text=True, capture_output=True, **kw)


def shown(path: Path) -> str:
    """`path` with the home directory as ~."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sql(port: int, statement: str) -> str:
    out = run(["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", str(port), "-u", DB_USER,
               f"-p{DB_PASSWORD}", "-N", "-B", "-e", statement])
    return out.stdout.strip()


def rules(ec2, group: str) -> dict[str, tuple]:
    out = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
    found = {}
    for r in out["SecurityGroupRules"]:
        if r.get("IsEgress"):
            continue
        owner = next((t["Value"] for t in r.get("Tags", []) if t["Key"] == "stackhand:nlb-ip-allowlist"
                      or t["Key"].startswith("stackhand:nlb-ip-allowlist:")), None)
        ports = str(r["FromPort"]) if r["FromPort"] == r["ToPort"] else f"{r['FromPort']}-{r['ToPort']}"
        found[f"{r['IpProtocol']} {ports:>9} from {r.get('CidrIpv4') or r.get('CidrIpv6')}"] = (owner, r.get("Description", ""))
    return found


def show_rule_change(before: dict, after: dict) -> None:
    for k in sorted(set(after) - set(before)):
        print(f"       + {k}   ({after[k][1]})")
    for k in sorted(set(before) - set(after)):
        print(f"       - {k}")
    for k in sorted(set(after) & set(before)):
        if after[k][0] is None:
            print(f"       = {k}   (not ours: untouched)")
        elif after[k][1] != before[k][1]:
            print(f"       ~ {k}   (kept, relabeled: {after[k][1]})")


def nlb_allowlist(demo: Demo, ec2) -> bool:
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
               for i, az in enumerate("abc")]
    group = ec2.create_security_group(VpcId=vpc, GroupName="app-tier", Description="app tier")["GroupId"]
    # The group's owner opts in: without this tag the function refuses to change the group.
    ec2.create_tags(Resources=[group], Tags=[{"Key": "stackhand:allowlist", "Value": "true"}])
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "192.0.2.10/32", "Description": "bastion"}]}])
    arn = json.loads((ROOT / "events/nlb-ip-allowlist/create.json").read_text())["ResourceProperties"]["LoadBalancerArn"]
    name, lb_id = arn.split("/")[-2:]
    # moto creates no interfaces for load balancers: make them as AWS would, one per AZ, marked for the
    # proxy in front of moto to answer them requester-managed, as AWS does (AwsShapedProxy).
    marked = [{"ResourceType": "network-interface", "Tags": [{"Key": AWS_MANAGED_TAG, "Value": "network_load_balancer"}]}]
    enis = [ec2.create_network_interface(SubnetId=s, Description=f"ELB net/{name}/{lb_id}",
                                         TagSpecifications=marked)["NetworkInterface"]["PrivateIpAddress"]
            for s in subnets]
    for decoy in (f"ELB net/{name}-2/0123456789abcdef", f"ELB app/{name}/{lb_id}"):
        ec2.create_network_interface(SubnetId=subnets[0], Description=decoy)
    # A forgery: anyone who may create interfaces can copy the description; it is not requester-managed.
    forged = ec2.create_network_interface(SubnetId=subnets[1], Description=f"ELB net/{name}/{lb_id}")
    forged_ip = forged["NetworkInterface"]["PrivateIpAddress"]
    demo.say(f"seeded: app security group {group} (tagged stackhand:allowlist=true), NLB '{name}' with ENIs "
             f"{', '.join(enis)} (plus decoys '{name}-2', an ALB named '{name}', and a forged ENI {forged_ip} "
             f"with the NLB's description)")
    physical = {}

    def world(event):
        for props in (event["ResourceProperties"], event.get("OldResourceProperties") or {}):
            if props:
                props["SecurityGroupId"] = group
        if physical:
            event["PhysicalResourceId"] = physical["id"]

    allowed = []
    for request in ("create", "update", "delete"):
        before = rules(ec2, group)
        answer = demo.invoke("nlb-ip-allowlist", request, world)
        physical["id"] = answer["PhysicalResourceId"]
        allowed.append(rules(ec2, group))
        show_rule_change(before, allowed[-1])

    def bad_port(event):
        world(event)
        event["ResourceProperties"]["Ports"] = ["80", "http"]
        event.pop("PhysicalResourceId", None)

    demo.invoke("nlb-ip-allowlist", "create", bad_port)
    return len(rules(ec2, group)) == 1 and forged_ip not in str(allowed)


def aurora_schema(demo: Demo, ssm, secrets) -> bool:
    # Start from an empty schema, and forget this source's history if an earlier run left one.
    sql(demo.db_port, "DROP DATABASE IF EXISTS app; CREATE DATABASE app")
    if sql(demo.db_port, "SELECT COUNT(*) FROM information_schema.tables "
                         "WHERE table_schema = 'stackhand' AND table_name = 'schema_history'") == "1":
        sql(demo.db_port, "DELETE FROM stackhand.schema_history WHERE source = '/app/schema'")
    ssm.put_parameter(Name="/app/schema/0001-customers", Type="String", Overwrite=True,
                      Value="CREATE TABLE customers (id int PRIMARY KEY, name varchar(80));\n"
                            "INSERT INTO customers VALUES (1, 'ACME; Inc.');")
    ssm.put_parameter(Name="/app/schema/0002-orders", Type="String", Overwrite=True, Value=(
        "CREATE TABLE orders (id int PRIMARY KEY, customer int, placed datetime);\n"
        "DELIMITER $$\nCREATE PROCEDURE place(IN c int) BEGIN INSERT INTO orders VALUES (NULL, c, NOW()); END$$\n"
        "DELIMITER ;"))
    # In Secrets Manager's RDS format: its host and port bind the Endpoint and Port the function may use.
    arn = secrets.create_secret(Name="rds!cluster-demo", SecretString=json.dumps(
        {"engine": "mysql", "host": "127.0.0.1", "port": demo.db_port, "username": DB_USER,
         "password": DB_PASSWORD}))["ARN"]
    demo.say(f"seeded: database `app`, migrations /app/schema/0001-customers and 0002-orders in SSM, secret {arn.split(':')[-1]}")
    physical = {}

    def world(event):
        for props in (event["ResourceProperties"], event.get("OldResourceProperties") or {}):
            if props:
                props.update({"Endpoint": "127.0.0.1", "Port": str(demo.db_port), "Tls": "disabled", "SecretArn": arn})
        if physical:
            event["PhysicalResourceId"] = physical["id"]

    def show() -> None:
        tables = sql(demo.db_port, "SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM information_schema.tables "
                                   "WHERE table_schema = 'app'")
        history = sql(demo.db_port, "SELECT GROUP_CONCAT(CONCAT(migration, ':', status) ORDER BY migration) "
                                    "FROM stackhand.schema_history WHERE source = '/app/schema'")
        print(f"       tables in app: {tables}; history: {history}")

    physical["id"] = demo.invoke("aurora-schema-init", "create", world)["PhysicalResourceId"]
    show()
    ssm.put_parameter(Name="/app/schema/0003-index", Type="String", Overwrite=True,
                      Value="CREATE INDEX by_customer ON orders (customer);")
    print("       (added /app/schema/0003-index)")
    demo.invoke("aurora-schema-init", "update", world)
    show()
    demo.invoke("aurora-schema-init", "delete", world)
    show()
    return sql(demo.db_port, "SELECT COUNT(*) FROM app.customers") == "1"


def eip_binding(demo: Demo, ec2) -> bool:
    create = json.loads((ROOT / "events/eip-binding/create.json").read_text())
    key, value = create["ResourceProperties"]["PoolTag"].split("=")
    pool = [ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip",
            "Tags": [{"Key": key, "Value": value}, {"Key": "stackhand:eip-bindable", "Value": "true"}]}])["AllocationId"]
            for _ in range(3)]
    subnet = ec2.create_subnet(VpcId=ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"],
                               CidrBlock="10.30.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def launch(tags):
        spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
        return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet,
                                 TagSpecifications=spec)["Instances"][0]["InstanceId"]

    app, worker = launch({}), launch({key: value})
    demo.say(f"seeded: pool {key}={value} of {len(pool)} Elastic IPs (each tagged stackhand:eip-bindable=true, as "
             f"the owner reserves addresses stacks may bind), instance {app}, and {worker} tagged {key}={value}")
    physical = {}

    def world(event):
        for props in (event["ResourceProperties"], event.get("OldResourceProperties") or {}):
            if props:
                props["InstanceId"] = app
        if physical:
            event["PhysicalResourceId"] = physical["id"]

    def bound() -> str:
        addresses = ec2.describe_addresses(AllocationIds=pool)["Addresses"]
        return ", ".join(f"{a['PublicIp']} -> {a.get('NetworkInterfaceId') if a.get('AssociationId') else 'free'}"
                         for a in addresses)

    physical["id"] = demo.invoke("eip-binding", "create", world)["PhysicalResourceId"]
    print(f"       pool: {bound()}")
    demo.invoke("eip-binding", "delete", world)
    print(f"       pool: {bound()}")

    def started(event):
        event["detail"]["instance-id"] = worker
        event["resources"] = [f"arn:aws:ec2:{REGION}:123456789012:instance/{worker}"]

    demo.invoke("eip-binding", "state-change", started)
    again = demo.invoke("eip-binding", "state-change", started)
    print(f"       pool: {bound()}")
    return again.get("action") == "already-bound"


def instance_scheduler(demo: Demo, session) -> bool:
    ec2, rds, autoscaling = (session.client(s, endpoint_url=demo.moto) for s in ("ec2", "rds", "autoscaling"))
    subnet = ec2.create_subnet(VpcId=ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"],
                               CidrBlock="10.40.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    office, evening = "Mon-Fri 08:00-19:00 Europe/London", "Daily 18:00-23:00 UTC"

    def tagged(value):
        return [{"Key": "Schedule", "Value": value}]

    web = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=image, MinCount=2, MaxCount=2, SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tagged(office)}])["Instances"]]
    batch = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet, TagSpecifications=[
        {"ResourceType": "instance", "Tags": tagged(evening)}])["Instances"][0]["InstanceId"]
    rds.create_db_instance(DBInstanceIdentifier="demo-db", DBInstanceClass="db.t3.micro", Engine="mysql",
                           AllocatedStorage=20, MasterUsername="admin", MasterUserPassword=DB_PASSWORD, Tags=tagged(office))
    rds.create_db_cluster(DBClusterIdentifier="demo-aurora", Engine="aurora-mysql", MasterUsername="admin",
                          MasterUserPassword=DB_PASSWORD, Tags=tagged(office))
    rds.create_db_instance(DBInstanceIdentifier="demo-aurora-1", DBInstanceClass="db.t3.medium", Engine="aurora-mysql",
                           DBClusterIdentifier="demo-aurora", Tags=tagged(office))
    ec2.create_launch_template(LaunchTemplateName="demo-app", LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="demo-app", LaunchTemplate={"LaunchTemplateName": "demo-app"}, MinSize=1, MaxSize=3,
        DesiredCapacity=2, VPCZoneIdentifier=subnet,
        Tags=[{"Key": "Schedule", "Value": office, "PropagateAtLaunch": True}])
    demo.say(f"seeded: web {', '.join(web)} and DB demo-db and Aurora demo-aurora (member demo-aurora-1 tagged too) "
             f"and ASG demo-app (1/3/2) on \"{office}\"; batch {batch} on \"{evening}\"")

    def states() -> dict:
        instances = ec2.describe_instances(InstanceIds=web + [batch])["Reservations"]
        state = {i["InstanceId"]: i["State"]["Name"] for r in instances for i in r["Instances"]}
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-app"])["AutoScalingGroups"][0]
        now = {
            "web": "/".join(state[i] for i in web), "batch": state[batch],
            "demo-db": rds.describe_db_instances(DBInstanceIdentifier="demo-db")["DBInstances"][0]["DBInstanceStatus"],
            "demo-aurora": rds.describe_db_clusters(DBClusterIdentifier="demo-aurora")["DBClusters"][0]["Status"],
            "demo-app": f"{group['MinSize']}/{group['MaxSize']}/{group['DesiredCapacity']}",
        }
        print("       now: " + ", ".join(f"{k} {v}" for k, v in now.items()))
        return now

    demo.invoke("instance-scheduler", "stop-dry-run", lambda e: None)
    dry = states()
    demo.invoke("instance-scheduler", "stop", lambda e: None)
    stopped = states()
    demo.invoke("instance-scheduler", "start", lambda e: None)
    started = states()
    demo.invoke("instance-scheduler", "reconcile", lambda e: None)  # Monday 19:00 UTC
    evening_state = states()
    # A Scheduled Event as EventBridge sends it: its time is now. The function evaluates a late event at
    # now, not at its time, so this step cannot name a fixed Monday morning: web is moved to a schedule
    # that runs during this hour and batch to one that does not, and each should follow it.
    at = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    hour, later = at.hour, (at.hour + 2) % 24
    ec2.create_tags(Resources=web, Tags=tagged(f"Daily {hour:02}:00-{hour + 1:02}:00 UTC"))
    ec2.create_tags(Resources=[batch], Tags=tagged(f"Daily {later:02}:00-{later + 1:02}:00 UTC"))
    demo.invoke("instance-scheduler", "scheduled-event",
                lambda e: e.update(time=at.strftime("%Y-%m-%dT%H:%M:%SZ")))
    morning = states()
    return (dry["web"] == "running/running" and stopped == {"web": "stopped/stopped", "batch": "stopped",
            "demo-db": "stopped", "demo-aurora": "stopped", "demo-app": "0/0/0"}
            and started["demo-app"] == "1/3/2" and started["batch"] == "running"
            and evening_state["web"] == "stopped/stopped" and evening_state["batch"] == "running"
            and morning["web"] == "running/running" and morning["batch"] == "stopped")


def main() -> int:
    # SIGTERM and SIGINT end the demo through its `finally`, so nothing it started is left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    STATE.mkdir(parents=True, exist_ok=True)
    print("stackhand demo: every function through what CloudFormation and EventBridge do, all on 127.0.0.1\n")
    started_at = time.monotonic()
    demo = Demo()
    processes: list[subprocess.Popen] = []
    stack_started: list[str] = []
    try:
        for service in ("moto", "mariadb"):
            if run(["scripts/stack", "running", service], check=False).returncode != 0:
                if service == "mariadb" and not (shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists()):
                    print("installing MariaDB from Debian's packages (apt-get, first run only)", flush=True)
                run(["scripts/stack", "up", service])
                stack_started.append(service)
        env = dict(line.split("=", 1) for line in run(["scripts/stack", "env"]).stdout.replace("export ", "").split())
        demo.moto, demo.db_port = env["STACKHAND_MOTO_URL"], int(env["STACKHAND_MARIADB_PORT"])
        if "moto" not in stack_started:
            # A moto left running holds an earlier world; the demo starts from an empty one.
            urllib.request.urlopen(urllib.request.Request(f"{demo.moto}/moto-api/reset", method="POST"), timeout=10)
        demo.say(f"local stack: moto on {demo.moto}, MariaDB on 127.0.0.1:{demo.db_port}")

        t0 = time.monotonic()
        # The same build the tests use (one set of features, one compile of the AWS SDK), with cargo's own
        # progress on the terminal: on a fresh machine it compiles the AWS SDK for several minutes, and a
        # silent demo looks hung.
        if not all((TARGET / "debug" / function).is_file() for function in FUNCTIONS):
            print(f"building the functions: a first build compiles the AWS SDK, several minutes on 2 cores (once:\n"
                  f"{shown(TARGET)} is kept for every later run and every clone on this machine); cargo's progress follows:",
                  flush=True)
        subprocess.run(["cargo", "build", "--workspace", "--all-targets"], cwd=ROOT, check=True)
        demo.say(f"built the functions (debug, shared with `make test`; {time.monotonic() - t0:.1f} s)")

        demo.port = free_port()
        processes.append(subprocess.Popen(
            ["cargo", "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(demo.port)],
            cwd=ROOT, stdout=open(STATE / "cargo-lambda-watch.log", "w"), stderr=subprocess.STDOUT))
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", demo.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        aws = {"AWS_ENDPOINT_URL": demo.moto, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "demo",
               "AWS_SECRET_ACCESS_KEY": "demo-secret-key", "AWS_EC2_METADATA_DISABLED": "true"}
        shaped = AwsShapedProxy(demo.moto)
        for function in FUNCTIONS:
            endpoint = {"AWS_ENDPOINT_URL": shaped.url} if function == "nlb-ip-allowlist" else {}
            env = {"PATH": os.environ["PATH"], **aws, **endpoint,
                   # cargo-lambda's emulator serves each function's Runtime API under /.rt/<function name>.
                   "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{demo.port}/.rt/{function}",
                   "AWS_LAMBDA_FUNCTION_NAME": function, "AWS_LAMBDA_FUNCTION_VERSION": "1",
                   "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_FORMAT": "JSON",
                   # What a user's machine sets for a local stack (the README's Security model): answer
                   # the recorder on 127.0.0.1, and let aurora-schema-init reach MariaDB there without TLS.
                   "STACKHAND_RESPONSE_URL_HOSTS": "127.0.0.1", "SCHEMA_ALLOWED_ENDPOINTS": "127.0.0.1",
                   "SCHEMA_ALLOW_PLAINTEXT": "true"}
            processes.append(subprocess.Popen([str(TARGET / "debug" / function)], cwd=ROOT, env=env,
                                              stdout=open(STATE / f"{function}.log", "w"), stderr=subprocess.STDOUT))
        demo.say(f"Lambda emulator: cargo lambda watch on 127.0.0.1:{demo.port}; {', '.join(FUNCTIONS)} polling it")

        session = boto3.session.Session(aws_access_key_id="demo", aws_secret_access_key="demo-secret-key", region_name=REGION)
        ec2 = session.client("ec2", endpoint_url=demo.moto)
        checks = {
            "nlb-ip-allowlist: only its own rules came and went": nlb_allowlist(demo, ec2),
            "aurora-schema-init: migrations applied once, Delete kept the data": aurora_schema(
                demo, session.client("ssm", endpoint_url=demo.moto), session.client("secretsmanager", endpoint_url=demo.moto)),
            "eip-binding: bound, released, bound on start once": eip_binding(demo, ec2),
            "instance-scheduler: stopped, started, reconciled by each schedule": instance_scheduler(demo, session),
        }
        demo.say(f"summary ({time.monotonic() - started_at:.1f} s in all)")
        for function, what, status in demo.results:
            print(f"       {function:<20} {what:<14} {status}")
        for check, ok in checks.items():
            print(f"       {'ok  ' if ok else 'FAIL'} {check}")
        print(f"       logs: {STATE.relative_to(ROOT)}/<function>.log")
        ok = all(checks.values())
        print("\ndemo " + ("passed" if ok else "FAILED: see above"))
        return 0 if ok else 1
    except (subprocess.CalledProcessError, RuntimeError) as e:
        detail = f"{' '.join(e.cmd)}:\n{e.stdout or ''}{e.stderr or ''}" if isinstance(e, subprocess.CalledProcessError) else str(e)
        print(f"demo failed: {detail}", file=sys.stderr)
        return 1
    finally:
        for p in reversed(processes):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if stack_started:
            subprocess.run(["scripts/stack", "down", *stack_started], cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
