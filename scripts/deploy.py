"""Deploy a stage to AWS: ``make deploy STAGE=dev``.

In order, with the AWS credentials and region of the environment (``AWS_PROFILE``,
``AWS_DEFAULT_REGION``, ...):

1. checks that each policy file of the stage (``.chalice/policy-STAGE.json``,
   ``policy-STAGE-handoff.json`` for the ``hand_off`` function and
   ``policy-STAGE-ses.json`` for ``receive_ses``) names exactly the stage's
   table, bucket, queues, SSM parameters and its functions' log groups
   (``scripts/package.py`` has the rules);
2. creates the table, bucket, handoff queue (MAILS_QUEUE), SES queue
   (SES_QUEUE) and their dead-letter queues of ``infra/resources.json``, or
   brings existing ones up to date (``scripts/create_resources.py``). The SES
   queue is made even for SendGrid-only use, because ``receive_ses`` is always
   deployed and Lambda will not map it to a queue that does not exist; the
   SES receipt rule, its topic and the bucket policy are not made here (only
   the CloudFormation path has them: docs/operations/deploy.md);
3. creates each SSM SecureString parameter the stage names that does not exist
   yet, with fresh random credentials, and never overwrites one that does.
   Secrets are not printed unless ``--show-secrets`` is given: the output says
   how to read them with the AWS CLI instead, so that CI logs and terminals
   scrolled past stay clean;
4. runs ``chalice deploy --stage STAGE`` with MAILS_QUEUE and SES_QUEUE set to
   the stage's queues (the consumer modules read them at import to wire ``hand_off`` and
   ``receive_ses`` to their queues), and prints the webhook URL to give
   SendGrid, with the secret left as a placeholder.

``--parameters-only`` stops after the parameters (the CloudFormation path,
where the stack makes the table, bucket and queues); ``--no-chalice`` stops before
``chalice deploy`` (the Terraform path). Every step can be run again.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.create_resources import LABELS, SchemaError, create_resources  # noqa: E402
from scripts.package import PackageError, Stage, chalice_command, chalice_env, check_policies, load_stage  # noqa: E402


def _new_mail_credentials() -> str:
    # The key names the pair's creation day, so that during a rotation the
    # two pairs in the parameter are easy to tell apart.
    return f"sendgrid-{datetime.now(UTC):%Y%m%d}:{secrets.token_urlsafe(32)}"


def _new_read_token() -> str:
    """A read token, or the replies mailbox's key: 32 random bytes as URL-safe text, no "=" or ","."""
    return secrets.token_urlsafe(32)


# The value a parameter gets when it does not exist yet, by the variable that
# names it. Any other *_PARAMETER (SENDGRID_VERIFICATION_KEY_PARAMETER holds
# SendGrid's public key) cannot be made up and must be created by hand.
GENERATORS: dict[str, Callable[[], str]] = {
    "MAIL_CREDENTIALS_PARAMETER": _new_mail_credentials,
    "READ_TOKENS_PARAMETER": _new_read_token,
    "REPLY_SECRET_PARAMETER": _new_read_token,
}
DESCRIPTIONS = {
    "MAIL_CREDENTIALS_PARAMETER": "inbound-mail: SendGrid ingest credentials, key:secret pairs separated by commas",
    "READ_TOKENS_PARAMETER": "inbound-mail: bearer tokens of the read API (TOKEN or TOKEN=PATTERN ...), by commas",
    "REPLY_SECRET_PARAMETER": "inbound-mail: the key of the replies mailbox's reply addresses",
}


class DeployError(RuntimeError):
    """Something the operator has to fix before the deployment can go on."""


def read_command(name: str) -> str:
    return f"aws ssm get-parameter --name {name} --with-decryption --query Parameter.Value --output text"


