# syntax=docker/dockerfile:1
#
# credits-exporter container image.
#
#   docker build -t credits-exporter \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run --rm -p 9966:9966 \
#     -v "$PWD/config.yaml:/etc/credits-exporter/config.yaml:ro" credits-exporter
#
# Stage "build" turns the source tree into wheels: the exporter's own and one for every runtime
# dependency. The final stage installs exactly those wheels, offline (--no-index), into a slim
# Python: no compiler, no build front-end, no source tree and no wheel files end up in the image.
# tests/helm/test_image.py replays these steps (it parses this file) because no Docker engine runs
# in CI: keep to WORKDIR, COPY, RUN, ENV, ARG, LABEL, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD.

# The base image of both stages, pinned by digest: the tag says what it is, the digest is what
# is pulled, so a rebuild never picks up a different image silently. The digest is the one of
# the multi-platform index. To move to a newer patch release or a rebuilt image (Debian security
# fixes), look the tag up and copy the index digest, then change PYTHON_IMAGE here (and the
# base.name label below):
#   docker buildx imagetools inspect docker.io/library/python:3.11-slim-bookworm   # "Digest:"
# Dependabot's or Renovate's Docker support can open that change as a pull request.
ARG PYTHON_IMAGE=docker.io/library/python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
# Build time, RFC 3339 (see the docker build line above).
ARG CREATED
LABEL org.opencontainers.image.title="credits-exporter" \
      org.opencontainers.image.description="Prometheus exporter for prepaid SaaS API credit balances" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/credits-exporter/credits-exporter" \
      org.opencontainers.image.url="https://github.com/credits-exporter/credits-exporter" \
      org.opencontainers.image.documentation="https://github.com/credits-exporter/credits-exporter/blob/main/docs/deployment.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

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

# slim has no curl or wget: the exporter's own healthcheck asks /healthz. It reads the listen
# address and the web config (TLS) from CREDITS_EXPORTER_WEB_LISTEN_ADDRESS and
# CREDITS_EXPORTER_WEB_CONFIG_FILE, which are also the exporter's defaults for
# --web.listen-address and --web.config.file: set those variables, not the flags, and the
# check follows the exporter (docs/deployment.md). It loads the standard library only.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-m", "exporter.healthcheck"]

ENTRYPOINT ["credits-exporter"]
CMD ["--config.file=/etc/credits-exporter/config.yaml"]
