"""The local stage's documented defaults: public on purpose, and never shipped to Lambda.

`fila up`, the tests and the benches put them into the environment of the processes they start;
chalicelib only ever reads the environment (local stages) or SSM (every other stage).
"""

from __future__ import annotations

import os

LOCAL_STAGE = "local"
SECRETS = {
    "STRIPE_WEBHOOK_SECRET": "whsec_fila_local_stripe",
    "GITHUB_WEBHOOK_SECRET": "fila-local-github",
    "SHOPIFY_WEBHOOK_SECRET": "fila-local-shopify",
    "STANDARD_WEBHOOK_SECRET": "whsec_ZmlsYS1sb2NhbC1zdGFuZGFyZC13ZWJob29rcy1rZXk=",
    "ADMIN_TOKEN": "fila-local-admin",
}
API_PORT = 8000
FAKE_TARGETS = {"CRM_API_URL": "crm", "SLACK_WEBHOOK_URL": "slack"}  # served beside the local API


def fake_url(target: str, port: int | str | None = None) -> str:
    """A fake target served beside the local API (``/_fakes/crm``, ``/_fakes/slack``)."""
    return f"http://127.0.0.1:{port or os.environ.get('PORT', API_PORT)}/_fakes/{target}"


def secret(name: str) -> str:
    """The value in force locally: the environment's (its first, if it holds several), else the
    documented default."""
    return (os.environ.get(name) or SECRETS[name]).split(",")[0].strip()


def stage_env(port: int | str | None = None) -> dict[str, str]:
    """What a local process needs besides the AWS endpoint: the stage, its secrets and its targets
    (each overridable by the caller's environment)."""
    stage = os.environ.get("FILA_STAGE") or LOCAL_STAGE
    env = {"FILA_STAGE": stage}
    env["FILA_BATCH_RESPONSE"] = "partial"  # the local mappings report partial failures, as make deploy's do
    if stage == LOCAL_STAGE or stage.startswith(LOCAL_STAGE + "-"):
        env.update({name: os.environ.get(name) or SECRETS[name] for name in SECRETS})
        for name, fake in FAKE_TARGETS.items():
            env[name] = os.environ.get(name) or fake_url(fake, port)
    return env
