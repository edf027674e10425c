#include "transport/compress.h"

#include <zstd.h>

#include <algorithm>
#include <memory>

namespace sqlpost::transport::zstd {
namespace {

struct CCtxFree {
  void operator()(ZSTD_CCtx* ctx) const { ZSTD_freeCCtx(ctx); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};
using CCtx = std::unique_ptr<ZSTD_CCtx, CCtxFree>;
using DCtx = std::unique_ptr<ZSTD_DCtx, DCtxFree>;

constexpr std::size_t kInitialOutput = std::size_t{64} << 10;
// Bounds decoder memory at 16 MiB; compress() (level 3, and any level up to 19)
// never needs a larger window.
constexpr int kWindowLogMax = 24;

Error zstd_error(Errc code, const char* what, std::size_t rc) {
  return make_error(code, std::string(what) + ": " + ZSTD_getErrorName(rc));
}

// Rejects early when the frame header declares a size above the limit.
Result<> check_declared_size(std::span<const std::uint8_t> input, std::size_t max_output) {
  const unsigned long long declared = ZSTD_getFrameContentSize(input.data(), input.size());
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR &&
      declared > max_output) {
    return make_error(Errc::kLimitExceeded,
                      "compressed payload declares " + std::to_string(declared) +
                          " bytes, above the limit of " + std::to_string(max_output));
  }
  return success();
}

// Grows `out` towards the hard cap max_output + 1 (one byte more detects overflow).
Result<> grow(std::vector<std::uint8_t>& out, std::size_t max_output) {
  const std::size_t cap = max_output + 1;
  if (out.size() >= cap) {
    return make_error(Errc::kLimitExceeded, "decompressed payload exceeds the limit of " +
                                                std::to_string(max_output) + " bytes");
  }
  out.resize(std::min(cap, std::max(kInitialOutput, out.size() * 2)));
  return success();
}

}  // namespace

Result<std::vector<std::uint8_t>> compress(std::span<const std::uint8_t> input, int level) {
  CCtx ctx(ZSTD_createCCtx());
  if (!ctx) return make_error(Errc::kInternal, "ZSTD_createCCtx failed");
  std::vector<std::uint8_t> out(ZSTD_compressBound(input.size()));
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_compressionLevel, level);
  const std::size_t rc =
      ZSTD_compress2(ctx.get(), out.data(), out.size(), input.data(), input.size());
  if (ZSTD_isError(rc) != 0U) return zstd_error(Errc::kInternal, "zstd compression", rc);
  out.resize(rc);
  return out;
}

Result<std::vector<std::uint8_t>> decompress(std::span<const std::uint8_t> input,
                                             std::size_t max_output) {
  SQLPOST_TRY(check_declared_size(input, max_output));
  DCtx ctx(ZSTD_createDCtx());
  if (!ctx) return make_error(Errc::kInternal, "ZSTD_createDCtx failed");
  ZSTD_DCtx_setParameter(ctx.get(), ZSTD_d_windowLogMax, kWindowLogMax);
  std::vector<std::uint8_t> out;
  // A declared size (checked above) is allocated once: no doubling, no copy.
  const unsigned long long declared = ZSTD_getFrameContentSize(input.data(), input.size());
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR) {
    out.resize(static_cast<std::size_t>(declared) + 1);
  }
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  ZSTD_outBuffer dst{out.data(), out.size(), 0};
  for (;;) {
    if (dst.pos == dst.size) {
      SQLPOST_TRY(grow(out, max_output));
      dst = ZSTD_outBuffer{out.data(), out.size(), dst.pos};
    }
    const std::size_t rc = ZSTD_decompressStream(ctx.get(), &dst, &in);
    if (ZSTD_isError(rc) != 0U) return zstd_error(Errc::kCorruption, "zstd decompression", rc);
    if (rc == 0 && in.pos == in.size) break;
    if (in.pos == in.size && dst.pos < dst.size) {
      return make_error(Errc::kCorruption, "compressed payload is truncated");
    }
  }
  if (dst.pos > max_output) {
    return make_error(Errc::kLimitExceeded, "decompressed payload exceeds the limit of " +
                                                std::to_string(max_output) + " bytes");
  }
  out.resize(dst.pos);
  return out;
}

