# syntax=docker/dockerfile:1
#
# Sluice container image: a static binary on distroless, running as nonroot,
# in memory unless given --data-dir.
#
#   docker build -t sluice .
#   docker run --rm -p 6379:6379 -e SLUICE_REQUIREPASS=change-me sluice
#   redis-cli -a change-me THROTTLE user123 15 30 60 1
#
# Durable, on a named volume mounted at /data (which the nonroot user owns):
#
#   docker run -p 6379:6379 -e SLUICE_REQUIREPASS=change-me -v sluice-data:/data \
#     sluice --bind 0.0.0.0 --data-dir /data
#
# Protected mode (on by default) serves only loopback clients until a password
# or users are configured, and clients reaching a container through a
# published port are not loopback. So set SLUICE_REQUIREPASS (an environment
# variable does not show in `ps`), mount an ACL file (--aclfile), or, only on
# a network you trust, append --protected-mode=false to the command.
#
# Every flag is also a SLUICE_* environment variable; arguments after the
# image name replace CMD below, so repeat --bind 0.0.0.0 when you pass any.
#
# compat/docker_test.go builds the binary with the `go build` line below
# (parsed from this file) and checks it is static and serves PING, since no
# Docker engine runs in CI.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so source edits do not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /sluice ./cmd/sluice
# /data, owned by the nonroot user (uid 65532), so that a volume mounted
# there for --data-dir is writable (Docker copies the owner into a new named
# volume); distroless has no shell to mkdir with. No VOLUME: the image does
# not persist unless asked to, and would only leave anonymous volumes behind.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /sluice /sluice
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
WORKDIR /data
EXPOSE 6379
# The binary probes itself: PING on loopback at its --port (SLUICE_PORT too);
# -NOAUTH counts as alive, so no password goes on the command line. With
# --metrics-addr, /healthz and /readyz serve HTTP probes (Kubernetes) as well.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/sluice", "--healthcheck"]
ENTRYPOINT ["/sluice"]
# Listen on every interface inside the container: the default, 127.0.0.1,
# is unreachable through a published port.
CMD ["--bind", "0.0.0.0", "--port", "6379"]
