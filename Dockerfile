# Limner server image: a slim Python runtime, the app installed by the same scripts/install
# that CI runs, and grpc-health-probe (pinned in scripts/install-go-tools) for HEALTHCHECK.
#   docker build -t limner .
#   docker run --rm -p 50051:50051 -v limner-data:/data limner
# Configuration is by environment only (LIMNER_*, see README); nothing is baked in but the
# listen address and the data directory.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG GO_IMAGE=golang:1.26-bookworm

# --- grpc-health-probe, built from source at the version CI tests with ----------------------
FROM ${GO_IMAGE} AS probe
WORKDIR /src
COPY scripts/install-go-tools scripts/install-go-tools
RUN TOOLS_BIN=/out scripts/install-go-tools grpc-health-probe

# --- the application and its virtualenv ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scripts/install scripts/install
# limner-client (the generated limner.v1 stubs and limner.client): the server depends on it.
COPY clients/python clients/python
COPY src src
# Runtime dependencies only (no --dev), as `make demo` installs them, but not editable: the
# package is copied into the virtualenv, so the runtime stage needs no source tree. The
# bytecode pip compiled stays: without it every start compiles every module again (the
# runtime never writes it), which made importing the server about 4x slower.
RUN scripts/install --no-editable

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LIMNER_ADDRESS=0.0.0.0:50051 \
    LIMNER_DATA_DIR=/data
RUN groupadd --system --gid 10001 limner \
    && useradd --system --uid 10001 --gid limner --no-create-home --home-dir /data limner \
    && mkdir /data \
    && chown limner:limner /data
# Only the virtualenv, at the same path as in the build stage (its scripts refer to it).
COPY --from=build /app/.venv /app/.venv
COPY --from=probe /out/grpc-health-probe /usr/local/bin/grpc-health-probe
WORKDIR /data
VOLUME ["/data"]
EXPOSE 50051
USER 10001:10001
# Probes the gRPC health service on the port LIMNER_ADDRESS names. During a graceful stop
# (SIGTERM) the server reports NOT_SERVING for LIMNER_SHUTDOWN__DRAIN_S before closing.
# With LIMNER_TLS__CERT_FILE set the probe speaks TLS (on loopback it checks that the server
# answers, not its certificate's name); under mTLS it presents LIMNER_CLIENT_CERT/_KEY.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/bin/sh", "-c", "set -- -addr \"127.0.0.1:${LIMNER_ADDRESS##*:}\" -connect-timeout 2s -rpc-timeout 2s; if [ -n \"${LIMNER_TLS__CERT_FILE:-}\" ]; then set -- \"$@\" -tls -tls-no-verify; fi; if [ -n \"${LIMNER_CLIENT_CERT:-}\" ]; then set -- \"$@\" -tls-client-cert \"$LIMNER_CLIENT_CERT\" -tls-client-key \"$LIMNER_CLIENT_KEY\"; fi; grpc-health-probe \"$@\" || exit 1"]
ENTRYPOINT ["limner"]
CMD ["serve"]
