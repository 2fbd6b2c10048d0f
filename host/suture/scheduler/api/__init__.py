"""The HTTP API: ``create_app(settings)`` builds it; routes are thin over ``services``."""
