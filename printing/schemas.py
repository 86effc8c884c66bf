"""Marshmallow schemas of the printing API: printers, their status, jobs, and agents' leases."""

from __future__ import annotations

from marshmallow import fields, validate

from core.api import BaseSchema, LocalDateTime, idempotency_key_field
from printing.devices import KINDS, STATES
from printing.services import REASONS, SALE_PRINT_STATES


class PrintJobOut(BaseSchema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "receipt, copy or report"})
    status = fields.String(metadata={"description": "queued, sending, printed or failed"})
    sale_id = fields.Integer(allow_none=True)
    report_day = fields.Date(allow_none=True)
    attempts = fields.Integer()
    last_error = fields.String(
        allow_none=True, metadata={"description": "the technical text, for the county office"}
    )
    error_code = fields.String(
        allow_none=True,
        metadata={"description": "why it did not print: " + ", ".join(REASONS)},
    )
    error_message = fields.String(
        allow_none=True,
        metadata={"description": "the reason in plain words, in the request's language"},
    )
    error_detail = fields.String(
        allow_none=True, metadata={"description": "last_error without its reason code"}
    )
    created_at = LocalDateTime()
    printed_at = LocalDateTime(allow_none=True)


class PrintJobList(BaseSchema):
    jobs = fields.List(fields.Nested(PrintJobOut))


class PrintIn(BaseSchema):
    idempotency_key = idempotency_key_field()


class ReportPrintQuery(BaseSchema):
    date = fields.Date(load_default=None)


class ShopJobsQuery(BaseSchema):
    report_date = fields.Date(load_default=None)
    status = fields.String(
        load_default=None, validate=validate.OneOf(["queued", "sending", "printed", "failed"])
    )


class PrinterStatusOut(BaseSchema):
    state = fields.String(
        metadata={
            "description": "online, offline, paper_near_end, paper_out, unreachable, unknown, "
            "printing, disabled, agent_connected, agent_offline, none"
        }
    )
    online = fields.Boolean(allow_none=True)
    paper = fields.String(allow_none=True, metadata={"description": "ok, near_end or out"})
    detail = fields.String(allow_none=True)
    checked_at = LocalDateTime(allow_none=True)
    agent_seen_at = LocalDateTime(allow_none=True)


class PrinterConfigOut(BaseSchema):
    kind = fields.String()
    connection = fields.Dict()
    paper_mm = fields.Integer()
    mode = fields.String()
    profile = fields.String(allow_none=True)
    via_agent = fields.Boolean()
    enabled = fields.Boolean()
    source = fields.String(metadata={"description": "database or config (config.toml)"})


class PrinterOut(BaseSchema):
    shop_code = fields.String()
    configured = fields.Boolean()
    printer = fields.Nested(PrinterConfigOut, allow_none=True)
    status = fields.Nested(PrinterStatusOut)
    queued = fields.Integer()
    last_failed_job = fields.Nested(PrintJobOut, allow_none=True)
    last_job = fields.Nested(PrintJobOut, allow_none=True)
    setup_message = fields.String(
        allow_none=True,
        metadata={
            "description": "with no printer or printing switched off: who sets it up, in "
            "plain words"
        },
    )


class SalePrintOut(BaseSchema):
    state = fields.String(metadata={"description": ", ".join(SALE_PRINT_STATES)})
    job_id = fields.Integer(allow_none=True)
    kind = fields.String(allow_none=True, metadata={"description": "receipt or copy"})
    attempts = fields.Integer(allow_none=True)
    error_code = fields.String(
        allow_none=True,
        metadata={"description": "failed: why; queued via an absent agent: agent_offline"},
    )
    error_message = fields.String(allow_none=True)
    message = fields.String(metadata={"description": "one plain sentence for the clerk"})


class PrinterIn(BaseSchema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    connection = fields.Dict(keys=fields.String(), load_default=dict)
    paper_mm = fields.Integer(load_default=58, strict=True, validate=validate.OneOf([58, 80]))
    mode = fields.String(load_default="text", validate=validate.OneOf(["text", "image"]))
    profile = fields.String(load_default=None, allow_none=True)
    via_agent = fields.Boolean(load_default=False)
    enabled = fields.Boolean(load_default=True)


class NextJobQuery(BaseSchema):
    wait = fields.Integer(load_default=0, validate=validate.Range(0, 60))
    printer = fields.String(
        load_default=None,
        validate=validate.OneOf(STATES),
        metadata={"description": "how the agent found its printer (DLE EOT at the shop)"},
    )


class LeasedJobOut(BaseSchema):
    id = fields.Integer()
    kind = fields.String()
    lease = fields.String()
    lease_expires_at = LocalDateTime()
    sale_id = fields.Integer(allow_none=True)
    report_day = fields.Date(allow_none=True)
    paper_mm = fields.Integer()
    data = fields.String(metadata={"description": "the job's ESC/POS bytes, base64"})


class AckIn(BaseSchema):
    lease = fields.String(required=True, validate=validate.Length(min=1, max=64))


class FailIn(BaseSchema):
    lease = fields.String(required=True, validate=validate.Length(min=1, max=64))
    error = fields.String(load_default="", validate=validate.Length(max=2000))


class AgentOut(BaseSchema):
    shop_code = fields.String()
    username = fields.String()
    printer = fields.Nested(PrinterConfigOut, allow_none=True)
