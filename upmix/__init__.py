"""upmix: turn legacy mono and stereo recordings into immersive audio."""

__version__ = "0.1.0"
