#!/bin/sh
# Entrypoint of the offline `staging/postgres:15` image: the part of the official image's
# contract that staging and testcontainers use. POSTGRES_USER (default postgres) becomes a
# superuser with POSTGRES_PASSWORD, POSTGRES_DB (default: the user) is created and owned by
# it, and TCP clients must authenticate with scram-sha-256 from anywhere; only the
# container-local Unix socket trusts (as in the official image).
#
# Fast path: build.sh runs `docker-entrypoint.sh --build-template` once, so a container
# copies a ready cluster instead of running initdb (seconds of CPU). The password is set
# as a SCRAM verifier computed here: the plain text never appears in SQL, a command line
# or a file, which matters because staging's passwords contain @ : / % # ' " and spaces.
# Passwords outside printable ASCII (SASLprep territory) take the initdb path (--pwfile).
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
TEMPLATE=/var/lib/postgresql/template
SPARE_DB=staging_spare
export PGDATA

as_postgres() {
	setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
}

# pg_hba.conf and settings for a cluster in $1.
configure_cluster() {
	cat >"$1/pg_hba.conf" <<-'EOF'
		# TYPE  DATABASE  USER  ADDRESS     METHOD
		local   all       all               trust
		host    all       all   0.0.0.0/0   scram-sha-256
		host    all       all   ::/0        scram-sha-256
	EOF
	# A throwaway database: durability buys nothing and costs start-up and teardown time.
	cat >>"$1/postgresql.conf" <<-'EOF'
		listen_addresses = '*'
		password_encryption = 'scram-sha-256'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		jit = off
	EOF
}

# SQL identifier quoting: double any double quote.
ident() {
	printf '%s' "$1" | sed 's/"/""/g'
}

# Runs SQL from stdin as the bootstrap superuser, before any TCP listener exists.
single_user() {
	out="$(as_postgres postgres --single -D "$PGDATA" -c jit=off postgres 2>&1)"
	case "$out" in
	*ERROR* | *FATAL*)
		echo "staging/postgres: setting up the cluster failed:" >&2
		echo "$out" >&2
		exit 1
		;;
	esac
}

# SCRAM-SHA-256 verifier of $POSTGRES_PASSWORD (read from the environment, RFC 5802/7677);
# fails for passwords that are not printable ASCII.
scram_verifier() {
	perl -MDigest::SHA=hmac_sha256,sha256 -MMIME::Base64 -e '
		my $pw = $ENV{POSTGRES_PASSWORD};
		exit 3 if $pw =~ /[^\x20-\x7e]/;
		open(my $rnd, "<:raw", "/dev/urandom") or die "urandom: $!";
		read($rnd, my $salt, 16) == 16 or die "urandom: short read";
		my $u = hmac_sha256($salt . pack("N", 1), $pw);
		my $salted = $u;
		for (2 .. 4096) { $u = hmac_sha256($u, $pw); $salted ^= $u; }
		my $stored = sha256(hmac_sha256("Client Key", $salted));
		my $server = hmac_sha256("Server Key", $salted);
		print "SCRAM-SHA-256\$4096:", encode_base64($salt, ""), "\$",
			encode_base64($stored, ""), ":", encode_base64($server, "");
	'
}

from_template() {
	user="$1" db="$2"
	[ -s "$TEMPLATE/PG_VERSION" ] || return 1
	verifier="$(scram_verifier)" || return 1
	cp -a "$TEMPLATE/." "$PGDATA/" || exit 1
	u="$(ident "$user")"
	{
		if [ "$user" = "postgres" ]; then
			printf "ALTER ROLE \"%s\" PASSWORD '%s';\n" "$u" "$verifier"
		else
			printf "CREATE ROLE \"%s\" SUPERUSER LOGIN PASSWORD '%s';\n" "$u" "$verifier"
		fi
		# Renaming the template's spare database is instant; CREATE DATABASE copies files.
		if [ "$db" = "postgres" ]; then
			printf 'DROP DATABASE %s;\n' "$SPARE_DB"
		else
			d="$(ident "$db")"
			printf 'ALTER DATABASE %s RENAME TO "%s";\n' "$SPARE_DB" "$d"
			printf 'ALTER DATABASE "%s" OWNER TO "%s";\n' "$d" "$u"
		fi
	} | single_user
}

with_initdb() {
	user="$1" db="$2"
	pwfile="$(mktemp)"
	# A constant format keeps every byte of the password, quotes and % included.
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	chown postgres:postgres "$pwfile"
	chmod 600 "$pwfile"
	as_postgres initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
		--auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-sync \
		-D "$PGDATA" >/dev/null
	rm -f "$pwfile"
	configure_cluster "$PGDATA"
	if [ "$db" != "postgres" ]; then
		printf 'CREATE DATABASE "%s";\n' "$(ident "$db")" | single_user
	fi
}

init_cluster() {
	user="${POSTGRES_USER:-postgres}"
	db="${POSTGRES_DB:-$user}"
	if [ -z "${POSTGRES_PASSWORD:-}" ]; then
		echo "staging/postgres: POSTGRES_PASSWORD is empty; this image never trusts TCP clients." >&2
		echo "Hint: pass -e POSTGRES_PASSWORD=..." >&2
		exit 1
	fi
	if from_template "$user" "$db"; then
		echo "staging/postgres: cluster ready from the template (user and database created)"
	else
		with_initdb "$user" "$db"
		echo "staging/postgres: cluster initialized with initdb (user and database created)"
	fi
}

if [ "${1:-}" = "--build-template" ]; then
	# Run by build.sh inside the image's root file system, before `docker import`. Small WAL
	# segments: every container copies this cluster.
	mkdir -p "$TEMPLATE"
	chown postgres:postgres "$TEMPLATE"
	chmod 700 "$TEMPLATE"
	as_postgres initdb --username=postgres --auth-local=trust --auth-host=scram-sha-256 \
		--encoding=UTF8 --locale=C.UTF-8 --wal-segsize=1 -D "$TEMPLATE" >/dev/null
	configure_cluster "$TEMPLATE"
	PGDATA="$TEMPLATE"
	echo "CREATE DATABASE $SPARE_DB;" | single_user
	exit 0
fi

# `docker run IMAGE -c key=value` means "postgres with these flags", as in the official image.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi

if [ "$1" = "postgres" ] && [ "$(id -u)" = "0" ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		init_cluster
	fi
	exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
fi

exec "$@"
