from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class GenerationRateThrottle(UserRateThrottle):
    """Generation requests per user (``POST /api/v1/jobs/``); other methods are not counted.
    The rate is ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["generation"]``
    (env ``COPYDESK_API_GENERATION_RATE``), read on every request so settings changes apply.
    Counts live in Django's default cache: configure a shared one (Redis) when several web
    processes serve the API, or each process counts on its own."""

    scope = "generation"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
