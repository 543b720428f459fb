// Internal: the shared, type-erased box behind tls::Data. Not part of the API.
#ifndef TLS_CORE_INTERNAL_DATA_BOX_H_
#define TLS_CORE_INTERNAL_DATA_BOX_H_

#include <atomic>
#include <typeinfo>
#include <utility>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// How MakeData closes a value: the first that compiles of v.Close(), v.close(),
// and, for pointer-like values (raw or smart pointers), v->Close(), v->close().
template <class T>
concept HasClose = requires(T& v) {
  v.Close();
};
template <class T>
concept HasLowerClose = requires(T& v) {
  v.close();
};
template <class T>
concept PointsToClose = requires(T& v) {
  static_cast<bool>(v);
  v->Close();
};
template <class T>
concept PointsToLowerClose = requires(T& v) {
  static_cast<bool>(v);
  v->close();
};

template <class T>
inline constexpr bool kIsCloser =
    HasClose<T> || HasLowerClose<T> || PointsToClose<T> || PointsToLowerClose<T>;

template <class T>
void CloseValue(T& v) {
  if constexpr (HasClose<T>) {
    v.Close();
  } else if constexpr (HasLowerClose<T>) {
    v.close();
  } else if constexpr (PointsToClose<T>) {
    if (v) v->Close();
  } else if constexpr (PointsToLowerClose<T>) {
    if (v) v->close();
  }
}

class DataBox {
 public:
  explicit DataBox(const std::type_info& type) noexcept : type_(type) {}
  DataBox(const DataBox&) = delete;
  DataBox& operator=(const DataBox&) = delete;
  virtual ~DataBox() = default;

  // Closes the value the first time any thread calls it; later calls return
  // false without doing anything. An exception from the value's close
  // propagates, and the value still counts as closed.
  bool CloseOnce() {
    if (closed_.exchange(true, std::memory_order_acq_rel)) return false;
    DoClose();
    return true;
  }
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  const std::type_info& type() const noexcept { return type_; }
  virtual void* address() noexcept = 0;

 private:
  virtual void DoClose() = 0;

  const std::type_info& type_;
  std::atomic<bool> closed_{false};
};

template <class T>
class ValueBox final : public DataBox {
 public:
  template <class... A>
  explicit ValueBox(A&&... a) : DataBox(typeid(T)), value_(std::forward<A>(a)...) {}
  void* address() noexcept override { return &value_; }

 private:
  void DoClose() override { CloseValue(value_); }
  T value_;
};

template <class T, class Closer>
class ValueWithCloserBox final : public DataBox {
 public:
  ValueWithCloserBox(T v, Closer c)
      : DataBox(typeid(T)), value_(std::move(v)), closer_(std::move(c)) {}
  void* address() noexcept override { return &value_; }

 private:
  void DoClose() override { closer_(value_); }
  T value_;
  Closer closer_;
};

struct DataAccess;  // core/internal/captured_values.h

[[noreturn]] TLS_API void ThrowBadDataAccess(const DataBox* box, const std::type_info& wanted);

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_DATA_BOX_H_