def ensure_parameter(ssm: Any, name: str, variable: str) -> str | None:
    """Create the SecureString NAME if absent; returns the value it created, or None if it was there."""
    try:
        # Without decryption: the type is all we need, and reading it needs no KMS permission.
        current = ssm.get_parameter(Name=name, WithDecryption=False)["Parameter"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ParameterNotFound":
            raise
    else:
        if current["Type"] != "SecureString":
            raise DeployError(
                f"parameter {name} exists as a {current['Type']}; it holds a secret and must be a "
                f"SecureString: delete it and run this again"
            )
        return None
    generator = GENERATORS.get(variable)
    if generator is None:
        raise DeployError(
            f"parameter {name} ({variable}) does not exist and cannot be generated; create it with: "
            f"aws ssm put-parameter --type SecureString --name {name} --value '...'"
        )
    value = generator()
    try:
        # No KeyId: the AWS managed key aws/ssm, whose key policy lets every
        # principal of the account decrypt through SSM, so the function's
        # role needs ssm:GetParameter and no kms:Decrypt.
        ssm.put_parameter(
            Name=name, Value=value, Type="SecureString", Overwrite=False,
            Description=DESCRIPTIONS.get(variable, "inbound-mail"),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ParameterAlreadyExists":
            raise
        return None  # made by someone else in the meantime: theirs stands
    return value


def ensure_parameters(session: Any, stage: Stage, show_secrets: bool) -> None:
    ssm = session.client("ssm")
    for variable, name in stage.parameters.items():
        value = ensure_parameter(ssm, name, variable)
        if value is None:
            print(f"parameter {name}: already there, left as it is")
            continue
        print(f"parameter {name}: created (SecureString); read it with: {read_command(name)}")
        if variable == "MAIL_CREDENTIALS_PARAMETER":
            # The key is an identifier, not a secret: SendGrid's URL shows it beside the secret.
            print(f"  MailKey is {value.split(':', 1)[0]}; MailSecret is the part after the ':'")
        if show_secrets:
            print(f"  value: {value}")


def rest_api_url(project_dir: Path, stage: str) -> str | None:
    """The REST API's URL from the record `chalice deploy` keeps, if it has deployed."""
    record = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    if not record.exists():
        return None
    for resource in json.loads(record.read_text()).get("resources", []):
        url = resource.get("rest_api_url")
        if url:
            return str(url)
    return None


def check(stage: Stage) -> None:
    problems = check_policies(stage)
    if problems:
        raise DeployError("\n".join(problems))


def deploy(
    stage_name: str,
    *,
    project_dir: Path = ROOT,
    session: Any = None,
    mail_retention_days: int | None = None,
    show_secrets: bool = False,
    parameters_only: bool = False,
    run_chalice: bool = True,
) -> None:
    stage = load_stage(stage_name, project_dir)
    check(stage)
    # One number for both sides of the retention: the app's TTL (the stage's
    # MAIL_RETENTION_DAYS) and the bucket's lifecycle rule made here.
    configured = int(stage.environment.get("MAIL_RETENTION_DAYS") or 0)
    if mail_retention_days is None:
        mail_retention_days = configured
    elif mail_retention_days != configured:
        raise DeployError(
            f"--mail-retention-days {mail_retention_days} differs from MAIL_RETENTION_DAYS={configured} of the "
            f"stage in .chalice/config.json: set it there, so that the items and the objects expire together"
        )
    session = session or boto3.session.Session()
    if not session.region_name:
        raise DeployError("no AWS region: set AWS_DEFAULT_REGION or run `aws configure`")
    account = session.client("sts").get_caller_identity()["Account"]
    print(f"stage {stage_name}: account {account}, region {session.region_name}")
    if not parameters_only:
        try:
            created = create_resources(
                stage.table, stage.bucket, session, queue=stage.queue, ses_queue=stage.ses_queue,
                mail_retention_days=mail_retention_days,
            )
        except ClientError as exc:
            # HeadBucket answers 403 for a bucket of another account, CreateBucket BucketAlreadyExists.
            if exc.response["Error"]["Code"] in ("BucketAlreadyExists", "403", "Forbidden"):
                raise DeployError(
                    f"the bucket {stage.bucket} belongs to another AWS account (bucket names are global), "
                    f"or these credentials may not read it: choose another name for MAILS_BUCKET in "
                    f".chalice/config.json and put the same name in {stage.policy_file.name}"
                ) from exc
            raise
        names = {"table": stage.table, "bucket": stage.bucket, "queue": stage.queue, "ses_queue": stage.ses_queue}
        for kind, was_created in created.items():
            print(f"{LABELS[kind]} {names[kind]}: {'created' if was_created else 'already there, brought up to date'}")
    ensure_parameters(session, stage, show_secrets)
    if parameters_only or not run_chalice:
        return
    command = [chalice_command(), "--project-dir", str(project_dir), "deploy", "--stage", stage_name]
    print("running:", " ".join(command[-4:]), flush=True)
    completed = subprocess.run(command, env=chalice_env(stage), check=False)
    if completed.returncode != 0:
        raise DeployError(f"chalice deploy failed ({completed.returncode})")
    url = rest_api_url(project_dir, stage_name)
    if url:
        credentials = stage.parameters.get("MAIL_CREDENTIALS_PARAMETER", "?")
        print(
            "\nSendGrid Inbound Parse URL (docs/operations/deploy.md; KEY and SECRET are the two halves of "
            f"a pair in {credentials}):\n  {url.rstrip('/')}/mails?MailKey=KEY&MailSecret=SECRET"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, help="a deployed stage of .chalice/config.json (dev, prod)")
    parser.add_argument(
        "--mail-retention-days", type=int, default=None, metavar="N",
        help="expire stored mail after N days (default: the stage's MAIL_RETENTION_DAYS, else 0: keep)",
    )
    parser.add_argument("--show-secrets", action="store_true", help="print the secrets this run generates")
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument("--parameters-only", action="store_true", help="only create the SSM parameters")
    steps.add_argument("--no-chalice", action="store_true", help="stop before `chalice deploy`")
    args = parser.parse_args(argv)
    if args.mail_retention_days is not None and args.mail_retention_days < 0:
        parser.error("--mail-retention-days must be 0 or more")
    try:
        deploy(
            args.stage,
            mail_retention_days=args.mail_retention_days,
            show_secrets=args.show_secrets,
            parameters_only=args.parameters_only,
            run_chalice=not args.no_chalice,
        )
    except (DeployError, PackageError, SchemaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print("error: no AWS credentials (set AWS_PROFILE, or run `aws configure`)", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
