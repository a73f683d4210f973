"""API versioning by URL prefix: every public route lives under /v1.

A breaking change gets /v2 beside /v1 rather than changing /v1 under its clients. Each domain
router declares the prefix itself (APIRouter(prefix=API_PREFIX)), so a route's template — what
logs, metrics and traces group requests by — is the full path, "/v1/roadmaps/{slug}".
"""

API_PREFIX = "/v1"
