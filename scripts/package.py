"""Package a deployed stage as a CloudFormation (SAM) or Terraform template: ``make package STAGE=dev``.

``chalice package`` alone knows nothing of the table, bucket and queues, and
copies each function's policy file (``.chalice/policy-STAGE.json``, or the one
``lambda_functions`` gives a function), whose ARNs name the resources by the
names that ``make deploy`` gives them. For CloudFormation this script writes a
merge template (``OUT/merge-template.json``) and runs ``chalice package
--merge-template`` with it, so that the stack

- creates the table, bucket, the handoff queue, the SES queue and their
  dead-letter queues of ``infra/resources.json`` (the one definition that
  ``scripts/create_resources.py`` also reads), and, with the template
  parameter ``EnableSes=true``, its Amazon SES ingress (topic, subscription,
  queue and bucket policies, receipt rule): the parameters are given to
  ``aws cloudformation deploy``, not here;
- creates the alarms, their SNS topic (the template parameter ``AlarmEmail``
  subscribes an address) and the dashboard of ``infra/monitoring.json``, on
  the stage's metrics (``METRICS_NAMESPACE``);
- hands every function ``{"Ref": ...}`` of the table and bucket as MAILS_TABLE
  and MAILS_BUCKET, and each queue's generated name as MAILS_QUEUE and SES_QUEUE;
- grants exactly the actions of each policy file, each ARN in it rewritten to a
  reference to what the stack creates (an ARN that names anything else is an
  error: see ``stack_reference``).

Chalice's merge is a deep merge of objects in which a list replaces a list, so
each function role's inline ``Policies`` list is replaced by one of our own:
the file's statements, rewritten, except those on log groups. Those name the
functions, and a function depends on its role, so in the role they would be a
dependency cycle; they are attached to the roles as a policy of their own
(``FunctionsPolicy`` for the stage's file, ``HandOffPolicy`` for hand_off's,
``ReceiveSesPolicy`` for receive_ses's). The rest must be in the role itself:
Lambda refuses to create an SQS event source mapping for a function whose role
cannot receive from the queue yet. Which functions there are is read from the
log groups the stage's policy file names (every function writes its log, so
each must be there) and from the functions that ``lambda_functions`` gives a
policy file of their own; after packaging, a role that still holds a literal
ARN is an error.

Chalice names an SQS event source's queue by the name its consumer module gives it
at import (MAILS_QUEUE for hand_off, SES_QUEUE for receive_ses, which this script sets
from the stage's configuration: ``QUEUES``), as an ARN string CloudFormation
knows nothing of; after packaging, that ARN is replaced by the consumer's own
queue, ``{"Fn::GetAtt": ["MailsQueue", "Arn"]}`` or ``["SesQueue", "Arn"]``,
so the event source reads the stack's own queue and is created after it. Any
other queue, or a consumer that is not in ``QUEUES``, is an error.

Terraform gets no merge (the table, bucket and queues are not Terraform
resources here: ``scripts/deploy.py --no-chalice`` makes them, as for ``make
deploy``). Its template is only brought up to date: Chalice 1.34 pins
Terraform below 1.4 and the AWS provider below 5, and requires the ``null``
provider for a data source that nothing reads.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalice.utils import to_cfn_resource_name

ROOT = Path(__file__).resolve().parent.parent
# The names Chalice gives, in its SAM template, to the REST API's function and
# to that function's role when autogen_policy is false; any other function F
# is to_cfn_resource_name(F) with the role to_cfn_resource_name(F + "_role").
API_HANDLER = "api_handler"
API_FUNCTION = "APIHandler"
API_ROLE = "ApiHandlerRole"
POLICY = "FunctionsPolicy"


@dataclass(frozen=True)
class QueueSpec:
    """One SQS queue of the stack, the variable that names it and the one function that consumes it."""

    variable: str  # in the stage's environment_variables, and read by the consumer module at import
    resource: str  # in infra/resources.json
    dead_letter: str  # its dead-letter queue in infra/resources.json (no function may touch it)
    consumer: str  # Chalice's name of the function of @blueprint.on_sqs_message(queue=<variable>)


QUEUES = (
    QueueSpec("MAILS_QUEUE", "MailsQueue", "MailsDeadLetterQueue", "hand_off"),
    QueueSpec("SES_QUEUE", "SesQueue", "SesDeadLetterQueue", "receive_ses"),
)
# The variables every function of a stage shares, each the stage's one value.
SHARED_VARIABLES = ("MAILS_TABLE", "MAILS_BUCKET", *(spec.variable for spec in QUEUES))
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PACKAGE_FORMATS = ("cloudformation", "terraform")
# Versions the Terraform output is known to validate with (see tests/test_package.py).
TERRAFORM_VERSION = ">= 0.12.26, < 2.0.0"
TERRAFORM_AWS_PROVIDER = ">= 3.61.0, < 6"


class PackageError(RuntimeError):
    """The stage's configuration or policy file cannot be packaged as it is."""


