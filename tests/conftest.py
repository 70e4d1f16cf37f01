from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fila.local import emulator
from fila.local.defaults import SECRETS
from fila.local.provision import provision
from tests.helpers import free_port, stop, unique_stage, use_stage

# Tests never reach real AWS: harmless credentials, and the endpoint set by the fixtures below.
os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_LOG_LEVEL": "WARNING",
                   "FILA_STAGE": "local", "FILA_BATCH_RESPONSE": "partial", **SECRETS})
for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_") or k == "AWS_PROFILE"]:
    os.environ.pop(key)
os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # nothing: a test that forgets a fixture fails fast


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """One moto server for the session, on a free port (the embedded emulator, over HTTP)."""
    url = f"http://127.0.0.1:{free_port()}"
    proc = emulator.start_moto(url)
    assert proc is not None
    os.environ.update(emulator.aws_env(url))  # SQS and DynamoDB directly, the rest through url
    use_stage("local")
    yield url
    stop(proc)


@pytest.fixture
def stage(aws_endpoint: str) -> Iterator[str]:
    """A fresh stage with every resource of infra/ provisioned: tests never share queues or tables."""
    name = unique_stage()
    use_stage(name)
    provision()
    yield name
    use_stage("local")
