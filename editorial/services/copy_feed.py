"""The API's copy feed: every approval published once, in order."""

from __future__ import annotations

from ..models import CopyFeedCounter, CopyFeedEntry, Draft, Revision


def copy_feed_publish(*, draft: Draft, revision: Revision, approved_at) -> None:
    """Call inside the approving transaction, as late as possible: takes the next feed sequence
    number under the counter's row lock, which is held until the commit, so sequence order is
    commit order."""
    counter = CopyFeedCounter.objects.select_for_update().filter(pk=1).first()
    if counter is None:
        counter, _ = CopyFeedCounter.objects.get_or_create(pk=1)
        counter = CopyFeedCounter.objects.select_for_update().get(pk=1)
    counter.last_seq += 1
    counter.save(update_fields=["last_seq"])
    CopyFeedEntry.objects.create(seq=counter.last_seq, draft=draft, revision=revision,
                                 approved_at=approved_at)

