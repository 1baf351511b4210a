#!/usr/bin/env bash
# Starts the local PostgreSQL and Redis that the adapter contract tests use, when
# they are installed here but not running. Never fails the build: a store that
# cannot start makes its suites skip, and they say so.
set -u
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null || true
fi
if command -v redis-server >/dev/null 2>&1 && ! (redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG); then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp 2>/dev/null || true
fi
if command -v pg_isready >/dev/null 2>&1; then pg_isready -h 127.0.0.1 -p 5432 || true; fi
if command -v redis-cli >/dev/null 2>&1; then echo "redis: $(redis-cli -h 127.0.0.1 -p 6379 ping 2>&1)"; fi
exit 0
