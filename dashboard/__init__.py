"""The review dashboard: FastAPI + Jinja2 pages for approvers, and a JSON API (OpenAPI) for the same actions.

Start it with `wanflow review serve`; build it in code with :func:`create_app`.
"""

from dashboard.app import create_app

__all__ = ["create_app"]
