"""The web explorer of ``bai serve``: workspaces, jobs and their output files in a browser.

``create_web_app(service, deletes)`` builds the application mounted at ``/ui`` of the REST server:
server-rendered Jinja2 pages (autoescaped) with htmx and uPlot vendored under ``static/``,
behind the same tokens as the API (kept in an HttpOnly, SameSite cookie after logging in).
It calls the services, never the REST routes.

Modules: ``app`` (the application, its error pages and security headers), ``session``
(login cookie, CSRF), ``links`` (URLs of the pages), ``templating``, one router per resource
(``workspaces``, ``clusters``, ``storage``, ``jobs``, ``files``), ``live`` (server-sent events
of a growing file and of its metrics) with ``events`` (SSE framing over a blocking source),
and the pure parsers ``metrics`` and ``environment``.
"""
