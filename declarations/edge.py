"""What the API and the pages share at the HTTP edge: the intake's steps, views, photo files."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from flask import current_app, request, send_file

from accounts.auth import User
from core.db import db, run_unit_of_work, utcnow
from core.timeutil import business_day, local_tz
from declarations import services
from declarations.models import Declaration
from declarations.photos import MAX_BYTES, MAX_PHOTOS, prepare_photos
from declarations.storage import photo_store_from_config

# Three photos at the limit, and the form's few text fields besides.
INTAKE_MAX_BYTES = MAX_PHOTOS * MAX_BYTES + 1024 * 1024
INTAKE_ENDPOINTS = {"declarations_api.submit_declaration", "declarations.new"}


def allow_photo_uploads(endpoint: str | None, _values: Any) -> None:
    """Raise this request's body limit before anything reads the form.

    A URL value preprocessor runs before every before_request hook, and the app's CSRF
    check (a before_request hook) reads the form of a page's POST.
    """
    if endpoint in INTAKE_ENDPOINTS:
        request.max_content_length = INTAKE_MAX_BYTES


@dataclass(frozen=True)
class Taken:
    """What the intake answers, read before the commit (after it the row would be reloaded)."""

    id: int
    status: str
    duplicate_of: int | None
    replayed: bool


def _taken(declaration: Declaration, replayed: bool) -> Taken:
    return Taken(declaration.id, declaration.status, declaration.duplicate_of_id, replayed)


def intake(actor: User, submission: services.Submission) -> Taken:
    """The whole intake, for the API and the phone page alike: judge, decode, record.

    The photos are decoded between two short transactions, never inside one: on SQLite a
    transaction holds the whole database, and decoding is the slow part.
    """
    now = utcnow()
    tz = local_tz()
    today = business_day(now, tz)
    try:
        replay = services.check_submission(
            db.session, actor=actor, today=today, submission=submission
        )
        if replay is not None:
            return _taken(replay, replayed=True)
    finally:
        db.session.rollback()
    photos = prepare_photos(submission.uploads, tz=tz, digests=submission.upload_digests)
    store = photo_store_from_config(current_app.config)

    def record() -> Taken:
        result = services.submit_declaration(
            db.session,
            actor=actor,
            now=now,
            today=today,
            submission=submission,
            photos=photos,
            store=store,
        )
        return _taken(result.declaration, result.replayed)

    return run_unit_of_work(record)


def send_photo(sha256: str, kind: str) -> Any:
    data = photo_store_from_config(current_app.config).read(sha256, kind)
    response = send_file(io.BytesIO(data), mimetype="image/jpeg", etag=sha256 + kind)
    # Named by content it never changes, but it belongs to its village: no shared cache.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


def declaration_view(declaration: Declaration) -> dict[str, Any]:
    """A declaration as the API answers it."""
    correction = services.correction_of(db.session, declaration)
    photos = []
    for photo in declaration.photos:
        duplicate = None
        if photo.duplicate_of is not None:
            duplicate = {
                "declaration_id": photo.duplicate_of.declaration_id,
                "position": photo.duplicate_of.position,
                "distance": photo.duplicate_distance,
            }
        photos.append(
            {
                "position": photo.position,
                "sha256": photo.sha256,
                "width": photo.width,
                "height": photo.height,
                "taken_at": photo.taken_at,
                "latitude": photo.latitude,
                "longitude": photo.longitude,
                "duplicate_of": duplicate,
            }
        )
    return {
        "id": declaration.id,
        "status": declaration.status,
        "household_id": declaration.household_id,
        "head_name": declaration.household.head_name,
        "village_code": declaration.village.code,
        "rule_code": declaration.rule_code,
        "rule_title": declaration.rule.title,
        "points": services.points_for(db.session, declaration),
        "persons": declaration.persons,
        "happened_on": declaration.happened_on,
        "note": declaration.note,
        "submitted_by": declaration.submitted_by.username,
        "submitted_at": declaration.submitted_at,
        "duplicate_of": declaration.duplicate_of_id,
        "decided_by": declaration.decided_by.username if declaration.decided_by else None,
        "decided_at": declaration.decided_at,
        "transfer_id": declaration.transfer_id,
        "reason": declaration.reject_reason,
        "correction_transfer_id": correction.id if correction else None,
        "photos": photos,
    }
