"""``getLogger`` and the level names plugins use, backed by the standard ``logging`` module."""

import logging as _logging

CRITICAL = _logging.CRITICAL
ERROR = _logging.ERROR
WARNING = _logging.WARNING
WARN = _logging.WARNING
INFO = _logging.INFO
DEBUG = _logging.DEBUG


def getLogger(name=None, project="unknown", version="unknown"):
    return _logging.getLogger(name)


def register_options(conf):
    pass


def setup(conf, product_name, version="unknown"):
    pass
