#!/bin/sh
# Installs @PROJECT@ @VERSION@.
#
#   curl -fsSL @SCRIPT_URL@ | sh
#   sh install.sh [--to DIR] [--base-url URL] [--uninstall]
#
# Written by shipit. The SHA-256 of every archive this script may download is written below:
# the script is the trust anchor, and a download that does not match is refused before it is
# unpacked. When minisign is on PATH, the release's signed SHA256SUMS is checked too.
# POSIX sh (dash, bash, busybox, zsh, posh); curl or wget; tar or unzip.
set -eu

project=@PROJECT_Q@
version=@VERSION_Q@
base_url=@BASE_URL_Q@
base_url="${@BASE_URL_VAR@:-$base_url}"
to="${HOME:-}/.local/bin"
uninstall=0

# target, archive file, SHA-256 (one line each).
archives() {
	cat <<'SHIPIT_ARCHIVES'
@ARCHIVES@
SHIPIT_ARCHIVES
}

# The binaries each archive holds.
binaries() {
	cat <<'SHIPIT_BINARIES'
@BINARIES@
SHIPIT_BINARIES
}

# The minisign public key that signs SHA256SUMS (empty: the release is not signed).
public_key=@PUBLIC_KEY_Q@

# The identity and OIDC issuer that sign SHA256SUMS keyless (empty: not signed keyless). With
# --sigstore (or @SIGSTORE_VAR@=1) the check is required; else it runs when cosign or
# sigstore is installed. @TRUST_VAR@ names a client trust configuration for a private
# Sigstore instance (sigstore's --trust-config).
sigstore_identity=@SIGSTORE_IDENTITY_Q@
sigstore_issuer=@SIGSTORE_ISSUER_Q@
require_sigstore="${@SIGSTORE_VAR@:-0}"
sigstore_trust="${@TRUST_VAR@:-}"

say() { printf '%s: %s\n' "$project" "$1" >&2; }
die() {
	printf '%s: error: %s\n' "$project" "$1" >&2
	exit 1
}

usage() {
	cat <<EOF
Installs $project $version.

usage: install.sh [--to DIR] [--base-url URL] [--uninstall]

  --to DIR        where the binaries go (default: \$HOME/.local/bin)
  --base-url URL  download the archives from a mirror of the release
                  (also: @BASE_URL_VAR@=URL)
  --uninstall     remove the binaries from DIR
  --sigstore      require the keyless signature of SHA256SUMS (cosign or sigstore
                  checks it; also: @SIGSTORE_VAR@=1)
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--to)
		[ $# -ge 2 ] || die "--to needs a folder"
		to=$2
		shift 2
		;;
	--to=*)
		to=${1#--to=}
		shift
		;;
	--base-url)
		[ $# -ge 2 ] || die "--base-url needs an address"
		base_url=$2
		shift 2
		;;
	--base-url=*)
		base_url=${1#--base-url=}
		shift
		;;
	--uninstall)
		uninstall=1
		shift
		;;
	--sigstore)
		require_sigstore=1
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown option: $1"
		;;
	esac
done
[ -n "$to" ] || die "no install folder: set HOME or pass --to DIR"

if [ "$uninstall" = 1 ]; then
	binaries | while IFS= read -r bin; do
		[ -n "$bin" ] || continue
		if [ -e "$to/$bin" ]; then
			rm -f "$to/$bin"
			say "removed $to/$bin"
		fi
	done
	exit 0
fi

# What this machine is: os, architecture (Rosetta counts as arm64), and libc on Linux.
os=$(uname -s)
arch=$(uname -m)
case "$os" in
Linux) os=linux ;;
Darwin) os=darwin ;;
MINGW* | MSYS* | CYGWIN* | Windows_NT) die "on Windows, use install.ps1: irm <release>/install.ps1 | iex" ;;
*) die "no build for $os" ;;
esac
case "$arch" in
x86_64 | amd64) arch=x64 ;;
aarch64 | arm64 | armv8*) arch=arm64 ;;
*) die "no build for the $arch architecture" ;;
esac
if [ "$os" = darwin ] && [ "$arch" = x64 ] &&
	[ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
	arch=arm64
fi
libc=gnu
if [ "$os" = linux ]; then
	if ls /lib/ld-musl-* >/dev/null 2>&1 || (ldd --version 2>&1 | grep -qi musl); then
		libc=musl
	fi
fi

# The first archive this machine runs: static musl builds run on every Linux; glibc builds
# only where glibc is.
candidates=""
case "$os" in
linux)
	candidates="linux-$arch-musl"
	[ "$libc" = gnu ] && candidates="$candidates
linux-$arch"
	;;
darwin)
	candidates="darwin-$arch
darwin-universal"
	;;
esac
choice=""
for_each_candidate() {
	printf '%s\n' "$candidates" | while IFS= read -r want; do
		archives | while IFS=' ' read -r target file sum; do
			if [ "$target" = "$want" ]; then
				printf '%s %s\n' "$file" "$sum"
			fi
		done
	done
}
choice=$(for_each_candidate | head -n 1)
[ -n "$choice" ] || die "no build of $project $version for $os-$arch ($libc)"
file=${choice%% *}
want_sum=${choice#* }

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t "$project")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

download() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL "$1" -o "$2"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -O "$2" "$1"
	else
		die "neither curl nor wget is installed"
	fi
}

sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d ' ' -f 1
	elif command -v openssl >/dev/null 2>&1; then
		openssl dgst -sha256 "$1" | sed 's/^.*= *//'
	else
		die "no sha256sum, shasum or openssl to check the download with"
	fi
}

url="${base_url%/}/$file"
say "downloading $url"
download "$url" "$tmp/$file" || die "cannot download $url"
got_sum=$(sha256 "$tmp/$file")
if [ "$got_sum" != "$want_sum" ]; then
	die "$file does not match its SHA-256 (want $want_sum, got $got_sum): refused, nothing installed"
fi

if [ -n "$public_key" ] && command -v minisign >/dev/null 2>&1; then
	download "${base_url%/}/SHA256SUMS" "$tmp/SHA256SUMS" || die "cannot download SHA256SUMS"
	download "${base_url%/}/SHA256SUMS.minisig" "$tmp/SHA256SUMS.minisig" ||
		die "cannot download SHA256SUMS.minisig"
	printf 'untrusted comment: %s\n%s\n' "$project release key" "$public_key" >"$tmp/key.pub"
	minisign -Vq -p "$tmp/key.pub" -m "$tmp/SHA256SUMS" ||
		die "SHA256SUMS is not signed by the release key: refused, nothing installed"
	grep -qF "$want_sum  $file" "$tmp/SHA256SUMS" ||
		die "the signed SHA256SUMS does not list $file with this SHA-256: refused"
	say "SHA256SUMS is signed by the release key"
fi

if [ -n "$sigstore_identity" ]; then
	verifier=
	if command -v cosign >/dev/null 2>&1 && [ -z "$sigstore_trust" ]; then
		verifier=cosign
	elif command -v sigstore >/dev/null 2>&1; then
		verifier=sigstore
	elif [ "$require_sigstore" = 1 ]; then
		die "--sigstore needs cosign or sigstore (pip install sigstore) to check SHA256SUMS with"
	fi
	if [ -n "$verifier" ]; then
		download "${base_url%/}/SHA256SUMS" "$tmp/SHA256SUMS" || die "cannot download SHA256SUMS"
		download "${base_url%/}/SHA256SUMS.sigstore.json" "$tmp/SHA256SUMS.sigstore.json" ||
			die "cannot download SHA256SUMS.sigstore.json"
		if [ "$verifier" = cosign ]; then
			cosign verify-blob --bundle "$tmp/SHA256SUMS.sigstore.json" \
				--certificate-identity "$sigstore_identity" \
				--certificate-oidc-issuer "$sigstore_issuer" "$tmp/SHA256SUMS" >/dev/null 2>&1 ||
				die "SHA256SUMS is not signed by $sigstore_identity: refused, nothing installed"
		elif [ -n "$sigstore_trust" ]; then
			sigstore --trust-config "$sigstore_trust" verify identity \
				--bundle "$tmp/SHA256SUMS.sigstore.json" --cert-identity "$sigstore_identity" \
				--cert-oidc-issuer "$sigstore_issuer" "$tmp/SHA256SUMS" >/dev/null 2>&1 ||
				die "SHA256SUMS is not signed by $sigstore_identity: refused, nothing installed"
		else
			sigstore verify identity --bundle "$tmp/SHA256SUMS.sigstore.json" \
				--cert-identity "$sigstore_identity" --cert-oidc-issuer "$sigstore_issuer" \
				"$tmp/SHA256SUMS" >/dev/null 2>&1 ||
				die "SHA256SUMS is not signed by $sigstore_identity: refused, nothing installed"
		fi
		grep -qF "$want_sum  $file" "$tmp/SHA256SUMS" ||
			die "the signed SHA256SUMS does not list $file with this SHA-256: refused"
		say "SHA256SUMS is signed keyless by $sigstore_identity"
	fi
fi

mkdir -p "$tmp/x"
case "$file" in
*.tar.gz | *.tgz) tar -xzf "$tmp/$file" -C "$tmp/x" ;;
*.zip)
	command -v unzip >/dev/null 2>&1 || die "unzip is needed for $file"
	unzip -q "$tmp/$file" -d "$tmp/x"
	;;
*) die "cannot unpack $file" ;;
esac

mkdir -p "$to" || die "cannot make $to"
binaries | while IFS= read -r bin; do
	[ -n "$bin" ] || continue
	found=$(find "$tmp/x" -type f -name "$bin" | head -n 1)
	[ -n "$found" ] || die "$file holds no $bin"
	# A new file beside the old one, renamed over it: a running copy is never half-written.
	cp "$found" "$to/.$bin.tmp.$$"
	chmod 755 "$to/.$bin.tmp.$$"
	mv -f "$to/.$bin.tmp.$$" "$to/$bin"
	say "installed $to/$bin"
done

case ":${PATH:-}:" in
*":$to:"*) ;;
*)
	# Single-quoted for the user's shell, so the line is safe to copy whatever the folder holds.
	quoted=$(printf '%s' "$to" | sed "s/'/'\\\\''/g")
	say "$to is not on your PATH; add it with: export PATH='$quoted':\"\$PATH\""
	;;
esac
