"""Command-line entry points, thin over the library."""
