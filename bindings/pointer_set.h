// File: bindings/pointer_set.h
//
// PointerSet: a set of object identities for one pass over a thread's values
// (PyState::Close, CapturedObjects). Most stores hold a few values, and a task
// ends with one such pass, so the first 16 live inline (a linear scan, nothing
// allocated); the rest go to a hash set.
#ifndef TLS_BINDINGS_POINTER_SET_H_
#define TLS_BINDINGS_POINTER_SET_H_

#include <cstddef>
#include <unordered_set>

namespace tls::bindings {

class PointerSet {
 public:
  bool Contains(const void* p) const {
    for (size_t i = 0; i < size_; ++i) {
      if (inline_[i] == p) return true;
    }
    return !rest_.empty() && rest_.count(p) != 0;
  }

  // Adds `p`; returns whether it was new.
  bool Insert(const void* p) {
    if (Contains(p)) return false;
    if (size_ < kInline) {
      inline_[size_++] = p;
    } else {
      rest_.insert(p);
    }
    return true;
  }

 private:
  static constexpr size_t kInline = 16;
  const void* inline_[kInline];
  size_t size_ = 0;
  std::unordered_set<const void*> rest_;
};

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_POINTER_SET_H_
