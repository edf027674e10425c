#include "replication/payload.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <optional>

#include "replication/payload_cbor.h"
#include "replication/payload_stream.h"
#include "transport/crypto.h"
#include "transport/limits.h"

namespace sqlpost {
namespace payload_detail {

using json = nlohmann::json;

// ---- encoding

json value_to_json(const Value& v) {
  struct Visit {
    json operator()(const Null&) const { return nullptr; }
    json operator()(std::int64_t i) const { return i; }
    json operator()(double d) const { return d; }
    json operator()(const Text& t) const { return t.bytes; }
    json operator()(const Blob& b) const { return json::binary(b.bytes); }
  };
  return std::visit(Visit{}, v.storage());
}

json row_to_json(const Row& row) {
  json out = json::array();
  for (const auto& v : row) {
    out.push_back(value_to_json(v));
  }
  return out;
}

json change_to_json(const WireChange& c) {
  return json::array({c.table, static_cast<int>(c.op), row_to_json(c.key), c.columns,
                      row_to_json(c.new_values), row_to_json(c.old_values)});
}

// ---- decoding: a SAX front end that bounds nesting before nlohmann recurses

class BoundedDomParser : public nlohmann::detail::json_sax_dom_parser<json> {
 public:
  // max_elements: no container can announce more elements than there are bytes.
  BoundedDomParser(json& result, std::size_t max_elements)
      : nlohmann::detail::json_sax_dom_parser<json>(result, false), max_elements_(max_elements) {}
  bool start_object(std::size_t n) {
    return enter(n) && nlohmann::detail::json_sax_dom_parser<json>::start_object(n);
  }
  bool end_object() {
    --depth_;
    return nlohmann::detail::json_sax_dom_parser<json>::end_object();
  }
  bool start_array(std::size_t n) {
    return enter(n) && nlohmann::detail::json_sax_dom_parser<json>::start_array(n);
  }
  bool end_array() {
    --depth_;
    return nlohmann::detail::json_sax_dom_parser<json>::end_array();
  }
  bool parse_error(std::size_t /*pos*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*ex*/) {
    return false;
  }
  [[nodiscard]] bool too_deep() const { return too_deep_; }

 private:
  bool enter(std::size_t announced) {
    if (++depth_ > kMaxPayloadDepth) {
      too_deep_ = true;
      return false;
    }
    // SIZE_MAX means "indefinite length"; anything else must fit in the input.
    return announced == static_cast<std::size_t>(-1) || announced <= max_elements_;
  }
  std::size_t max_elements_;
  std::size_t depth_ = 0;
  bool too_deep_ = false;
};

// ---- the counting pass: every count, length and nesting level is checked, and the
// memory the decoded message will take is estimated, before anything is built.

// Rough costs of one decoded item: the document node plus what the Payload keeps.
constexpr std::size_t kValueCost = 64;
constexpr std::size_t kContainerCost = 96;

class ShapeCheck {
 public:
  ShapeCheck(const DecodeLimits& limits, std::size_t input_bytes)
      : limits_(limits), input_bytes_(input_bytes) {}

