"""The Django admin: look-ups for staff and configuration for admins.

Workflow changes go through the services (admin actions call them), never through forms: drafts
and generation jobs are view-only here, and the history (revisions, candidates, review decisions,
audit events, export batches) cannot be added or changed; only superusers may delete it.

Model output and product data are untrusted text: everything is auto-escaped, and the little HTML
built here goes through ``format_html``.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

admin.site.site_header = "Copydesk admin"
admin.site.site_title = "Copydesk admin"
admin.site.index_title = _("Administration")


# The ModelAdmins register as their modules load (Django imports this package as the app's admin).
from . import access, catalog, drafts, generation  # noqa: E402, F401
