"""The endpoints `make bench` measures, described once for wrk, for the capture and the ceiling."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bench.stage import EMAIL, PASSWORD, Session


@dataclass(frozen=True)
class Endpoint:
    key: str  # a short name: the capture's file and the ceiling's route
    name: str  # as the report shows it
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    # Request bodies sent in turn, one per request (a write that alternates between two
    # statuses, so each request changes something).
    bodies: tuple[str, ...] = ()
    read: bool = True  # measured with two workers and at 1,024 connections as a read
    ceiling: bool = True  # whether a same-work ceiling is measured for it

    def wrk_script(self) -> str:
        if not self.bodies:
            return ""
        if len(self.bodies) == 1:
            return f"wrk.method = {_lua(self.method)}\nwrk.body = {_lua(self.bodies[0])}\n"
        bodies = ", ".join(_lua(body) for body in self.bodies)
        return f"""
local bodies = {{{bodies}}}
local n = 0
request = function()
  n = n + 1
  return wrk.format({_lua(self.method)}, nil, nil, bodies[(n - 1) % #bodies + 1])
end
"""


def _lua(text: str) -> str:
    """A Lua string literal (JSON's escapes are Lua's for what these bodies hold)."""
    return json.dumps(text)


def status(value: str) -> str:
    return json.dumps({"status": value})


def skilltree_endpoints(s: Session, *, redis: bool = True) -> list[Endpoint]:
    """The API endpoints measured against their ceilings, in the order they are measured."""
    bearer = {"Authorization": f"Bearer {s.bearer}"}
    cookie = {"Cookie": s.cookie}
    tree = "/v1/roadmaps/backend/tree"
    progress = "/v1/me/progress/backend"
    json_body = {"Content-Type": "application/json"}
    return [
        Endpoint("livez", "GET /livez", "/livez"),
        Endpoint("tree", "GET tree (backend)", tree),
        Endpoint("tree-304", "GET tree, If-None-Match (304)", tree, {"If-None-Match": s.etag}),
        # What browsers get: the cached tree, brotli-compressed for this response.
        Endpoint("tree-br", "GET tree, Accept-Encoding: br", tree, {"Accept-Encoding": "br"}),
        Endpoint("me", "GET /v1/me (bearer)", "/v1/me", bearer),
        Endpoint("progress-cookie", "GET /v1/me/progress/backend (cookie)", progress, cookie),
        Endpoint("progress-bearer", "GET /v1/me/progress/backend (bearer)", progress, bearer),
        Endpoint(
            "write",
            "PUT /v1/me/progress/backend/{topic}",
            f"{progress}/{s.topic}",
            bearer | json_body,
            method="PUT",
            # The captures send these in turn and end on the second; wrk starts with the first.
            bodies=(status("done"), status("in_progress")),
            read=False,
        ),
        Endpoint("due", "GET /v1/me/reviews/due", "/v1/me/reviews/due", bearer),
    ]


def page_endpoints(s: Session) -> list[Endpoint]:
    """The web app: the roadmap page a learner opens, then a topic page (measured on one worker
    at 64 connections only)."""
    page = {"Cookie": s.cookie, "Accept": "text/html", "Accept-Encoding": "br"}
    topic = "/roadmaps/backend/topics/centralized-error-handling"
    roadmap = "GET /roadmaps/backend (page, cookie)"
    return [
        Endpoint("page-roadmap", roadmap, "/roadmaps/backend", page, read=False),
        Endpoint(
            "page-topic", "GET /roadmaps/backend/topics/{topic} (page)", topic, page, read=False
        ),
    ]


LOGIN = Endpoint(
    "login",
    "POST /v1/auth/login (argon2-bound)",
    "/v1/auth/login",
    {"Content-Type": "application/json"},
    method="POST",
    bodies=(json.dumps({"email": EMAIL, "password": PASSWORD}),),
    read=False,
    ceiling=False,  # bound by the password hash on purpose: without it, no same work
)