  bool null() { return item(0); }
  bool boolean(bool /*value*/) { return item(0); }
  bool number_integer(json::number_integer_t /*value*/) { return item(0); }
  bool number_unsigned(json::number_unsigned_t /*value*/) { return item(0); }
  bool number_float(json::number_float_t /*value*/, const std::string& /*text*/) { return item(0); }
  bool string(std::string& value) { return sized(value.size()); }
  bool binary(json::binary_t& value) { return sized(value.size()); }
  bool key(std::string& name) {
    if (depth_ == 1) {
      top_key_ = name;
    }
    return sized(name.size());
  }
  bool start_object(std::size_t announced) { return enter(announced); }
  bool end_object() { return leave(); }
  // {"e": [[epoch, [change, ...]], ...]}: a change list opens at depth 3, a change at 4.
  bool start_array(std::size_t announced) {
    const bool in_epochs = top_key_ == "e";
    if (in_epochs && depth_ == 3 && announced != kIndefinite && announced > limits_.max_changes) {
      return fail(Errc::kLimitExceeded,
                  "a message declares " + std::to_string(announced) + " changes; the limit is " +
                      std::to_string(limits_.max_changes) + " (limits.max_changes)");
    }
    if (in_epochs && depth_ == 4 && ++changes_ > limits_.max_changes) {
      return fail(Errc::kLimitExceeded, "a message has more than " +
                                            std::to_string(limits_.max_changes) +
                                            " changes (limits.max_changes)");
    }
    return enter(announced);
  }
  bool end_array() { return leave(); }
  bool parse_error(std::size_t /*pos*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& ex) {
    return fail(Errc::kCorruption, std::string("not valid CBOR: ") + ex.what());
  }

  [[nodiscard]] const std::optional<Error>& failure() const { return failure_; }

 private:
  static constexpr std::size_t kIndefinite = static_cast<std::size_t>(-1);

  bool fail(Errc code, std::string why) {
    if (!failure_) {
      failure_ = Error{code, std::move(why)};
    }
    return false;
  }

  bool charge(std::size_t bytes) {
    estimate_ += bytes;
    if (estimate_ > limits_.memory_budget) {
      return fail(Errc::kLimitExceeded, "the message would take more than " +
                                            std::to_string(limits_.memory_budget) +
                                            " bytes to decode, more than its size allows (at most "
                                            "limits.max_decode_bytes; docs/security.md)");
    }
    return true;
  }

  bool item(std::size_t extra) { return charge(kValueCost + extra); }

  bool sized(std::size_t bytes) {
    if (bytes > limits_.max_value_bytes) {
      return fail(Errc::kLimitExceeded,
                  "a value of " + std::to_string(bytes) + " bytes is larger than the limit of " +
                      std::to_string(limits_.max_value_bytes) + " (limits.max_value_bytes)");
    }
    return item(bytes);
  }

  bool enter(std::size_t announced) {
    if (++depth_ > kMaxPayloadDepth) {
      return fail(Errc::kCorruption,
                  "nested deeper than " + std::to_string(kMaxPayloadDepth) + " levels");
    }
    // SIZE_MAX means "indefinite length"; anything else must fit in the input and
    // in the budget before a single element is read.
    if (announced != kIndefinite &&
        (announced > input_bytes_ || announced > limits_.memory_budget / kValueCost)) {
      return fail(Errc::kLimitExceeded, "a list declares " + std::to_string(announced) +
                                            " elements, more than the message can hold");
    }
    return charge(kContainerCost);
  }

  bool leave() {
    --depth_;
    return true;
  }

  const DecodeLimits& limits_;
  std::size_t input_bytes_;
  std::size_t depth_ = 0;
  std::size_t estimate_ = 0;
  std::size_t changes_ = 0;
  std::string top_key_;
  std::optional<Error> failure_;
};

Error corrupt(const std::string& what) {
  return make_error(Errc::kCorruption, "malformed message payload: " + what);
}

// Values are moved out of the parsed document (it is discarded afterwards).
Result<Value> value_from_json(json& j) {
  switch (j.type()) {
    case json::value_t::null: return Value();
    case json::value_t::number_integer: return Value(j.get<std::int64_t>());
    case json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX)) {
        return corrupt("integer beyond 64-bit signed range");
      }
      return Value(static_cast<std::int64_t>(u));
    }
    case json::value_t::number_float: return Value(j.get<double>());
    case json::value_t::string: return Value(Text{std::move(j.get_ref<std::string&>())});
    case json::value_t::binary: return Value(Blob{std::move(j.get_binary())});
    default: return corrupt("a value is not null, integer, real, text or blob");
  }
}

Result<Row> row_from_json(json& j, std::size_t max_size) {
  if (!j.is_array() || j.size() > max_size) {
    return corrupt("a row image is not an array of at most " + std::to_string(max_size) +
                   " values");
  }
  Row row;
  row.reserve(j.size());
  for (auto& v : j) {
    SQLPOST_TRY_ASSIGN(Value value, value_from_json(v));
    row.push_back(std::move(value));
  }
  return row;
}

Result<std::uint64_t> unsigned_field(const json& j, const char* name) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<std::int64_t>() >= 0)) {
    return corrupt(std::string("field '") + name + "' is not a non-negative integer");
  }
  return j.get<std::uint64_t>();
}

Result<TableBlock> table_from_json(const json& j) {
  if (!j.is_array() || j.size() != 3 || !j[0].is_string() || !j[1].is_array() ||
      j[1].size() > kMaxPayloadColumns || j[1].empty()) {
    return corrupt("a table entry is not [name, [columns], key_count]");
  }
  TableBlock t;
  t.table = j[0].get<std::string>();
  for (const auto& c : j[1]) {
    if (!c.is_string()) {
      return corrupt("a column name is not text");
    }
    t.columns.push_back(c.get<std::string>());
  }
  SQLPOST_TRY_ASSIGN(const std::uint64_t keys, unsigned_field(j[2], "key_count"));
  if (keys == 0 || keys > t.columns.size()) {
    return corrupt("table '" + t.table + "' has an impossible key column count");
  }
  t.key_count = keys;
  return t;
}

Result<> check_change_shape(const WireChange& c, const TableBlock& t) {
  if (c.key.size() != t.key_count) {
    return corrupt("a change's key has the wrong number of values for '" + t.table + "'");
  }
  for (const auto index : c.columns) {
    if (index < t.key_count || index >= t.columns.size()) {
      return corrupt("a change names a column index outside table '" + t.table + "'");
    }
  }
  const bool has_new = c.op != ChangeOp::kDelete;
  const bool has_old = c.op != ChangeOp::kInsert;
  if ((has_new ? c.columns.size() : 0) != c.new_values.size() ||
      (has_old ? c.columns.size() : 0) != c.old_values.size()) {
    return corrupt("a change's value count does not match its column list");
  }
  return success();
}

// [0, 4, [sql], [], [target or null], []]
Result<WireChange> passthrough_from_json(json& j) {
  WireChange c;
  c.op = ChangeOp::kPassthrough;
  SQLPOST_TRY_ASSIGN(c.key, row_from_json(j[2], 1));
  SQLPOST_TRY_ASSIGN(c.new_values, row_from_json(j[4], 1));
  const auto is_text = [](const Value& v) { return std::holds_alternative<Text>(v.storage()); };
  if (c.key.size() != 1 || !is_text(c.key[0]) || c.new_values.size() != 1 ||
      !(c.new_values[0].is_null() || is_text(c.new_values[0])) || !j[3].empty() || !j[5].empty()) {
    return corrupt("a passthrough is not [0, 4, [sql], [], [site or null], []]");
  }
  if (std::get<Text>(c.key[0].storage()).bytes.size() > kMaxPassthroughBytes) {
    return make_error(Errc::kLimitExceeded, "a passthrough statement is longer than " +
                                                std::to_string(kMaxPassthroughBytes) + " bytes");
  }
  return c;
}

bool is_bounded_text(const Value& v, std::size_t max_bytes) {
  const auto* text = std::get_if<Text>(&v.storage());
  return text != nullptr && !text->bytes.empty() && text->bytes.size() <= max_bytes;
}

// [0, 5, [publication, table, definition], [], [target or null], []] or
// [0, 6, [publication, table], [], [target or null], []]
Result<WireChange> article_record_from_json(json& j, ChangeOp op) {
  WireChange c;
  c.op = op;
  const std::size_t fields = op == ChangeOp::kArticleAdded ? 3 : 2;
  SQLPOST_TRY_ASSIGN(c.key, row_from_json(j[2], fields));
  SQLPOST_TRY_ASSIGN(c.new_values, row_from_json(j[4], 1));
  const bool target_ok =
      c.new_values.size() == 1 &&
      (c.new_values[0].is_null() || is_bounded_text(c.new_values[0], kMaxArticleNameBytes));
  if (c.key.size() != fields || !is_bounded_text(c.key[0], kMaxArticleNameBytes) ||
      !is_bounded_text(c.key[1], kMaxArticleNameBytes) || !target_ok || !j[3].empty() ||
      !j[5].empty()) {
    return corrupt("an article record is not [0, " + std::to_string(static_cast<int>(op)) +
                   ", [publication, table" + (fields == 3 ? ", definition" : "") +
                   "], [], [site or null], []]");
  }
  if (fields == 3 && !is_bounded_text(c.key[2], kMaxArticleDefinitionBytes)) {
    return make_error(Errc::kLimitExceeded, "an article definition is empty or longer than " +
                                                std::to_string(kMaxArticleDefinitionBytes) +
                                                " bytes");
  }
  return c;
}

Result<WireChange> change_from_json(json& j, const std::vector<TableBlock>& tables) {
  if (!j.is_array() || j.size() != 6 || !j[3].is_array() || j[3].size() > kMaxPayloadColumns) {
    return corrupt("a change is not [table, op, key, columns, new, old]");
  }
  WireChange c;
  SQLPOST_TRY_ASSIGN(const std::uint64_t op_number, unsigned_field(j[1], "op"));
  if (op_number == static_cast<std::uint64_t>(ChangeOp::kPassthrough)) {
    return passthrough_from_json(j);
  }
  if (op_number == static_cast<std::uint64_t>(ChangeOp::kArticleAdded) ||
      op_number == static_cast<std::uint64_t>(ChangeOp::kArticleRemoved)) {
    return article_record_from_json(j, static_cast<ChangeOp>(op_number));
  }
  SQLPOST_TRY_ASSIGN(const std::uint64_t table, unsigned_field(j[0], "table"));
  if (table >= tables.size()) {
    return corrupt("a change names table index " + std::to_string(table) + " of " +
                   std::to_string(tables.size()));
  }
  c.table = static_cast<std::uint32_t>(table);
  SQLPOST_TRY_ASSIGN(const std::uint64_t op, unsigned_field(j[1], "op"));
  if (op < 1 || op > 3) {
    return corrupt("unknown change operation " + std::to_string(op));
  }
  c.op = static_cast<ChangeOp>(op);
  SQLPOST_TRY_ASSIGN(c.key, row_from_json(j[2], kMaxPayloadColumns));
  for (const auto& index : j[3]) {
    SQLPOST_TRY_ASSIGN(const std::uint64_t i, unsigned_field(index, "column"));
    c.columns.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(i, UINT32_MAX)));
  }
  SQLPOST_TRY_ASSIGN(c.new_values, row_from_json(j[4], kMaxPayloadColumns));
  SQLPOST_TRY_ASSIGN(c.old_values, row_from_json(j[5], kMaxPayloadColumns));
  SQLPOST_TRY(check_change_shape(c, tables[c.table]));
  return c;
}

Result<EpochBlock> epoch_from_json(json& j, const std::vector<TableBlock>& tables,
                                   std::size_t& budget, std::size_t max_changes) {
  if (!j.is_array() || j.size() != 2 || !j[0].is_number_integer() || !j[1].is_array()) {
    return corrupt("an epoch is not [number, [changes]]");
  }
  EpochBlock e;
  e.epoch = j[0].get<std::int64_t>();
  if (j[1].size() > budget) {
    return make_error(Errc::kLimitExceeded,
                      "message payload has more than " + std::to_string(max_changes) + " changes");
  }
  budget -= j[1].size();
  e.changes.reserve(j[1].size());
  for (auto& c : j[1]) {
    SQLPOST_TRY_ASSIGN(WireChange change, change_from_json(c, tables));
    e.changes.push_back(std::move(change));
  }
  return e;
}

json health_to_json(const SiteHealth& h) {
  json halted = json::array();
  for (const auto& [partner, why] : h.halted) {
    halted.push_back(json::array({partner, why}));
  }
  return json::array({h.site, h.via, h.version, h.reported_at, h.conflicts, h.rejected,
                      h.outbox_oldest, std::move(halted)});
}

Result<std::string> health_text(const json& j) {
  if (!j.is_string() || j.get_ref<const std::string&>().size() > kMaxHealthText) {
    return corrupt("a health record's text field is not a string within limits");
  }
  return j.get<std::string>();
}

Result<std::int64_t> health_number(const json& j) {
  if (!j.is_number_integer()) {
    return corrupt("a health record's number is not an integer");
  }
  return j.get<std::int64_t>();
}

Result<SiteHealth> health_from_json(const json& j) {
  if (!j.is_array() || j.size() != 8 || !j[7].is_array() || j[7].size() > kMaxHealthHalted) {
    return corrupt("a health record is not [site, via, version, 4 numbers, halted]");
  }
  SiteHealth h;
  SQLPOST_TRY_ASSIGN(h.site, health_text(j[0]));
  SQLPOST_TRY_ASSIGN(h.via, health_text(j[1]));
  SQLPOST_TRY_ASSIGN(h.version, health_text(j[2]));
  SQLPOST_TRY_ASSIGN(h.reported_at, health_number(j[3]));
  SQLPOST_TRY_ASSIGN(h.conflicts, health_number(j[4]));
  SQLPOST_TRY_ASSIGN(h.rejected, health_number(j[5]));
  SQLPOST_TRY_ASSIGN(h.outbox_oldest, health_number(j[6]));
  for (const auto& entry : j[7]) {
    if (!entry.is_array() || entry.size() != 2) {
      return corrupt("a health record's stopped stream is not [partner, why]");
    }
    SQLPOST_TRY_ASSIGN(std::string partner, health_text(entry[0]));
    SQLPOST_TRY_ASSIGN(std::string why, health_text(entry[1]));
    h.halted.emplace_back(std::move(partner), std::move(why));
  }
  return h;
}

Result<std::vector<SiteHealth>> health_list_from_json(const json& doc) {
  std::vector<SiteHealth> out;
  if (!doc.contains("h")) {
    return out;
  }
  const json& list = doc["h"];
  if (!list.is_array() || list.size() > kMaxHealthRecords) {
    return corrupt("health records are not a list within limits");
  }
  for (const auto& record : list) {
    SQLPOST_TRY_ASSIGN(SiteHealth h, health_from_json(record));
    out.push_back(std::move(h));
  }
  return out;
}

Result<std::vector<std::uint8_t>> optional_digest(const json& doc, const char* name) {
  if (!doc.contains(name)) {
    return std::vector<std::uint8_t>{};
  }
  const json& j = doc[name];
  if (!j.is_binary() || j.get_binary().size() != kMessageDigestBytes) {
    return corrupt(std::string("field '") + name + "' is not a message digest");
  }
  return std::vector<std::uint8_t>(j.get_binary().begin(), j.get_binary().end());
}

Result<std::uint64_t> optional_sequence(const json& doc, const char* name) {
  if (!doc.contains(name)) {
    return std::uint64_t{0};
  }
  SQLPOST_TRY_ASSIGN(const std::uint64_t n, unsigned_field(doc[name], name));
  if (n > static_cast<std::uint64_t>(INT64_MAX)) {
    return corrupt(std::string("field '") + name + "' is beyond the 64-bit signed range");
  }
  return n;
}

// "d", "p", "c", "x", "z": absent in messages of older senders (docs/format.md).
Result<> read_restore_fields(const json& doc, Payload& p) {
  SQLPOST_TRY_ASSIGN(p.ack_digest, optional_digest(doc, "d"));
  SQLPOST_TRY_ASSIGN(p.prev_digest, optional_digest(doc, "p"));
  SQLPOST_TRY_ASSIGN(p.confirmed, optional_sequence(doc, "c"));
  SQLPOST_TRY_ASSIGN(p.restored_from, optional_sequence(doc, "x"));
  SQLPOST_TRY_ASSIGN(const std::uint64_t reextract, optional_sequence(doc, "z"));
  if (reextract > 1) {
    return corrupt("field 'z' is not 0 or 1");
  }
  p.reextract = reextract == 1;
  return success();
}

Result<std::vector<std::uint8_t>> rekey_bytes(const json& j, std::size_t size) {
  if (!j.is_binary() || j.get_binary().size() != size) {
    return corrupt("a key-rotation record's key field has the wrong size");
  }
  return std::vector<std::uint8_t>(j.get_binary().begin(), j.get_binary().end());
}

// "y": [step, sender, receiver, key, replaces]; absent in most messages.
Result<std::optional<RekeyRecord>> rekey_from_json(const json& doc) {
  if (!doc.contains("y")) {
    return std::optional<RekeyRecord>{};
  }
  const json& j = doc["y"];
  if (!j.is_array() || j.size() != 5 || !j[1].is_string() || !j[2].is_string() ||
      j[1].get_ref<const std::string&>().size() > kMaxArticleNameBytes ||
      j[2].get_ref<const std::string&>().size() > kMaxArticleNameBytes) {
    return corrupt("a key-rotation record is not [step, sender, receiver, key, replaces]");
  }
  SQLPOST_TRY_ASSIGN(const std::uint64_t step, unsigned_field(j[0], "y"));
  RekeyRecord r;
  r.sender = j[1].get<std::string>();
  r.receiver = j[2].get<std::string>();
  if (step == static_cast<std::uint64_t>(RekeyStep::kOffer)) {
    r.step = RekeyStep::kOffer;
    SQLPOST_TRY_ASSIGN(r.key, rekey_bytes(j[3], 32));
    SQLPOST_TRY_ASSIGN(r.replaces, rekey_bytes(j[4], kKeyIdBytes));
  } else if (step == static_cast<std::uint64_t>(RekeyStep::kSwitched)) {
    r.step = RekeyStep::kSwitched;
    SQLPOST_TRY(rekey_bytes(j[3], 0));
    SQLPOST_TRY_ASSIGN(r.replaces, rekey_bytes(j[4], kKeyIdBytes));
  } else {
    return corrupt("unknown key-rotation step " + std::to_string(step));
  }
  return std::optional<RekeyRecord>{std::move(r)};
}

Result<Payload> payload_head_from_json(json& doc, bool streamed) {
  if (!doc.is_object()) {
    return corrupt("not a map");
  }
  for (const char* key : {"v", "k", "a", "r"}) {
    if (!doc.contains(key)) {
      return corrupt(std::string("field '") + key + "' is missing");
    }
  }
  SQLPOST_TRY_ASSIGN(const std::uint64_t version, unsigned_field(doc["v"], "v"));
  if (version < kPayloadVersion || version > kPayloadVersionStreamed) {
    return make_error(Errc::kUnsupported, "message payload version " + std::to_string(version) +
                                              " is not supported (this sqlpost reads " +
                                              std::to_string(kPayloadVersion) + " to " +
                                              std::to_string(kPayloadVersionStreamed) + ")");
  }
  if ((version == kPayloadVersionStreamed) != streamed) {
    return corrupt("payload version " + std::to_string(version) + " in the wrong layout");
  }
  SQLPOST_TRY_ASSIGN(const std::uint64_t kind, unsigned_field(doc["k"], "k"));
  if (kind > 1) {
    return corrupt("unknown message kind " + std::to_string(kind));
  }
  Payload p;
  p.kind = kind == 0 ? PayloadKind::kData : PayloadKind::kAckOnly;
  SQLPOST_TRY_ASSIGN(p.ack, unsigned_field(doc["a"], "a"));
  SQLPOST_TRY_ASSIGN(p.resend_from, unsigned_field(doc["r"], "r"));
  // Sequence numbers are SQLite integers: beyond INT64_MAX they would wrap negative.
  constexpr auto kMaxSequence = static_cast<std::uint64_t>(INT64_MAX);
  if (p.ack > kMaxSequence || p.resend_from > kMaxSequence) {
    return corrupt("acknowledgement or resend request beyond the 64-bit signed range");
  }
  SQLPOST_TRY(read_restore_fields(doc, p));
  SQLPOST_TRY_ASSIGN(p.health, health_list_from_json(doc));
  SQLPOST_TRY_ASSIGN(p.rekey, rekey_from_json(doc));
  return p;
}

Result<std::vector<TableBlock>> tables_from_json(const json& list) {
  if (!list.is_array() || list.size() > kMaxPayloadTables) {
    return corrupt("tables are not a list within limits");
  }
  std::vector<TableBlock> tables;
  for (const auto& t : list) {
    SQLPOST_TRY_ASSIGN(TableBlock table, table_from_json(t));
    tables.push_back(std::move(table));
  }
  return tables;
}

Result<Payload> payload_from_json(json& doc, std::size_t max_changes) {
  for (const char* key : {"t", "e"}) {
    if (!doc.is_object() || !doc.contains(key)) {
      return corrupt(std::string("field '") + key + "' is missing");
    }
  }
  SQLPOST_TRY_ASSIGN(Payload p, payload_head_from_json(doc, false));
  SQLPOST_TRY_ASSIGN(p.tables, tables_from_json(doc["t"]));
  if (!doc["e"].is_array()) {
    return corrupt("epochs are not a list");
  }
  std::size_t budget = max_changes;
  for (auto& e : doc["e"]) {
    SQLPOST_TRY_ASSIGN(EpochBlock epoch, epoch_from_json(e, p.tables, budget, max_changes));
    p.epochs.push_back(std::move(epoch));
  }
  return p;
}

}  // namespace payload_detail

bool Payload::has_passthrough() const {
  for (const auto& e : epochs) {
    for (const auto& c : e.changes) {
      if (c.op == ChangeOp::kPassthrough) {
        return true;
      }
    }
  }
  return false;
}

bool Payload::has_article_records() const {
  for (const auto& e : epochs) {
    for (const auto& c : e.changes) {
      if (c.op == ChangeOp::kArticleAdded || c.op == ChangeOp::kArticleRemoved) {
        return true;
      }
    }
  }
  return false;
}

std::uint32_t payload_document_version(const Payload& payload) {
  if (payload.has_article_records()) {
    return kPayloadVersionWithArticles;
  }
  return payload.has_passthrough() ? kPayloadVersionWithPassthrough : kPayloadVersion;
}

std::size_t Payload::change_count() const {
  std::size_t n = 0;
  for (const auto& e : epochs) {
    n += e.changes.size();
  }
  return n;
}

namespace payload_detail {

void write_restore_fields(const Payload& payload, json& doc) {
  if (!payload.ack_digest.empty()) {
    doc["d"] = json::binary(payload.ack_digest);
  }
  if (!payload.prev_digest.empty()) {
    doc["p"] = json::binary(payload.prev_digest);
  }
  if (payload.confirmed > 0) {
    doc["c"] = payload.confirmed;
  }
  if (payload.restored_from > 0) {
    doc["x"] = payload.restored_from;
  }
  if (payload.reextract) {
    doc["z"] = 1;
  }
}

}  // namespace payload_detail

namespace payload_detail {

json head_to_json(const Payload& payload, std::uint32_t version) {
  json doc = {{"v", version},
              {"k", payload.kind == PayloadKind::kData ? 0 : 1},
              {"a", payload.ack},
              {"r", payload.resend_from}};
  if (!payload.health.empty()) {
    json health = json::array();
    for (const auto& h : payload.health) {
      health.push_back(health_to_json(h));
    }
    doc["h"] = std::move(health);
  }
  write_restore_fields(payload, doc);
  if (payload.rekey) {
    const RekeyRecord& r = *payload.rekey;
    doc["y"] = json::array({static_cast<std::uint64_t>(r.step), r.sender, r.receiver,
                            json::binary(r.key), json::binary(r.replaces)});
  }
  return doc;
}

json table_to_json(const TableBlock& t) { return json::array({t.table, t.columns, t.key_count}); }

}  // namespace payload_detail

std::vector<std::uint8_t> encode_payload_document(const Payload& payload) {
  using namespace payload_detail;  // NOLINT(google-build-using-namespace)
  json tables = json::array();
  for (const auto& t : payload.tables) {
    tables.push_back(table_to_json(t));
  }
  json epochs = json::array();
  for (const auto& e : payload.epochs) {
    json changes = json::array();
    for (const auto& c : e.changes) {
      changes.push_back(change_to_json(c));
    }
    epochs.push_back(json::array({e.epoch, std::move(changes)}));
  }
  json doc = head_to_json(payload, payload_document_version(payload));
  doc["t"] = std::move(tables);
  doc["e"] = std::move(epochs);
  return json::to_cbor(doc);
}

std::vector<std::uint8_t> message_identity(std::span<const std::uint8_t> encoded) {
  const auto digest = transport::crypto::sha256(encoded);
  return {digest.begin(), digest.begin() + kMessageDigestBytes};
}

std::size_t decode_budget(std::size_t compressed_bytes, std::size_t max_decode_bytes) {
  const std::size_t relative = compressed_bytes > max_decode_bytes / kMaxDecodeExpansion
                                   ? max_decode_bytes
                                   : compressed_bytes * kMaxDecodeExpansion;
  return std::min(max_decode_bytes, std::max(kDecodeFloorBytes, relative));
}

namespace payload_detail {

// nlohmann's CBOR reader recurses once per nested chunk of an indefinite-length
// string, without telling the SAX handler, so a few kilobytes of 0x5F bytes overflow
// the stack (found by fuzz-apply). sqlpost never writes indefinite-length strings:
// one flat walk over the item heads (no recursion, no allocation) refuses them before
// nlohmann sees the bytes. A truncated item is left for the parser to report.
Result<> refuse_indefinite_strings(std::span<const std::uint8_t> bytes) {
  constexpr std::array<std::size_t, 4> kArgumentBytes = {1, 2, 4, 8};  // info 24..27
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::uint8_t major = bytes[pos] >> 5;
    const std::uint8_t info = bytes[pos] & 0x1f;
    ++pos;
    if ((major == 2 || major == 3) && info == 31) {
      return corrupt("an indefinite-length string (sqlpost never writes one)");
    }
    std::uint64_t argument = info;
    if (info >= 24 && info <= 27) {
      const std::size_t n = kArgumentBytes.at(info - 24);
      if (bytes.size() - pos < n) {
        return success();
      }
      argument = 0;
      for (std::size_t i = 0; i < n; ++i) {
        argument = (argument << 8) | bytes[pos + i];
      }
      pos += n;
    }
    if (major == 2 || major == 3) {  // a definite string: skip its content
      if (argument > bytes.size() - pos) {
        return success();
      }
      pos += static_cast<std::size_t>(argument);
    }
  }
  return success();
}

}  // namespace payload_detail

namespace payload_detail {

// ---- the common record in one pass: a version-4 change record of op 1-3
// ([2, table, op, [key], [columns], [new], [old]]) decoded by SAX events straight
// into a WireChange, without a document. Anything else it meets (another record
// kind, op 4-6, a value over the limit, any shape or CBOR error) makes it give up,
// and the record is decoded the general way, which names the exact problem.

class ChangeRecordSax {
 public:
  ChangeRecordSax(WireChange& out, std::size_t max_value_bytes)
      : out_(out), max_value_bytes_(max_value_bytes) {}

  bool null() { return value(Value()); }
  bool boolean(bool /*value*/) { return false; }
  bool number_integer(json::number_integer_t v) {
    return depth_ == 2 && field_ != kColumns && value(Value(static_cast<std::int64_t>(v)));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    return depth_ == 1 ? head_field(v) : list_number(v);
  }
  bool number_float(json::number_float_t v, const std::string& /*text*/) { return value(Value(v)); }
  bool string(std::string& v) {
    return v.size() <= max_value_bytes_ && value(Value(Text{std::move(v)}));
  }
  bool binary(json::binary_t& v) {
    return v.size() <= max_value_bytes_ &&
           value(Value(Blob{std::move(static_cast<std::vector<std::uint8_t>&>(v))}));
  }
  bool start_object(std::size_t /*n*/) { return false; }
  bool key(std::string& /*name*/) { return false; }
  bool end_object() { return false; }
  bool start_array(std::size_t n) {
    if (depth_ == 0) {
      depth_ = 1;
      return n == kFields;
    }
    if (depth_ != 1 || field_ < kKey || n > kMaxPayloadColumns) {
      return false;
    }
    depth_ = 2;
    if (field_ == kColumns) {
      out_.columns.reserve(n);
    } else {
      row().reserve(n);
    }
    return true;
  }
  bool end_array() {
    --depth_;
    ++field_;
    complete_ = depth_ == 0 && field_ == kFields + 1;
    return true;
  }
  bool parse_error(std::size_t /*pos*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*ex*/) {
    return false;
  }
  [[nodiscard]] bool complete() const { return complete_; }

