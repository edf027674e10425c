#include "agent/manpage.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <map>
#include <sstream>
#include <string_view>
#include <vector>

#include "agent/exit_codes.h"
#include "agent/version.h"

namespace sqlpost {
namespace {

// ---- the tree

bool visible(const CLI::Option* opt) { return !opt->get_group().empty(); }
// A flag has no value type; name_option_values() leaves it so (and names every other).
bool is_flag(const CLI::Option* opt) {
  return !opt->get_positional() && opt->get_type_name().empty();
}

std::vector<const CLI::App*> subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); });
}

std::vector<const CLI::Option*> options(const CLI::App& app) {
  return app.get_options([&app](const CLI::Option* opt) {
    return visible(opt) && opt != app.get_help_ptr() && opt != app.get_help_all_ptr();
  });
}

// "site add" for the subcommand add of site (the program itself is "").
std::string command_path(const CLI::App& app) {
  if (app.get_parent() == nullptr) {
    return {};
  }
  const std::string parent = command_path(*app.get_parent());
  return parent.empty() ? app.get_name() : parent + " " + app.get_name();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

// ---- roff

// Text safe in a roff line: backslashes and minus signs escaped, no request at
// the start of a line.
std::string roff(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out.front() == '.' || out.front() == '\'')) {
    out.insert(0, "\\&");
  }
  return out;
}

std::string bold(std::string_view text) { return "\\fB" + roff(text) + "\\fR"; }
std::string italic(std::string_view text) { return "\\fI" + roff(text) + "\\fR"; }

std::string option_label(const CLI::Option* opt) {
  if (opt->get_positional()) {
    return italic(opt->get_name(true));
  }
  std::string label = bold(opt->get_name(false, true));
  if (!is_flag(opt)) {
    label += " " + italic(opt->get_type_name());
  }
  return label;
}

std::string synopsis(const CLI::App& app) {
  std::string line = bold("sqlpost " + command_path(app));
  bool optional = false;
  for (const auto* opt : options(app)) {
    if (opt->get_positional()) {
      const std::string name = italic(opt->get_name(true));
      line += " " + (opt->get_required() ? name : "[" + name + "]");
    } else if (opt->get_required()) {
      line += " " + option_label(opt);
    } else {
      optional = true;
    }
  }
  if (!subcommands(app).empty()) {
    line += " " + italic("COMMAND");
  }
  return optional ? line + " [" + italic("options") + "]" : line;
}

void text_block(std::ostream& out, const std::string& text) {
  const auto lines = lines_of(text);
  if (lines.size() <= 1) {
    out << roff(text) << "\n";
    return;
  }
  out << ".nf\n";
  for (const auto& line : lines) {
    out << roff(line) << "\n";
  }
  out << ".fi\n";
}

void describe_command(std::ostream& out, const CLI::App& app) {
  if (app.get_parent() != nullptr && subcommands(app).empty()) {
    out << ".SS \"" << synopsis(app) << "\"\n";
    text_block(out, app.get_description());
    for (const auto* opt : options(app)) {
      out << ".TP\n" << option_label(opt) << "\n";
      text_block(out, opt->get_description() +
                          (opt->get_required() && !opt->get_positional() ? " (required)" : ""));
    }
    if (!app.get_footer().empty()) {
      out << ".PP\n";
      text_block(out, app.get_footer());
    }
  }
  for (const auto* sub : subcommands(app)) {
    describe_command(out, *sub);
  }
}

constexpr std::string_view kDescription =
    "sqlpost keeps SQLite databases at many sites in step by e-mail. A message agent at each "
    "site captures row changes with triggers, ships them as authenticated, encrypted, "
    "text-encoded mail, reads its partners' mail from its own mailbox and applies it to the "
    "local replica exactly once and in order. A consolidated (head-office) database has remote "
    "sites as children; each site is one SQLite file, and the agent is run from cron, a "
    "systemd timer (sqlpost@.timer) or Task Scheduler.";

void exit_status(std::ostream& out) {
  out << ".SH \"EXIT STATUS\"\n";
  for (const auto& row : exit_code_meanings()) {
    out << ".TP\n" << bold(std::to_string(row.code)) << "\n" << roff(row.meaning);
    if (!row.action.empty()) {
      out << "; " << roff(row.action);
    }
    out << ".\n";
  }
}

void files_and_see_also(std::ostream& out) {
  out << ".SH FILES\n"
      << ".TP\n"
      << italic("DB") << bold(".sqlpost-lock") << "\n"
      << roff(
             "The lock that lets one agent at a time work on DB (flock; released when the "
             "agent exits).")
      << "\n.TP\n"
      << bold("sqlpost@.service") << ", " << bold("sqlpost@.timer") << "\n"
      << roff(
             "systemd units taking the database path as their (systemd-escaped) instance "
             "name: systemctl enable --now sqlpost@$(systemd-escape --path /srv/shop/shop.db)"
             ".timer")
      << "\n.TP\n"
      << bold("/etc/logrotate.d/sqlpost") << "\n"
      << roff("Rotation of /var/log/sqlpost/*.log (logs written by cron jobs).") << "\n"
      << ".SH \"SEE ALSO\"\n"
      << bold("sqlite3") << "(1), " << bold("systemd.timer") << "(5), " << bold("logrotate")
      << "(8); " << roff("operations.md and the other documents in /usr/share/doc/sqlpost") << "\n";
}

