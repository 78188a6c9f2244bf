# A callable Lightning-rod plugin for bench/rtt.sh: answers with its parameters.
from iotronic_lightningrod.modules.plugins import Plugin


class Worker(Plugin.Plugin):
    def __init__(self, uuid, name, q_result=None, params=None):
        super(Worker, self).__init__(uuid, name, q_result, params)

    def run(self):
        self.q_result.put('echo: ' + str(self.params))
