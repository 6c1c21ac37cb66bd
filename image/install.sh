#!/usr/bin/env bash
# voicepi installer for Raspberry Pi OS / Debian 12 (bookworm) and 13 (trixie).
#
#   sudo image/install.sh                     # from a checked-out repo: install, ask for the key, start
#   sudo image/install.sh --key-stdin < key   # the OpenAI API key from stdin
#   echo "$KEY" | sudo image/install.sh       # the same: stdin that is not a terminal
#   sudo image/install.sh --no-start --no-key # image builds and chroots
#   sudo image/install.sh --uninstall [--purge]
#
# Safe to run again: it upgrades voicepi, keeps /etc/voicepi/config.toml and the key.
set -euo pipefail

PREFIX=/opt/voicepi
VENV="$PREFIX/venv"
CONF_DIR=/etc/voicepi
CRED_DIR="$CONF_DIR/credentials"
KEY_FILE="$CRED_DIR/openai-api-key"
UNIT_FILE=/etc/systemd/system/voicepi.service
SYSUSERS_FILE=/etc/sysusers.d/voicepi.conf
TMPFILES_FILE=/etc/tmpfiles.d/voicepi.conf
STATE_DIR=/var/lib/voicepi

# PyAudio and systemd-python from Debian (the venv has system site packages): prebuilt for
# arm64, so nothing is compiled on the Pi and no compiler is installed (about 60 MB of
# downloads, 240 MB of disk and minutes of building otherwise).
APT_PACKAGES=(python3 python3-venv python3-pyaudio python3-systemd libasound2-plugins alsa-utils
	ca-certificates)
# Raspberry Pi OS ships these (gpiozero's lgpio pin factory, APA102 over SPI); plain Debian may not.
APT_OPTIONAL=(python3-lgpio python3-spidev)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")

source_arg=""
key_mode=ask # ask | stdin | none
start=1
apt=1
action=install
purge=0

say() { printf 'voicepi-install: %s\n' "$*"; }
warn() { printf 'voicepi-install: warning: %s\n' "$*" >&2; }
die() {
	printf 'voicepi-install: error: %s\n' "$*" >&2
	exit 1
}

# The key goes into an HTTP header: printable ASCII only, no spaces or control characters.
# The message never shows the key.
check_key() {
	local LC_ALL=C
	case $1 in
	*[!!-~]*) die "the API key contains a space, a control or a non-ASCII character; it was not stored (check what was pasted or piped)" ;;
	esac
}

# The API key on stdout (empty: none) for a key mode: ask | stdin | none.
# "ask" prompts on a terminal; when stdin is not a terminal (echo "$KEY" | sudo install.sh)
# the key is read from it, as with --key-stdin, replacing a stored one.
# A malformed key stops the install (set -e sees the substitution fail).
read_key() {
	local mode=$1 key=""
	if [ "$mode" = ask ] && [ ! -t 0 ]; then
		IFS= read -r -t 10 key || true # a pipe with the key is there at once; never hang
		key=$(printf '%s' "$key" | tr -d '[:space:]')
		[ -n "$key" ] || [ -s "$KEY_FILE" ] || warn "no terminal to ask for the API key and none on standard input; set it later with: install.sh --key-stdin < keyfile"
	elif [ "$mode" = stdin ]; then
		IFS= read -r key || true
		key=$(printf '%s' "$key" | tr -d '[:space:]')
		[ -n "$key" ] || die "--key-stdin: no key on standard input"
	elif [ "$mode" = ask ] && [ ! -s "$KEY_FILE" ]; then
		IFS= read -r -s -p "OpenAI API key (input hidden, empty to skip): " key || true
		echo >&2
		key=$(printf '%s' "$key" | tr -d '[:space:]')
	fi
	[ -z "$key" ] || check_key "$key"
	printf '%s' "$key"
}

# Sourced (tests): the functions above only.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
	return 0
fi

