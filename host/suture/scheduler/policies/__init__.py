"""Pure policy decisions: no database, no I/O, time passed in. Each module decides one thing."""