def cfn_names(function: str) -> tuple[str, str]:
    """CloudFormation names of Chalice's function FUNCTION and of its role."""
    if function == API_HANDLER:
        return API_FUNCTION, API_ROLE
    return str(to_cfn_resource_name(function)), str(to_cfn_resource_name(function + "_role"))


@dataclass(frozen=True)
class Function:
    """One Lambda function of a stage, as .chalice/config.json configures it."""

    name: str  # Chalice's: api_handler for the REST API's, else the name of the decorated function
    policy_file: Path
    # The SSM parameters it reads: each non-empty *_PARAMETER of its environment.
    parameters: dict[str, str]

    @property
    def cfn_name(self) -> str:
        return cfn_names(self.name)[0]

    @property
    def role(self) -> str:
        return cfn_names(self.name)[1]


@dataclass(frozen=True)
class Stage:
    """What one stage of .chalice/config.json names."""

    name: str
    app_name: str
    table: str
    bucket: str
    queue: str
    ses_queue: str
    # The SSM parameters its functions read, all together: each *_PARAMETER variable and the name it holds.
    parameters: dict[str, str]
    # The stage's policy file, for every function that has none of its own.
    policy_file: Path
    # Chalice's function names that lambda_functions configures, with what each is given.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    project_dir: Path = ROOT

    @property
    def function_name(self) -> str:
        # `chalice deploy` names the REST API's function <app>-<stage>, any
        # other function F <app>-<stage>-F.
        return f"{self.app_name}-{self.name}"

    @property
    def table_arn(self) -> str:
        return f"arn:aws:dynamodb:*:*:table/{self.table}"

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"

    @property
    def queue_arn(self) -> str:
        return f"arn:aws:sqs:*:*:{self.queue}"

    def queue_name(self, spec: QueueSpec) -> str:
        """The name the stage gives the queue of SPEC (its MAILS_QUEUE or SES_QUEUE)."""
        return {"MAILS_QUEUE": self.queue, "SES_QUEUE": self.ses_queue}[spec.variable]

    def spec_queue_arn(self, spec: QueueSpec) -> str:
        return f"arn:aws:sqs:*:*:{self.queue_name(spec)}"

    @property
    def queue_names(self) -> str:
        return ", ".join(self.queue_name(spec) for spec in QUEUES)

    def parameter_arn(self, parameter: str) -> str:
        return f"arn:aws:ssm:*:*:parameter/{parameter.lstrip('/')}"

    @property
    def log_group_arn(self) -> str:
        return f"arn:aws:logs:*:*:log-group:/aws/lambda/{self.function_name}"

    def function_log_group_arn(self, function: str) -> str:
        if function == API_HANDLER:
            return self.log_group_arn
        return f"{self.log_group_arn}-{function}"

    def log_group_owner(self, arn: str) -> tuple[str, str] | None:
        """(Chalice's name of the function, ARN suffix) for one of our log groups, else None."""
        if not arn.startswith(self.log_group_arn):
            return None
        rest = arn[len(self.log_group_arn) :]
        if rest == "" or rest.startswith(":"):
            return API_HANDLER, rest
        name, colon, suffix = rest[1:].partition(":")
        if not rest.startswith("-") or not _FUNCTION_NAME.fullmatch(name):
            return None
        return name, colon + suffix

    def log_group_function(self, arn: str) -> tuple[str, str, str] | None:
        """(CloudFormation name of the function, of its role, ARN suffix) for one of our log groups, else None."""
        owner = self.log_group_owner(arn)
        if owner is None:
            return None
        return (*cfn_names(owner[0]), owner[1])

    def function(self, name: str) -> Function:
        """The function NAME with its own settings laid over the stage's, as Chalice does."""
        own = self.settings.get(name, {})
        environment = {**self.environment, **own.get("environment_variables", {})}
        return Function(
            name=name,
            policy_file=self.project_dir / ".chalice" / own["iam_policy_file"]
            if own.get("iam_policy_file") else self.policy_file,
            parameters=_parameters(environment),
        )


