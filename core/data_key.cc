// Out-of-line pieces of tls::Data and tls::Key: error messages.
#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "tls/data.h"
#include "tls/internal/abi.h"
#include "tls/key.h"

namespace tls::inline TLS_ABI_NAMESPACE {
namespace {

std::string Demangle(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

}  // namespace

namespace internal {

void ThrowBadDataAccess(const DataBox* box, const std::type_info& wanted) {
  if (box == nullptr) {
    throw BadDataAccess("tls::Data::Value<" + Demangle(wanted) + ">: the Data is empty");
  }
  throw BadDataAccess("tls::Data::Value<" + Demangle(wanted) + ">: the Data holds " +
                      Demangle(box->type()));
}

}  // namespace internal

std::string_view Key::NullString() {
  throw std::invalid_argument("tls::Key: null const char* key");
}

std::string Key::ToString() const {
  switch (tag_) {
    case kTagString: {
      // Appended piece by piece: `"\"" + std::string(...)` trips GCC 12's
      // -Wrestrict false positive (GCC bug 105651) in optimised builds.
      std::string quoted;
      quoted.reserve(bits_ + 2);
      quoted.push_back('"');
      quoted.append(text());
      quoted.push_back('"');
      return quoted;
    }
    case kTagNegative: return std::to_string(static_cast<int64_t>(bits_));
    default: return std::to_string(bits_);
  }
}

}  // namespace tls::inline TLS_ABI_NAMESPACE
