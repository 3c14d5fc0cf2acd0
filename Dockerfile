# syntax=docker/dockerfile:1
#
# credits-exporter container image.
#
#   docker build -t credits-exporter .
#   docker run --rm -p 9966:9966 \
#     -v "$PWD/config.yaml:/etc/credits-exporter/config.yaml:ro" credits-exporter
#
# Stage "build" turns the source tree into wheels: the exporter's own and one for every runtime
# dependency. The final stage installs exactly those wheels, offline (--no-index), into a slim
# Python: no compiler, no build front-end, no source tree and no wheel files end up in the image.
# tests/helm/test_image.py replays these steps (it parses this file) because no Docker engine runs
# in CI: keep to WORKDIR, COPY, RUN, ENV, ARG, LABEL, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="credits-exporter" \
      org.opencontainers.image.description="Prometheus exporter for prepaid SaaS API credit balances" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The wheels are bind-mounted from the build stage, so they never become a layer of this image.
# Installing every wheel by path keeps the versions the build stage resolved (hadolint DL3013).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl

# Fixed, non-root UID/GID (the distroless "nonroot" convention); the Helm chart's
# securityContext.runAsUser uses the same number.
WORKDIR /etc/credits-exporter
USER 65532:65532
EXPOSE 9966

# slim has no curl or wget: ask /healthz with the Python that runs the exporter.
# Assumes the default --web.listen-address=:9966 (plain HTTP).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9966/healthz', timeout=4)"]

ENTRYPOINT ["credits-exporter"]
CMD ["--config.file=/etc/credits-exporter/config.yaml"]
