// fuzz-decode: feeds arbitrary bytes to the hostile-mail entry points of the codec
// (looks_like_sqlpost, peek_part, open_part, reassemble) under a fixed key, and the
// same bytes to the bounded zstd decompressor.
// Build: cmake -DCMAKE_CXX_COMPILER=clang++ -DSQLPOST_FUZZ=ON; run: ./fuzz-decode corpus/
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "transport/codec.h"
#include "transport/compress.h"

namespace {

const sqlpost::transport::Key& fixed_key() {
  static const sqlpost::transport::Key key([] {
    sqlpost::transport::Key::Bytes bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7 + 1);
    return bytes;
  }());
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const std::uint8_t* data, std::size_t size) {
  using namespace sqlpost::transport;  // NOLINT(google-build-using-namespace)
  const std::string_view mail(reinterpret_cast<const char*>(data), size);
  (void)looks_like_sqlpost(mail);
  // The same bytes as a compressed payload: bounded decompression (zstd bombs).
  (void)zstd::decompress(std::span(data, size), std::size_t{1} << 20);
  auto header = peek_part(mail);
  const std::string_view receiver = header.ok() ? std::string_view(header->receiver) : "B";
  auto opened = open_part(mail, fixed_key(), receiver);
  if (opened.ok()) {
    std::vector<OpenedPart> parts;
    parts.push_back(std::move(opened).value());
    (void)reassemble(std::move(parts), std::size_t{1} << 20);
  }
  return 0;
}
