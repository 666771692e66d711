#!/bin/sh
# Entrypoint of the offline `staging/redis:7` image: the part of the official `redis`
# image's contract that staging uses. `docker run IMAGE --port 7000` (a first argument that
# is an option or a *.conf file) means redis-server with it; redis-server runs as the
# non-root `redis` user in /data. Without a config file, protected mode is off, as the
# official image builds it: published ports make every client non-loopback, and protected
# mode would refuse them all; an explicit `--protected-mode` argument is left as given.
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = "redis-server" ]; then
	explicit=no
	case "${2:-}" in *.conf) explicit=yes ;; esac
	for arg in "$@"; do
		[ "$arg" = "--protected-mode" ] && explicit=yes
	done
	# Appended, not inserted: `redis-server --version` must stay the first argument.
	[ "$explicit" = "yes" ] || set -- "$@" --protected-mode no
	if [ "$(id -u)" = "0" ]; then
		# `docker run --user` already chose a user; only root drops to `redis`.
		find . \! -user redis -exec chown redis '{}' +
		umask 0077
		exec setpriv --reuid=redis --regid=redis --init-groups -- "$@"
	fi
fi

exec "$@"
