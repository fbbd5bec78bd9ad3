"""The web page and its JSON API, on the IPP port (as CUPS serves its pages on 631).

Owns the HTTP routes that are not IPP:

* ``GET /``: one static page (``static/index.html``, ``app.css``, ``app.js``,
  shipped in the package: no framework, nothing downloaded).  The script
  fetches ``/api/queue`` every few seconds and redraws the tables in place.
* ``GET /api/queue?printer=&user=&page=&per=``: everything the page shows:
  printers (state, reasons, mounted setup and form, current job with its
  progress), one page of the jobs in queue order (state, note, pages,
  position), the servers with their locks and lease ages, and the recent
  completed jobs.  ``/api/printers``, ``/api/jobs``, ``/api/servers``,
  ``/api/completed`` and ``/api/jobs/<id>`` are the same data in parts, for
  scripts.
* ``GET /api/me``: who the ``Authorization: Basic`` header proves (401 with a
  challenge when it proves nobody).
* ``POST /api/jobs/<id>/{hold,release,cancel}``: the same control request as
  ``printnet hold|release|cancel``, sent as the logged-in user.  Only a user
  proved by HTTP Basic against etc/gateway.users may act (a claimed or guest
  name proves nothing); the servers then let users act on their own jobs and
  operators on any.  A POST must carry ``X-Printnet: 1``, a header another
  site's form cannot add, so a browser's remembered password cannot be used
  by a page elsewhere.

The queue view is blocking file I/O: it runs in a thread, and one result is
shared by the requests of the same second (`VIEW_TTL`), so many open pages
cost one read of the master file per second.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import Any, Final

from aiohttp import web

from printnet.errors import AuthRequired, Forbidden, PrintnetError
from printnet.gateway.context import GatewayContext, Identity
from printnet.model import ControlAction, clean_text, normalize_name, valid_job_id

STATIC: Final = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
PER_PAGE: Final = 25
MAX_PER_PAGE: Final = 500
VIEW_TTL: Final = 1.0  # seconds one queue view serves every request
REALM: Final = 'Basic realm="printnet", charset="UTF-8"'
SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGE_CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                   "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                   "form-action 'none'")


def _asset(name: str) -> bytes:
    return resources.files("printnet.gateway").joinpath("static", name).read_bytes()


class WebDoor:
    """The page's handlers, bound to one gateway context."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self._views: dict[tuple[str | None, str | None], tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/", self.page),
            web.get("/static/{name}", self.static),
            web.get("/api/queue", self.api_queue),
            web.get("/api/printers", self.api_part),
            web.get("/api/jobs", self.api_part),
            web.get("/api/servers", self.api_part),
            web.get("/api/completed", self.api_part),
            web.get("/api/jobs/{job_id}", self.api_job),
            web.get("/api/me", self.api_me),
            web.post("/api/jobs/{job_id}/{action}", self.api_action),
        ]

    # -- the page --------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=_asset("index.html"), content_type="text/html",
                            charset="utf-8",
                            headers={**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP})

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound(text="no such file\n")
        return web.Response(body=_asset(name), content_type=STATIC[name],
                            headers={"Cache-Control": "no-cache",
                                     "X-Content-Type-Options": "nosniff"})

    # -- data ------------------------------------------------------------------------

    async def view(self, printer: str | None, user: str | None) -> dict[str, Any]:
        """The queue view for these filters, at most `VIEW_TTL` seconds old."""
        key = (printer, user)
        async with self._lock:
            now = time.monotonic()
            cached = self._views.get(key)
            if cached is not None and now - cached[0] < VIEW_TTL:
                return cached[1]
            data = await asyncio.to_thread(self.ctx.queue_view, printer, user)
            if len(self._views) > 64:
                self._views.clear()
            self._views[key] = (time.monotonic(), data)
            return data

    async def api_queue(self, request: web.Request) -> web.Response:
        printer, user = _filters(request)
        page, per = _paging(request)
        data = await self.view(printer, user)
        return _json(queue_page(data, page, per, printer, user,
                                await self.me(request)))

    async def api_part(self, request: web.Request) -> web.Response:
        printer, user = _filters(request)
        data = await self.view(printer, user)
        part = request.path.rsplit("/", 1)[-1]
        if part == "jobs":
            page, per = _paging(request)
            return _json(queue_page(data, page, per, printer, user, None)["jobs"])
        if part == "servers":
            return _json([s for s in data["servers"] if s.get("name") is not None or s["locks"]])
        return _json(data[part])

    async def api_job(self, request: web.Request) -> web.Response:
        job_id = _job_id(request)
        job = await asyncio.to_thread(self.ctx.job, job_id)
        if job is None:
            raise _error(web.HTTPNotFound, f"no job {job_id}")
        return _json(job)

    # -- who is asking ---------------------------------------------------------------

    async def me(self, request: web.Request) -> dict[str, Any] | None:
        """The user the request's Basic credentials prove, or None."""
        who = await self.proved(request)
        if who is None:
            return None
        operator = await asyncio.to_thread(self.ctx.is_operator, who.user)
        return {"user": who.user, "operator": operator}

    async def proved(self, request: web.Request) -> Identity | None:
        auth = request.headers.get("Authorization")
        if not auth or not auth.lower().startswith("basic "):
            return None
        try:
            who: Identity = await asyncio.to_thread(
                self.ctx.identify, auth, request.remote or "", None)
        except PrintnetError:
            return None
        return who if who.how == "basic" else None

    async def api_me(self, request: web.Request) -> web.Response:
        me = await self.me(request)
        if me is None:
            # No challenge header when the page asks (it shows its own form instead of
            # the browser's dialog); a script or a browser tab gets the usual challenge.
            headers = {} if request.headers.get("X-Printnet") else {"WWW-Authenticate": REALM}
            raise _error(web.HTTPUnauthorized, "wrong user name or password", headers)
        return _json(me)

    # -- actions ---------------------------------------------------------------------

    async def api_action(self, request: web.Request) -> web.Response:
        job_id = _job_id(request)
        try:
            action = ControlAction(request.match_info["action"])
        except ValueError:
            raise _error(web.HTTPNotFound, "actions are hold, release and cancel") from None
        if request.headers.get("X-Printnet") != "1":
            raise _error(web.HTTPForbidden, "missing the X-Printnet: 1 header")
        who = await self.proved(request)
        if who is None:
            raise _error(web.HTTPUnauthorized, "log in to hold, release or cancel jobs")
        try:
            outcome = await asyncio.to_thread(self.ctx.control, who, action, job_id)
        except (AuthRequired, Forbidden) as exc:
            raise _error(web.HTTPForbidden, str(exc)) from None
        except PrintnetError as exc:
            raise _error(web.HTTPBadRequest, str(exc)) from None
        async with self._lock:
            self._views.clear()  # the next refresh shows the change
        status = 200 if outcome == "applied" else 202 if outcome == "queued" else 409
        if outcome == "not your job":
            status = 403
        return _json({"job": job_id, "action": action.value, "user": who.user,
                      "outcome": outcome}, status=status)


