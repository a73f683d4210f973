"""Import failures: what was wrong and on which line, for the API (problem+json) and the CLI."""

from __future__ import annotations

from skilltree.platform.errors import PayloadTooLarge, UnprocessableContent


class RoadmapImportError(UnprocessableContent):
    type_slug = "invalid-roadmap"
    title = "Invalid roadmap"

    def __init__(self, detail: str, line: int | None = None) -> None:
        if line is not None:
            super().__init__(detail, line=line)
        else:
            super().__init__(detail)
        self.line = line


class RoadmapTooLarge(PayloadTooLarge):
    type_slug = "roadmap-too-large"
    title = "Roadmap too large"
