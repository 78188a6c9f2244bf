"""The plugin API: ``Plugin.Plugin`` (base class of a plugin's ``Worker``) and ``pluginApis``."""
