#!/usr/bin/env bash
# Builds the Debian package with CPack and checks it with dpkg-deb: name,
# version, architecture, library dependencies found by dpkg-shlibdeps, the
# maintainer scripts and conffiles, and every file in its place; then unpacks it
# and runs the packaged program.
# Usage: deb_test.sh BUILD_DIR WORK_DIR VERSION
set -euo pipefail
build=$1 work=$2 version=$3
fail() { echo "deb_test: FAIL: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  fail "cpack: $(cat "$work/cpack.log")"
arch=$(dpkg --print-architecture)
deb="$work/out/sqlpost_${version}_${arch}.deb"
[ -f "$deb" ] || fail "no $deb (cpack wrote: $(ls "$work/out"))"

info=$(dpkg-deb -I "$deb")
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = sqlpost ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version)"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
for lib in libc6 libstdc++6 libsqlite3-0 libcurl4 libssl3 libzstd1 libspdlog adduser; do
  [[ ", $depends" == *", $lib"* ]] || fail "Depends lacks $lib: $depends"
done
grep -qE "libsqlite3-0 \(>= [0-9]" <<<"$depends" || fail "unversioned libsqlite3-0: $depends"
for member in postinst postrm conffiles md5sums; do
  grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$member" <<<"$info" ||
    fail "control member $member missing: $info"
done

contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/sqlpost ./usr/share/man/man1/sqlpost.1.gz \
  ./usr/share/bash-completion/completions/sqlpost \
  "./usr/lib/systemd/system/sqlpost@.service" "./usr/lib/systemd/system/sqlpost@.timer" \
  ./etc/logrotate.d/sqlpost ./usr/share/doc/sqlpost/operations.md ./usr/share/doc/sqlpost/README.md; do
  grep -qE " $path\$" <<<"$contents" || fail "$path not in the package"
done
grep -qE "^-rwxr-xr-x root/root .* ./usr/bin/sqlpost$" <<<"$contents" ||
  fail "program not root-owned 0755: $(grep usr/bin/sqlpost <<<"$contents")"
if grep -qE "/usr/local/|/tmp/|_CPack_Packages|$work" <<<"$contents"; then
  fail "stray path in the package: $contents"
fi

dpkg-deb -x "$deb" "$work/root"
grep -qxF "ExecStart=/usr/bin/sqlpost run %f --once" \
  "$work/root/usr/lib/systemd/system/sqlpost@.service" || fail "ExecStart is not /usr/bin/sqlpost"
dpkg-deb -e "$deb" "$work/control"
[ "$(cat "$work/control/conffiles")" = /etc/logrotate.d/sqlpost ] || fail "conffiles"
[ "$("$work/root/usr/bin/sqlpost" --version)" = "sqlpost $version" ] || fail "packaged --version"
file "$work/root/usr/bin/sqlpost" | grep -q ", stripped" || fail "program not stripped"
echo "deb_test: ok"
