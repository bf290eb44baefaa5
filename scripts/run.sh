#!/usr/bin/env bash
# Starts a Celery worker in the background and the web server in the foreground; Ctrl-C stops
# both.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

# -B: the embedded beat scheduler runs the sweeper that resends chunks a dead worker left.
.venv/bin/celery -A copydesk worker -B -Q gpu,default --pool=solo --concurrency=1 \
    --prefetch-multiplier=1 -l info >var/worker.log 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT INT TERM

echo
echo "Copydesk is running at http://$HOST:$PORT/  (worker log: var/worker.log; Ctrl-C stops)"
echo "Sign in with one of the demo users printed above."
echo
# DEBUG on for this local demo only (the settings default to off): runserver then serves the
# static files and shows error pages with tracebacks. The worker keeps the default (off): DEBUG
# would make it keep every database query in memory.
DEBUG="${DEBUG:-1}" .venv/bin/python manage.py runserver --noreload "$HOST:$PORT"