 private:
  static constexpr std::size_t kFields = 7;  // type, table, op, key, columns, new, old
  static constexpr std::size_t kKey = 3;
  static constexpr std::size_t kColumns = 4;

  bool head_field(std::uint64_t v) {
    switch (field_++) {
      case 0: return v == 2;  // a change record
      case 1:
        out_.table = static_cast<std::uint32_t>(std::min<std::uint64_t>(v, UINT32_MAX));
        return true;
      case 2: out_.op = static_cast<ChangeOp>(v); return v >= 1 && v <= 3;
      default: return false;
    }
  }
  bool list_number(std::uint64_t v) {
    if (depth_ != 2) {
      return false;
    }
    if (field_ == kColumns) {
      out_.columns.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(v, UINT32_MAX)));
      return true;
    }
    return v <= static_cast<std::uint64_t>(INT64_MAX) && value(Value(static_cast<std::int64_t>(v)));
  }
  Row& row() {
    switch (field_) {
      case kKey: return out_.key;
      case kColumns + 1: return out_.new_values;
      default: return out_.old_values;
    }
  }
  bool value(Value v) {
    if (depth_ != 2 || field_ == kColumns) {
      return false;
    }
    row().push_back(std::move(v));
    return true;
  }

  WireChange& out_;
  std::size_t max_value_bytes_;
  std::size_t depth_ = 0;
  std::size_t field_ = 0;  // of the record's list, at depth 1
  bool complete_ = false;
};

