"""The REST API (``/api/v1/``): Django REST framework views over the same selectors, services and
policies as the UI. Settings: ``REST_FRAMEWORK`` and ``SPECTACULAR_SETTINGS`` in
``copydesk/settings.py``."""