def queue_page(data: dict[str, Any], page: int, per: int, printer: str | None,
               user: str | None, me: dict[str, Any] | None) -> dict[str, Any]:
    """One page of a queue view (pure): jobs `per` at a time, everything else whole."""
    jobs = data["jobs"]
    pages = max(1, -(-len(jobs) // per))
    page = min(max(1, page), pages)
    start = (page - 1) * per
    return {
        "printers": data["printers"],
        "jobs": jobs[start:start + per],
        "total": len(jobs),
        "page": page,
        "pages": pages,
        "per": per,
        "servers": [s for s in data["servers"] if s.get("name") is not None or s["locks"]],
        "completed": data["completed"][:per],
        "default": data.get("default"),
        "filters": {"printer": printer, "user": user},
        "me": me,
        "time": time.time(),
    }


def _filters(request: web.Request) -> tuple[str | None, str | None]:
    printer = clean_text(request.query.get("printer", ""), 32)
    user = clean_text(request.query.get("user", ""), 64)
    return (normalize_name(printer) or None), (user or None)


def _paging(request: web.Request) -> tuple[int, int]:
    try:
        page = int(request.query.get("page", "1"))
        per = int(request.query.get("per", str(PER_PAGE)))
    except ValueError:
        raise _error(web.HTTPBadRequest, "page and per must be whole numbers") from None
    return max(1, page), min(max(1, per), MAX_PER_PAGE)


def _job_id(request: web.Request) -> str:
    job_id = request.match_info["job_id"].strip().upper()
    if not valid_job_id(job_id):
        raise _error(web.HTTPBadRequest, f"{clean_text(job_id, 30)!r} is not a job id")
    return job_id


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=SECURITY_HEADERS)


def _error(kind: type[web.HTTPException], message: str,
           headers: dict[str, str] | None = None) -> web.HTTPException:
    import json

    return kind(text=json.dumps({"error": message}), content_type="application/json",
                headers={**SECURITY_HEADERS, **(headers or {})})


def routes(ctx: GatewayContext) -> list[web.AbstractRouteDef]:
    """The page's and the API's routes (the app adds them after IPP's)."""
    return WebDoor(ctx).routes()
