"""The operations the pages, the REST API, the queue and the CLI call: one module each."""