def _parameters(environment: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in sorted(environment.items()) if key.endswith("_PARAMETER") and value}


def load_stage(stage: str, project_dir: Path = ROOT) -> Stage:
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    stages: dict[str, Any] = config.get("stages", {})
    if stage not in stages:
        raise PackageError(f"no stage {stage!r} in .chalice/config.json (there are: {', '.join(stages)})")
    settings = stages[stage]
    # Chalice lays a stage's variables over the top-level ones, and a function's over the stage's.
    env: dict[str, str] = {**config.get("environment_variables", {}), **settings.get("environment_variables", {})}
    for name in SHARED_VARIABLES:
        if not env.get(name):
            raise PackageError(f"stage {stage} sets no {name}")
    if env["MAILS_QUEUE"] == env["SES_QUEUE"]:
        raise PackageError(f"stage {stage} gives MAILS_QUEUE and SES_QUEUE one name; they are two queues")
    # A function's own settings: the stage's lambda_functions first, then the top level's (Chalice's order).
    functions: dict[str, dict[str, Any]] = {}
    for name in {*config.get("lambda_functions", {}), *settings.get("lambda_functions", {})}:
        top = config.get("lambda_functions", {}).get(name, {})
        own = settings.get("lambda_functions", {}).get(name, {})
        policy = own.get("iam_policy_file") or (None if settings.get("iam_policy_file") else top.get("iam_policy_file"))
        functions[name] = {
            **({"iam_policy_file": policy} if policy else {}),
            # Chalice merges no environment from the top level's lambda_functions.
            "environment_variables": own.get("environment_variables", {}),
        }
    environments = [env] + [{**env, **own["environment_variables"]} for own in functions.values()]
    for environment in environments:
        for name in ("MAIL_CREDENTIALS", "READ_TOKENS", "SENDGRID_VERIFICATION_KEY", "REPLY_SECRET"):
            if environment.get(name):
                raise PackageError(
                    f"stage {stage} has {name} in .chalice/config.json; a deployed stage reads it "
                    f"from SSM ({name}_PARAMETER) so that no secret is in the repository"
                )
        for name in SHARED_VARIABLES:
            if environment[name] != env[name]:
                raise PackageError(f"stage {stage} gives a function another {name}; all share the stage's")
    parameters: dict[str, str] = {}
    for environment in environments:
        parameters.update(_parameters(environment))
    policy_name = settings.get("iam_policy_file", config.get("iam_policy_file", f"policy-{stage}.json"))
    return Stage(
        name=stage,
        app_name=config["app_name"],
        table=env["MAILS_TABLE"],
        bucket=env["MAILS_BUCKET"],
        queue=env["MAILS_QUEUE"],
        ses_queue=env["SES_QUEUE"],
        parameters=dict(sorted(parameters.items())),
        policy_file=project_dir / ".chalice" / policy_name,
        settings=functions,
        environment=env,
        project_dir=project_dir,
    )


def load_policy(stage: Stage, policy_file: Path | None = None) -> dict[str, Any]:
    path = policy_file or stage.policy_file
    try:
        policy: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise PackageError(f"{path} is missing (autogen_policy is false)") from None
    return policy