std::optional<WireChange> fast_change_from_cbor(std::span<const std::uint8_t> record,
                                                const std::vector<TableBlock>& tables,
                                                std::size_t max_value_bytes) {
  if (record.size() < 2 || record[0] != 0x87 || record[1] != 0x02 ||
      !refuse_indefinite_strings(record).ok()) {
    return std::nullopt;
  }
  WireChange c;
  ChangeRecordSax sax(c, max_value_bytes);
  try {
    if (!json::sax_parse(record.begin(), record.end(), &sax, nlohmann::detail::input_format_t::cbor,
                         true) ||
        !sax.complete()) {
      return std::nullopt;
    }
  } catch (const json::exception&) {
    return std::nullopt;
  }
  if (c.table >= tables.size() || !check_change_shape(c, tables[c.table]).ok()) {
    return std::nullopt;
  }
  return c;
}

Result<WireChange> general_change_from_cbor(std::span<const std::uint8_t> record,
                                            const std::vector<TableBlock>& tables,
                                            const DecodeLimits& limits) {
  SQLPOST_TRY_ASSIGN(json item, parse_cbor_bounded(record, limits));
  try {
    if (!item.is_array() || item.empty() || item[0] != 2) {
      return corrupt("not a change record");
    }
    item.erase(0);
    return change_from_json(item, tables);
  } catch (const json::exception& e) {
    return corrupt(e.what());
  }
}

