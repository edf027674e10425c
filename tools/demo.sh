#!/usr/bin/env bash
# The sqlpost demo: builds sqlpost (if needed), then runs a head office and two
# remote sites that share nothing but a mail folder (the `file` link), writes at
# every site with the sqlite3 shell, runs the agents a few times and shows that
# every database holds the same rows.
# With --mail the same runs through real Postfix + Dovecot on 127.0.0.1 (started with
# tools/mailstack/start.sh when not running; needs root): SMTP submission with
# STARTTLS + AUTH out, POP3 in, one mailbox per site.
# Usage: tools/demo.sh [--mail] [WORKDIR]      (default: a new folder under /tmp)
set -euo pipefail
mail=0
if [ "${1:-}" = "--mail" ]; then mail=1; shift; fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SQLPOST_BUILD_DIR:-$root/build}"
if [ ! -x "$build/agent/sqlpost" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target sqlpost >/dev/null
fi
sqlpost="$build/agent/sqlpost"
work="${1:-$(mktemp -d /tmp/sqlpost-demo.XXXXXX)}"
mkdir -p "$work"
cd "$work"
rm -rf hq.db shop1.db shop2.db mail ./*.sqlpost-lock

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Head office database with two tables"
sqlite3 hq.db "CREATE TABLE product(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);
  CREATE TABLE stock(shop TEXT, product INTEGER, qty INTEGER, PRIMARY KEY (shop, product)) WITHOUT ROWID;
  INSERT INTO product VALUES (1, 'tea', 2.5), (2, 'coffee', 4.0);"
# mail_site DB LOGIN: the site reads its own mailbox LOGIN (password from MAILSTACK_USERS).
mail_site() {
  local password
  password="$(tr ' ' '\n' <<<"$MAILSTACK_USERS" | awk -F: -v u="$2" '$1 == u { print $2 }')"
  run "$sqlpost" config "$1" pop3.user="$2" tls.ca_file="$MAILSTACK_CACERT"
  printf '$ %s\n' "sqlpost config $1 --secret pop3.password   (typed without echo)"
  printf '%s\n' "$password" | "$sqlpost" config "$1" --secret pop3.password
}
if [ "$mail" -eq 1 ]; then
  . "$root/tools/mailstack/ensure.sh"
  trap mailstack_release EXIT
  hq_address=hq@hq.test shop1_address=site1@site1.test shop2_address=site2@site2.test
  run "$sqlpost" init hq.db --site hq --address "$hq_address"
  run "$sqlpost" config hq.db link=smtp smtp.host=127.0.0.1 smtp.port="$MAILSTACK_SUBMISSION_PORT" \
    pop3.host=127.0.0.1 pop3.port="$MAILSTACK_POP3_PORT"
  mail_site hq.db hq
else
  hq_address=hq@head.office shop1_address=shop1@shops.example shop2_address=shop2@shops.example
  run "$sqlpost" init hq.db --site hq --address "$hq_address"
  run "$sqlpost" config hq.db link=file file.dir="$work/mail"
fi
run "$sqlpost" publish hq.db catalogue product
run "$sqlpost" publish hq.db catalogue stock
for shop in shop1 shop2; do
  address_var="${shop}_address"
  run "$sqlpost" site add hq.db "$shop" --address "${!address_var}"
  run "$sqlpost" subscribe hq.db "$shop" catalogue
  run "$sqlpost" extract hq.db "$shop" --output "$shop.db"
done
if [ "$mail" -eq 1 ]; then
  mail_site shop1.db site1
  mail_site shop2.db site2
fi

say "Everyone writes while offline"
sqlite3 hq.db "UPDATE product SET price = 2.75 WHERE id = 1; INSERT INTO product VALUES (3, 'cocoa', 3.2);"
sqlite3 shop1.db "INSERT INTO stock VALUES ('shop1', 1, 40), ('shop1', 2, 12);"
sqlite3 shop2.db "BEGIN; INSERT INTO stock VALUES ('shop2', 1, 7); INSERT INTO stock VALUES ('shop2', 3, 1); COMMIT;"

say "The agents run (as cron would run them): shops, head office, shops"
rounds=3
[ "$mail" -eq 1 ] && rounds=5  # Postfix delivers a moment after accepting
for round in $(seq "$rounds"); do
  for db in shop1.db shop2.db hq.db; do
    rc=0
    "$sqlpost" run "$db" --once 2>&1 | sed "s/^/[$db] /" || rc=$?
    [ "$rc" -eq 0 ] || echo "[$db] exit code $rc (see docs/operations.md)"
  done
  [ "$mail" -eq 1 ] && sleep 0.5
done

say "Status at the head office"
"$sqlpost" status hq.db

say "Every site now holds the same rows"
status=0
for db in hq.db shop1.db shop2.db; do
  printf '%s: ' "$db"
  sqlite3 "$db" "SELECT group_concat(id || ':' || name || ':' || price, ' ') FROM (SELECT * FROM product ORDER BY id);
                 SELECT group_concat(shop || '/' || product || '=' || qty, ' ') FROM (SELECT * FROM stock ORDER BY shop, product);" | paste -sd' ' -
done
for db in shop1.db shop2.db; do
  for t in product stock; do
    if ! diff <(sqlite3 hq.db "SELECT * FROM $t ORDER BY 1, 2") <(sqlite3 "$db" "SELECT * FROM $t ORDER BY 1, 2") >/dev/null; then
      echo "MISMATCH: $db.$t differs from hq.db"; status=1
    fi
  done
done
[ $status -eq 0 ] && echo "all three databases are identical (demo files in $work)"
exit $status