def _resources(statement: dict[str, Any]) -> list[str]:
    resources = statement.get("Resource", [])
    return [resources] if isinstance(resources, str) else list(resources)


# X-Ray's write actions name no resource: the one grant whose resource may be "*".
TRACING_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})


def _tracing_only(statement: dict[str, Any]) -> bool:
    actions = statement.get("Action", [])
    return bool(actions) and set([actions] if isinstance(actions, str) else actions) <= TRACING_ACTIONS


def stack_reference(arn: str, stage: Stage) -> str | dict[str, Any]:
    """The resource that ARN names in the policy file, as a reference to what the stack creates.

    Raises PackageError for an ARN that is not the stage's table (or its
    indexes), bucket (or its objects), one of its two queues, one of its SSM
    parameters or one of its functions' log groups: the packaged policy names
    nothing else (no dead-letter queue either).
    """
    region_account = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"
    if arn == "*":
        return arn  # only in a statement of TRACING_ACTIONS alone (check_policy)
    if arn == stage.table_arn:
        return {"Fn::GetAtt": ["MailsTable", "Arn"]}
    if arn.startswith(stage.table_arn + "/"):
        return {"Fn::Sub": "${MailsTable.Arn}" + arn[len(stage.table_arn) :]}
    if arn == stage.bucket_arn:
        return {"Fn::GetAtt": ["MailsBucket", "Arn"]}
    if arn.startswith(stage.bucket_arn + "/"):
        return {"Fn::Sub": "${MailsBucket.Arn}" + arn[len(stage.bucket_arn) :]}
    for spec in QUEUES:
        if arn == stage.spec_queue_arn(spec):
            return {"Fn::GetAtt": [spec.resource, "Arn"]}
    for parameter in stage.parameters.values():
        if arn == stage.parameter_arn(parameter):
            return {"Fn::Sub": region_account % "ssm" + "parameter/" + parameter.lstrip("/")}
    function = stage.log_group_function(arn)
    if function is not None:
        # The stack's function gets a generated name; the log group follows it.
        cfn_name, _, suffix = function
        return {"Fn::Sub": region_account % "logs" + "log-group:/aws/lambda/${" + cfn_name + "}" + suffix}
    raise PackageError(
        f"a policy file of stage {stage.name} names {arn}, which is not one of stage {stage.name}'s "
        f"resources (table {stage.table}, bucket {stage.bucket}, queues {stage.queue_names}, parameters "
        f"{', '.join(stage.parameters.values()) or 'none'}, log groups /aws/lambda/{stage.function_name}"
        f"[-FUNCTION])"
    )


def _named_functions(policy: dict[str, Any], stage: Stage) -> list[str]:
    """Chalice's names of the functions whose log groups the policy names, in order."""
    found: list[str] = []
    for statement in policy.get("Statement", []):
        for arn in _resources(statement):
            owner = stage.log_group_owner(arn)
            if owner is not None and owner[0] not in found:
                found.append(owner[0])
    return found


def policy_functions(stage: Stage, stage_policy: dict[str, Any] | None = None) -> dict[Path, list[Function]]:
    """Each policy file of the stage, with the functions whose role it is for.

    A function is known from its own entry in lambda_functions, or from its
    log group in the stage's policy file (``stage_policy``, else the file's
    content); the REST API's function always is.
    """
    named = _named_functions(stage_policy if stage_policy is not None else load_policy(stage), stage)
    names = [API_HANDLER]
    for name in [*named, *sorted(stage.settings)]:
        if name not in names:
            names.append(name)
    files: dict[Path, list[Function]] = {stage.policy_file: []}
    for name in names:
        function = stage.function(name)
        files.setdefault(function.policy_file, []).append(function)
    return {path: users for path, users in files.items() if users}


