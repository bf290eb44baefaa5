"""Marking messages for the desk's translation catalog without importing Django.

``makemessages`` collects the strings passed to ``gettext_noop``; the desk (``editorial``)
translates them when it shows them, in the reader's language."""


def gettext_noop(message: str) -> str:
    return message
