#!/usr/bin/env bash
# The sqlpost demo: builds sqlpost (if needed), then runs a head office and two
# remote sites that share nothing but a mail folder (the `file` link), writes at
# every site with the sqlite3 shell, runs the agents a few times and shows that
# every database holds the same rows.
# Usage: tools/demo.sh [WORKDIR]      (default: a new folder under /tmp)
set -euo pipefail
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
run "$sqlpost" init hq.db --site hq --address hq@head.office
run "$sqlpost" config hq.db link=file file.dir="$work/mail"
run "$sqlpost" publish hq.db catalogue product
run "$sqlpost" publish hq.db catalogue stock
for shop in shop1 shop2; do
  run "$sqlpost" site add hq.db "$shop" --address "$shop@shops.example"
  run "$sqlpost" subscribe hq.db "$shop" catalogue
  run "$sqlpost" extract hq.db "$shop" --output "$shop.db"
done

say "Everyone writes while offline"
sqlite3 hq.db "UPDATE product SET price = 2.75 WHERE id = 1; INSERT INTO product VALUES (3, 'cocoa', 3.2);"
sqlite3 shop1.db "INSERT INTO stock VALUES ('shop1', 1, 40), ('shop1', 2, 12);"
sqlite3 shop2.db "BEGIN; INSERT INTO stock VALUES ('shop2', 1, 7); INSERT INTO stock VALUES ('shop2', 3, 1); COMMIT;"

say "The agents run (as cron would run them): shops, head office, shops"
for round in 1 2 3; do
  for db in shop1.db shop2.db hq.db; do
    "$sqlpost" run "$db" --once | sed "s/^/[$db] /"
  done
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