usage() {
	cat <<'EOF'
Usage: install.sh [options]

  --source PATH   voicepi source: a checked-out repo directory or a wheel file
                  (default: the repo this script lives in)
  --key-stdin     read the OpenAI API key from standard input
  --no-key        do not ask for an API key (set it later with --key-stdin)
  --no-start      install and enable, but do not start (image builds, chroots)
  --no-apt        do not install Debian packages (they must already be there)
  --uninstall     remove the unit, the venv and the sysusers/tmpfiles entries
  --purge         with --uninstall: also remove /etc/voicepi, /var/lib/voicepi and the user
  -h, --help      this help
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--source)
		[ $# -ge 2 ] || die "--source needs a path"
		source_arg=$2
		shift
		;;
	--source=*) source_arg=${1#--source=} ;;
	--key-stdin) key_mode=stdin ;;
	--no-key) key_mode=none ;;
	--no-start) start=0 ;;
	--no-apt) apt=0 ;;
	--uninstall) action=uninstall ;;
	--purge) purge=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown option: $1"
		;;
	esac
	shift
done

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"
# The userland's architecture (a 32-bit Raspberry Pi OS may run a 64-bit kernel, so not uname).
# numpy and pyopen-wakeword have no 32-bit ARM wheels: refuse before installing anything.
arch=$(dpkg --print-architecture 2>/dev/null || echo unknown)
case "$arch" in
arm64 | amd64) ;;
*) die "voicepi needs a 64-bit OS (arm64 or amd64), this one is $arch: install Raspberry Pi OS (64-bit)" ;;
esac
if [ "$purge" -eq 1 ] && [ "$action" != uninstall ]; then
	die "--purge only goes with --uninstall"
fi

# systemd is running as PID 1 here (not a chroot, not an image build).
booted() { [ -d /run/systemd/system ]; }

# ------------------------------------------------------------------ uninstall

uninstall() {
	if booted; then
		systemctl disable --now voicepi.service 2>/dev/null || true
	elif [ -e "$UNIT_FILE" ]; then
		systemctl --root=/ disable voicepi.service 2>/dev/null || true
	fi
	rm -f "$UNIT_FILE" "$SYSUSERS_FILE" "$TMPFILES_FILE"
	rm -rf "$PREFIX"
	if booted; then
		systemctl daemon-reload
		systemctl reset-failed voicepi.service 2>/dev/null || true
	fi
	say "removed the unit, $PREFIX and the sysusers/tmpfiles entries"
	if [ "$purge" -eq 1 ]; then
		rm -rf "$CONF_DIR" "$STATE_DIR"
		if getent passwd voicepi >/dev/null; then userdel voicepi 2>/dev/null || true; fi
		if getent group voicepi >/dev/null; then groupdel voicepi 2>/dev/null || true; fi
		say "purged $CONF_DIR, $STATE_DIR and the voicepi user"
	else
		say "kept $CONF_DIR (config and API key) and $STATE_DIR; --purge removes them"
	fi
}

if [ "$action" = uninstall ]; then
	uninstall
	exit 0
fi

# ------------------------------------------------------------------ checks

if [ -r /etc/os-release ]; then
	# shellcheck disable=SC1091
	. /etc/os-release
	case "${VERSION_CODENAME:-}" in
	bookworm | trixie) ;;
	*) warn "tested on Debian/Raspberry Pi OS bookworm and trixie, this is '${VERSION_CODENAME:-unknown}'" ;;
	esac
fi
command -v systemctl >/dev/null || die "systemd is required (systemctl not found)"

# Read the key before the long part, so a prompt does not come after minutes of pip.
api_key=$(read_key "$key_mode")

# The source to pip install: a wheel, or a copy of the repo (pip builds in-tree, and the
# repo may be read-only or owned by someone else).
source_path=${source_arg:-$REPO_DIR}
[ -e "$source_path" ] || die "--source: $source_path does not exist"
source_dir=$(cd "$(dirname "$source_path")" && pwd)
source_path=${source_dir%/}/$(basename "$source_path")
if [ -d "$source_path" ]; then
	[ -f "$source_path/pyproject.toml" ] || die "--source: $source_path has no pyproject.toml"
	[ -f "$source_path/systemd/voicepi.service" ] || die "--source: $source_path has no systemd/voicepi.service"
	FILES_DIR=$source_path
else
	case "$source_path" in
	*.whl) ;;
	*) die "--source: expected a repo directory or a .whl file, got $source_path" ;;
	esac
	# The unit and friends come from the repo this script is in.
	FILES_DIR=$REPO_DIR
	[ -f "$FILES_DIR/systemd/voicepi.service" ] || die "no systemd/ directory next to $SCRIPT_DIR"
fi

# ------------------------------------------------------------------ packages

if [ "$apt" -eq 1 ]; then
	missing=()
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	for p in "${APT_OPTIONAL[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" &&
			apt-cache show "$p" >/dev/null 2>&1; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing Debian packages: ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
	else
		say "Debian packages already installed"
	fi
