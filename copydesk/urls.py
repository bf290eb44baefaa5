from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("editorial.api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("editorial.urls")),
]

# A refused htmx action says why in the page it came from (editorial/views/errors.py).
handler403 = "editorial.views.errors.permission_denied"
