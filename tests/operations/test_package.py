"""`chalice package` of each deployed stage: a template that lints, with our resources and no more in its policies.

Each stage is packaged once per module, from a copy of the project whose
requirements.txt is empty: with the real one, Chalice downloads Linux wheels
of cryptography from PyPI, and the tests must not need the network. The
template does not depend on the requirements, only deployment.zip does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import metrics
from scripts.package import PackageError, package
from tests.conftest import ROOT
from tests.operations.test_infra import expected_grants

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
INFRA = json.loads((ROOT / "infra" / "resources.json").read_text())
MONITORING = json.loads((ROOT / "infra" / "monitoring.json").read_text())
STAGES = ["dev", "prod"]
BIN = Path(sys.executable).parent
# API Gateway's limit on an integration; the function must give up before it.
API_GATEWAY_TIMEOUT = 29


def _offline_env(tmp: Path) -> dict[str, str]:
    """Fake credentials and a region, and no AWS configuration of the machine's: chalice package reads none."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
    )
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what `chalice package` reads, so that nothing is written into the working tree."""
    copy = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "app.py", copy / "app.py")
    shutil.copytree(ROOT / "chalicelib", copy / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "infra", copy / "infra")
    (copy / ".chalice").mkdir()
    for source in (ROOT / ".chalice").glob("*.json"):
        shutil.copy(source, copy / ".chalice" / source.name)
    (copy / "requirements.txt").write_text("")
    return copy


@pytest.fixture(scope="module")
def sam(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sam")
    # Another stage's queues left in the shell: package.py must give chalice the packaged stage's.
    local = CONFIG["stages"]["local"]["environment_variables"]
    env = {**_offline_env(out), "MAILS_QUEUE": local["MAILS_QUEUE"], "SES_QUEUE": local["SES_QUEUE"]}
    return {stage: package(stage, out / stage, project_dir=project, env=env) for stage in STAGES}


@pytest.fixture(scope="module")
def templates(sam: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {stage: json.loads(path.read_text()) for stage, path in sam.items()}


@pytest.fixture(scope="module")
def terraform(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("terraform")
    env = _offline_env(out)
    return {
        stage: package(stage, out / stage, project_dir=project, env=env, pkg_format="terraform")
        for stage in STAGES
    }


def test_each_stage_packages_with_its_deployment_package(sam: dict[str, Path]) -> None:
    for path in sam.values():
        assert (path.parent / "deployment.zip").stat().st_size > 0


def test_each_deployment_package_carries_the_console_s_files(sam: dict[str, Path]) -> None:
    """Chalice packs every file under chalicelib/, not only Python: the console's page, script and style too."""
    static = ROOT / "chalicelib" / "console" / "static"
    for path in sam.values():
        with zipfile.ZipFile(path.parent / "deployment.zip") as package:
            for name in ("index.html", "console.js", "console.css"):
                assert package.read(f"chalicelib/console/static/{name}") == (static / name).read_bytes()


def test_the_templates_pass_cfn_lint(sam: dict[str, Path]) -> None:
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--", *map(str, sam.values())],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_takes_multipart_as_binary_on_a_regional_endpoint(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    api = templates[stage]["Resources"]["RestAPI"]["Properties"]
    assert "multipart/form-data" in api["DefinitionBody"]["x-amazon-apigateway-binary-media-types"]
    assert api["EndpointConfiguration"] == "REGIONAL"
    assert api["StageName"] == stage


