"""Settings of the example host site: its own user model, the registry apps added.

Everything the registry needs is here, as docs/install.md tells a host to write it.
The environment only says where data lives, which database to use, and whether the site
takes the protocol alone (HOSTSITE_APPS=protocol: no pages, no REST API, so the wheel
installs without its extras).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("HOSTSITE_DATA_DIR", BASE_DIR / "data"))
PROTOCOL_ONLY = os.environ.get("HOSTSITE_APPS", "") == "protocol"

SECRET_KEY = os.environ.get("HOSTSITE_SECRET_KEY", "insecure-key-for-the-example-host-site-only")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts",
    # The container registry: the package domain and the /v2 protocol ...
    "packages_core",
    "registry",
]
if not PROTOCOL_ONLY:
    # ... and, optionally, its pages and the packages REST API.
    INSTALLED_APPS += ["registry.web", "packages_core.api"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hostsite.urls"
WSGI_APPLICATION = "hostsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

if os.environ.get("HOSTSITE_POSTGRES_DB"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["HOSTSITE_POSTGRES_DB"],
            "USER": os.environ.get("HOSTSITE_POSTGRES_USER", "postgres"),
            "HOST": os.environ.get("HOSTSITE_POSTGRES_HOST", "127.0.0.1"),
            "PORT": os.environ.get("HOSTSITE_POSTGRES_PORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "hostsite.sqlite3",
            # WAL lets pulls read while a push writes (the registry checks for it).
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    }

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "registry_web:login"
LOGIN_REDIRECT_URL = "registry_web:home"

STATIC_URL = "static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Where the registry keeps blobs (PACKAGES["STORAGE_ALIAS"], "packages" by default).
    "packages": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": DATA_DIR / "packages"},
    },
}

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REGISTRY = {
    "EXTERNAL_URL": os.environ.get("HOSTSITE_EXTERNAL_URL", ""),
    "SITE_NAME": "Example Corp registry",
    "TOKEN_LIFETIME": 3600,
}
PACKAGES = {
    "ACCESS_ADAPTER": "accounts.adapter.EmailAccessAdapter",
    "QUOTA_BLOB_BYTES": 512 * 1024 * 1024,
}
