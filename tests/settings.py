"""The settings the test suite runs on: the project's, as `make run` starts them (DEBUG on, so
plain HTTP on localhost, without the HTTPS redirect and secure cookies of a deployment).

pytest-django still switches ``settings.DEBUG`` off while the tests run; what DEBUG decides when
the settings module loads (hosts, HTTPS) stays that of the local demo. The variable is set in the
environment, not here, so the worker processes and commands the tests start load the same
settings. Tests of the production defaults start their own process with a clean environment.
"""

import os

os.environ.setdefault("DEBUG", "1")

from copydesk.settings import *  # noqa: E402, F403