Result<json> parse_cbor_bounded(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  SQLPOST_TRY(refuse_indefinite_strings(bytes));
  // Pass 1: count and measure, build nothing.
  ShapeCheck shape(limits, bytes.size());
  try {
    const bool valid = json::sax_parse(bytes.begin(), bytes.end(), &shape,
                                       nlohmann::detail::input_format_t::cbor, true);
    if (!valid || shape.failure()) {
      const Error e = shape.failure().value_or(Error{Errc::kCorruption, "not valid CBOR"});
      return e.code == Errc::kCorruption ? corrupt(e.message) : e;
    }
  } catch (const json::exception& e) {  // nlohmann reports some limits by throwing
    return corrupt(std::string("not valid CBOR: ") + e.what());
  }
  // Pass 2: the document, now known to be within every limit.
  json doc;
  BoundedDomParser parser(doc, bytes.size());
  bool parsed = false;
  try {
    parsed = json::sax_parse(bytes.begin(), bytes.end(), &parser,
                             nlohmann::detail::input_format_t::cbor, true);
  } catch (const json::exception& e) {
    return corrupt(std::string("not valid CBOR: ") + e.what());
  }
  if (parser.too_deep()) {
    return corrupt("nested deeper than " + std::to_string(kMaxPayloadDepth) + " levels");
  }
  if (!parsed || parser.is_errored()) {
    return corrupt("not valid CBOR");
  }
  return doc;
}

}  // namespace payload_detail

