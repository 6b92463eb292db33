"""Schemathesis hooks for scripts/conformance.sh (see docs/CONFORMANCE.md).

Two extra checks. `payload_too_large_only_when_it_is` holds every `413` to a body over the
service's size limit (the configuration admits `413` as a refusal; see schemathesis.toml).

`refusal_of_valid_data_is_semantic` makes `positive_data_acceptance` stricter, not looser: the
configuration lets a schema-valid request be answered `422` (see schemathesis.toml), and this
check then demands that every field error of that `422` is one the schema cannot rule out, i.e. one that depends on
stored data, on the clock or on the caller (`not_found`, `not_in_future`, ...). A `422` that names
a field error the schema could have expressed (`invalid_type`, `too_long`, `invalid_characters`,
`invalid_format`, `out_of_range`, ...) means the contract promises more than the service accepts,
and fails the run.
"""

from __future__ import annotations

import os
import re

import schemathesis
import schemathesis.specs.openapi.checks as _checks
from schemathesis.core.transforms import to_wire_text
from schemathesis.core import NotSet
from schemathesis.core.jsonschema import make_validator

# Field error codes that no JSON Schema can predict: a reference that names nothing in the
# caller's scope, a time that must lie in the future or after the stored one, a password the
# policy refuses (common, containing the username, one repeated character), a current password
# that does not match, a cursor that this list did not hand out, an `Idempotency-Key` already used
# with another request (generated keys repeat: the examples and boundary values are few).
SEMANTIC = {
    "not_found",
    "out_of_scope",
    "not_in_future",
    "not_later",
    "weak_password",
    "incorrect",
    "invalid_cursor",
    "idempotency_key_reused",
}

# Further (field, code) pairs that depend on stored state or on the caller, per operation.
PER_OPERATION = {
    # A caseworker must end up with a department: whether it has one is stored state.
    "PATCH /api/v1/users/{id}": {("department_id", "required")},
    # Only a whole-tree admin may create a root; a scoped admin must name a parent.
    "POST /api/v1/jurisdictions": {("parent_code", "required")},
    # `external_source` and `external_id` go together: OpenAPI cannot tie two query parameters.
    "GET /api/v1/cases": {("external_source", "required"), ("external_id", "required")},
    "GET /api/v1/cases.csv": {("external_source", "required"), ("external_id", "required")},
    # A dismissal cannot name the case itself as the one it duplicates (the id is in the path).
    "POST /api/v1/cases/{id}/actions/dismiss": {("duplicate_of", "invalid_value")},
    # A period's `to` must not be before its `from`: OpenAPI cannot compare two query parameters.
    "GET /api/v1/stats/summary": {("to", "out_of_range")},
    "GET /api/v1/stats/breakdown": {("to", "out_of_range")},
    "GET /api/v1/stats/overdue": {("to", "out_of_range")},
    # Attribute codes, orders and value keys are unique within a category: JSON Schema's
    # `uniqueItems` compares whole items, not one property of them.
    "POST /api/v1/categories": {("attributes", "invalid_value", "each attribute's"), ("values", "invalid_value", "each value's")},
    "PATCH /api/v1/categories/{code}": {
        ("attributes", "invalid_value", "each attribute's"),
        ("values", "invalid_value", "each value's"),
    },
    # A bulk import is a CSV or JSON-lines file, a string to JSON Schema: its header line naming
    # only known columns, and its having rows at all, are the file's content, not its schema.
    "POST /api/v1/cases:import": {("header", "unknown_column"), ("body", "required")},
}


# Open311 answers every refusal 400 (GeoReport v2 has no 422). Its refusals of schema-valid
# requests must be, like the 422s above, for reasons no schema can state: a date range whose end
# is before its start or that spans more than 90 days (two parameters compared).
OPEN311_SEMANTIC = (
    "end_date: end_date must not be before start_date",
    "end_date: the range may not span more than 90 days",
)


def body_is_valid(case) -> bool:
    """Whether the body really satisfies its schema: the generator does not honour every keyword
    (`if`/`then`/`else`, for one), so a "positive" case can carry a body the schema refuses."""
    if case.body is None or isinstance(case.body, NotSet):
        return True
    body = case.operation.get_body_for_media_type(case.media_type)
    if body is None:
        return True
    validator = make_validator(body.optimized_schema, case.operation.schema.adapter.jsonschema_validator_cls)
    return validator.is_valid(case.body)


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    """JSON lines for `POST /cases:import`: the body is the file, a string, sent as it is; other
    values are written as text the way Schemathesis writes `text/plain` (containers as JSON)."""
    if isinstance(value, bytes):
        return value
    return to_wire_text(value).encode("utf-8")