def check_policy(policy: dict[str, Any], stage: Stage, policy_file: Path | None = None) -> list[str]:
    """What is wrong with one policy file: foreign or wildcard resources, or a resource its functions use left out.

    ``policy`` is taken as the content of ``policy_file``, the stage's by default.
    """
    path = policy_file or stage.policy_file
    functions = policy_functions(stage, policy if path == stage.policy_file else None).get(path, [])
    problems: list[str] = []
    named: list[str] = []
    mine = {function.name for function in functions}
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow" or "NotResource" in statement or "NotAction" in statement:
            problems.append(
                f"{path.name}: statement {statement.get('Sid', '?')}: only Allow with Action and Resource is expected"
            )
            continue
        for arn in _resources(statement):
            if arn == "*":
                if not _tracing_only(statement):
                    problems.append(
                        f"{path.name}: statement {statement.get('Sid', '?')}: \"*\" is a resource only for "
                        f"{' and '.join(sorted(TRACING_ACTIONS))}"
                    )
                continue
            try:
                stack_reference(arn, stage)
            except PackageError as exc:
                problems.append(f"{path.name}: {exc}")
                continue
            owner = stage.log_group_owner(arn)
            if owner is not None and owner[0] not in mine:
                problems.append(
                    f"{path.name} names the log group of {owner[0]}, whose policy file is "
                    f"{stage.function(owner[0]).policy_file.name}"
                )
                continue
            named.append(arn)
    wanted = {
        f"table {stage.table}": stage.table_arn,
        f"bucket {stage.bucket}": stage.bucket_arn,
        f"queue {stage.queue}": stage.queue_arn,
    }
    for function in functions:
        log_group = stage.function_log_group_arn(function.name)
        wanted[f"log group {log_group.rpartition(':')[2]}"] = log_group
        for spec in QUEUES:
            if spec.consumer == function.name:
                # What Lambda's event source mapping does with the function's role.
                wanted[f"queue {stage.queue_name(spec)}"] = stage.spec_queue_arn(spec)
        wanted.update({f"parameter {p}": stage.parameter_arn(p) for p in function.parameters.values()})
    for what, arn in wanted.items():
        if not any(name == arn or name.startswith(arn + "/") or name.startswith(arn + ":") for name in named):
            problems.append(f"{path.name} grants nothing on {what}, which its functions use")
    return problems


def check_policies(stage: Stage) -> list[str]:
    """What is wrong with any of the stage's policy files."""
    problems: list[str] = []
    for path in policy_functions(stage):
        problems += check_policy(load_policy(stage, path), stage, path)
    return problems


def stack_policy(policy: dict[str, Any], stage: Stage) -> dict[str, Any]:
    """The policy file with each ARN replaced by its reference in the stack."""
    document = copy.deepcopy(policy)
    for statement in document.get("Statement", []):
        statement["Resource"] = [stack_reference(arn, stage) for arn in _resources(statement)]
    return document


