"""The outside world the handlers change, each behind a small interface.

HTTP targets (CRM, Slack) use urllib3, which boto3 already brings into the Lambda bundle. Their
answers become the job system's verdicts: 2xx done; 429 ``RetryAfter`` (the server's Retry-After);
5xx, timeouts and connection errors retried with the job's backoff; any other 4xx ``Permanent``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any
from urllib.parse import quote

import urllib3
from botocore.exceptions import ClientError

from chalicelib import aws, display
from chalicelib.jobs import Permanent, RetryAfter
from chalicelib.settings import resource_name

TIMEOUT = urllib3.Timeout(connect=2.0, read=5.0)


@cache
def _pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(num_pools=4, maxsize=16, retries=False, timeout=TIMEOUT)


def call(method: str, url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    """One JSON request; the decoded answer, or the exception that tells the job what to do."""
    try:
        response = _pool().request(method, url, body=json.dumps(body).encode(),
                                   headers={"Content-Type": "application/json", **(headers or {})})
    except urllib3.exceptions.HTTPError as err:  # timeouts, refused connections: try again later
        raise ConnectionError(f"{method} {url}: {type(err).__name__}") from None
    status = response.status
    if 200 <= status < 300:
        try:
            return json.loads(response.data) if response.data else None
        except ValueError:
            return response.data.decode(errors="replace")
    detail = f"answered {status}: {method} {url}: {response.data[:200].decode(errors='replace')}"
    if status == 429:
        raise RetryAfter(_retry_after(response.headers.get("Retry-After")), detail)
    if status >= 500:
        raise ConnectionError(detail)
    raise Permanent(detail)


def _retry_after(value: str | None) -> float:
    try:
        return max(1.0, min(float(value or 30), 3600.0))
    except ValueError:
        return 30.0


def configured(name: str) -> str:
    """A target's URL from the stage's configuration; unset, the job retries (and names it)."""
    value = os.environ.get(name)
    if not value:
        raise ConnectionError(f"{name} is not set for this stage")
    return value


class Crm:
    def upsert(self, email: str, name: str, properties: dict[str, Any], idempotency_key: str) -> Any:
        """JSON is data: the values go as they are, bounded in length (display.crm)."""
        base = configured("CRM_API_URL")
        return call("PUT", f"{base.rstrip('/')}/contacts/{quote(email, safe='@')}",
                    {"email": email, "name": display.crm(name),
                     "properties": {k: display.crm(v) for k, v in properties.items()}},
                    {"Idempotency-Key": idempotency_key})


class Slack:
    def post(self, template: str, **fields: Any) -> str:
        """Post ``template`` with each field escaped for mrkdwn; the text that was posted."""
        text = display.fill(template, display.slack, fields)
        call("POST", configured("SLACK_WEBHOOK_URL"), {"text": text})
        return text


class Mailer:
    def send(self, to: str, subject: str, text: str, html: str, **fields: Any) -> str:
        """The three templates filled with ``fields``: plain text for the subject and the text part,
        HTML-escaped for the HTML part. SES takes each as a separate field."""
        def part(template: str, escape: Any) -> dict[str, str]:
            return {"Data": display.fill(template, escape, fields), "Charset": "UTF-8"}

        try:
            response = aws.client("ses").send_email(
                Source=sender(), Destination={"ToAddresses": [to]},
                Message={"Subject": part(subject, display.plain),
                         "Body": {"Text": part(text, display.plain), "Html": part(html, display.email_html)}})
        except ClientError as err:  # over SES's sending rate despite the lane's limit: a second, then again
            if err.response.get("Error", {}).get("Code") == "Throttling":
                raise RetryAfter(1, "SES: maximum sending rate exceeded") from None
            raise
        return str(response["MessageId"])


def sender() -> str:
    return os.environ.get("EMAIL_FROM", "receipts@fila.example.com")


class Documents:
    @property
    def bucket(self) -> str:
        return resource_name("documents")

    def put(self, key: str, body: bytes, content_type: str) -> None:
        aws.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def link(self, key: str, expires: int = 7 * 86400) -> str:
        return str(aws.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires))


crm, slack, mailer, documents = Crm(), Slack(), Mailer(), Documents()