Result<Payload> decode_payload_document(std::span<const std::uint8_t> bytes,
                                        const DecodeLimits& limits) {
  using namespace payload_detail;  // NOLINT(google-build-using-namespace)
  SQLPOST_TRY_ASSIGN(json doc, parse_cbor_bounded(bytes, limits));
  try {
    return payload_from_json(doc, limits.max_changes);
  } catch (const json::exception& e) {
    return corrupt(e.what());
  }
}

bool is_streamed_payload(std::span<const std::uint8_t> bytes) {
  return !bytes.empty() && (bytes.front() >> 5) == 2;  // a CBOR byte string: a record
}

std::vector<std::uint8_t> encode_payload(const Payload& payload) {
  std::vector<std::uint8_t> out = encode_head(payload);
  BodyWriter body([&](std::span<const std::uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
    return success();
  });
  for (const auto& t : payload.tables) {
    body.table(t);
  }
  for (const auto& e : payload.epochs) {
    for (const auto& c : e.changes) {
      body.change(e.epoch, c);
    }
  }
  (void)body.finish();  // the sink above cannot fail
  const auto end = encode_end(body.changes());
  out.insert(out.end(), end.begin(), end.end());
  return out;
}

Result<Payload> decode_payload(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  if (is_streamed_payload(bytes)) {
    return decode_streamed_payload(bytes, limits);
  }
  return decode_payload_document(bytes, limits);
}

}  // namespace sqlpost
