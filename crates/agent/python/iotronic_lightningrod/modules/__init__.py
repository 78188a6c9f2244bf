"""Lightning-rod modules: only the plugin API is provided by s4t agent."""
