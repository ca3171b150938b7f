"""Shipped data: speaker layouts (speakers/*.yaml) and scene presets (scenes/*.yaml).

Installed as the package ``upmix.presets`` so the files are found from a wheel too.
"""
