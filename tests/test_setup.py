"""What `bin/setup` leaves in .venv."""

import importlib.util
import sys
from pathlib import Path

import celery
import django
import redis.commands.core


def test_the_installed_packages_are_compiled():
    """Where Python may not write bytecode (PYTHONDONTWRITEBYTECODE), a package left
    uncompiled is compiled again by every process that imports it: a Celery worker or a
    `manage.py` command took 1.6 s of CPU to set Django up instead of 0.65."""
    assert sys.prefix.endswith(".venv"), "run through make (bin/setup makes .venv)"
    for module in (django, celery, redis.commands.core):
        source = Path(module.__file__)
        assert Path(importlib.util.cache_from_source(str(source))).exists(), source
