"""The part of Lightning-rod's package that plugins import, provided by s4t agent.

Only ``iotronic_lightningrod.modules.plugins`` (``Plugin`` and ``pluginApis``) is here: that is
the API a plugin is written against. The rest of Lightning-rod is not.
"""
