"""The forge site's settings as the test suite runs them, whatever the shell exports.

pytest-django loads this module (`--ds` in pyproject.toml) before any conftest, and it
is the only place early enough: forge/settings.py reads the environment once, when it
is imported, and writes its secret key and file cache to the data dir then.
"""

import atexit
import os
import shutil
import tempfile

# What a shell exports for a site configures that site, not the tests: FORGE_EXTERNAL_URL
# changes every challenge's realm, FORGE_DATA_DIR, FORGE_CACHE_URL or FORGE_STORAGE where
# the suite writes, PROMETHEUS_MULTIPROC_DIR what /metrics reads (docs/configuration.md
# lists them all). DATABASE_URL stays: it picks the database on purpose.
SITE_VARIABLES = ("HOST", "PORT", "PROMETHEUS_MULTIPROC_DIR")
for name in [name for name in os.environ if name.startswith("FORGE_") or name in SITE_VARIABLES]:
    del os.environ[name]

# The run's own data dir, so that the secret key and file cache forge/settings.py makes
# stay out of the checkout's data/. Processes the tests start inherit it unless they
# name their own.
RUN_DATA_DIR = tempfile.mkdtemp(prefix="forge-tests-")
atexit.register(shutil.rmtree, RUN_DATA_DIR, ignore_errors=True)
os.environ["FORGE_DATA_DIR"] = RUN_DATA_DIR
# Hypothesis keeps its caches (constants, unicode data) in .hypothesis/ under the
# current directory, the checkout, even with its example database off.
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(RUN_DATA_DIR, "hypothesis")

# pytest-django exported this module's name; processes the tests start (manage.py,
# gunicorn) must run the forge site as an operator's would, with the FORGE_* variables
# the tests give them, not thrown away here.
os.environ["DJANGO_SETTINGS_MODULE"] = "forge.settings"

from forge.settings import *  # noqa: E402, F403

# No fsync of blob files: each costs milliseconds, a quarter of some modules' time, and
# the tests' files are thrown away. tests/packages_core/test_durability.py turns it on to check it.
PACKAGES = {**PACKAGES, "SYNC_WRITES": False}  # noqa: F405

# A second package type beside containers, on packages_core alone (tests/generic_files):
# the proof that the type registry is the only seam a type needs.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.generic_files"]  # noqa: F405
