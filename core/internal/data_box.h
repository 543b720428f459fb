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

// The shared box: the value, its close-once flag and the count of Data
// handles to it (intrusive, so a Data is one pointer: 8 bytes in every table
// slot, one allocation per value, and no separate control block to miss).
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

  // Handle counting, as shared_ptr does it: a new handle needs no ordering
  // (it is made from one that exists); the last release orders every
  // handle's use of the value before the destruction.
  void Ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  long refs() const noexcept { return refs_.load(std::memory_order_relaxed); }

 private:
  virtual void DoClose() = 0;

  const std::type_info& type_;
  std::atomic<long> refs_{1};  // the handle MakeData returns
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
