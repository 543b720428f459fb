// Internal: the shared, type-erased box behind tls::Data. Not part of the API.
#ifndef TLS_CORE_INTERNAL_DATA_BOX_H_
#define TLS_CORE_INTERNAL_DATA_BOX_H_

#include <atomic>
#include <cstdint>
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

// The shared box: the value, its close state and the count of Data handles to
// it (intrusive, so a Data is one pointer: 8 bytes in every table slot, one
// allocation per value, and no separate control block to miss).
//
// The close state is one atomic word: bit 0 "closed", bit 1 "close pending",
// and above them the count of live snapshots (CapturedValues) holding the
// value. An explicit close (Data::Close, Reset) closes at once. A close at the
// end of the value's thread or task (CloseAtEnd) closes at once only if no
// snapshot holds the value; otherwise it marks the close pending, and the
// snapshot whose release takes the count to 0 closes it (ReleaseCapture). A
// single word, changed by compare-and-swap, so that of an exit and the last
// release racing on two threads exactly one closes, and the closer sees what
// every earlier holder did with the value (each change is acq_rel).
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
    if (state_.fetch_or(kClosed, std::memory_order_acq_rel) & kClosed) return false;
    DoClose();
    return true;
  }
  // The close owed when the value's thread or task ends: now if no snapshot
  // holds the value, else left to the last snapshot's release. Throws what
  // the value's close throws.
  void CloseAtEnd() {
    uint64_t s = state_.load(std::memory_order_acquire);
    uint64_t next;
    do {
      if (s & kClosed) return;
      next = s >= kOneCapture ? (s | kPending) : (s | kClosed);
    } while (!state_.compare_exchange_weak(s, next, std::memory_order_acq_rel));
    if (next & kClosed) DoClose();  // else pending: a snapshot's release closes it
  }
  bool closed() const noexcept { return state_.load(std::memory_order_acquire) & kClosed; }

  // A snapshot took the value (CapturedValues' constructor).
  void Capture() noexcept { state_.fetch_add(kOneCapture, std::memory_order_relaxed); }
  // A snapshot let it go (CapturedValues' destructor). If that was the last
  // snapshot and the value's thread or task ended meanwhile (close pending),
  // closes it here, on the calling thread. Throws what the value's close
  // throws.
  void ReleaseCapture() {
    uint64_t s = state_.fetch_sub(kOneCapture, std::memory_order_acq_rel) - kOneCapture;
    do {
      // Still held, nothing owed, or closed already (an explicit Close).
      if (s >= kOneCapture || !(s & kPending) || (s & kClosed)) return;
    } while (!state_.compare_exchange_weak(s, s | kClosed, std::memory_order_acq_rel));
    DoClose();
  }

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
  static constexpr uint64_t kClosed = 1;
  static constexpr uint64_t kPending = 2;
  static constexpr uint64_t kOneCapture = 4;

  virtual void DoClose() = 0;

  const std::type_info& type_;
  std::atomic<long> refs_{1};  // the handle MakeData returns
  std::atomic<uint64_t> state_{0};
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
