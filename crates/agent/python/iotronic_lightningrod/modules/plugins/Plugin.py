"""Base class of every plugin's ``Worker``, as s4t agent provides it.

A plugin module defines ``class Worker(Plugin.Plugin)`` with
``__init__(self, uuid, name, q_result=None, params=None)`` and a ``run()`` method. The worker is
a thread. Attributes a plugin may use:

- ``uuid``, ``name``: the plugin's identity on the board;
- ``params``: the parameters of the request (a dict), or None;
- ``q_result``: a ``queue.Queue`` for callable plugins (PluginCall: the first item put is the
  reply), None for asynchronous ones (PluginStart);
- ``_is_running``: True until ``stop()`` is called; long-running plugins loop on it.

s4t agent runs each plugin in its own process; stopping the plugin calls ``stop()`` (on SIGTERM)
and the process is killed if it does not end within the agent's grace period.
"""

import abc
import threading


class Plugin(threading.Thread, metaclass=abc.ABCMeta):
    def __init__(self, uuid, name, q_result=None, params=None):
        threading.Thread.__init__(self, name="Plugin " + str(name))
        self.uuid = uuid
        self.name = name
        self.status = "INITED"
        self._is_running = True
        self.params = params
        self.q_result = q_result

    @abc.abstractmethod
    def run(self):
        """The plugin's work (runs in the worker thread)."""

    def stop(self):
        """Asks the plugin to end: ``_is_running`` becomes False."""
        self._is_running = False

    def checkStatus(self):
        return self.status

    def setStatus(self, status):
        self.status = status

    def complete(self, rpc_name, result):
        """Records ``result`` as the status; returns ``"<rpc_name> result: <result>"``."""
        self.setStatus(result)
        return "%s result: %s" % (rpc_name, self.checkStatus())