@pytest.mark.parametrize("stage", STAGES)
def test_the_table_with_its_index_and_the_bucket_are_those_of_infra(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    resources = templates[stage]["Resources"]
    for name in ("MailsTable", "MailsBucket"):
        assert resources[name] == INFRA["Resources"][name]
        assert resources[name]["DeletionPolicy"] == "Retain"
    indexes = resources["MailsTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert [index["IndexName"] for index in indexes] == ["by_box", "by_status"]
    assert templates[stage]["Parameters"]["MailRetentionDays"]["Default"] == "0"
    # infra's parameters, conditions and rules, as they are: given at `aws cloudformation deploy`.
    for section in ("Parameters", "Conditions", "Rules"):
        # infra/monitoring.json's beside infra's, its namespace's default the stage's.
        expected = {**INFRA.get(section, {}), **MONITORING.get(section, {})}
        if section == "Parameters":
            expected["MetricsNamespace"] = {**expected["MetricsNamespace"], "Default": f"inbound-mail/{stage}"}
        assert templates[stage][section] == expected, section


@pytest.mark.parametrize("stage", STAGES)
def test_the_queue_and_its_dead_letter_queue_are_those_of_infra(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    resources = templates[stage]["Resources"]
    for name in ("MailsQueue", "MailsDeadLetterQueue"):
        assert resources[name] == INFRA["Resources"][name]
    queue = resources["MailsQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["MailsDeadLetterQueue", "Arn"]}, "maxReceiveCount": 6,
    }
    assert resources["MailsDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    # AWS's advice for a Lambda SQS event source: a visibility timeout of six times the function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * resources["HandOff"]["Properties"]["Timeout"]
    outputs = templates[stage]["Outputs"]
    assert outputs["MailsQueueName"] == {"Value": {"Fn::GetAtt": ["MailsQueue", "QueueName"]}}
    assert outputs["MailsDeadLetterQueueUrl"] == {"Value": {"Ref": "MailsDeadLetterQueue"}}


@pytest.mark.parametrize("stage", STAGES)
def test_the_ses_queue_and_its_dead_letter_queue_are_those_of_infra(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    resources = templates[stage]["Resources"]
    for name in ("SesQueue", "SesDeadLetterQueue"):
        assert resources[name] == INFRA["Resources"][name]
        # In every stack, SES or not: receive_ses's event source reads it.
        assert "Condition" not in resources[name]
    queue = resources["SesQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["SesDeadLetterQueue", "Arn"]}, "maxReceiveCount": 5,
    }
    assert queue["VisibilityTimeout"] >= 6 * resources["ReceiveSes"]["Properties"]["Timeout"]
    outputs = templates[stage]["Outputs"]
    assert outputs["SesQueueName"] == {"Value": {"Fn::GetAtt": ["SesQueue", "QueueName"]}}
    assert outputs["SesDeadLetterQueueUrl"] == {"Value": {"Ref": "SesDeadLetterQueue"}}


SES_INGRESS = (
    "SesTopic", "SesSubscription", "SesQueuePolicy", "SesBucketPolicy", "SesReceiptRuleSet", "SesReceiptRule",
)


@pytest.mark.parametrize("stage", STAGES)
def test_the_ses_ingress_is_in_the_stack_when_enabled(templates: dict[str, dict[str, Any]], stage: str) -> None:
    """Topic, subscription, queue policy, bucket policy, receipt rule: infra's, each on EnableSes's condition."""
    template = templates[stage]
    resources = template["Resources"]
    for name in SES_INGRESS:
        assert resources[name] == INFRA["Resources"][name], name
        assert resources[name]["Condition"] in ("SesEnabled", "SesOwnRuleSet")
    assert template["Parameters"]["EnableSes"]["Default"] == "false"
    rule = resources["SesReceiptRule"]["Properties"]["Rule"]
    assert rule["Actions"] == [{"S3Action": {"BucketName": {"Ref": "MailsBucket"}, "ObjectKeyPrefix": "ses/",
                                             "TopicArn": {"Ref": "SesTopic"}}}]
    assert rule["Recipients"] == {"Ref": "SesRecipients"}
    assert rule["ScanEnabled"] is True
    (statement,) = resources["SesBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "ses.amazonaws.com"}
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"] == {"Fn::Sub": "${MailsBucket.Arn}/ses/*"}
    conditions = statement["Condition"]["StringEquals"]
    assert conditions["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    arn, variables = conditions["aws:SourceArn"]["Fn::Sub"]
    assert arn.startswith("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:receipt-rule-set/${RuleSet}")
    assert arn.endswith(":receipt-rule/" + rule["Name"]["Fn::Sub"])
    assert variables["RuleSet"] == resources["SesReceiptRule"]["Properties"]["RuleSetName"]
    subscription = resources["SesSubscription"]["Properties"]
    queue_policy = resources["SesQueuePolicy"]["Properties"]
    assert subscription["Endpoint"] == {"Fn::GetAtt": ["SesQueue", "Arn"]}
    assert subscription["Protocol"] == "sqs"
    (allow,) = queue_policy["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "sns.amazonaws.com"}
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "SesTopic"}}}
    outputs = template["Outputs"]
    assert outputs["SesReceiptRuleSetName"]["Condition"] == outputs["SesTopicArn"]["Condition"] == "SesEnabled"
    # No function may touch the topic, and none needs to: SNS delivers to the queue itself.
    assert "SesTopic" not in json.dumps([document for _, _, document in _policies(template)])


def console(stage: str) -> dict[str, str]:
    """The console's switches, set for the whole stage where it is on (dev; never prod)."""
    return {"CONSOLE": "on", "CONSOLE_COMPOSE": "on"} if stage == "dev" else {}


@pytest.mark.parametrize("stage", STAGES)
def test_hand_off_consumes_the_stacks_queue(templates: dict[str, dict[str, Any]], stage: str) -> None:
    function = templates[stage]["Resources"]["HandOff"]["Properties"]
    settings = CONFIG["stages"][stage]["lambda_functions"]["hand_off"]
    assert function["Handler"] == "chalicelib.delivery.consumer.hand_off"
    assert function["Events"] == {
        "HandOffSqsEventSource": {
            "Type": "SQS",
            "Properties": {
                "Queue": {"Fn::GetAtt": ["MailsQueue", "Arn"]}, "BatchSize": 1, "MaximumBatchingWindowInSeconds": 0,
            },
        }
    }
    assert function["Timeout"] == settings["lambda_timeout"]
    assert function["MemorySize"] == settings["lambda_memory_size"]
    assert function["Role"] == {"Fn::GetAtt": ["HandOffRole", "Arn"]}
    assert function["Environment"]["Variables"] == {
        "MAILS_TABLE": {"Ref": "MailsTable"},
        "MAILS_BUCKET": {"Ref": "MailsBucket"},
        "MAIL_RETENTION_DAYS": {"Ref": "MailRetentionDays"},
        "MAILS_QUEUE": {"Fn::GetAtt": ["MailsQueue", "QueueName"]},
        "SES_QUEUE": {"Fn::GetAtt": ["SesQueue", "QueueName"]},
        "METRICS_NAMESPACE": f"inbound-mail/{stage}",
        **console(stage),
        "MAIL_CREDENTIALS_PARAMETER": "",
        "READ_TOKENS_PARAMETER": "",
        "REPLY_SECRET_PARAMETER": f"/inbound-mail/{stage}/reply-secret",
    }
    # hand_off and receive_ses consume a queue each, and no other function one.
    events = {
        name: event["Properties"]["Queue"]
        for name, resource in templates[stage]["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
    }
    assert events == {"HandOff": {"Fn::GetAtt": ["MailsQueue", "Arn"]},
                      "ReceiveSes": {"Fn::GetAtt": ["SesQueue", "Arn"]}}


@pytest.mark.parametrize("stage", STAGES)
def test_receive_ses_consumes_the_stacks_ses_queue(templates: dict[str, dict[str, Any]], stage: str) -> None:
    function = templates[stage]["Resources"]["ReceiveSes"]["Properties"]
    settings = CONFIG["stages"][stage]["lambda_functions"]["receive_ses"]
    assert function["Handler"] == "chalicelib.ingress.ses.consumer.receive_ses"
    assert function["Events"] == {
        "ReceiveSesSqsEventSource": {
            "Type": "SQS",
            "Properties": {
                "Queue": {"Fn::GetAtt": ["SesQueue", "Arn"]}, "BatchSize": 1, "MaximumBatchingWindowInSeconds": 0,
            },
        }
    }
    assert function["Timeout"] == settings["lambda_timeout"] == 120
    assert function["MemorySize"] == settings["lambda_memory_size"]
    assert function["Role"] == {"Fn::GetAtt": ["ReceiveSesRole", "Arn"]}
    assert function["Environment"]["Variables"] == {
        "MAILS_TABLE": {"Ref": "MailsTable"},
        "MAILS_BUCKET": {"Ref": "MailsBucket"},
        "MAIL_RETENTION_DAYS": {"Ref": "MailRetentionDays"},
        # The stored mail's id goes onto the handoff queue, as for SendGrid's mail.
        "MAILS_QUEUE": {"Fn::GetAtt": ["MailsQueue", "QueueName"]},
        "SES_QUEUE": {"Fn::GetAtt": ["SesQueue", "QueueName"]},
        "METRICS_NAMESPACE": f"inbound-mail/{stage}",
        **console(stage),
        "MAIL_CREDENTIALS_PARAMETER": "",
        "READ_TOKENS_PARAMETER": "",
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_function_is_wired_to_the_stacks_table_bucket_and_parameters(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    function = templates[stage]["Resources"]["APIHandler"]["Properties"]
    assert function["Environment"]["Variables"] == {
        "MAILS_TABLE": {"Ref": "MailsTable"},
        "MAILS_BUCKET": {"Ref": "MailsBucket"},
        "MAIL_RETENTION_DAYS": {"Ref": "MailRetentionDays"},
        "MAILS_QUEUE": {"Fn::GetAtt": ["MailsQueue", "QueueName"]},
        "SES_QUEUE": {"Fn::GetAtt": ["SesQueue", "QueueName"]},
        "METRICS_NAMESPACE": f"inbound-mail/{stage}",
        **console(stage),
        "MAIL_CREDENTIALS_PARAMETER": f"/inbound-mail/{stage}/mail-credentials",
        "READ_TOKENS_PARAMETER": f"/inbound-mail/{stage}/read-tokens",
    }
    assert function["Timeout"] < API_GATEWAY_TIMEOUT
    assert function["MemorySize"] == CONFIG["stages"][stage]["lambda_memory_size"]
    assert function["Role"] == {"Fn::GetAtt": ["ApiHandlerRole", "Arn"]}


def _policies(template: dict[str, Any]) -> list[tuple[str, list[str], dict[str, Any]]]:
    """Every IAM policy document in the template: (where it is, the roles it applies to, the document)."""
    found = []
    for name, resource in template["Resources"].items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            found += [(name, [name], policy["PolicyDocument"]) for policy in properties.get("Policies", [])]
            assert not properties.get("ManagedPolicyArns"), name
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = [ref["Ref"] for ref in properties.get("Roles", [])]
            assert not properties.get("Users") and not properties.get("Groups"), name
            found.append((name, roles, properties["PolicyDocument"]))
        elif kind == "AWS::Serverless::Function":
            assert "Policies" not in properties, name
    return found


def _stack_grants(template: dict[str, Any], role: str) -> set[tuple[str, str]]:
    """(action, resource as JSON) for everything a role may do, from every policy that applies to it."""
    grants = set()
    for _, roles, document in _policies(template):
        if role not in roles:
            continue
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert "NotResource" not in statement and "NotAction" not in statement
            for resource in statement["Resource"]:
                # A plain string would be a literal name (or "*"): every one must be a reference,
                # but X-Ray's write actions, which name no resource.
                assert isinstance(resource, dict) or (resource == "*" and statement["Sid"] == "Tracing"), resource
                grants |= {(action, json.dumps(resource)) for action in statement["Action"]}
    return grants


def _as_stack_reference(arn: str, stage: str) -> str:
    """The reference the stack should have for an ARN of the policy files, written out by hand."""
    env = CONFIG["stages"][stage]["environment_variables"]
    ours = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"
    table = f"arn:aws:dynamodb:*:*:table/{env['MAILS_TABLE']}"
    bucket = f"arn:aws:s3:::{env['MAILS_BUCKET']}"
    logs = f"arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-{stage}"
    reference: dict[str, Any]
    if arn == table:
        reference = {"Fn::GetAtt": ["MailsTable", "Arn"]}
    elif arn.startswith(table + "/"):
        reference = {"Fn::Sub": "${MailsTable.Arn}" + arn[len(table):]}
    elif arn.startswith(bucket + "/"):
        reference = {"Fn::Sub": "${MailsBucket.Arn}" + arn[len(bucket):]}
    elif arn == f"arn:aws:sqs:*:*:{env['MAILS_QUEUE']}":
        reference = {"Fn::GetAtt": ["MailsQueue", "Arn"]}
    elif arn == f"arn:aws:sqs:*:*:{env['SES_QUEUE']}":
        reference = {"Fn::GetAtt": ["SesQueue", "Arn"]}
    elif arn.startswith("arn:aws:ssm:*:*:parameter/"):
        reference = {"Fn::Sub": ours % "ssm" + arn.split(":", 5)[5]}
    elif arn == f"{logs}:*":
        reference = {"Fn::Sub": ours % "logs" + "log-group:/aws/lambda/${APIHandler}:*"}
    elif arn == f"{logs}-hand_off:*":
        reference = {"Fn::Sub": ours % "logs" + "log-group:/aws/lambda/${HandOff}:*"}
    elif arn == f"{logs}-receive_ses:*":
        reference = {"Fn::Sub": ours % "logs" + "log-group:/aws/lambda/${ReceiveSes}:*"}
    elif arn == "*":
        return json.dumps(arn)  # X-Ray's write actions: they name no resource
    else:
        raise AssertionError(arn)
    return json.dumps(reference)


@pytest.mark.parametrize("stage", STAGES)
def test_each_role_may_do_what_its_function_calls_on_our_resources_only(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    template = templates[stage]
    expected = expected_grants(stage)
    for role, policy_name in (("ApiHandlerRole", f"policy-{stage}.json"),
                              ("HandOffRole", f"policy-{stage}-handoff.json"),
                              ("ReceiveSesRole", f"policy-{stage}-ses.json")):
        wanted = {(action, _as_stack_reference(arn, stage)) for action, arn in expected[policy_name]}
        assert _stack_grants(template, role) == wanted, role
    assert sorted((name, roles) for name, roles, _ in _policies(template)) == [
        ("ApiHandlerRole", ["ApiHandlerRole"]),
        ("FunctionsPolicy", ["ApiHandlerRole"]),
        ("HandOffPolicy", ["HandOffRole"]),
        ("HandOffRole", ["HandOffRole"]),
        ("ReceiveSesPolicy", ["ReceiveSesRole"]),
        ("ReceiveSesRole", ["ReceiveSesRole"]),
    ]
    # No function reads or writes a dead-letter queue: SQS moves messages there itself.
    documents = json.dumps([document for _, _, document in _policies(template)])
    assert "MailsDeadLetterQueue" not in documents
    assert "SesDeadLetterQueue" not in documents
    # Only receive_ses reads what SES writes, and nothing of ours writes under ses/.
    ses_objects = json.dumps({"Fn::Sub": "${MailsBucket.Arn}/ses/*"})
    assert {(role, action) for role in ("ApiHandlerRole", "HandOffRole", "ReceiveSesRole")
            for action, resource in _stack_grants(template, role) if resource == ses_objects} == {
        ("ReceiveSesRole", "s3:GetObject")
    }


@pytest.mark.parametrize("stage", STAGES)
def test_what_the_event_source_needs_is_in_the_role_before_the_function_exists(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    """Lambda refuses an SQS event source mapping whose function's role cannot receive from the queue yet.

    A policy of its own (FunctionsPolicy, HandOffPolicy) is created after the
    function it names; the role's inline policy before it. Only the log
    statements, which name the function, may be outside the role.
    """
    resources = templates[stage]["Resources"]
    consumers = (("HandOffRole", "HandOff", "MailsQueue"), ("ReceiveSesRole", "ReceiveSes", "SesQueue"))
    for role, function, queue in consumers:
        (inline,) = resources[role]["Properties"]["Policies"]
        in_role = {
            action for statement in inline["PolicyDocument"]["Statement"]
            if {"Fn::GetAtt": [queue, "Arn"]} in statement["Resource"]
            for action in statement["Action"]
        }
        assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= in_role, role
        assert function not in json.dumps(inline)
    for name in ("FunctionsPolicy", "HandOffPolicy", "ReceiveSesPolicy"):
        for statement in resources[name]["Properties"]["PolicyDocument"]["Statement"]:
            assert all(action.startswith("logs:") for action in statement["Action"]), name


@pytest.mark.parametrize("stage", STAGES)
def test_terraform_output_validates(terraform: dict[str, Path], tmp_path: Path, stage: str) -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed here (it is not on PyPI, Debian or npm)")
    mirror = _provider_mirror()
    if mirror is None:
        pytest.skip(
            "no local mirror of the hashicorp/aws provider (TF_PLUGIN_MIRROR, /opt/tf-plugins, "
            "~/.terraform.d/plugins): terraform init would download it from registry.terraform.io, "
            "and the tests must not reach the network"
        )
    workdir = tmp_path / "tf"
    shutil.copytree(terraform[stage].parent, workdir)
    rc = tmp_path / "terraformrc"
    # Providers from the mirror only: never a silent download.
    rc.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n'
        "}\n"
    )
    env = {**_offline_env(tmp_path), "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1",
           "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    init = subprocess.run(
        [binary, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=workdir, env=env, capture_output=True, text=True, check=False, timeout=300,
    )
    if init.returncode != 0 and "provider" in init.stderr and "mirror" in init.stderr.lower():
        pytest.skip(f"the local provider mirror {mirror} lacks a provider this template needs:\n{init.stderr}")
    assert init.returncode == 0, init.stdout + init.stderr
    validate = subprocess.run(
        [binary, "validate", "-json", "-no-color"],
        cwd=workdir, env=env, capture_output=True, text=True, check=False, timeout=300,
    )
    report = json.loads(validate.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=1)
    assert report["error_count"] == 0


def _provider_mirror() -> Path | None:
    candidates = [os.environ.get("TF_PLUGIN_MIRROR", ""), "/opt/tf-plugins", "~/.terraform.d/plugins"]
    for candidate in candidates:
        if not candidate:
            continue
        path = Path(candidate).expanduser()
        if (path / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return path
    return None


def test_terraform_output_keeps_the_stage_names(terraform: dict[str, Path]) -> None:
    for stage, path in terraform.items():
        document = json.loads(path.read_text())
        function = document["resource"]["aws_lambda_function"]["api_handler"]
        assert function["environment"]["variables"]["MAILS_TABLE"] == f"inbound-mail-{stage}"
        assert function["timeout"] < API_GATEWAY_TIMEOUT
        assert "null" not in document["terraform"]["required_providers"]
        policies = document["resource"]["aws_iam_role_policy"]
        assert json.loads(policies["api_handler_role"]["policy"]) == json.loads(
            (ROOT / ".chalice" / f"policy-{stage}.json").read_text()
        )
        assert json.loads(policies["hand_off_role"]["policy"]) == json.loads(
            (ROOT / ".chalice" / f"policy-{stage}-handoff.json").read_text()
        )
        assert json.loads(policies["receive_ses_role"]["policy"]) == json.loads(
            (ROOT / ".chalice" / f"policy-{stage}-ses.json").read_text()
        )
        handoff = document["resource"]["aws_lambda_function"]["hand_off"]
        assert handoff["environment"]["variables"]["MAILS_QUEUE"] == f"inbound-mail-{stage}-handoff"
        assert handoff["environment"]["variables"]["SES_QUEUE"] == f"inbound-mail-{stage}-ses"
        mappings = {
            mapping["function_name"]: mapping
            for mapping in document["resource"]["aws_lambda_event_source_mapping"].values()
        }
        assert set(mappings) == {"${aws_lambda_function.hand_off.arn}", "${aws_lambda_function.receive_ses.arn}"}
        for function, queue in (("hand_off", f"inbound-mail-{stage}-handoff"),
                                ("receive_ses", f"inbound-mail-{stage}-ses")):
            mapping = mappings[f"${{aws_lambda_function.{function}.arn}}"]
            assert mapping["event_source_arn"].endswith(f":{queue}")
            # Created only once the role may receive from the queue.
            assert mapping["depends_on"] == [f"aws_iam_role_policy.{function}_role"]


@pytest.fixture
def tampered(project: Path, tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "tampered"
    shutil.copytree(project, copy)
    policy_path = copy / ".chalice" / "policy-dev.json"
    policy = json.loads(policy_path.read_text())
    policy["Statement"].append({"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]})
    policy_path.write_text(json.dumps(policy))
    yield copy


def test_packaging_refuses_a_policy_that_names_anything_else(tampered: Path, tmp_path: Path) -> None:
    for pkg_format in ("cloudformation", "terraform"):
        with pytest.raises(PackageError, match='"\\*" is a resource only for xray:PutTelemetryRecords'):
            package("dev", tmp_path / pkg_format, project_dir=tampered, pkg_format=pkg_format)


STUB_APP = '''
from chalice import Chalice

app = Chalice(app_name="inbound-mail")
app.api.binary_types.append("multipart/form-data")


@app.route("/mails", methods=["POST"], content_types=["multipart/form-data"])
def receive_mail():
    return {}


@app.lambda_function()
def sweep(event, context):
    return None
'''


SQS_STUB_APP = STUB_APP + '''

@app.on_sqs_message(queue="someone-elses-queue", batch_size=1)
def hand_off(event):
    return None
'''


def _two_function_project(
    root: Path, extra_log_groups: list[str], app: str = STUB_APP, own_policies: bool = False
) -> Path:
    """An app with a second function beside the REST API's, and this repository's stage config and policy.

    Without ``own_policies`` the stage's lambda_functions (hand_off's and
    receive_ses's policy files of their own) are left out, as the stub has
    neither function.
    """
    root.mkdir()
    (root / "app.py").write_text(app)
    (root / "requirements.txt").write_text("")
    shutil.copytree(ROOT / "infra", root / "infra")
    (root / ".chalice").mkdir()
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    if own_policies:
        for own in ("policy-dev-handoff.json", "policy-dev-ses.json"):
            shutil.copy(ROOT / ".chalice" / own, root / ".chalice" / own)
    else:
        del config["stages"]["dev"]["lambda_functions"]
    (root / ".chalice" / "config.json").write_text(json.dumps(config))
    policy = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    logs = next(statement for statement in policy["Statement"] if statement["Sid"] == "Logs")
    logs["Resource"] += extra_log_groups
    (root / ".chalice" / "policy-dev.json").write_text(json.dumps(policy))
    return root


def test_every_function_gets_the_stack_policy_and_the_stack_names(tmp_path: Path) -> None:
    project = _two_function_project(
        tmp_path / "app", ["arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-dev-sweep:*"]
    )
    out = tmp_path / "out"
    template = json.loads(package("dev", out, project_dir=project, env=_offline_env(tmp_path)).read_text())
    resources = template["Resources"]
    assert resources["FunctionsPolicy"]["Properties"]["Roles"] == [{"Ref": "ApiHandlerRole"}, {"Ref": "SweepRole"}]
    for function, role in (("APIHandler", "ApiHandlerRole"), ("Sweep", "SweepRole")):
        # The file's statements but the log groups', each ARN a reference to the stack's resource.
        (inline,) = resources[role]["Properties"]["Policies"]
        statements = inline["PolicyDocument"]["Statement"]
        assert "Logs" not in {statement["Sid"] for statement in statements}
        # X-Ray's write actions name no resource, and only they may have "*".
        assert all(isinstance(arn, dict) or (arn == "*" and statement["Sid"] == "Tracing")
                   for statement in statements for arn in statement["Resource"])
        assert resources[function]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        assert resources[function]["Properties"]["Environment"]["Variables"]["MAILS_TABLE"] == {"Ref": "MailsTable"}
    logs = next(
        statement for statement in resources["FunctionsPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if statement["Sid"] == "Logs"
    )
    sweep_logs = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${Sweep}:*"
    assert {"Fn::Sub": sweep_logs} in logs["Resource"]


def test_a_function_the_policy_forgets_is_refused(tmp_path: Path) -> None:
    project = _two_function_project(tmp_path / "app", [])
    with pytest.raises(PackageError, match="function Sweep has a role the packaged policy does not cover"):
        package("dev", tmp_path / "out", project_dir=project, env=_offline_env(tmp_path))


def test_a_log_group_of_no_function_is_refused(tmp_path: Path) -> None:
    project = _two_function_project(
        tmp_path / "app",
        ["arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-dev-sweep:*",
         "arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-dev-ghost:*"],
    )
    with pytest.raises(PackageError, match="function Ghost that is not in the package"):
        package("dev", tmp_path / "out", project_dir=project, env=_offline_env(tmp_path))


def test_a_function_given_a_policy_file_of_its_own_must_be_in_the_app(tmp_path: Path) -> None:
    project = _two_function_project(
        tmp_path / "app", ["arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-dev-sweep:*"], own_policies=True
    )
    with pytest.raises(PackageError, match=r"gives policy-dev-handoff\.json to a function HandOff that is not in"):
        package("dev", tmp_path / "out", project_dir=project, env=_offline_env(tmp_path))


def test_a_consumer_of_a_queue_that_is_not_the_stages_is_refused(tmp_path: Path) -> None:
    project = _two_function_project(
        tmp_path / "app", ["arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-dev-sweep:*"],
        app=SQS_STUB_APP, own_policies=True,
    )
    with pytest.raises(PackageError, match=r"function HandOff reads the queue .*someone-elses-queue.*not the stage's"):
        package("dev", tmp_path / "out", project_dir=project, env=_offline_env(tmp_path))


SES_STUB_APP = STUB_APP + '''

@app.on_sqs_message(queue="inbound-mail-dev-handoff", batch_size=1)
def hand_off(event):
    return None


@app.on_sqs_message(queue="inbound-mail-dev-handoff", batch_size=1)
def receive_ses(event):
    return None
'''


def test_each_consumer_must_read_its_own_queue(tmp_path: Path) -> None:
    """receive_ses on the handoff queue (app.py naming the wrong variable) is refused, not wired to SesQueue."""
    project = _two_function_project(
        tmp_path / "app", ["arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-dev-sweep:*"],
        app=SES_STUB_APP, own_policies=True,
    )
    with pytest.raises(
        PackageError, match=r"function ReceiveSes reads the queue .*inbound-mail-dev-handoff.*not the stage's "
                            r"inbound-mail-dev-ses: was SES_QUEUE set"
    ):
        package("dev", tmp_path / "out", project_dir=project, env=_offline_env(tmp_path))


def test_a_consumer_the_stack_has_no_queue_for_is_refused(tmp_path: Path) -> None:
    app = STUB_APP.replace("@app.lambda_function()", '@app.on_sqs_message(queue="inbound-mail-dev-handoff")')
    project = _two_function_project(
        tmp_path / "app", ["arn:aws:logs:*:*:log-group:/aws/lambda/inbound-mail-dev-sweep:*"], app=app
    )
    with pytest.raises(PackageError, match=r"function Sweep reads the queue .*and the stack has no queue for it"):
        package("dev", tmp_path / "out", project_dir=project, env=_offline_env(tmp_path))


# -- alarms, their topic and the dashboard (infra/monitoring.json) --------------------------------------------


def _alarm(resources: dict[str, Any], name: str) -> dict[str, Any]:
    alarm = resources[name]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    properties: dict[str, Any] = alarm["Properties"]
    assert properties["AlarmActions"] == properties["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert properties["TreatMissingData"] == "notBreaching"
    return properties


def _watches(properties: dict[str, Any]) -> tuple[Any, ...]:
    return (properties["Namespace"], properties["MetricName"], properties["Dimensions"], properties["Statistic"],
            properties["Period"], properties["EvaluationPeriods"], properties["ComparisonOperator"],
            properties["Threshold"])


@pytest.mark.parametrize("stage", STAGES)
def test_the_packaged_template_holds_the_alarms_on_the_metrics_the_code_writes(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    template = templates[stage]
    resources = template["Resources"]
    service = [{"Name": "Service", "Value": metrics.SERVICE}]
    namespace = {"Ref": "MetricsNamespace"}
    assert template["Parameters"]["MetricsNamespace"]["Default"] == CONFIG["stages"][stage][
        "environment_variables"]["METRICS_NAMESPACE"]
    # Any message in a dead-letter queue.
    dead_letters = {"HandoffDeadLetterAlarm": "MailsDeadLetterQueue", "SesDeadLetterAlarm": "SesDeadLetterQueue"}
    for name, queue in dead_letters.items():
        assert _watches(_alarm(resources, name)) == (
            "AWS/SQS", "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}], "Maximum", 300, 1,
            "GreaterThanOrEqualToThreshold", 1)
    # 5xx above a threshold in each 5 minutes for 15 minutes.
    errors = _alarm(resources, "ServerErrorsAlarm")
    assert _watches(errors) == (namespace, metrics.SERVER_ERRORS, service, "Sum", 300, 3, "GreaterThanThreshold",
                                {"Ref": "ServerErrorThreshold"})
    assert errors["DatapointsToAlarm"] == 3
    assert _watches(_alarm(resources, "QuarantineAlarm")) == (
        namespace, metrics.QUARANTINED, service, "Sum", 3600, 1, "GreaterThanThreshold", {"Ref": "QuarantineThreshold"})
    # The handoff queue's oldest message older than an hour.
    assert _watches(_alarm(resources, "HandoffAgeAlarm")) == (
        "AWS/SQS", "ApproximateAgeOfOldestMessage",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["MailsQueue", "QueueName"]}}], "Maximum", 300, 1,
        "GreaterThanThreshold", 3600)
    # The operator's address, given at deploy time, is subscribed only when given.
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    subscription = resources["AlarmSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                                          "Endpoint": {"Ref": "AlarmEmail"}}
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Outputs"]["AlarmTopicArn"] == MONITORING["Outputs"]["AlarmTopicArn"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_dashboard_graphs_only_metrics_the_code_writes(templates: dict[str, dict[str, Any]], stage: str) -> None:
    body = templates[stage]["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(body)  # what CloudWatch will read, once the references are filled in
    written = {value for name, value in vars(metrics).items() if name.isupper() and isinstance(value, str)}
    graphed = {row[1] for widget in dashboard["widgets"] for row in widget["properties"]["metrics"]
               if isinstance(row[0], str) and row[0] == "${MetricsNamespace}"}
    assert graphed == written - {metrics.SERVICE, metrics.NAMESPACE, metrics.DEFAULT_NAMESPACE, metrics.COUNT,
                                 metrics.BYTES, metrics.MILLISECONDS}
    references = set(re.findall(r"\$\{([^}]+)\}", body))
    assert references == {"MetricsNamespace", "AWS::Region", "MailsQueue.QueueName", "MailsDeadLetterQueue.QueueName",
                          "SesDeadLetterQueue.QueueName"}


def test_a_resource_of_both_infra_files_is_an_error(project: Path, tmp_path: Path) -> None:
    from scripts.package import load_stage, merge_template

    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    monitoring = json.loads((copy / "infra" / "monitoring.json").read_text())
    monitoring["Resources"]["MailsQueue"] = monitoring["Resources"]["AlarmTopic"]
    (copy / "infra" / "monitoring.json").write_text(json.dumps(monitoring))
    with pytest.raises(PackageError, match="both define MailsQueue"):
        merge_template(load_stage("dev", copy), copy)


@pytest.mark.parametrize("stage", STAGES)
def test_every_function_is_traced_by_x_ray_and_may_write_its_traces(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    """The stage's "xray": true; the role's grant is X-Ray's two write actions, on "*" (they name no resource)."""
    resources = templates[stage]["Resources"]
    functions = [name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    assert sorted(functions) == ["APIHandler", "HandOff", "ReceiveSes"]
    for name in functions:
        properties = resources[name]["Properties"]
        assert properties["Tracing"] == "Active", name
        role = resources[properties["Role"]["Fn::GetAtt"][0]]["Properties"]
        statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
        assert [s for s in statements if s.get("Sid") == "Tracing"] == [{
            "Sid": "Tracing", "Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "Resource": ["*"],
        }], name
