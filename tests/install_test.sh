#!/usr/bin/env bash
# Installs the build into a staging prefix (cmake --install --prefix) and checks
# what an administrator gets: the program runs from there (--version, init,
# status), the man page renders without warnings and documents every command,
# the systemd units run the installed program on the instance's database path,
# the bash completion completes, the logrotate snippet and the docs are there.
# Usage: install_test.sh BUILD_DIR WORK_DIR VERSION
set -euo pipefail
build=$1 work=$2 version=$3
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
stage="$work/stage"
cmake --install "$build" --prefix "$stage" >"$work/install.log"

bin="$stage/bin/sqlpost"
[ -x "$bin" ] || fail "no program at $bin"
[ "$("$bin" --version)" = "sqlpost $version" ] || fail "--version says '$("$bin" --version)'"

db="$work/shop.db"
"$bin" init "$db" --site hq --address hq@example.com >/dev/null
status=$("$bin" status "$db")
grep -qF "site hq <hq@example.com>, consolidated" <<<"$status" || fail "status: $status"

man_page="$stage/share/man/man1/sqlpost.1.gz"
[ -f "$man_page" ] || fail "no man page at $man_page"
gzip -t "$man_page"
MANWIDTH=100 man --warnings -l "$man_page" >"$work/man.txt" 2>"$work/man.warnings"
[ ! -s "$work/man.warnings" ] || fail "man page warnings: $(cat "$work/man.warnings")"
for text in "EXIT STATUS" "sqlpost run DB" "sqlpost site add DB NAME --address ADDRESS" \
  "--every INTERVAL" "--log FILE"; do
  grep -qF -- "$text" "$work/man.txt" || fail "man page lacks '$text'"
done
# Every command of the program's own help is in the man page.
commands=$("$bin" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$commands" ] || fail "no commands in --help"
for c in $commands; do
  grep -qE "^ +sqlpost $c( |$)" "$work/man.txt" || fail "man page lacks command '$c'"
done

units="$stage/lib/systemd/system"
for unit in sqlpost@.service sqlpost@.timer; do
  [ -f "$units/$unit" ] || fail "no $units/$unit"
done
grep -qxF "ExecStart=$bin run %f --once" "$units/sqlpost@.service" ||
  fail "ExecStart: $(grep ExecStart "$units/sqlpost@.service")"
# The instance name is the systemd-escaped database path; %f gives the path back.
instance=$(systemd-escape --path /srv/shop/shop.db)
[ "$instance" = "srv-shop-shop.db" ] || fail "systemd-escape gave $instance"
mkdir -p "$work/verify"
cp "$units/sqlpost@.service" "$work/verify/sqlpost@$instance.service"
cp "$units/sqlpost@.timer" "$work/verify/sqlpost@$instance.timer"
if ! systemd-analyze verify --man=no "$work/verify/sqlpost@$instance.service" \
  "$work/verify/sqlpost@$instance.timer" >"$work/verify.log" 2>&1; then
  fail "systemd-analyze verify: $(cat "$work/verify.log")"
fi

[ -f "$stage/etc/logrotate.d/sqlpost" ] || fail "no logrotate snippet"
[ -f "$stage/share/doc/sqlpost/operations.md" ] || fail "no docs"

completion="$stage/share/bash-completion/completions/sqlpost"
[ -f "$completion" ] || fail "no bash completion"
completed=$(bash -c '
  source "$1"
  COMP_WORDS=(sqlpost si); COMP_CWORD=1; _sqlpost; printf "%s " "${COMPREPLY[@]}"; echo
  COMP_WORDS=(sqlpost site a); COMP_CWORD=2; _sqlpost; printf "%s " "${COMPREPLY[@]}"; echo
  COMP_WORDS=(sqlpost run x.db --ev); COMP_CWORD=3; _sqlpost; printf "%s " "${COMPREPLY[@]}"' \
  _ "$completion")
[ "$completed" = $'site \nadd \n--every ' ] || fail "completion gave: $completed"
echo "install_test: ok"