fi

# ------------------------------------------------------------------ venv

# System site packages: Raspberry Pi OS's lgpio/spidev bindings work without compiling.
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
	say "creating $VENV"
	rm -rf "$VENV"
	mkdir -p "$PREFIX"
	python3 -m venv --system-site-packages "$VENV"
fi

pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
if [ -d "$source_path" ]; then
	# Build a wheel from a copy: pip builds in-tree, and the checkout may be read-only or
	# someone else's.
	build_dir=$(mktemp -d)
	trap 'rm -rf "$build_dir"' EXIT
	mkdir -p "$build_dir/src"
	tar -C "$source_path" --exclude=./.git --exclude=./.venv --exclude=./.cache \
		--exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=__pycache__ \
		--exclude=./.mypy_cache --exclude=./.ruff_cache --exclude=./.hypothesis --exclude=./.pytest_cache \
		-cf - . | tar -C "$build_dir/src" -xf -
	say "building voicepi from $source_path"
	"${pip[@]}" wheel --quiet --no-deps --wheel-dir "$build_dir/dist" "$build_dir/src"
	wheel_file=$(find "$build_dir/dist" -name 'voicepi-*.whl' | head -n 1)
	[ -n "$wheel_file" ] || die "building the voicepi wheel from $source_path failed"
else
	wheel_file=$source_path
fi
say "installing voicepi and its dependencies into $VENV (pip; this takes a while on a Pi)"
"${pip[@]}" install --quiet --upgrade "$wheel_file"
# Same version number, new code: pip would call the first step "already satisfied".
"${pip[@]}" install --quiet --no-deps --force-reinstall "$wheel_file"
install -m 0644 "$FILES_DIR/README.md" "$PREFIX/README.md" 2>/dev/null || true
"$VENV/bin/voicepi" --version >/dev/null || die "the installed voicepi does not run"

# ------------------------------------------------------------------ user, directories, unit

install -D -m 0644 "$FILES_DIR/systemd/voicepi.sysusers" "$SYSUSERS_FILE"
install -D -m 0644 "$FILES_DIR/systemd/voicepi.tmpfiles" "$TMPFILES_FILE"
systemd-sysusers "$SYSUSERS_FILE"
systemd-tmpfiles --create "$TMPFILES_FILE"

if [ ! -e "$CONF_DIR/config.toml" ]; then
	install -m 0640 -o root -g voicepi "$FILES_DIR/systemd/config.example.toml" "$CONF_DIR/config.toml"
	say "wrote $CONF_DIR/config.toml (all defaults; edit it, then: systemctl reload voicepi)"
else
	say "kept $CONF_DIR/config.toml"
fi
install -m 0644 "$FILES_DIR/systemd/config.example.toml" "$CONF_DIR/config.example.toml"

if [ -n "$api_key" ]; then
	tmp_key=$(mktemp "$CRED_DIR/.openai-api-key.XXXXXX")
	chmod 0600 "$tmp_key"
	printf '%s\n' "$api_key" >"$tmp_key"
	mv -f "$tmp_key" "$KEY_FILE"
	say "stored the API key in $KEY_FILE (root only)"
elif [ -s "$KEY_FILE" ]; then
	chmod 0600 "$KEY_FILE"
	say "kept the API key in $KEY_FILE"
elif [ "$key_mode" != none ]; then
	warn "no API key yet: voicepi starts and hears the wake word, but each wake shows an auth error. Add it with"
	warn "  sudo $0 --key-stdin < keyfile   (or write $KEY_FILE, mode 0600)"
fi
unset api_key

install -D -m 0644 "$FILES_DIR/systemd/voicepi.service" "$UNIT_FILE"

if booted; then
	systemctl daemon-reload
	systemctl enable voicepi.service --quiet
	if [ "$start" -eq 1 ]; then
		# restart, not start: a second run must also pick up the new code.
		if ! systemctl restart voicepi.service; then
			systemctl status --no-pager --lines=15 voicepi.service >&2 || true
			die "installed, but voicepi did not start: see journalctl -u voicepi"
		fi
		say "voicepi is running: journalctl -u voicepi -f"
	else
		say "enabled; start it with: systemctl start voicepi"
	fi
else
	systemctl --root=/ enable voicepi.service --quiet
	say "enabled (systemd is not running here: it starts on the next boot)"
fi
say "done"
