"""callcenter: an open-source call-center server on top of a real Asterisk."""

__version__ = "0.1.0"
