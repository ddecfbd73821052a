#!/bin/sh
# Starts a Valkey server or sentinel in compose: `start.sh primary|replica|sentinel [valkey-server options…]`.
# The role's template is copied into the data volume on the first start only: after that the sentinels rewrite the
# copy (who is primary, the epochs, the other sentinels), and a restart must keep what they wrote.
set -eu
role="$1"
shift
templates="${VALKEY_TEMPLATES:-/etc/valkey}"
conf="${VALKEY_DATA:-/data}/$role.conf"
if [ ! -f "$conf" ]; then
    cp "$templates/$role.conf" "$conf"
    if [ "$role" = sentinel ]; then
        printf 'sentinel auth-pass baton %s\nrequirepass %s\n' "$VALKEY_PASSWORD" "$VALKEY_PASSWORD" >> "$conf"
    else
        printf 'requirepass %s\nmasterauth %s\n' "$VALKEY_PASSWORD" "$VALKEY_PASSWORD" >> "$conf"
    fi
fi
# The image's entrypoint gives the data directory to the valkey user and drops root before starting the server.
if [ "$role" = sentinel ]; then
    exec docker-entrypoint.sh valkey-server "$conf" --sentinel "$@"
fi
exec docker-entrypoint.sh valkey-server "$conf" "$@"
