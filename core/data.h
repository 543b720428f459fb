// File: core/data.h
//
// tls::Data is what a thread's store holds: a copyable handle to one shared,
// type-erased value, like go-tls's Data. Copies share the value; the value is
// destroyed when the last handle goes, on whichever thread that is. Closing
// happens at most once per value, whichever handle or thread asks first. A
// Data is one pointer (the count of handles lives with the value): copying
// one is an atomic increment, so on hot paths prefer tls::Find, which borrows.
//
// Example:
//   struct Conn { void Close(); };
//   tls::Data d = tls::MakeData(Conn{});
//   tls::Set("conn", d);
//   d.Value<Conn>();           // Conn&; throws tls::BadDataAccess if it is not a Conn
//   d.TryValue<int>();         // nullptr: wrong type, no exception
//   tls::Reset();              // calls Conn::Close() once
//
//   int fd = open(...);
//   tls::Set("fd", tls::MakeData(fd, [](int& f) { ::close(f); }));  // custom closer
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_DATA_H_
#define TLS_CORE_DATA_H_

#include <stdexcept>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "tls/internal/abi.h"
#include "tls/internal/data_box.h"

namespace tls::inline TLS_ABI_NAMESPACE {

// Thrown by Data::Value when the Data is empty or holds another type.
class TLS_API BadDataAccess : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class Data {
 public:
  // An empty Data: holds nothing, has_value() is false, closing does nothing.
  Data() noexcept = default;
  Data(const Data& other) noexcept : box_(other.box_) {
    if (box_ != nullptr) box_->Ref();
  }
  Data(Data&& other) noexcept : box_(std::exchange(other.box_, nullptr)) {}
  Data& operator=(const Data& other) noexcept {
    Data(other).swap(*this);
    return *this;
  }
  Data& operator=(Data&& other) noexcept {
    Data(std::move(other)).swap(*this);
    return *this;
  }
  ~Data() {
    if (box_ != nullptr) box_->Unref();
  }
  void swap(Data& other) noexcept { std::swap(box_, other.box_); }
  friend void swap(Data& a, Data& b) noexcept { a.swap(b); }

  bool has_value() const noexcept { return box_ != nullptr; }
  explicit operator bool() const noexcept { return has_value(); }

  // The stored value, type-checked: T must be exactly the type given to
  // MakeData (cv-qualifiers aside). Throws tls::BadDataAccess otherwise, with
  // both type names in the message.
  template <class T>
  T& Value() const {
    static_assert(!std::is_reference_v<T>, "Value<T>: T must not be a reference");
    if (T* p = TryValue<T>()) return *p;
    internal::ThrowBadDataAccess(box_, typeid(T));
  }

  // The stored value, or nullptr if the Data is empty or holds another type.
  template <class T>
  T* TryValue() const noexcept {
    if (box_ == nullptr || box_->type() != typeid(T)) return nullptr;
    return static_cast<T*>(box_->address());
  }

  // typeid of the stored value; typeid(void) when empty.
  const std::type_info& type() const noexcept { return box_ ? box_->type() : typeid(void); }

  // Closes the value (see MakeData) unless it was closed before. Returns true
  // if this call closed it. An exception from the value's close propagates to
  // the caller; the value still counts as closed.
  bool Close() const { return box_ != nullptr && box_->CloseOnce(); }
  bool closed() const noexcept { return box_ != nullptr && box_->closed(); }

  // Number of Data handles sharing the value (0 when empty).
  long use_count() const noexcept { return box_ != nullptr ? box_->refs() : 0; }

  // Same value (not equal values): copies of one MakeData compare equal.
  friend bool operator==(const Data& a, const Data& b) noexcept { return a.box_ == b.box_; }

 private:
  template <class T>
  friend Data MakeData(T&& value);
  template <class T, class Closer>
  friend Data MakeData(T&& value, Closer&& closer);
  friend struct internal::DataAccess;
  explicit Data(internal::DataBox* adopted) noexcept : box_(adopted) {}

  internal::DataBox* box_ = nullptr;  // one count of box_->refs() is this handle's
};

// Wraps a value into Data. Closing the Data calls, once, the first of
// value.Close(), value.close(), value->Close(), value->close() that compiles
// (the pointer forms are skipped for a null pointer); a value with none of
// them is never closed, only destroyed.
template <class T>
Data MakeData(T&& value) {
  using V = std::decay_t<T>;
  return Data(new internal::ValueBox<V>(std::forward<T>(value)));
}

// Wraps a value with a custom closer: closing calls closer(value&) once.
template <class T, class Closer>
Data MakeData(T&& value, Closer&& closer) {
  using V = std::decay_t<T>;
  using C = std::decay_t<Closer>;
  static_assert(std::is_invocable_v<C&, V&>, "MakeData: closer must be callable as closer(value&)");
  return Data(
      new internal::ValueWithCloserBox<V, C>(std::forward<T>(value), std::forward<Closer>(closer)));
}

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_DATA_H_
