"""Login rate limiting for the app's and the admin's login forms.

Failed attempts are counted per (client address, user name) and per client address in the
default cache (set ``COPYDESK_CACHE_URL`` so several web processes share the counts). Once a
count reaches its limit, further attempts within the window get 429 without the password being
checked, so guessing is slowed even when the right password comes along; a successful login
clears the per-name count. The client address is ``REMOTE_ADDR``: behind a proxy, have the proxy
set it (``X-Forwarded-For`` is not trusted, as any client can send it).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.template.loader import render_to_string
from django.urls import reverse


def _login_paths() -> set[str]:
    return {resolve_url(settings.LOGIN_URL), reverse("admin:login")}


def _keys(request: HttpRequest) -> tuple[str, str]:
    address = request.META.get("REMOTE_ADDR", "")
    name = request.POST.get("username", "").strip().lower()
    digest = hashlib.sha256(f"{address}\0{name}".encode()).hexdigest()[:32]
    return f"login-fail:name:{digest}", f"login-fail:addr:{address}"


def _increment(key: str, window: int) -> None:
    if cache.add(key, 1, window):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, window)


class LoginRateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or request.path not in _login_paths():
            return self.get_response(request)
        window = settings.COPYDESK_LOGIN_WINDOW_SECONDS
        name_key, address_key = _keys(request)
        if (cache.get(name_key, 0) >= settings.COPYDESK_LOGIN_ATTEMPTS
                or cache.get(address_key, 0) >= settings.COPYDESK_LOGIN_ATTEMPTS_PER_ADDRESS):
            minutes = max(1, window // 60)
            body = render_to_string("registration/too_many_attempts.html",
                                    {"minutes": minutes}, request=request)
            response = HttpResponse(body, status=429)
            response["Retry-After"] = str(window)
            return response
        response = self.get_response(request)
        # Both login views answer a wrong password by showing the form again (200) and a
        # successful login with a redirect.
        if response.status_code == 200:
            _increment(name_key, window)
            _increment(address_key, window)
        elif 300 <= response.status_code < 400:
            cache.delete(name_key)
        return response

