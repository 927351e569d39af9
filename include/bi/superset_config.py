"""Superset's configuration for `make bi` (SUPERSET_CONFIG_PATH points here; read by Superset's own
interpreter in .venv-superset, so it imports nothing from the stack).

Everything it needs comes from the environment `include/bi/run.py` builds: SUPERSET_SECRET_KEY (from
.env, generated), SUPERSET_HOME (.local/superset: the SQLite metadata DB). No examples, no call out
of the machine: a Content-Security-Policy of 'self' only (the page cannot load a tracking pixel, a
map tile or a web font), no outside theme fonts, no Mapbox.
"""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]  # no default: a missing key is an error, not a weak key
SQLALCHEMY_DATABASE_URI = f"sqlite:///{os.environ['SUPERSET_HOME']}/superset.db?check_same_thread=false"
SQLALCHEMY_EXAMPLES_URI = None

# Local and offline: nothing fetched from or sent to another host.
MAPBOX_API_KEY = ""
THEME_FONT_URL_ALLOWED_DOMAINS = []
TALISMAN_ENABLED = True
_SELF = ["'self'"]
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": _SELF,
        "default-src": _SELF,
        "img-src": [*_SELF, "blob:", "data:"],
        "worker-src": [*_SELF, "blob:"],
        "connect-src": _SELF,
        "object-src": "'none'",
        "style-src": [*_SELF, "'unsafe-inline'"],
        "font-src": [*_SELF, "data:"],
        "script-src": [*_SELF, "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
CONTENT_SECURITY_POLICY_WARNING = False
FEATURE_FLAGS = {"DASHBOARD_RBAC": False, "ENABLE_TEMPLATE_PROCESSING": False}

# Anonymous visitors get nothing: the Public role stays empty (no PUBLIC_ROLE_LIKE), so every page
# and API call needs a login.
PUBLIC_ROLE_LIKE = None
WTF_CSRF_ENABLED = True
# One process on the developer's machine: no Redis; results and thumbnails are not cached.
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
RATELIMIT_STORAGE_URI = "memory://"
LOG_LEVEL = os.environ.get("SUPERSET_LOG_LEVEL", "WARNING")
