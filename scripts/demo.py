#!/usr/bin/env python3
"""The local demo: no AWS account, nothing leaves 127.0.0.1.

Brings up moto (the local AWS), seeds a small world, and takes each function through what
CloudFormation does to it, invoking through cargo-lambda's Lambda emulator with the events/ files.
The ResponseURL of every event is pointed at a local recorder, so CloudFormation's side of the
conversation is shown too. Run it with `make demo`.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local" / "demo"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
REGION = "us-east-1"
STEPS = 9
OWNER_TAG = "stackhand:nlb-ip-allowlist"


def say(step: int, text: str) -> None:
    print(f"[{step}/{STEPS}] {text}", flush=True)


def detail(text: str = "") -> None:
    print(f"      {text}" if text else "", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder(http.server.ThreadingHTTPServer):
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

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, check=True, text=True, capture_output=True, **kw)


def rules(ec2, group: str) -> dict[str, tuple]:
    out = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
    found = {}
    for r in out["SecurityGroupRules"]:
        if r.get("IsEgress"):
            continue
        owner = next((t["Value"] for t in r.get("Tags", []) if t["Key"] == OWNER_TAG), None)
        ports = str(r["FromPort"]) if r["FromPort"] == r["ToPort"] else f"{r['FromPort']}-{r['ToPort']}"
        cidr = r.get("CidrIpv4") or r.get("CidrIpv6")
        found[f"{r['IpProtocol']} {ports:>9} from {cidr}"] = (owner, r.get("Description", ""))
    return found


def show_change(before: dict, after: dict) -> tuple[int, int]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    for k in added:
        detail(f"+ {k}   ({after[k][1]})")
    for k in removed:
        detail(f"- {k}")
    for k in sorted(set(after) & set(before)):
        if after[k][0] is None:
            detail(f"= {k}   (not ours: untouched)")
    if not added and not removed:
        detail("(no rule changed)")
    return len(added), len(removed)


def main() -> int:
    # SIGTERM and SIGINT end the demo through its `finally`, so nothing it started is left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    STATE.mkdir(parents=True, exist_ok=True)
    print("stackhand demo: nlb-ip-allowlist through Create -> Update -> Delete, all on 127.0.0.1\n")
    started = time.monotonic()
    processes: list[subprocess.Popen] = []
    stack_started = False
    try:
        out = run(["scripts/stack", "up", "moto"]).stdout.strip()
        stack_started = "already" not in out
        env_lines = run(["scripts/stack", "env"]).stdout
        moto = next(l.split("=", 1)[1] for l in env_lines.split() if l.startswith("STACKHAND_MOTO_URL="))
        if not stack_started:
            # A moto left running holds an earlier world; the demo starts from an empty one.
            urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/reset", method="POST"), timeout=10)
        say(1, f"local AWS: moto on {moto} ({'started' if stack_started else 'already running, reset to empty'})")

        t0 = time.monotonic()
        # The same build the tests use (one set of features, one compile of the AWS SDK).
        subprocess.run(["cargo", "build", "--quiet", "--workspace", "--all-targets"], cwd=ROOT, check=True)
        binary = TARGET / "debug" / "nlb-ip-allowlist"
        say(2, f"built {binary.relative_to(TARGET.parent) if TARGET.parent in binary.parents else binary} ({time.monotonic() - t0:.1f} s)")

        port = free_port()
        watch = subprocess.Popen(
            ["cargo", "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(port)],
            cwd=ROOT, stdout=open(STATE / "cargo-lambda-watch.log", "w"), stderr=subprocess.STDOUT,
        )
        processes.append(watch)
        aws_env = {
            "AWS_ENDPOINT_URL": moto, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo-secret-key", "AWS_EC2_METADATA_DISABLED": "true",
        }
        fn_env = {
            "PATH": os.environ["PATH"], # cargo-lambda's emulator serves each function's Runtime API under /.rt/<function name>.
            "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{port}/.rt/nlb-ip-allowlist",
            "AWS_LAMBDA_FUNCTION_NAME": "nlb-ip-allowlist", "AWS_LAMBDA_FUNCTION_VERSION": "1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_FORMAT": "JSON", **aws_env,
        }
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        function = subprocess.Popen(
            [str(binary)], cwd=ROOT, env=fn_env,
            stdout=open(STATE / "nlb-ip-allowlist.log", "w"), stderr=subprocess.STDOUT,
        )
        processes.append(function)
        say(3, f"Lambda emulator: cargo lambda watch on 127.0.0.1:{port}, nlb-ip-allowlist polling it")

        ec2 = boto3.client("ec2", endpoint_url=moto, region_name=REGION,
                           aws_access_key_id="demo", aws_secret_access_key="demo-secret-key")
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
            for i, az in enumerate("abc")
        ]
        group = ec2.create_security_group(VpcId=vpc, GroupName="app-tier", Description="app tier")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "IpRanges": [{"CidrIp": "192.0.2.10/32", "Description": "bastion"}]}])
        create = json.loads((ROOT / "events/nlb-ip-allowlist/create.json").read_text())
        arn = create["ResourceProperties"]["LoadBalancerArn"]
        name, lb_id = arn.split("/")[-2:]
        description = f"ELB net/{name}/{lb_id}"
        # moto creates no interfaces for load balancers: make them as AWS would, one per AZ.
        enis = [ec2.create_network_interface(SubnetId=s, Description=description)["NetworkInterface"]["PrivateIpAddress"]
                for s in subnets]
        for decoy in (f"ELB net/{name}-2/0123456789abcdef", f"ELB app/{name}/{lb_id}"):
            ec2.create_network_interface(SubnetId=subnets[0], Description=decoy)
        say(4, f"seeded: VPC {vpc}, app security group {group}, NLB '{name}' with ENIs {', '.join(enis)}")
        detail(f"(plus decoy ENIs '{name}-2' and an ALB named '{name}', which must not be allowed)")

        recorder = Recorder()
        physical_id = None
        results = []
        for step, request in ((5, "create"), (6, "update"), (7, "delete")):
            event = json.loads((ROOT / f"events/nlb-ip-allowlist/{request}.json").read_text())
            # The sample events name an example group and response endpoint; point them at this world.
            for props in (event["ResourceProperties"], event.get("OldResourceProperties") or {}):
                if props:
                    props["SecurityGroupId"] = group
            event["ResponseURL"] = f"{recorder.url}/{request}?X-Amz-Signature=demo-signature-{request}"
            if physical_id:
                event["PhysicalResourceId"] = physical_id
            data_file = STATE / f"{request}.json"
            data_file.write_text(json.dumps(event, indent=2))
            before = rules(ec2, group)
            t0 = time.monotonic()
            invoked = run(["cargo", "lambda", "invoke", "nlb-ip-allowlist", "-A", "127.0.0.1", "-P", str(port),
                           "--data-file", str(data_file.relative_to(ROOT)), "--output-format", "json"])
            elapsed = time.monotonic() - t0
            answer = recorder.bodies[-1]
            physical_id = answer["PhysicalResourceId"]
            ports = ", ".join(event["ResourceProperties"]["Ports"])
            say(step, f"{event['RequestType']} (Ports {ports}): CloudFormation got {answer['Status']} in {elapsed:.2f} s")
            detail(f"$ cargo lambda invoke nlb-ip-allowlist --data-file {data_file.relative_to(ROOT)}")
            detail(f"PhysicalResourceId: {physical_id}")
            if answer.get("Data"):
                detail(f"Data: {json.dumps(answer['Data'])}")
            if answer["Status"] != "SUCCESS":
                detail(f"Reason: {answer['Reason']}")
            added, removed = show_change(before, rules(ec2, group))
            results.append((event["RequestType"], answer["Status"], added, removed))
            _ = invoked

        bad = json.loads((ROOT / "events/nlb-ip-allowlist/create.json").read_text())
        bad["ResourceProperties"]["Ports"] = ["80", "http"]
        bad["ResponseURL"] = f"{recorder.url}/bad?X-Amz-Signature=demo-signature-bad"
        (STATE / "bad.json").write_text(json.dumps(bad))
        run(["cargo", "lambda", "invoke", "nlb-ip-allowlist", "-A", "127.0.0.1", "-P", str(port),
             "--data-file", str((STATE / "bad.json").relative_to(ROOT))])
        answer = recorder.bodies[-1]
        say(8, f"a Create with a bad port: {answer['Status']}, answered at once")
        detail(f"Reason: {answer['Reason']}")
        results.append(("Create (bad Ports)", answer["Status"], 0, 0))

        left = rules(ec2, group)
        say(9, f"summary ({time.monotonic() - started:.1f} s in all)")
        for what, status, added, removed in results:
            detail(f"{what:<20} {status:<8} +{added} -{removed} rules")
        detail(f"left in {group}: {', '.join(left) or 'nothing'}")
        detail(f"logs: {STATE.relative_to(ROOT)}/nlb-ip-allowlist.log, {STATE.relative_to(ROOT)}/cargo-lambda-watch.log")
        ok = [r[1] for r in results] == ["SUCCESS", "SUCCESS", "SUCCESS", "FAILED"] and len(left) == 1
        print("\ndemo " + ("passed: every request answered once, only the function's own rules came and went"
                           if ok else "FAILED: see above"))
        return 0 if ok else 1
    except subprocess.CalledProcessError as e:
        print(f"demo failed running {' '.join(e.cmd)}:\n{e.stdout or ''}{e.stderr or ''}", file=sys.stderr)
        return 1
    finally:
        for p in reversed(processes):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if stack_started:
            subprocess.run(["scripts/stack", "down", "moto"], cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
