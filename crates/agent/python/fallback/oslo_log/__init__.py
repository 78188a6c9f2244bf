"""Stand-in for oslo.log, used only when the real package is not installed.

Lightning-rod plugins commonly start with ``from oslo_log import log as logging`` and
``LOG = logging.getLogger(__name__)``. This directory is last on the plugin's ``sys.path``, so an
installed oslo.log wins; without it, the standard ``logging`` module serves (the plugin's log).
"""
