"""The durable screening queue: huey tasks, the job store protocol, SQLite and Redis stores."""
