"""The API's interactive documentation (Swagger UI) at ``/docs`` with its assets served by the
scheduler from the pinned ``swagger-ui-bundle-v2`` package: nothing loads from a CDN, so the
page works on a hospital network without Internet access."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS: Final = Path(swagger_ui_bundle.swagger_ui_path)
PREFIX: Final = "/docs/assets"


def mount_api_docs(app: FastAPI) -> None:
    """``/docs`` and its assets; the app must be built with ``docs_url=None``."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="swagger-ui-assets")
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title}: API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url="/ui/static/favicon.svg",
            oauth2_redirect_url=redirect)

    @app.get(redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