# Schemathesis does not expect a non-string body to be refused where every value reaches the wire
# as text (`text/plain`, `application/octet-stream`): a "wrong type" is then only another string.
# A JSON-lines file is text in the same way (`{}` as a body *is* the one-line file `{}`), so it
# gets the same treatment. Nothing else about `negative_data_rejection` changes.
_is_stringifying = _checks._is_stringifying_media_type
_checks._is_stringifying_media_type = lambda media_type: media_type == "application/x-ndjson" or _is_stringifying(
    media_type
)


def is_allowed(error, allowed) -> bool:
    """Whether a field error is one of the operation's own: `(field, code)`, or `(field, code,
    message prefix)` where a code also covers other cases; a field's last path segment (`values`
    in `attributes[0].values`) matches too."""
    field, code, message = error.get("field") or "", error.get("code"), error.get("message") or ""
    names = {field, field.rsplit(".", 1)[-1]}
    for entry in allowed:
        if entry[0] in names and entry[1] == code and (len(entry) == 2 or message.startswith(entry[2])):
            return True
    return False


@schemathesis.check
def refusal_of_valid_data_is_semantic(ctx, response, case):
    """A schema-valid request refused with 422 must be refused for reasons the schema cannot state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if case.operation.path.startswith("/open311/") and response.status_code == 400:
        return open311_refusal_is_semantic(response)
    if response.status_code != 422:
        return None
    if not body_is_valid(case):
        return None
    try:
        problem = response.json()
    except ValueError:
        raise AssertionError("a 422 answer is not JSON") from None
    errors = problem.get("errors") if isinstance(problem, dict) else None
    if not errors:
        raise AssertionError("a 422 answer without field errors")
    allowed = PER_OPERATION.get(case.operation.label, set())
    unexpected = [e for e in errors if e.get("code") not in SEMANTIC and not is_allowed(e, allowed)]
    if unexpected:
        listed = ", ".join(f"{e.get('field')}: {e.get('code')} ({e.get('message')})" for e in unexpected)
        raise AssertionError(
            "Schema-valid data refused for a reason the schema could state: "
            f"{listed}. Either the contract allows too much or the service refuses too much."
        )
    return None


# The service's body limits for the run (scripts/conformance.sh sets the first; imports keep
# their default, 64 MiB).
MAX_BODY_BYTES = int(os.environ.get("MINSHENG_MAX_BODY_BYTES", "65536"))
MAX_IMPORT_BYTES = int(os.environ.get("MINSHENG_MAX_IMPORT_BYTES", str(64 * 1024 * 1024)))


@schemathesis.check
def payload_too_large_only_when_it_is(ctx, response, case):
    """`413` is allowed for any request (schemathesis.toml), so it must mean what it says: the body
    that was sent is over the service's limit. A 413 for a body within the limit fails the run."""
    if response.status_code != 413:
        return None
    body = response.request.body or b""
    if not isinstance(body, (bytes, str)):
        return None  # a streamed body: its size is not known here
    size = len(body.encode("utf-8") if isinstance(body, str) else body)
    limit = MAX_IMPORT_BYTES if case.operation.path == "/api/v1/cases:import" else MAX_BODY_BYTES
    if size <= limit:
        raise AssertionError(f"413 for a body of {size} bytes, within the limit of {limit}")
    return None


def open311_refusal_is_semantic(response):
    """An Open311 400 for a schema-valid request: every listed error must be a semantic one."""
    try:
        errors = response.json()
        descriptions = [e.get("description", "") for e in errors]
    except (ValueError, AttributeError, TypeError):
        # The XML variant: <errors><error><code>400</code><description>…</description></error>…
        descriptions = re.findall(r"<description>(.*?)</description>", response.text or "", re.S)
    unexpected = [d for d in descriptions if not d.startswith(OPEN311_SEMANTIC)]
    if unexpected or not descriptions:
        raise AssertionError(
            "Schema-valid Open311 request refused for a reason the schema could state: "
            f"{'; '.join(unexpected) or '(no errors listed)'}. Either the contract allows too much or the service "
            "refuses too much."
        )
    return None


# Schemathesis 4.32.5 bug, worked around here rather than by a looser run: after each scenario it
# scans every string of a 2xx JSON body for links to follow, and `urlsplit` raises on a string that
# merely starts like a URL with an unbalanced `[` (`"http://[…"`, a generated case title the
# service stored and echoed, as it should). The exception escapes as "Test Execution Error" and
# ends the whole run (seen once in CI, 2026-12-02). Such a string is simply not a link: treat it
# as no link; everything else is unchanged.
import schemathesis.engine.observations as _observations

_same_origin_path = _observations._same_origin_path


def _same_origin_path_or_none(value, origin):
    try:
        return _same_origin_path(value, origin)
    except ValueError:
        return None


_observations._same_origin_path = _same_origin_path_or_none