def split_policy(policy: dict[str, Any], stage: Stage) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stack's policy in two: (what names no function, what names a function's log group).

    The first goes into the role itself, so that it is in place before the
    function is created: Lambda refuses to create an SQS event source mapping
    for a function whose role cannot yet receive from the queue. The second
    cannot (the role would depend on its function, which depends on it), and
    becomes a policy of its own, attached to the role.
    """
    parts: tuple[dict[str, Any], dict[str, Any]] = (
        {key: value for key, value in policy.items() if key != "Statement"} | {"Statement": []},
        {key: value for key, value in policy.items() if key != "Statement"} | {"Statement": []},
    )
    for statement in policy.get("Statement", []):
        resources = _resources(statement)
        logs = [arn for arn in resources if stage.log_group_owner(arn) is not None]
        others = [arn for arn in resources if stage.log_group_owner(arn) is None]
        for part, names in zip(parts, (others, logs), strict=True):
            if names:
                part["Statement"].append(
                    {**copy.deepcopy(statement), "Resource": [stack_reference(arn, stage) for arn in names]}
                )
    return parts


def policy_resource_name(path: Path, stage: Stage, functions: list[Function]) -> str:
    """FunctionsPolicy for the stage's file, FUNCTION's CloudFormation name + Policy for one of its own."""
    if path == stage.policy_file:
        return POLICY
    return str(to_cfn_resource_name(functions[0].name + "_policy"))


def merge_template(stage: Stage, project_dir: Path = ROOT) -> dict[str, Any]:
    """What `chalice package --merge-template` lays over Chalice's own SAM template."""
    problems = check_policies(stage)
    if problems:
        raise PackageError("\n".join(problems))
    infra: dict[str, Any] = json.loads((project_dir / "infra" / "resources.json").read_text())
    template: dict[str, Any] = {
        key: value for key, value in infra.items() if key not in ("AWSTemplateFormatVersion", "Description")
    }
    template["Description"] = (
        f"{stage.app_name} {stage.name}: the SendGrid Inbound Parse webhook and the optional Amazon SES ingress, "
        f"the mail table, bucket, handoff queue and SES queue"
    )
    resources: dict[str, Any] = template.setdefault("Resources", {})
    for path, users in policy_functions(stage).items():
        for function in users:
            resources[function.cfn_name] = {
                "Properties": {
                    "Environment": {
                        "Variables": {
                            "MAILS_TABLE": {"Ref": "MailsTable"},
                            "MAILS_BUCKET": {"Ref": "MailsBucket"},
                            # The items' side of the same retention as the bucket's lifecycle rule.
                            "MAIL_RETENTION_DAYS": {"Ref": "MailRetentionDays"},
                            **{spec.variable: {"Fn::GetAtt": [spec.resource, "QueueName"]} for spec in QUEUES},
                        }
                    }
                }
            }
        own = path != stage.policy_file
        policy_name = f"{stage.app_name}-{stage.name}" + (f"-{users[0].name}" if own else "")
        in_role, of_its_own = split_policy(load_policy(stage, path), stage)
        for function in users:
            # Replaces Chalice's inline copy of the file, whose ARNs are the literal ones.
            resources[function.role] = {
                "Properties": {"Policies": [{"PolicyName": policy_name, "PolicyDocument": in_role}]}
            }
        resources[policy_resource_name(path, stage, users)] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": f"{policy_name}-logs",
                "Roles": [{"Ref": function.role} for function in users],
                "PolicyDocument": of_its_own,
            },
        }
    _merge_monitoring(template, stage, project_dir)
    outputs: dict[str, Any] = {
        "MailsTableName": {"Value": {"Ref": "MailsTable"}},
        "MailsBucketName": {"Value": {"Ref": "MailsBucket"}},
    }
    for spec in QUEUES:
        outputs[f"{spec.resource}Name"] = {"Value": {"Fn::GetAtt": [spec.resource, "QueueName"]}}
        outputs[f"{spec.dead_letter}Url"] = {"Value": {"Ref": spec.dead_letter}}
    # After infra's own (the SES ones, which are conditional).
    template.setdefault("Outputs", {}).update(outputs)
    return template


def _merge_monitoring(template: dict[str, Any], stage: Stage, project_dir: Path) -> None:
    """infra/monitoring.json's alarms, topic and dashboard beside infra's resources, on the stage's metrics.

    Its metrics are in the namespace the stage's functions write to (METRICS_NAMESPACE), which is the
    MetricsNamespace parameter's default here. A name both files use is an error, not an overwrite.
    """
    monitoring: dict[str, Any] = json.loads((project_dir / "infra" / "monitoring.json").read_text())
    namespace = stage.environment.get("METRICS_NAMESPACE")
    if not namespace:
        raise PackageError(f"stage {stage.name} sets no METRICS_NAMESPACE, which its alarms watch")
    monitoring["Parameters"]["MetricsNamespace"]["Default"] = namespace
    for section in ("Parameters", "Conditions", "Resources", "Outputs"):
        mine = template.setdefault(section, {})
        clash = sorted(set(mine) & set(monitoring.get(section, {})))
        if clash:
            raise PackageError(f"infra/monitoring.json and infra/resources.json both define {', '.join(clash)}")
        mine.update(monitoring.get(section, {}))


