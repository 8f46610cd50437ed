"""Django settings for the bundled forge site, filled from the environment (12-factor)."""

import os
from datetime import timedelta
from pathlib import Path

from forge import environment

env = os.environ
BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = environment.data_dir(env, BASE_DIR)
if environment.keeps_files_in_data_dir(env):
    # Found out here, at start-up, rather than by the first push or sign-in.
    environment.writable_data_dir(DATA_DIR)

DEBUG = environment.get_bool(env, "FORGE_DEBUG", False)
SECRET_KEY = environment.secret_key(env, DATA_DIR)
EXTERNAL_URL = environment.external_url(env)
ALLOWED_HOSTS = environment.allowed_hosts(env)
if EXTERNAL_URL:
    CSRF_TRUSTED_ORIGINS = [EXTERNAL_URL]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "packages_core",
    "packages_core.api",
    "registry",
    "registry.web",
    "forge",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "forge.urls"
WSGI_APPLICATION = "forge.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": environment.database(env, DATA_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# `make run` collects static files here; WhiteNoise serves them from gunicorn.

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "media")},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "packages": environment.package_storage(env, DATA_DIR),
}

LOGIN_URL = "registry_web:login"
LOGIN_REDIRECT_URL = "registry_web:home"
LOGOUT_REDIRECT_URL = "registry_web:home"
# Messages can carry a new access token's secret: keep them server-side, not in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"


SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
}

# The API views carry their own authentication, pagination and schema classes; the
# site's other DRF views (and `manage.py spectacular`) use drf-spectacular's schema.
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}

SPECTACULAR_SETTINGS = {
    "TITLE": "Forge packages API",
    "DESCRIPTION": "Packages, versions and files of the forge registry.",
    # Served from the bundled sidecar package: machines may be offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

PACKAGES = {
    "STORAGE_ALIAS": "packages",
    "QUOTA_OWNER_VERSIONS": environment.get_int(env, "FORGE_QUOTA_OWNER_VERSIONS", -1, minimum=-1),
    "QUOTA_OWNER_BYTES": environment.get_size(env, "FORGE_QUOTA_OWNER_BYTES"),
    "QUOTA_BLOB_BYTES": environment.get_size(env, "FORGE_QUOTA_BLOB_BYTES"),
    "REQUIRE_SIGNIN_VIEW": environment.get_bool(env, "FORGE_REQUIRE_SIGNIN_VIEW", False),
    "ALLOW_ORG_CREATION": environment.get_bool(env, "FORGE_ALLOW_ORG_CREATION", True),
    "SYNC_WRITES": environment.get_bool(env, "FORGE_SYNC_WRITES", True),
    "SIGNIN_FAILURE_LIMIT": environment.get_int(env, "FORGE_SIGNIN_FAILURE_LIMIT", 10),
    "SIGNIN_FAILURE_WINDOW": environment.get_int(
        env, "FORGE_SIGNIN_FAILURE_WINDOW", 300, minimum=1
    ),
    # The proxies gunicorn trusts (gunicorn.conf.py) are the ones the site trusts.
    "TRUSTED_PROXIES": environment.get_list(env, "FORGE_FORWARDED_ALLOW_IPS", ["127.0.0.1"]),
    "WEBHOOK_ALLOWED_HOSTS": environment.get_list(env, "FORGE_WEBHOOK_ALLOWED_HOSTS", []),
    "WEBHOOK_TIMEOUT": environment.get_int(env, "FORGE_WEBHOOK_TIMEOUT", 10, minimum=1),
    "WEBHOOK_MAX_ATTEMPTS": environment.get_int(env, "FORGE_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1),
}

REGISTRY = {
    "SITE_NAME": "Forge",
    "EXTERNAL_URL": EXTERNAL_URL,
    **environment.serving(env),
    "TOKEN_LIFETIME": environment.get_int(env, "FORGE_TOKEN_LIFETIME", 3600, minimum=60),
    "METRICS_TOKEN": env.get("FORGE_METRICS_TOKEN", "").strip(),
    "ALLOW_SIGNUP": environment.get_bool(env, "FORGE_ALLOW_SIGNUP", False),
    "MIRROR_ALLOWED_HOSTS": environment.get_list(env, "FORGE_MIRROR_ALLOWED_HOSTS", []),
    "MIRROR_TIMEOUT": environment.get_int(env, "FORGE_MIRROR_TIMEOUT", 30, minimum=1),
}

# Shared by every gunicorn worker (and, on Redis, every node): failed sign-in counts
# and checked credentials.
CACHES = {"default": environment.cache(env, DATA_DIR)}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": environment.log_level(env)},
    # 401 and 404 are the registry protocol's normal flow (clients probe, then sign
    # in); gunicorn's access log has every request, so only log server errors here.
    "loggers": {"django.request": {"level": "ERROR"}},
}
