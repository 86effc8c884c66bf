"""JSON API of declarations: multipart intake for the county app, listing, photos, decisions."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import UnsupportedMediaType

from accounts.auth import Role, api_actor, roles_required
from core.api import Blueprint
from core.db import db, transactional, utcnow
from declarations import schemas as s
from declarations import services
from declarations.edge import allow_photo_uploads, declaration_view, intake, send_photo
from declarations.storage import PHOTO, THUMBNAIL

blp = Blueprint(
    "declarations_api", __name__, url_prefix="/api/v1", description="Declarations of deeds"
)
blp.url_value_preprocessor(allow_photo_uploads)

DECLARERS = (Role.ADMIN, Role.CADRE, Role.REPORTER)
DECIDERS = (Role.ADMIN, Role.CADRE)

JPEG_RESPONSE = {
    "200": {
        "description": "The photo as stored: a re-encoded JPEG without EXIF",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@blp.route("/declarations", methods=["POST"])
@roles_required(*DECLARERS)
@blp.doc(requestBody=s.INTAKE_BODY)
@blp.response(201, s.DeclarationCreated)
def submit_declaration() -> Any:
    """Declare a deed with one to three photos (multipart); idempotent by its key.

    A photo that is the same picture as an earlier declaration's, even resized or
    re-encoded, is accepted but marked `duplicate_of` that declaration.
    """
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send the declaration as multipart/form-data")
    submission = s.read_submission(request.form, request.files)
    taken = intake(api_actor(), submission)
    body: dict[str, Any] = {"id": taken.id, "status": taken.status}
    if taken.duplicate_of is not None:
        body["duplicate_of"] = taken.duplicate_of
    return body


@blp.route("/declarations", methods=["GET"])
@roles_required(*DECLARERS)
@blp.arguments(s.DeclarationQuery, location="query")
@blp.response(200, s.DeclarationList)
def list_declarations(query: dict[str, Any]) -> Any:
    """Newest first: the county office sees every village, the others their own."""
    rows = services.list_declarations(db.session, actor=api_actor(), **query)
    return {"declarations": [declaration_view(d) for d in rows]}


@blp.route("/declarations/<id:declaration_id>", methods=["GET"])
@roles_required(*DECLARERS)
@blp.response(200, s.DeclarationOut)
def get_declaration(declaration_id: int) -> Any:
    declaration = services.readable_declaration(
        db.session, actor=api_actor(), declaration_id=declaration_id
    )
    return declaration_view(declaration)


@blp.route("/declarations/<id:declaration_id>/photo", methods=["GET"])
@roles_required(*DECLARERS)
@blp.arguments(s.PhotoQuery, location="query")
@blp.doc(responses=JPEG_RESPONSE)
def declaration_photo(query: dict[str, Any], declaration_id: int) -> Any:
    """The declaration's photo (`position` 1 to 3, default 1), or its thumbnail."""
    photo = services.readable_photo(
        db.session, actor=api_actor(), declaration_id=declaration_id, position=query["position"]
    )
    return send_photo(photo.sha256, THUMBNAIL if query["size"] == "thumb" else PHOTO)


@blp.route("/declarations/<id:declaration_id>/approve", methods=["POST"])
@roles_required(*DECIDERS)
@blp.arguments(s.ApproveIn)
@blp.response(200, s.ApprovedOut)
@transactional()
def approve_declaration(data: dict[str, Any], declaration_id: int) -> Any:
    """Approve: the award posts through the rule, once. Nobody decides their own."""
    approval = services.approve_declaration(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        declaration_id=declaration_id,
        idempotency_key=data["idempotency_key"],
    )
    return {"id": declaration_id, "status": "approved", "transfer_id": approval.transfer_id}


@blp.route("/declarations/<id:declaration_id>/reject", methods=["POST"])
@roles_required(*DECIDERS)
@blp.arguments(s.RejectIn)
@blp.response(200, s.RejectedOut)
@transactional()
def reject_declaration(data: dict[str, Any], declaration_id: int) -> Any:
    """Reject with a reason (required); a decided declaration is not decided again (409)."""
    declaration = services.reject_declaration(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        declaration_id=declaration_id,
        reason=data["reason"],
    )
    return {"id": declaration.id, "status": "rejected", "reason": declaration.reject_reason}