def queue_arn_reference(name: str) -> dict[str, str]:
    """How Chalice's SAM template names the queue of ``@blueprint.on_sqs_message(queue=NAME)``."""
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{name}"}


def wire_queues(template: dict[str, Any], stage: Stage) -> dict[str, str]:
    """Point every SQS event source at its consumer's queue in the stack; returns {function: queue resource}.

    Chalice names the queue by the name its consumer module read from MAILS_QUEUE
    (or SES_QUEUE) at import, a string CloudFormation cannot tie to MailsQueue (or
    SesQueue), whose name it generates. Each consumer of ``QUEUES`` must read
    its own queue, and no other function may consume one.
    """
    consumers = {cfn_names(spec.consumer)[0]: spec for spec in QUEUES}
    wired: dict[str, str] = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in resource["Properties"].get("Events", {}).items():
            if event.get("Type") != "SQS":
                continue
            queue = event["Properties"]["Queue"]
            spec = consumers.get(name)
            if spec is None:
                raise PackageError(
                    f"function {name} reads the queue {json.dumps(queue)} ({event_name}), and the stack has "
                    f"no queue for it: only {', '.join(sorted(consumers))} consume queues (QUEUES in "
                    f"scripts/package.py)"
                )
            if name in wired:
                raise PackageError(f"function {name} has a second SQS event source ({event_name})")
            if queue != queue_arn_reference(stage.queue_name(spec)):
                raise PackageError(
                    f"function {name} reads the queue {json.dumps(queue)} ({event_name}), not the stage's "
                    f"{stage.queue_name(spec)}: was {spec.variable} set to it when chalice imported the app?"
                )
            event["Properties"]["Queue"] = {"Fn::GetAtt": [spec.resource, "Arn"]}
            wired[name] = spec.resource
    return wired


def _literal_arns(policies: list[dict[str, Any]]) -> list[str]:
    """The resources that the inline policies name by a literal ARN (or "*"), rather than by a stack reference."""
    return [
        resource
        for policy in policies
        for statement in policy["PolicyDocument"].get("Statement", [])
        for resource in _resources(statement)
        if isinstance(resource, str) and not (resource == "*" and _tracing_only(statement))
    ]


def check_roles(template: dict[str, Any], stage: Stage) -> None:
    """Every function's role must have lost its file's inline policy to the stack's one."""
    resources = template["Resources"]
    attached: set[str] = set()
    for path, users in policy_functions(stage).items():
        policy = resources[policy_resource_name(path, stage, users)]
        attached |= {ref["Ref"] for ref in policy["Properties"]["Roles"]}
        for function in users:
            if (resources[function.cfn_name].get("Type"), resources[function.role].get("Type")) != (
                "AWS::Serverless::Function", "AWS::IAM::Role"
            ):
                source = (
                    f".chalice/config.json gives {path.name} to" if path != stage.policy_file
                    else f"{path.name} names the log group of"
                )
                raise PackageError(
                    f"{source} a function {function.cfn_name} that is not in the package: "
                    "is it still registered in app.py?"
                )
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        role = resource["Properties"]["Role"]
        role_name = role["Fn::GetAtt"][0] if isinstance(role, dict) else None
        if role_name not in attached or _literal_arns(resources[role_name]["Properties"].get("Policies", [])):
            raise PackageError(
                f"function {name} has a role the packaged policy does not cover: name its log group "
                f"({stage.log_group_arn}-<function>:*) in {stage.policy_file.name}, or give it a policy "
                f"file of its own in lambda_functions"
            )


