"""Login rate limiting for the app's and the admin's login forms.

The aim: whoever guesses an account's password gets few guesses, and the account's owner can
still sign in while they do. Failures are counted in the default cache (set
``COPYDESK_CACHE_URL`` so several web processes share the counts) per client address, which
``copydesk.proxy`` takes from ``X-Forwarded-For`` only behind a configured proxy: the clients
behind one proxy are not one client.

- An address that failed ``COPYDESK_LOGIN_ATTEMPTS`` times on one user name is refused (429) on
  that name, and one that failed ``COPYDESK_LOGIN_ATTEMPTS_PER_ADDRESS`` times on any name is
  refused on all, until the window passes. The password is not checked meanwhile, so the right
  guess gains nothing. A successful login forgives its address's failures on that name.
- Guessing from many addresses: once a name has failed ``COPYDESK_LOGIN_ATTEMPTS`` times from all
  of them together, every address that has failed on it waits before trying it again: 1 second
  after the name's latest failure, then 2, 4, … (at most the window). An address that has not
  failed on the name is not held back, so its owner signing in from their own machine gets in with
  the right password however many strangers are guessing; a new guessing address gets one guess
  before it waits too.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.template.loader import render_to_string
from django.urls import reverse


def _login_paths() -> set[str]:
    return {resolve_url(settings.LOGIN_URL), reverse("admin:login")}


def _now() -> float:
    return time.time()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _client(address: str) -> str:
    """The client an address stands for: an IPv6 host holds its whole /64 (a guesser would take
    a fresh address for every try), an IPv4 host one address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Keys:
    def __init__(self, request: HttpRequest):
        address = _client(request.META.get("REMOTE_ADDR", ""))
        name = request.POST.get("username", "").strip().lower()
        self.client = f"login-fail:name:{_digest(address, name)}"
        self.address = f"login-fail:addr:{address}"
        self.account = f"login-fail:account:{_digest(name)}"
        self.account_last = f"login-fail:account-last:{_digest(name)}"


def _increment(key: str, window: int, *, extend: bool = False) -> None:
    """Counts in a window from the first failure, or, with ``extend``, from the latest."""
    if cache.add(key, 1, window):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, window)
    if extend:
        cache.touch(key, window)


def _backoff_left(keys: _Keys, window: int) -> float:
    """Seconds until the name may be tried again by an address that failed on it."""
    over = cache.get(keys.account, 0) - settings.COPYDESK_LOGIN_ATTEMPTS
    last = cache.get(keys.account_last)
    if over < 0 or last is None:
        return 0
    delay = min(window, 2 ** min(over, 32))
    return max(0.0, last + delay - _now())


def _refusal(keys: _Keys, window: int) -> float:
    """Seconds this client must wait before this attempt is checked; 0 to check it now."""
    if cache.get(keys.address, 0) >= settings.COPYDESK_LOGIN_ATTEMPTS_PER_ADDRESS:
        return window
    failed_here = cache.get(keys.client, 0)
    if failed_here >= settings.COPYDESK_LOGIN_ATTEMPTS:
        return window
    if failed_here:
        return _backoff_left(keys, window)
    return 0


class LoginRateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or request.path not in _login_paths():
            return self.get_response(request)
        window = settings.COPYDESK_LOGIN_WINDOW_SECONDS
        keys = _Keys(request)
        wait = math.ceil(_refusal(keys, window))
        if wait > 0:
            body = render_to_string("registration/too_many_attempts.html",
                                    {"minutes": max(1, math.ceil(wait / 60))}, request=request)
            response = HttpResponse(body, status=429)
            response["Retry-After"] = str(wait)
            return response
        response = self.get_response(request)
        # Both login views answer a wrong password by showing the form again (200) and a
        # successful login with a redirect.
        if response.status_code == 200:
            _increment(keys.client, window)
            _increment(keys.address, window)
            # The name's count lasts as long as it keeps failing, so a steady stream of guesses
            # keeps it backing off instead of starting over each window.
            _increment(keys.account, window, extend=True)
            cache.set(keys.account_last, _now(), window)
        elif 300 <= response.status_code < 400:
            _forgive(keys)
        return response


def _forgive(keys: _Keys) -> None:
    """After a successful login: the failures of this address on this name were its owner's
    typos; others' failures on the name still count."""
    mine = cache.get(keys.client, 0)
    cache.delete(keys.client)
    if not mine:
        return
    try:
        if cache.decr(keys.account, mine) <= 0:
            cache.delete(keys.account)
    except ValueError:  # the name's count has expired
        pass
