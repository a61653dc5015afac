"""Every module of the package imports on its own, first, in a fresh interpreter: no import
cycle depends on what happened to be imported before (a script that imports the models and
then the accounts module, as bench/ingest.py does, once failed on one)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import flask_tracking

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(flask_tracking.__path__, "flask_tracking.")
    if ".migrations." not in info.name and not info.name.endswith(".wsgi")
)


def test_each_module_imports_first_in_a_fresh_interpreter() -> None:
    code = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('flask_tracking')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as error:\n"
        "        failed.append(f'{name}: {error}')\n"
        "print('\\n'.join(failed))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *MODULES], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ""
    assert len(MODULES) > 100


def test_the_models_then_the_accounts_as_a_script_imports_them() -> None:
    code = (
        "from flask_tracking import create_app\n"
        "from flask_tracking.extensions import db\n"
        "from flask_tracking.tracking.models import Site\n"
        "from flask_tracking.users import accounts\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
