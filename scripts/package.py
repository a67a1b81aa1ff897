"""Package a deployed stage as a CloudFormation (SAM) or Terraform template: ``make package STAGE=dev``.

``chalice package`` alone knows nothing of the table and bucket, and copies
``.chalice/policy-STAGE.json``, whose ARNs name the resources by the names
that ``make deploy`` gives them. For CloudFormation this script writes a merge
template (``OUT/merge-template.json``) and runs ``chalice package
--merge-template`` with it, so that the stack

- creates the table and bucket of ``infra/resources.json`` (the one definition
  that ``scripts/create_resources.py`` also reads);
- hands the function ``{"Ref": ...}`` of them as MAILS_TABLE and MAILS_BUCKET;
- grants exactly the actions of ``.chalice/policy-STAGE.json``, each ARN in it
  rewritten to a reference to what the stack creates (an ARN that names
  anything else is an error: see ``stack_reference``).

Chalice's merge is a deep merge of objects in which a list replaces a list, so
the role's inline ``Policies`` list is replaced by an empty one, and the policy
is attached as a resource of its own: it names the function's log group, and
the function depends on the role, so an inline policy that names the function
would be a dependency cycle.

Terraform gets no merge (the table and bucket are not Terraform resources
here: ``scripts/deploy.py --no-chalice`` makes them, as for ``make deploy``).
Its template is only brought up to date: Chalice 1.34 pins Terraform below
1.4 and the AWS provider below 5, and requires the ``null`` provider for a
data source that nothing reads.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The names Chalice gives, in its templates, to the REST API's function and to
# that function's role when autogen_policy is false.
FUNCTION = "APIHandler"
ROLE = "ApiHandlerRole"
POLICY = "ApiHandlerPolicy"
PACKAGE_FORMATS = ("cloudformation", "terraform")
# Versions the Terraform output is known to validate with (see tests/test_package.py).
TERRAFORM_VERSION = ">= 0.12.26, < 2.0.0"
TERRAFORM_AWS_PROVIDER = ">= 3.61.0, < 6"


class PackageError(RuntimeError):
    """The stage's configuration or policy file cannot be packaged as it is."""


@dataclass(frozen=True)
class Stage:
    """What one stage of .chalice/config.json names."""

    name: str
    app_name: str
    table: str
    bucket: str
    # The SSM parameters the function reads: each *_PARAMETER variable and the name it holds.
    parameters: dict[str, str]
    policy_file: Path

    @property
    def function_name(self) -> str:
        # `chalice deploy` names the REST API's function <app>-<stage>.
        return f"{self.app_name}-{self.name}"

    @property
    def table_arn(self) -> str:
        return f"arn:aws:dynamodb:*:*:table/{self.table}"

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"

    def parameter_arn(self, parameter: str) -> str:
        return f"arn:aws:ssm:*:*:parameter/{parameter.lstrip('/')}"

    @property
    def log_group_arn(self) -> str:
        return f"arn:aws:logs:*:*:log-group:/aws/lambda/{self.function_name}"


def load_stage(stage: str, project_dir: Path = ROOT) -> Stage:
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    stages: dict[str, Any] = config.get("stages", {})
    if stage not in stages:
        raise PackageError(f"no stage {stage!r} in .chalice/config.json (there are: {', '.join(stages)})")
    settings = stages[stage]
    # Chalice lays a stage's variables over the top-level ones.
    env: dict[str, str] = {**config.get("environment_variables", {}), **settings.get("environment_variables", {})}
    for name in ("MAILS_TABLE", "MAILS_BUCKET"):
        if not env.get(name):
            raise PackageError(f"stage {stage} sets no {name}")
    for name in ("MAIL_CREDENTIALS", "READ_TOKENS", "SENDGRID_VERIFICATION_KEY"):
        if env.get(name):
            raise PackageError(
                f"stage {stage} has {name} in .chalice/config.json; a deployed stage reads it "
                f"from SSM ({name}_PARAMETER) so that no secret is in the repository"
            )
    policy_name = settings.get("iam_policy_file", config.get("iam_policy_file", f"policy-{stage}.json"))
    return Stage(
        name=stage,
        app_name=config["app_name"],
        table=env["MAILS_TABLE"],
        bucket=env["MAILS_BUCKET"],
        parameters={key: value for key, value in sorted(env.items()) if key.endswith("_PARAMETER") and value},
        policy_file=project_dir / ".chalice" / policy_name,
    )


def load_policy(stage: Stage) -> dict[str, Any]:
    try:
        policy: dict[str, Any] = json.loads(stage.policy_file.read_text())
    except FileNotFoundError:
        raise PackageError(f"{stage.policy_file} is missing (autogen_policy is false)") from None
    return policy


def _resources(statement: dict[str, Any]) -> list[str]:
    resources = statement.get("Resource", [])
    return [resources] if isinstance(resources, str) else list(resources)


