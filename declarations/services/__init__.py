"""Declaration operations. Each takes the session, the acting user and the time; none commits.

Split by topic: taking a declaration in (intake), finding an earlier copy of a photo
(duplicates), deciding (review), reading (queries), and who may (access).
"""

from declarations.services.access import (
    get_declaration,
    may_decide,
    readable_declaration,
    require_decider,
)
from declarations.services.duplicates import THRESHOLD, Match, bands, find_duplicate
from declarations.services.intake import (
    MAX_AGE_DAYS,
    PERIOD_LABELS,
    PERIODS,
    Submission,
    Submitted,
    check_submission,
    period_bounds,
    submit_declaration,
)
from declarations.services.queries import (
    Queue,
    earlier_declaration,
    list_declarations,
    month_of,
    month_start,
    points_for,
    previous_month,
    public_list,
    readable_photo,
    review_queue,
)
from declarations.services.review import (
    Approval,
    approve_declaration,
    correct_approval,
    correction_of,
    reject_declaration,
)

__all__ = [
    "MAX_AGE_DAYS",
    "PERIODS",
    "PERIOD_LABELS",
    "THRESHOLD",
    "Approval",
    "Match",
    "Queue",
    "Submission",
    "Submitted",
    "approve_declaration",
    "bands",
    "check_submission",
    "correct_approval",
    "correction_of",
    "earlier_declaration",
    "find_duplicate",
    "get_declaration",
    "list_declarations",
    "may_decide",
    "month_of",
    "month_start",
    "period_bounds",
    "points_for",
    "previous_month",
    "public_list",
    "readable_declaration",
    "readable_photo",
    "reject_declaration",
    "require_decider",
    "review_queue",
    "submit_declaration",
]
