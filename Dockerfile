# marshmello as one executable in a small image (docs/ARCHITECTURE.md §11). The build stage
# compiles better-sqlite3 and builds dist/marshmello (Node SEA: node + the bundled
# CLI + the SQLite addon); the runtime stage holds only that file and runs it as
# the unprivileged user `marshmello`. The subcommand picks the role:
#   docker run IMAGE server … | relay … | devnet …   (docker-compose.yml: the split deployment)

FROM node:24-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-fund --no-audit
COPY . .
RUN npm run build:binary && ./dist/marshmello --version

FROM debian:bookworm-slim AS runtime
# uid/gid fixed so volume ownership is predictable; the home holds the unpacked
# SQLite addon cache (~/.cache/marshmello)
RUN groupadd --system --gid 10001 marshmello \
 && useradd --system --uid 10001 --gid marshmello --create-home --home-dir /home/marshmello --shell /usr/sbin/nologin marshmello \
 && mkdir -p /var/lib/marshmello \
 && chown marshmello:marshmello /var/lib/marshmello \
 && chmod 0700 /var/lib/marshmello
COPY --from=build /src/dist/marshmello /usr/local/bin/marshmello
USER marshmello
WORKDIR /home/marshmello
# fails the build if the binary cannot run here (glibc, libstdc++)
RUN /usr/local/bin/marshmello --version
VOLUME ["/var/lib/marshmello"]
ENTRYPOINT ["/usr/local/bin/marshmello"]
CMD ["--help"]
