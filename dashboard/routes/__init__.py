"""One module per resource; each has `pages` (HTML) and `api` (JSON, mounted under /api) routers."""