def stack_reference(arn: str, stage: Stage) -> str | dict[str, Any]:
    """The resource that ARN names in the policy file, as a reference to what the stack creates.

    Raises PackageError for an ARN that is not the stage's table (or its
    indexes), bucket (or its objects), one of its SSM parameters or its
    function's log group: the packaged policy names nothing else.
    """
    region_account = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"
    if arn == stage.table_arn:
        return {"Fn::GetAtt": ["MailsTable", "Arn"]}
    if arn.startswith(stage.table_arn + "/"):
        return {"Fn::Sub": "${MailsTable.Arn}" + arn[len(stage.table_arn) :]}
    if arn == stage.bucket_arn:
        return {"Fn::GetAtt": ["MailsBucket", "Arn"]}
    if arn.startswith(stage.bucket_arn + "/"):
        return {"Fn::Sub": "${MailsBucket.Arn}" + arn[len(stage.bucket_arn) :]}
    for parameter in stage.parameters.values():
        if arn == stage.parameter_arn(parameter):
            return {"Fn::Sub": region_account % "ssm" + "parameter/" + parameter.lstrip("/")}
    log_group = stage.log_group_arn
    if arn == log_group or arn.startswith(log_group + ":"):
        # The stack's function gets a generated name; the log group follows it.
        suffix = arn[len(log_group) :]
        return {"Fn::Sub": region_account % "logs" + "log-group:/aws/lambda/${" + FUNCTION + "}" + suffix}
    raise PackageError(
        f"{stage.policy_file.name} names {arn}, which is not one of stage {stage.name}'s "
        f"resources (table {stage.table}, bucket {stage.bucket}, parameters "
        f"{', '.join(stage.parameters.values()) or 'none'}, log group /aws/lambda/{stage.function_name})"
    )


def check_policy(policy: dict[str, Any], stage: Stage) -> list[str]:
    """What is wrong with the policy file for this stage: foreign or wildcard resources, or a resource left out."""
    problems: list[str] = []
    named: list[str] = []
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow" or "NotResource" in statement or "NotAction" in statement:
            problems.append(f"statement {statement.get('Sid', '?')}: only Allow with Action and Resource is expected")
            continue
        for arn in _resources(statement):
            try:
                stack_reference(arn, stage)
            except PackageError as exc:
                problems.append(str(exc))
            else:
                named.append(arn)
    wanted = {
        f"table {stage.table}": stage.table_arn,
        f"bucket {stage.bucket}": stage.bucket_arn,
        f"log group /aws/lambda/{stage.function_name}": stage.log_group_arn,
        **{f"parameter {p}": stage.parameter_arn(p) for p in stage.parameters.values()},
    }
    for what, arn in wanted.items():
        if not any(name == arn or name.startswith(arn + "/") or name.startswith(arn + ":") for name in named):
            problems.append(f"{stage.policy_file.name} grants nothing on {what}, which the function uses")
    return problems


def stack_policy(policy: dict[str, Any], stage: Stage) -> dict[str, Any]:
    """The policy file with each ARN replaced by its reference in the stack."""
    document = copy.deepcopy(policy)
    for statement in document.get("Statement", []):
        statement["Resource"] = [stack_reference(arn, stage) for arn in _resources(statement)]
    return document


def merge_template(stage: Stage, project_dir: Path = ROOT) -> dict[str, Any]:
    """What `chalice package --merge-template` lays over Chalice's own SAM template."""
    problems = check_policy(load_policy(stage), stage)
    if problems:
        raise PackageError("\n".join(problems))
    infra: dict[str, Any] = json.loads((project_dir / "infra" / "resources.json").read_text())
    template: dict[str, Any] = {
        key: value for key, value in infra.items() if key not in ("AWSTemplateFormatVersion", "Description")
    }
    template["Description"] = (
        f"{stage.app_name} {stage.name}: the SendGrid Inbound Parse webhook, its mail table and bucket"
    )
    resources: dict[str, Any] = template.setdefault("Resources", {})
    resources[FUNCTION] = {
        "Properties": {
            "Environment": {
                "Variables": {"MAILS_TABLE": {"Ref": "MailsTable"}, "MAILS_BUCKET": {"Ref": "MailsBucket"}}
            }
        }
    }
    resources[ROLE] = {"Properties": {"Policies": []}}
    resources[POLICY] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": f"{stage.app_name}-{stage.name}",
            "Roles": [{"Ref": ROLE}],
            "PolicyDocument": stack_policy(load_policy(stage), stage),
        },
    }
    template.setdefault("Outputs", {}).update(
        {
            "MailsTableName": {"Value": {"Ref": "MailsTable"}},
            "MailsBucketName": {"Value": {"Ref": "MailsBucket"}},
        }
    )
    return template


def modernize_terraform(path: Path) -> None:
    """Let Chalice's Terraform output install with current Terraform and AWS provider 5."""
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
    path.write_text(json.dumps(document, indent=2) + "\n")


def chalice_command() -> str:
    beside = Path(sys.executable).with_name("chalice")
    found = str(beside) if beside.exists() else shutil.which("chalice")
    if not found:
        raise PackageError("chalice is not installed (make installs it into .venv)")
    return found


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
        problems = check_policy(load_policy(stage), stage)
        if problems:
            raise PackageError("\n".join(problems))
        command += ["--pkg-format", "terraform", str(outdir)]
        result = outdir / "chalice.tf.json"
    completed = subprocess.run(
        command, env=env if env is not None else dict(os.environ),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    if completed.returncode != 0:
        raise PackageError(f"chalice package failed ({completed.returncode}):\n{completed.stdout}")
    if pkg_format == "terraform":
        modernize_terraform(result)
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
