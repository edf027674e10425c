// sqlpost/replication/payload_cbor.h — the CBOR pieces of a payload, shared by the
// whole-document layout (payload.cpp, versions 1-3) and the streamed layout
// (payload_stream.cpp, version 4). Internal to replication/.
//
// Contract: parse_cbor_bounded() is the two-pass bounded decode of payload.h (a
// counting pass checks every count, size and nesting level within `limits`
// before a document is built); the *_from_json functions check shapes and
// report Errc::kCorruption (kUnsupported for an unknown version) exactly as
// decode_payload() does.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "replication/payload.h"

namespace sqlpost::payload_detail {

using json = nlohmann::json;

Error corrupt(const std::string& what);
Result<json> parse_cbor_bounded(std::span<const std::uint8_t> bytes, const DecodeLimits& limits);
Result<std::uint64_t> unsigned_field(const json& j, const char* name);

json head_to_json(const Payload& payload, std::uint32_t version);
// The header fields (v, k, a, r, h, d, p, c, x, z); `streamed`: version 4 expected.
Result<Payload> payload_head_from_json(json& doc, bool streamed);

json table_to_json(const TableBlock& t);
Result<TableBlock> table_from_json(const json& j);
json change_to_json(const WireChange& c);
Result<WireChange> change_from_json(json& j, const std::vector<TableBlock>& tables);
// A version-4 change record of op 1-3 in one pass without a document; nullopt for
// anything else (then decode it the general way, which names the problem).
std::optional<WireChange> fast_change_from_cbor(std::span<const std::uint8_t> record,
                                                const std::vector<TableBlock>& tables,
                                                std::size_t max_value_bytes);
// The same record decoded the general way (a document first): the reference the
// one-pass decoder is checked against (payload_test, fuzz-apply).
Result<WireChange> general_change_from_cbor(std::span<const std::uint8_t> record,
                                            const std::vector<TableBlock>& tables,
                                            const DecodeLimits& limits);

}  // namespace sqlpost::payload_detail
