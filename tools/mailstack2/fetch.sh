#!/usr/bin/env bash
# Fetches Exim and GNU Mailutils (pop3d, imap4d) for the second test mail stack as
# .debs (apt-get download; never installed: exim4 conflicts with Postfix) with the
# libraries they need that are not installed, and unpacks them (dpkg-deb -x) into
# $MAILSTACK2_ROOT/tree. Does nothing when the tree is complete. Checks with ldd that
# every library the servers need is found (installed, or in the tree). Needs apt.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/common.sh"
die() { echo "mailstack2: $*" >&2; exit 1; }

missing_libraries() {
  local bin
  for bin in "$EXIM" "$POP3D" "$IMAP4D"; do
    LD_LIBRARY_PATH="$(tree_library_path)" ldd "$bin" 2>/dev/null | awk '/not found/ { print $1 }'
  done | sort -u
}

complete() {
  [ -x "$EXIM" ] && [ -x "$POP3D" ] && [ -x "$IMAP4D" ] && [ -f "$NSS_WRAPPER" ] &&
    [ -z "$(missing_libraries)" ]
}

complete && exit 0
want=("${MAILSTACK2_PACKAGES[@]}")
for p in "${MAILSTACK2_LIBRARIES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || want+=("$p")
done
mkdir -p "$MAILSTACK2_ROOT/debs" "$TREE"
echo "mailstack2: downloading ${want[*]}"
(cd "$MAILSTACK2_ROOT/debs" && apt-get download "${want[@]}" </dev/null >"$MAILSTACK2_ROOT/download.log" 2>&1) ||
  { tail -n 5 "$MAILSTACK2_ROOT/download.log" >&2; die "apt-get download failed (apt-get update first?)"; }
for deb in "$MAILSTACK2_ROOT"/debs/*.deb; do dpkg-deb -x "$deb" "$TREE"; done
complete || die "libraries still missing: $(missing_libraries | tr '\n' ' ')"
echo "mailstack2: servers unpacked in $TREE"
