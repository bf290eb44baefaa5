"""Helpers shared by the views: login + role checks, page-or-fragment rendering, pagination."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from generation.checks import injection_findings

from .. import policies
from ..facts import product_facts


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def wants_fragment(request: HtmxHttpRequest) -> bool:
    """An htmx request that swaps part of a page (a history restore wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_page(
    request: HtmxHttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    fragment: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render ``template``, or only its ``fragment`` partial for an htmx request."""
    name = f"{template}#{fragment}" if fragment and wants_fragment(request) else template
    response = render(request, name, context, status=status)
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


def require_member(user) -> None:
    policies.require(
        policies.can_view(user),
        _("Your account is not in a Copydesk group yet; ask an administrator to add you."),
    )


def member_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in (else to the login page) and in one of the Copydesk groups (else 403).

    An htmx request whose session has expired gets the whole browser sent to the login page,
    rather than a login form swapped into the middle of a page."""

    @wraps(view)
    def wrapped(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if request.htmx:
                back = request.htmx.current_url_abs_path or request.get_full_path()
                login = redirect_to_login(back, settings.LOGIN_URL)
                return HttpResponseClientRedirect(login.url)
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        require_member(request.user)
        return view(request, *args, **kwargs)

    return wrapped


def paginate(request: HttpRequest, object_list, per_page: int) -> Page:
    return Paginator(object_list, per_page).get_page(request.GET.get("page"))


class CountedPaginator(Paginator):
    """A paginator told its total, for a page that has counted its rows already (the queue's
    state counts): ``Paginator`` would count them again. With ``rows``, ``object_list`` is a
    list of ids and a page's objects are ``rows(ids of the page)``."""

    def __init__(self, object_list, per_page: int, *, count: int, rows=None) -> None:
        super().__init__(object_list, per_page)
        self.known_count = count
        self.rows = rows

    def _get_page(self, object_list, number, paginator):
        if self.rows is not None:
            object_list = self.rows(list(object_list))
        return super()._get_page(object_list, number, paginator)

    @cached_property
    def count(self) -> int:
        return self.known_count


def product_facts_context(product) -> dict[str, Any]:
    """Attributes and length limits as lists of pairs, so a key such as "items" cannot shadow
    a dict method in a template."""
    attributes = product.attributes if isinstance(product.attributes, dict) else {}
    brand = product.brand if product.brand_id else None
    limits = brand.length_limits if brand and isinstance(brand.length_limits, dict) else {}
    return {
        "product": product,
        "brand": brand,
        "attributes": [(str(k), v) for k, v in attributes.items()],
        "length_limits": [(str(k), v) for k, v in limits.items()],
        "injection_findings": injection_findings(product_facts(product)),
    }
