"""The one error the mapping loader raises: its message names the file and the key."""

from __future__ import annotations


class MappingError(ValueError):
    """A mapping file is wrong; the message names the file and the key."""
