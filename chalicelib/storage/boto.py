"""How every AWS call is made: short timeouts, one retry, and one error for any failure.

One request must end inside Lambda's 25 s timeout (and so API Gateway's 29 s):
one call takes at most 2 attempts x (1 s connect + 2 s read) + 1 s backoff =
7 s. A delivery makes three sequential round trips whatever its attachment
count (all its S3 objects at once, the transaction, the queue's message), so
at most 21 s; the objects past PARALLEL_PUTS, and a container's first
GetQueueUrl, are rounds beyond those. Fewer, shorter attempts cost nothing,
because a 503 makes the provider retry and every write is idempotent. The
budget is worked through in docs/design/reliability.md.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StorageUnavailableError

# A delivery writes its objects at once, on at most this many threads and S3
# connections (chalicelib/storage/store.py): the original, the document and
# up to PARALLEL_PUTS - 2 attachments in one S3 round trip.
PARALLEL_PUTS = 32
# A listing queries the shards of its index key PARALLEL_QUERIES at a time
# (chalicelib/storage/reads.py), within botocore's default 10 connections per client.
PARALLEL_QUERIES = 8

# Timeouts apply per socket operation, not per call, so a 4 MB PutObject is not cut short by them.
BOTO_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"total_max_attempts": 2, "mode": "standard"},
)

# Presigned links must be SigV4: newer regions and KMS-encrypted objects refuse SigV2.
# Every PutObject carries its body's ChecksumSHA256, which S3 verifies, so
# botocore need not hash the body a second time to sign it.
S3_CONFIG = BOTO_CONFIG.merge(
    Config(signature_version="s3v4", s3={"payload_signing_enabled": False}, max_pool_connections=PARALLEL_PUTS)
)

# What botocore raises: a service's answer, or no answer at all.
AWS_ERRORS = (BotoCoreError, ClientError)


def storage_error(action: str, exc: Exception) -> StorageUnavailableError:
    """A 503 that names the call and AWS's error code, never the request."""
    code = exc.response["Error"].get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
    return StorageUnavailableError(f"{action} failed ({code})")


def error_code(exc: ClientError) -> str:
    code: str = exc.response["Error"].get("Code", "")
    return code


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def pool() -> ThreadPoolExecutor:
    """The threads that make a request's AWS calls at once, made on first use and kept for the container's life.

    Bounded at PARALLEL_PUTS, the S3 client's own connection pool: more calls
    than that wait for a free thread, never open more connections.
    """
    global _POOL  # noqa: PLW0603 - one pool per process, as the clients are
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=PARALLEL_PUTS, thread_name_prefix="aws")
        return _POOL


def _forget_pool() -> None:
    """A forked child has none of its parent's threads: its first call makes a pool of its own (else it waits forever).

    Lambda never forks; ``make mutate`` does, once per mutant, after a test run made the pool.
    """
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)
