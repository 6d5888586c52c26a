"""Pure screening engine: no HTTP, no Flask, no I/O beyond what the caller hands in."""
