"""What a service refuses. ``WorkflowError`` is the one base: its message is for users, translated
where it is raised."""

from __future__ import annotations

from django.utils.translation import gettext

from . import diffing
from .models import Revision


class WorkflowError(Exception):
    """A request that the draft's state or the input does not allow; the message is for users."""


class RevisionConflict(WorkflowError):
    """The editor saved against a revision that is no longer current. Their text was kept as
    ``revision`` (not current); ``current`` is what someone else saved meanwhile."""

    def __init__(self, *, current: Revision, revision: Revision):
        super().__init__(
            gettext("Someone else saved revision %(current)d while you were editing. "
                    "Your text was kept as revision %(kept)d.")
            % {"current": current.number, "kept": revision.number}
        )
        self.current = current
        self.revision = revision


class StaleRevision(WorkflowError):
    """A review decision was made on a revision that is no longer the draft's current one,
    ``current``."""

    def __init__(self, message: str, *, current: Revision | None):
        super().__init__(message)
        self.current = current


class BlockingFlags(WorkflowError):
    """The content checks raise a blocking flag on the text to approve; ``flags`` are they."""

    def __init__(self, flags: list[dict]):
        super().__init__(
            gettext("Blocking flags: %(flags)s")
            % {"flags": "; ".join(diffing.flag_message(flag) for flag in flags)}
        )
        self.flags = flags

