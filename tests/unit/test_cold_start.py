"""A cold start loads only what its function runs: no signature code without a key, no decoder before a mail.

Each check is a fresh interpreter, as a Lambda container is: what ``import app``
leaves in ``sys.modules`` is what every function's cold start paid for.
bench/run.py measures what it costs (docs/design/performance.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import ROOT
from tests.support.signing import public_key_base64

# Loaded on first use: signature checking (cryptography), the MIME decoder, the
# handoff and its mailboxes, the SES ingress, a stored mail's bytes, the console's compose form.
LAZY = ("cryptography", "chalicelib.mime", "chalicelib.mailboxes", "chalicelib.delivery.handoff",
        "chalicelib.delivery.ledger", "chalicelib.delivery.routing", "chalicelib.ingress.ses.ingestor",
        "chalicelib.ingress.ses.notice", "chalicelib.ingress.sendgrid.webhook", "chalicelib.storage.content",
        "chalicelib.ingress.rfc822", "chalicelib.ingress.relay.ingestor", "chalicelib.ingress.postmark.ingestor",
        "chalicelib.ingress.mailgun.ingestor", "chalicelib.console.compose", "chalicelib.ingress.sendgrid.conductor")


def loaded_after(code: str, **env: str) -> set[str]:
    """The modules of LAZY's packages loaded in a fresh interpreter after ``code``."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SENDGRID_"))}
    environ.update(AWS_DEFAULT_REGION="us-east-1", MAILS_TABLE="t", MAILS_BUCKET="b", **env)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environ, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return {m for m in json.loads(out.splitlines()[-1]) if m.startswith(LAZY)}


def test_importing_the_app_loads_no_signature_code_no_decoder_and_no_handoff() -> None:
    assert loaded_after("import app") == set()


def test_the_sendgrid_ingestor_without_a_key_loads_the_decoder_but_no_cryptography() -> None:
    loaded = loaded_after("import app\nfrom chalicelib.wiring import services\nservices.sendgrid()",
                          MAIL_CREDENTIALS="k:secret-value")
    assert "chalicelib.mime.message" in loaded
    assert not any(m.startswith("cryptography") for m in loaded)


def test_a_verification_key_loads_cryptography_with_the_ingestor() -> None:
    key = public_key_base64(ec.generate_private_key(ec.SECP256R1()))
    loaded = loaded_after("import app\nfrom chalicelib.wiring import services\nservices.sendgrid()",
                          SENDGRID_VERIFICATION_KEY=key)
    assert "cryptography" in loaded


def test_importing_the_app_loads_no_other_package_than_boto3_and_chalice_do() -> None:
    # A new library on the import path is the cold start's largest cost (Powertools' Logger and its
    # typing_extensions were 8 % of `import boto3, chalice`): import it where it is first used.
    # Under make mutate, mutmut's copy of chalicelib imports its trampoline, and the compiler unicodedata for its
    # names (xǁClassǁmethod): counted with boto3 and chalice there.
    script = ("import os, sys\nimport boto3, chalice\n"
              "if 'MUTANT_UNDER_TEST' in os.environ: import mutmut.mutation.trampoline, unicodedata\n"
              "bare = set(sys.modules)\nimport app\n"
              "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - bare})))")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SENDGRID_"))}
    environ.update(AWS_DEFAULT_REGION="us-east-1", MAILS_TABLE="t", MAILS_BUCKET="b")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environ, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.split() == ["app", "chalicelib"]