def modernize_terraform(path: Path) -> None:
    """Let Chalice's Terraform output install with current Terraform and AWS provider 5, and order its SQS mapping."""
    document: dict[str, Any] = json.loads(path.read_text())
    settings = document["terraform"]
    settings["required_version"] = TERRAFORM_VERSION
    providers = settings["required_providers"]
    providers["aws"]["version"] = TERRAFORM_AWS_PROVIDER
    data = document.get("data", {})
    rest = json.dumps({key: value for key, value in document.items() if key != "data"})
    if "null_data_source" in data and "null_data_source" not in rest:
        # Chalice writes the app and stage names there and reads them nowhere;
        # the data source is deprecated and costs a provider download.
        del data["null_data_source"]
        if not any("null_" in name for name in data) and "null_" not in rest:
            providers.pop("null", None)
    resources = document.get("resource", {})
    role_policies = resources.get("aws_iam_role_policy", {})
    for mapping in resources.get("aws_lambda_event_source_mapping", {}).values():
        # Lambda refuses to create an SQS event source mapping before the
        # function's role may receive from the queue, and nothing else orders
        # the mapping after the role's policy.
        function = re.fullmatch(r"\$\{aws_lambda_function\.(\w+)\.arn\}", mapping.get("function_name", ""))
        role = resources.get("aws_lambda_function", {}).get(function.group(1), {}).get("role", "") if function else ""
        owner = re.fullmatch(r"\$\{aws_iam_role\.(\w+)\.arn\}", role)
        if owner and owner.group(1) in role_policies:
            depends = mapping.setdefault("depends_on", [])
            if f"aws_iam_role_policy.{owner.group(1)}" not in depends:
                depends.append(f"aws_iam_role_policy.{owner.group(1)}")
    path.write_text(json.dumps(document, indent=2) + "\n")


def chalice_command() -> str:
    beside = Path(sys.executable).with_name("chalice")
    found = str(beside) if beside.exists() else shutil.which("chalice")
    if not found:
        raise PackageError("chalice is not installed (make installs it into .venv)")
    return found


def chalice_env(stage: Stage, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment to run chalice in: ENV (else ours) with the stage's MAILS_QUEUE and SES_QUEUE.

    The consumer modules read them at import to name the queues of their SQS event sources,
    before any stage's environment_variables exist; a value left in the shell
    from another stage must not win.
    """
    result = dict(env if env is not None else os.environ)
    for spec in QUEUES:
        result[spec.variable] = stage.queue_name(spec)
    return result


def package(
    stage_name: str,
    outdir: Path,
    *,
    pkg_format: str = "cloudformation",
    project_dir: Path = ROOT,
    env: dict[str, str] | None = None,
) -> Path:
    """Run `chalice package` for the stage into OUTDIR; returns the template it wrote."""
    if pkg_format not in PACKAGE_FORMATS:
        raise PackageError(f"unknown package format {pkg_format!r}")
    stage = load_stage(stage_name, project_dir)
    outdir.mkdir(parents=True, exist_ok=True)
    command = [chalice_command(), "--project-dir", str(project_dir), "package", "--stage", stage_name]
    if pkg_format == "cloudformation":
        merge = outdir / "merge-template.json"
        merge.write_text(json.dumps(merge_template(stage, project_dir), indent=2) + "\n")
        command += ["--merge-template", str(merge), str(outdir)]
        result = outdir / "sam.json"
    else:
        problems = check_policies(stage)
        if problems:
            raise PackageError("\n".join(problems))
        command += ["--pkg-format", "terraform", str(outdir)]
        result = outdir / "chalice.tf.json"
    completed = subprocess.run(
        command, env=chalice_env(stage, env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    if completed.returncode != 0:
        raise PackageError(f"chalice package failed ({completed.returncode}):\n{completed.stdout}")
    if pkg_format == "terraform":
        modernize_terraform(result)
    else:
        template = json.loads(result.read_text())
        wire_queues(template, stage)
        check_roles(template, stage)
        result.write_text(json.dumps(template, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, help="a deployed stage of .chalice/config.json")
    parser.add_argument("--out", type=Path, help="output folder (default out/STAGE, or out/STAGE-terraform)")
    parser.add_argument("--pkg-format", choices=PACKAGE_FORMATS, default="cloudformation")
    args = parser.parse_args(argv)
    default_out = f"out/{args.stage}" + ("-terraform" if args.pkg_format == "terraform" else "")
    outdir = args.out or ROOT / default_out
    try:
        template = package(args.stage, outdir, pkg_format=args.pkg_format)
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {template} and its deployment.zip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
