// `sqlpost report DB --html FILE`, end to end through the program and the file
// link: a hub "hq" with a child "mid" (itself the parent of "leaf") and a child
// "shop2" that never runs. The leaf's stream from mid stops, shop2 falls
// silent, the hub keeps a few days of statistics, and a hostile site below mid
// names itself with markup. The suite "ops-report" checks the page as text;
// "ops-report-render" (registered only when chromium is installed, see
// ops.cmake) renders it in headless Chromium and checks what a browser makes of
// it. Time is never waited for: ages are made by moving timestamps back.
#include <doctest/doctest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

std::string q(const std::string& s) { return shell_quote(s); }

// What a hostile child could report about a site below it: markup everywhere.
constexpr const char* kHostileSite = "<script>alert(\"x\")</script>";
constexpr const char* kHostileVersion = "1.0\"><img src=x onerror=alert(1)>";
constexpr const char* kHostileWhy = "</td></tr></table><h1>pwned</h1>";

struct TroubledHierarchy {
  TempDir dir;
  std::string hq = dir.path("hq.db");
  std::string mid = dir.path("mid.db");
  std::string leaf = dir.path("leaf.db");
  std::string shop2 = dir.path("shop2.db");
  std::string report = dir.path("out/report.html");

  TroubledHierarchy() {
    std::filesystem::create_directories(dir.path("out"));
    sqlite_shell(hq,
                 "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a')");
    sqlpost_ok("init " + q(hq) + " --site hq --address hq@x.test");
    sqlpost_ok("config " + q(hq) + " link=file file.dir=" + q(dir.path("mail")) +
               " alert.silent=3600");
    sqlpost_ok("publish " + q(hq) + " p t");
    for (const auto& [name, path] : {std::pair{"mid", mid}, std::pair{"shop2", shop2}}) {
      sqlpost_ok("site add " + q(hq) + " " + name + " --address " + name + "@x.test");
      sqlpost_ok("subscribe " + q(hq) + " " + name + " p");
      sqlpost_ok("extract " + q(hq) + " " + name + " --output " + q(path));
    }
    sqlpost_ok("site add " + q(mid) + " leaf --address leaf@x.test");
    sqlpost_ok("subscribe " + q(mid) + " leaf p");
    sqlpost_ok("extract " + q(mid) + " leaf --output " + q(leaf));
    stop_the_leaf();
    age_and_add_history();
  }

  void rounds(int n) const {
    for (int i = 0; i < n; ++i) {
      for (const auto& db : {leaf, mid, hq}) {
        (void)run_sqlpost("run " + q(db) + " --once");
      }
    }
  }

  // Data for a column the leaf does not have stops its stream from mid; the
  // leaf's own write carries that news up to mid and on to hq.
  void stop_the_leaf() const {
    sqlpost_ok("passthrough " + q(hq) + " --site mid " + q("ALTER TABLE t ADD COLUMN extra TEXT"));
    sqlite_shell(hq, "UPDATE t SET extra = 'new' WHERE id = 1");
    rounds(3);
    sqlite_shell(leaf, "INSERT INTO t VALUES (7, 'written at the leaf')");
    rounds(2);
  }

