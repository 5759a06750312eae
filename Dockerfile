# lymph serve in a container: a multi-stage build. The build stage compiles a release binary with
# the Swift standard library linked in (scripts/install); the runtime stage is Debian slim with
# only the C libraries that binary links, running as a non-root user with its state in a volume.
#
#   docker build -t lymph .
#   docker run -d --name lymph -p 8080:8080 --env-file lymph.env -v lymph-state:/var/lib/lymph lymph
#
# The image runs /etc/lymph/serve.yaml (packaging/serve.yaml); mount your own pipeline over it.
# Secrets come from the environment (IMMUNE_WEBHOOK_SECRET): they are never baked into the image.

FROM swift:6.3-bookworm AS build
# The C libraries' headers the package builds against: SQLite (GRDB) and zlib (gzip input).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libsqlite3-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The build folder is a cache mount: a rebuild after a source change reuses compiled dependencies.
RUN --mount=type=cache,target=/src/.build-install \
    scripts/install --prefix /usr/local --sysconfdir /etc --destdir /staging \
    && rm -rf /staging/usr/local/lib/systemd /staging/etc/lymph/lymph.env

FROM debian:bookworm-slim AS runtime
# Exactly the shared libraries `ldd lymph` lists (scripts/install-check checks this list), plus CA
# certificates for `lymph send` to https URLs and time zone data for `--local`.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libc6 libgcc-s1 libstdc++6 libsqlite3-0 zlib1g ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/lymph --no-create-home --shell /usr/sbin/nologin lymph \
    && install -d -o lymph -g lymph -m 700 /var/lib/lymph
COPY --from=build /staging/ /
USER lymph
WORKDIR /var/lib/lymph
# The store, the spool, dead letters and the event log: keep them across container restarts.
VOLUME ["/var/lib/lymph"]
EXPOSE 8080
# docker stop sends SIGTERM: lymph stops taking webhooks, answers those in flight, finishes the
# batches in hand and exits 0 within 30 s (docker stop --time 45 leaves it room).
STOPSIGNAL SIGTERM
ENTRYPOINT ["lymph"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--log-format", "json", "/etc/lymph/serve.yaml"]
