#include "common/byte_stream.h"

#include <algorithm>

namespace sqlpost {

Result<std::size_t> SpanSource::read(std::span<std::uint8_t> out) {
  const std::size_t n = std::min(out.size(), bytes_.size());
  std::copy_n(bytes_.begin(), n, out.begin());
  bytes_ = bytes_.subspan(n);
  return n;
}

}  // namespace sqlpost