// ---- bash completion

std::string words_of(const CLI::App& app) {
  std::string words;
  for (const auto* sub : subcommands(app)) {
    words += (words.empty() ? "" : " ") + sub->get_name();
  }
  return words;
}

std::string option_words_of(const CLI::App& app) {
  std::string words;
  for (const auto* opt : options(app)) {
    if (!opt->get_positional()) {
      for (const auto& name : opt->get_lnames()) {
        words += (words.empty() ? "" : " ") + std::string("--") + name;
      }
      for (const auto& name : opt->get_snames()) {
        words += (words.empty() ? "" : " ") + std::string("-") + name;
      }
    }
  }
  return words.empty() ? "--help" : words + " --help";
}

void collect_commands(const CLI::App& app, std::vector<const CLI::App*>& all) {
  all.push_back(&app);
  for (const auto* sub : subcommands(app)) {
    collect_commands(*sub, all);
  }
}

}  // namespace

std::string man_page(const CLI::App& app) {
  std::ostringstream out;
  out << ".\\\" Generated by sqlpost --help-man from the command-line definition; do not edit.\n"
      << R"(.TH SQLPOST 1 "" "sqlpost )" << kVersion << R"(" "sqlpost manual")"
      << "\n"
      << ".SH NAME\nsqlpost \\- " << roff("keeps SQLite databases at many sites in step by e-mail")
      << "\n.SH SYNOPSIS\n"
      << bold("sqlpost") << " " << italic("COMMAND") << " [" << italic("arguments") << "]\n.br\n"
      << bold("sqlpost --version") << "\n.br\n"
      << bold("sqlpost") << " " << italic("COMMAND") << " " << bold("--help") << "\n"
      << ".SH DESCRIPTION\n"
      << roff(kDescription) << "\n.SH COMMANDS\n";
  describe_command(out, app);
  exit_status(out);
  files_and_see_also(out);
  return out.str();
}

std::string bash_completion(const CLI::App& app) {
  std::vector<const CLI::App*> all;
  collect_commands(app, all);
  std::ostringstream out;
  out << "# bash completion for sqlpost " << kVersion
      << "; generated by sqlpost --help-completion, do not edit.\n"
      << "_sqlpost() {\n"
      << "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path= i\n"
      << "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      << "    case \"$path/${COMP_WORDS[i]}\" in\n";
  for (const auto* cmd : all) {
    for (const auto* sub : subcommands(*cmd)) {
      out << "      \"" << command_path(*cmd) << "/" << sub->get_name() << "\") path=\""
          << command_path(*sub) << "\" ;;\n";
    }
  }
  out << "    esac\n  done\n  case \"$path/$prev\" in\n";
  for (const auto* cmd : all) {
    for (const auto* opt : options(*cmd)) {
      if (opt->get_positional() || is_flag(opt)) {
        continue;
      }
      const bool file = opt->get_type_name() == "FILE";
      for (const auto& name : opt->get_lnames()) {
        out << "    \"" << command_path(*cmd) << "/--" << name << "\") "
            << (file ? "COMPREPLY=($(compgen -f -- \"$cur\"))" : "COMPREPLY=()") << "; return ;;\n";
      }
    }
  }
  out << "  esac\n  local words= options=\n  case \"$path\" in\n";
  for (const auto* cmd : all) {
    out << "    \"" << command_path(*cmd) << "\") words=\"" << words_of(*cmd) << "\" options=\""
        << option_words_of(*cmd) << (cmd == &app ? " --version" : "") << "\" ;;\n";
  }
  out << "  esac\n"
      << "  if [[ $cur == -* ]]; then\n"
      << "    COMPREPLY=($(compgen -W \"$options\" -- \"$cur\"))\n"
      << "  elif [[ -n $words ]]; then\n"
      << "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      << "  else\n"
      << "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
      << "  fi\n"
      << "}\n"
      << "complete -o filenames -F _sqlpost sqlpost\n";
  return out.str();
}

void name_option_values(CLI::App& app) {
  static const std::map<std::string, std::string, std::less<>> kValueNames = {
      {"--address", "ADDRESS"},  {"--at", "TIMES"},    {"--columns", "COLUMNS"},
      {"--conflict", "POLICY"},  {"--days", "N"},      {"--html", "FILE"},
      {"--every", "INTERVAL"},   {"--from", "SEQ"},    {"--limit", "N"},
      {"--export", "FILE"},      {"--import", "FILE"}, {"--log", "FILE"},
      {"--metrics", "FILE"},     {"--output", "FILE"}, {"--partner", "SITE"},
      {"--secret", "KEY"},       {"--since", "TIME"},  {"--site", "SITE"},
      {"--subscribe-by", "SQL"}, {"--value", "VALUE"}, {"--where", "SQL"},
  };
  for (auto* opt : app.get_options()) {
    if (opt->get_positional()) {
      opt->type_name("");
      continue;
    }
    const std::string name = opt->get_name();
    if (is_flag(opt) || name.find_first_not_of('-') == std::string::npos) {
      continue;  // a flag, or hidden
    }
    const auto found = kValueNames.find(name);
    if (found != kValueNames.end()) {
      opt->type_name(found->second);
      continue;
    }
    std::string fallback;
    for (const char c : name.substr(name.find_first_not_of('-'))) {
      fallback += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    opt->type_name(fallback);
  }
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    name_option_values(*sub);
  }
}

}  // namespace sqlpost
