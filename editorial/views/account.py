"""The account page: API tokens. A new token's key is shown once, in the answer to the request
that made it; only its hash is stored."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .. import services
from ..models import ApiToken
from ._common import HtmxHttpRequest, member_required, render_page


def _context(request: HtmxHttpRequest, **extra):
    tokens = ApiToken.objects.filter(user=request.user).order_by("revoked_at", "-created_at",
                                                                 "-pk")
    return {
        "tokens": tokens,
        "api_docs_url": reverse("api_docs"),
        "api_base_url": request.build_absolute_uri("/api/v1/"),
        **extra,
    }


@member_required
@require_GET
def account_tokens(request: HtmxHttpRequest):
    return render_page(request, "account/tokens.html", _context(request), fragment="tokens")


@member_required
@require_POST
def account_token_create(request: HtmxHttpRequest):
    try:
        token, key = services.api_token_create(user=request.user,
                                               name=request.POST.get("name", ""))
    except services.WorkflowError as exc:
        return render_page(request, "account/tokens.html",
                           _context(request, error=str(exc), name=request.POST.get("name", "")),
                           fragment="tokens", status=400)
    # The key goes into this response only: never into a message, a redirect or a log.
    return render_page(request, "account/tokens.html",
                       _context(request, new_token=token, new_key=key), fragment="tokens",
                       status=201 if request.htmx else 200)


@member_required
@require_POST
def account_token_revoke(request: HtmxHttpRequest, token_id: int):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    services.api_token_revoke(token=token, user=request.user)
    if request.htmx:
        return render_page(request, "account/tokens.html",
                           _context(request, revoked=token), fragment="tokens")
    messages.success(request, _("Token “%(name)s” was revoked.") % {"name": token.name})
    return redirect("account_tokens")
