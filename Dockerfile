# skilltree's image: `docker build -t skilltree .` (docs/deploying.md).
# Two stages: the first installs the locked dependencies with uv, the second copies only the
# virtual environment into a slim base and runs it as an unprivileged user.

FROM python:3.11.14-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, in their own layer: a change to the code does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11.14-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 skilltree \
    && useradd --system --uid 10001 --gid skilltree --home-dir /app --no-create-home skilltree \
    && mkdir -p /app/var \
    && chown skilltree:skilltree /app/var
COPY --from=build /app/.venv /app/.venv
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SKILLTREE_ENV=production \
    SKILLTREE_HTTP_HOST=0.0.0.0 \
    SKILLTREE_HTTP_PORT=8000
USER 10001:10001
EXPOSE 8000
# Liveness only: the container is healthy while the process answers, whatever its database does.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2)"]
# `skilltree serve` drains on SIGTERM (readiness 503, then a graceful stop).
STOPSIGNAL SIGTERM
ENTRYPOINT ["skilltree"]
CMD ["serve"]