namespace {

// One compression context kept per thread between messages: a fresh context
// allocates and clears its tables (about 1 MiB at level 3) on its first frame,
// which a hub preparing a message for each of 1,000 partners paid 2,000 times a
// pass (bench-hub). A reset context keeps its tables.
CCtx& spare_cctx() {
  thread_local CCtx spare;
  return spare;
}

}  // namespace

void Compressor::CtxFree::operator()(ZSTD_CCtx_s* ctx) const {
  CCtx& spare = spare_cctx();
  if (!spare && ZSTD_isError(ZSTD_CCtx_reset(ctx, ZSTD_reset_session_and_parameters)) == 0U) {
    spare.reset(ctx);
  } else {
    ZSTD_freeCCtx(ctx);
  }
}
void Decompressor::CtxFree::operator()(ZSTD_DCtx_s* ctx) const { ZSTD_freeDCtx(ctx); }

Compressor::Compressor(std::unique_ptr<ZSTD_CCtx_s, CtxFree> ctx, ByteSink sink)
    : ctx_(std::move(ctx)),
      sink_(std::move(sink)),
      out_size_(ZSTD_CStreamOutSize()),
      out_(std::make_unique_for_overwrite<std::uint8_t[]>(  // NOLINT(modernize-avoid-c-arrays)
          out_size_)) {}

Result<Compressor> Compressor::create(ByteSink sink, int level) {
  std::unique_ptr<ZSTD_CCtx_s, CtxFree> ctx(spare_cctx() ? spare_cctx().release()
                                                         : ZSTD_createCCtx());
  if (!ctx) return make_error(Errc::kInternal, "ZSTD_createCCtx failed");
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_compressionLevel, level);
  return Compressor(std::move(ctx), std::move(sink));
}

Result<> Compressor::run(std::span<const std::uint8_t> input, bool end) {
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  const ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
  for (;;) {
    ZSTD_outBuffer out{out_.get(), out_size_, 0};
    const std::size_t rc = ZSTD_compressStream2(ctx_.get(), &out, &in, mode);
    if (ZSTD_isError(rc) != 0U) return zstd_error(Errc::kInternal, "zstd compression", rc);
    if (out.pos > 0) {
      SQLPOST_TRY(sink_(std::span<const std::uint8_t>(out_.get(), out.pos)));
    }
    const bool drained = end ? rc == 0 : in.pos == in.size;
    if (drained) return success();
  }
}

Result<> Compressor::write(std::span<const std::uint8_t> input) { return run(input, false); }

Result<> Compressor::finish() { return run({}, true); }

Result<Decompressor> Decompressor::create() {
  std::unique_ptr<ZSTD_DCtx_s, CtxFree> ctx(ZSTD_createDCtx());
  if (!ctx) return make_error(Errc::kInternal, "ZSTD_createDCtx failed");
  ZSTD_DCtx_setParameter(ctx.get(), ZSTD_d_windowLogMax, kWindowLogMax);
  return Decompressor(std::move(ctx));
}

Result<std::size_t> Decompressor::step(std::span<const std::uint8_t>& input,
                                       std::span<std::uint8_t> out) {
  if (done_) {
    if (!input.empty()) return make_error(Errc::kCorruption, "data after the compressed payload");
    return std::size_t{0};
  }
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  ZSTD_outBuffer dst{out.data(), out.size(), 0};
  const std::size_t rc = ZSTD_decompressStream(ctx_.get(), &dst, &in);
  if (ZSTD_isError(rc) != 0U) return zstd_error(Errc::kCorruption, "zstd decompression", rc);
  input = input.subspan(in.pos);
  done_ = rc == 0;
  return dst.pos;
}

}  // namespace sqlpost::transport::zstd