  // shop2 was added two days ago and never sent anything; hq has four earlier
  // days of traffic with mid; a hostile report names a site below mid.
  void age_and_add_history() const {
    sqlite_shell(hq,
                 "UPDATE sqlpost_sites SET created_at = created_at - 2 * 86400 WHERE name = "
                 "'shop2'");
    std::string days;
    for (int back = 1; back <= 4; ++back) {
      // Day -back: 4 + back messages in, back out, lag up to 600 * back s (300 * back on average).
      days +=
          "INSERT INTO sqlpost_stats(day, partner, messages_in, messages_out, bytes_in, "
          "bytes_out, lag_max, lag_sum, lag_count) VALUES (date('now', '-";
      days += std::to_string(back) + " days'), 'mid', " + std::to_string(4 + back) + ", ";
      days += std::to_string(back) + ", 4096, 2048, " + std::to_string(600 * back) + ", ";
      days += std::to_string(300 * back) + ", 1);";
    }
    sqlite_shell(hq, days);
    std::string health =
        "INSERT INTO sqlpost_site_health(site, via, received_at, version, reported_at, "
        "conflicts, rejected, outbox_oldest, halted) VALUES (";
    health += sql_text(kHostileSite) + ", 'mid', strftime('%s'), ";
    health += sql_text(kHostileVersion) + ", strftime('%s'), 3, 0, 0, ";
    health += sql_text(std::string(R"([["mid",")") + kHostileWhy + R"("]])") + ")";
    sqlite_shell(hq, health);
  }

  static std::string sql_text(const std::string& s) {
    std::string out = "'";
    for (const char c : s) {
      out += c == '\'' ? std::string("''") : std::string(1, c);
    }
    return out + "'";
  }

  [[nodiscard]] std::string write_report() const {
    sqlpost_ok("report " + q(hq) + " --html " + q(report) + " --days 7");
    return read_file(report);
  }
};

// The <tr> whose name cell holds exactly `name` (already escaped); "" if none.
std::string row_of(const std::string& html, const std::string& name) {
  for (const char* cell : {"<td class=\"name\">", "<td class=\"name nested\">"}) {
    const auto at = html.find(cell + name + "</td>");
    if (at != std::string::npos) {
      const auto start = html.rfind("<tr", at);
      return html.substr(start, html.find("</tr>", at) + 5 - start);
    }
  }
  return "";
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

// The text a reader sees: tags and the style sheet dropped, each run of white
// space (and each tag) one space, entities decoded.
std::string visible_text(const std::string& dom) {
  std::string text;
  bool in_tag = false;
  const auto space = [&text] {
    if (!text.empty() && text.back() != ' ') {
      text += ' ';
    }
  };
  for (std::size_t i = 0; i < dom.size(); ++i) {
    if (dom.compare(i, 6, "<style") == 0 && dom.find("</style>", i) != std::string::npos) {
      i = dom.find("</style>", i) + 7;
    } else if (dom[i] == '<') {
      in_tag = true;
    } else if (dom[i] == '>' && in_tag) {
      in_tag = false;
      space();
    } else if (!in_tag) {
      if (std::isspace(static_cast<unsigned char>(dom[i])) != 0) {
        space();
      } else {
        text += dom[i];
      }
    }
  }
  for (const auto& [entity, c] :
       {std::pair{"&lt;", "<"}, std::pair{"&gt;", ">"}, std::pair{"&quot;", "\""},
        std::pair{"&#39;", "'"}, std::pair{"&nbsp;", " "}, std::pair{"&amp;", "&"}}) {
    for (auto at = text.find(entity); at != std::string::npos; at = text.find(entity, at)) {
      text.replace(at, std::string(entity).size(), c);
      at += std::string(c).size();
    }
  }
  return text;
}

}  // namespace

TEST_SUITE_BEGIN("ops-report");

TEST_CASE("the report shows every site with its state, coloured, and escapes what sites sent") {
  TroubledHierarchy h;
  const std::string html = h.write_report();
  REQUIRE(html.starts_with("<!DOCTYPE html>"));
  CHECK(html.ends_with("</html>\n"));
  // Nothing a browser would fetch or run.
  for (const std::string absent :
       {"<script", "<img", "<h1>pwned", "src=\"", "href=\"", "url(", "@import"}) {
    CHECK_MESSAGE(html.find(absent) == std::string::npos, absent);
  }
  CHECK(html.find("default-src 'none'") != std::string::npos);

  const std::string hostile = row_of(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
  REQUIRE_MESSAGE(!hostile.empty(), html);
  CHECK(hostile.find("1.0&quot;&gt;&lt;img src=x onerror=alert(1)&gt;") != std::string::npos);
  CHECK(hostile.find("&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;h1&gt;pwned") != std::string::npos);

  const std::string leaf = row_of(html, "leaf");
  CHECK_MESSAGE(leaf.starts_with("<tr class=\"bad\">"), leaf);
  CHECK(leaf.find("<td>below mid</td>") != std::string::npos);
  CHECK(leaf.find("<span class=\"state bad\">stopped</span>") != std::string::npos);
  CHECK(leaf.find("its stream from mid stopped: ") != std::string::npos);
  CHECK(leaf.find("extra") != std::string::npos);

  const std::string shop2 = row_of(html, "shop2");
  CHECK_MESSAGE(shop2.starts_with("<tr class=\"warn\">"), shop2);
  CHECK(shop2.find("<span class=\"state warn\">silent</span>") != std::string::npos);
  CHECK(shop2.find("ALERT silent: shop2 has sent nothing for 2d 0h") != std::string::npos);

  const std::string mid = row_of(html, "mid");
  CHECK_MESSAGE(mid.starts_with("<tr class=\"ok\">"), mid);
  CHECK(row_of(html, "hq").find("this site (consolidated)") != std::string::npos);
  CHECK(count(html, "<tr class=") == 5);  // hq, mid, leaf, the hostile one, shop2

  // Two charts per partner; the statistics of three days ago in mid's bars.
  CHECK(count(html, "<svg ") == 4);
  CHECK(html.find("received: 7</title>") != std::string::npos);  // 4 + 3 messages in
  CHECK(html.find("max: 30m 0s</title>") != std::string::npos);  // 600 s * 3
  CHECK(html.find("stopped_below") != std::string::npos);        // the alert list
}

TEST_CASE("the report file is replaced whole; bad arguments and destinations fail") {
  TroubledHierarchy h;
  const std::string first = h.write_report();
  const std::string second = h.write_report();
  CHECK(first.size() > 1000);
  CHECK(second.find("<h2>Sites</h2>") != std::string::npos);
  // The temporary file was renamed: the report is alone in its folder.
  CHECK(std::distance(std::filesystem::directory_iterator(h.dir.path("out")),
                      std::filesystem::directory_iterator()) == 1);

  CHECK(run_sqlpost("report " + q(h.hq) + " --html " + q(h.report) + " --days 0").exit_code == 2);
  CHECK(run_sqlpost("report " + q(h.hq)).exit_code == 2);  // --html is required
  const auto nowhere =
      run_sqlpost("report " + q(h.hq) + " --html " + q(h.dir.path("no/such.html")));
  CHECK(nowhere.exit_code != 0);
  CHECK_MESSAGE(nowhere.output.find("no/such.html") != std::string::npos, nowhere.output);
  CHECK(read_file(h.report) == second);
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("ops-report-render");

TEST_CASE("the report renders in headless Chromium with every site and state visible") {
  const char* chromium = std::getenv("SQLPOST_CHROMIUM");
  REQUIRE_MESSAGE(chromium != nullptr, "ops.cmake sets SQLPOST_CHROMIUM when it finds chromium");
  TroubledHierarchy h;
  (void)h.write_report();
  const std::string browser = q(chromium) + " --headless --disable-gpu --no-sandbox " +
                              "--user-data-dir=" + q(h.dir.path("chromium")) + " ";
  const std::string url = q("file://" + h.report);
  // Chromium's own chatter (no D-Bus here) goes to a log, shown when it fails; the
  // braces keep run_command's 2>&1 from sending it back into the DOM.
  const std::string to_log = " 2>" + q(h.dir.path("chromium.log")) + "; }";
  const auto dom = run_command("{ " + browser + "--dump-dom " + url + to_log);
  REQUIRE_MESSAGE(dom.exit_code == 0, read_file(h.dir.path("chromium.log")));
  // The parsed document has no element the hostile report tried to inject...
  for (const std::string absent : {"<script", "<img", "<h1>pwned"}) {
    CHECK_MESSAGE(dom.output.find(absent) == std::string::npos, absent);
  }
  REQUIRE_MESSAGE(dom.output.starts_with("<!DOCTYPE html>"), dom.output);
  CHECK(count(dom.output, "<tr class=") == 5);
  CHECK(count(dom.output, "<svg ") == 4);
  // ...and shows its markup as text, beside every site and its state.
  const std::string text = visible_text(dom.output);
  for (const char* shown :
       {"sqlpost report: hq", "<script>alert(\"x\")</script>", "1.0\"><img src=x onerror=alert(1)>",
        "leaf below mid stopped", "shop2 child silent", "mid child ok",
        "</td></tr></table><h1>pwned</h1>", "messages per day", "acknowledgement lag per day"}) {
    CHECK_MESSAGE(text.find(shown) != std::string::npos, shown << "\n" << text);
  }

  const std::string png = h.dir.path("report.png");
  const auto shot = run_command("{ " + browser + "--hide-scrollbars --window-size=1200,900 " +
                                "--screenshot=" + q(png) + " " + url + to_log);
  REQUIRE_MESSAGE(shot.exit_code == 0, read_file(h.dir.path("chromium.log")));
  const std::string image = read_file(png);
  REQUIRE(image.size() > 24);
  CHECK(image.starts_with("\x89PNG\r\n\x1a\n"));
  // IHDR: width and height, big-endian, at bytes 16..23.
  CHECK(image.substr(16, 8) == std::string("\0\0\x04\xb0\0\0\x03\x84", 8));
  // For a person to look at: SQLPOST_REPORT_SCREENSHOT=FILE keeps the PNG (and the page).
  if (const char* keep = std::getenv("SQLPOST_REPORT_SCREENSHOT")) {
    std::filesystem::copy_file(png, keep, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(h.report, std::string(keep) + ".html",
                               std::filesystem::copy_options::overwrite_existing);
  }
}

TEST_SUITE_END();
