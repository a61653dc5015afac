#!/bin/sh
# The container's entry point (Containerfile): a secret key on first start, kept in the data
# volume unless SECRET_KEY is given; the migrations; then the server. With arguments, runs
# `flask-tracking ARGS…` instead (e.g. `docker run … flask-tracking-image doctor`).
set -eu

data="${FLASK_TRACKING_DATA_DIR:-/data}"
mkdir -p "$data"

if [ -z "${SECRET_KEY:-}" ]; then
  if [ ! -s "$data/secret_key" ]; then
    umask 077
    python3 -c 'import secrets; print(secrets.token_hex(32))' > "$data/secret_key.new"
    mv "$data/secret_key.new" "$data/secret_key"
    echo "flask-tracking-entrypoint: generated a secret key in $data/secret_key" >&2
  fi
  SECRET_KEY=$(cat "$data/secret_key")
  export SECRET_KEY
fi

if [ "$#" -gt 0 ]; then
  exec flask-tracking "$@"
fi

flask-tracking db upgrade
exec flask-tracking serve --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" --workers "${WORKERS:-2}"
