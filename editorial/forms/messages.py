"""Messages the forms share: a field too long, an upload too large."""

from __future__ import annotations

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from generation.checks import TEXT_TOO_LONG


def upload_too_large_message(*, size: int, limit: int, filename: str = "") -> str:
    """What the import page says about a file over the limit; ``size`` may be the request's
    length (a little more than the file's), hence "about"."""
    return _too_large(filename=filename, size=filesizeformat(size), limit=filesizeformat(limit))



def _too_large(*, filename: str, size: str, limit: str) -> str:
    params = {"file": filename, "size": size, "limit": limit}
    if filename:
        return gettext("%(file)s is about %(size)s; files of up to %(limit)s can be imported. "
                       "Nothing was imported: split it into smaller files.") % params
    return gettext("This upload is about %(size)s; files of up to %(limit)s can be imported. "
                   "Nothing was imported: split the file into smaller ones.") % params



def _blank(label):
    return [("", label)]



# What a text field over its limit says: the limit and the text's length.
TOO_LONG = {"max_length": _("This text is %(show_value)d characters long; at most "
                            "%(limit_value)d characters are allowed.")}



def text_too_long_message(*, length: int, limit: int) -> str:
    """Why the copy's text is refused: its length and the most the desk takes for it."""
    return gettext(TEXT_TOO_LONG) % {"length": length, "max": limit}

